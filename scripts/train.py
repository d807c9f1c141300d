"""Snakemake script for rule train (being written)."""
raise SystemExit("rule train: not written yet")
