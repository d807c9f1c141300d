"""MIR probes on the embedding cache: how well does each backend's vector of a track predict
the catalogue's own labels (genre, tags, key, tempo, ...), and does that order the backends
as recommendation does (docs/probes.md)."""
