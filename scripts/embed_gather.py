"""Snakemake script for rule embed_gather (being written)."""
raise SystemExit("rule embed_gather: not written yet")
