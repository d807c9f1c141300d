"""Snakemake script for rule tracks (being written)."""
raise SystemExit("rule tracks: not written yet")
