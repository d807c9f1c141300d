"""Analyses beyond the paper's tables: the layer sweep (docs/beyond.md)."""
