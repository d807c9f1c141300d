"""Snakemake script for rule embed_shard (being written)."""
raise SystemExit("rule embed_shard: not written yet")
