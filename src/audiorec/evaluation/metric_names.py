"""Names of the per-user metrics, in report order.

Kept apart from metrics.py (which needs torch) so that the report, which runs in the
torch-free core environment, can name the metrics without importing torch.
"""

METRICS = ("hitrate", "recall", "ndcg", "mrr", "precision")

#: beyond-accuracy per-user metrics (evaluation/beyond.py); `diversity` only where the
#: dataset has genre labels. Tested and reported like the accuracy metrics.
BEYOND_METRICS = ("novelty", "arp", "pop_lift", "diversity")

#: per-run metrics of the recommendation lists as a whole (beyond_run_{part}.csv)
RUN_METRICS = ("coverage", "gini")

#: groups of a cold-item split's targets by artist (evaluation/artists.py)
ARTIST_GROUPS = ("seen_artist", "new_artist", "unknown_artist")
