"""Hyperparameter search with the same budget for every backend (docs/models.md, "Tuning")."""
