"""Snakemake script for rule report (being written)."""
raise SystemExit("rule report: not written yet")
