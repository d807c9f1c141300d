"""Snakemake script for rule synthesize (being written)."""
raise SystemExit("rule synthesize: not written yet")
