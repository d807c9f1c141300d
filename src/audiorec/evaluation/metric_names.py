"""Names of the per-user metrics, in report order.

Kept apart from metrics.py (which needs torch) so that the report, which runs in the
torch-free core environment, can name the metrics without importing torch.
"""

METRICS = ("hitrate", "recall", "ndcg", "mrr", "precision")
