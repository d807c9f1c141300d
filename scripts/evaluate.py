"""Snakemake script for rule evaluate (being written)."""
raise SystemExit("rule evaluate: not written yet")
