"""Snakemake script for rule split (being written)."""
raise SystemExit("rule split: not written yet")
