"""What the report of a cold-item split says above its tables (docs/beyond.md).

A `cold_items` dataset is reported with the same metrics.csv, significance.csv and Table 3
layout as any other; only the question differs, and a reader must know it to read the
numbers: which tracks were held out, what the lists ranked, and why `pop` and `random`
are the floor rather than baselines to beat by a little.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def cold_start_intro(protocol: Mapping[str, Any], k: int) -> str:
    share = float(protocol.get("cold_item_share", 0.0))
    held = []
    if share > 0:
        held.append(f"a seeded {share:.0%} of the tracks heard in the train window")
    if protocol.get("include_new_tracks", True):
        held.append("every track first heard in the test period")
    pool = (
        "only the cold tracks"
        if protocol.get("cold_candidates", "cold") == "cold"
        else "warm and cold tracks together"
    )
    return (
        f"Protocol `cold_items`: {' and '.join(held) or 'no track'} held out of training entirely; "
        "val/test ask only for those *cold* tracks (test-period pairs new to the user, by users present in "
        f"train). Each top-{k} list ranks {pool}; the tracks a user is known to have heard (known.parquet) are never recommended. "
        "KNN scores cold tracks by their audio vectors directly, the Shallow Net and BERT4Rec through their "
        "frozen content projection, content2cf by the iALS factor their audio vector predicts, contrastive by "
        "their audio's projection into the iALS space. `pop` gives every "
        "cold track zero popularity, iALS a zero factor, and the `random` backend of a learned model (`items: id`) "
        "has no content for them (their vectors were never trained): those rows are the floor (marked), what a "
        "recommender without audio can do here. The split's catalogue counts are the `catalogue` rows of "
        "stats.csv (Table 2 below)."
    )
