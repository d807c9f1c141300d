"""The split as index arrays: what every recommender trains on and is ranked against.

Users and tracks get dense indices in sorted id order, so that index order is id order
(ranking breaks ties by the lower index, i.e. by track id) and the same split always gives
the same indices. The catalogue is every track of the three parts: under the paper's
protocol val/test tracks are all in train, and under a cold-item protocol the extra tracks
are still rankable by content models. A cold-item split also ships its catalogue
(`catalogue.parquet`, docs/beyond.md): then the catalogue is that file's tracks, including
held-out tracks nobody asked for (so the candidate pool reveals nothing about val/test),
and `candidates` limits val/test ranking to the tracks it marks.

What ranking removes from a user's list is `known` (the split's `known.parquet`: every pair
the split treats as heard before the test period, docs/split.md), so that a track the split
kept out of val/test as "not new" is never recommended either. A run whose backend lacks
vectors for some tracks ranks a narrowed view (`SplitData.for_vectors`): those tracks leave
the model's inputs and the candidates, and stay targets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from ..evaluation.ranking import Seen, TopK

SPLIT_COLUMNS = {"user_id": pl.String, "track_id": pl.String, "timestamp": None, "plays": None}


@dataclass(frozen=True)
class EvalPart:
    """A val or test part: its users (sorted indices) and their relevant items (CSR)."""

    name: str
    users: np.ndarray
    relevant: Seen

    @property
    def n_relevant(self) -> np.ndarray:
        return np.diff(self.relevant.indptr)[self.users]


@dataclass(frozen=True)
class SplitData:
    """Train interactions as a time-ordered CSR per user, plus the evaluation parts.

    train.indices[train.indptr[u]:train.indptr[u+1]] are user u's train items in order of
    first listen (ties by track id): the BERT4Rec sequence, and the items ranking excludes.
    """

    user_ids: list[str]
    track_ids: list[str]
    train: Seen
    train_plays: np.ndarray
    parts: dict[str, EvalPart]
    # Item indices val/test lists may contain (sorted); None: every item.
    candidates: np.ndarray | None = None
    # What ranking removes per user (the split's known pairs); None: the train items.
    known: Seen | None = None
    # Users whose model input is empty (every train track lacks a vector): they get no list.
    without_input: np.ndarray | None = None

    @property
    def exclude(self) -> Seen:
        """Items never recommended to a user: those the split treats as known to them."""
        return self.train if self.known is None else self.known

    def rank(self, factors, users: np.ndarray, k: int) -> TopK:
        """Top-k of a model's `factors` for `users`, ranked as every run is ranked: known pairs
        removed, only candidates, and an empty list (scored 0 by evaluation, never filler) for
        a user the model has no input for."""
        users = np.asarray(users, dtype=np.int64)
        if self.without_input is None or not self.without_input[users].any():
            return factors.rank(users, self.exclude, k, candidates=self.candidates)
        served = ~self.without_input[users]
        n_pool = self.n_items if self.candidates is None else len(self.candidates)
        width = min(k, n_pool)
        items = np.full((len(users), width), -1, dtype=np.int64)
        scores = np.full((len(users), width), -np.inf, dtype=np.float32)
        if served.any():
            top = factors.rank(users[served], self.exclude, k, candidates=self.candidates)
            items[served], scores[served] = top.items, top.scores
        return TopK(users=users, items=items, scores=scores)

    def for_vectors(self, has_vector: np.ndarray) -> SplitData:
        """The split as a run over a backend seen it: tracks without a vector leave the train
        sequences (model input: KNN means, Shallow Net pairs, BERT4Rec sequences skip them) and
        the candidates, and stay val/test targets (missing them is that backend's honest loss).
        Exclusion keeps using the full known set. With every vector present: this very object."""
        has_vector = np.asarray(has_vector, dtype=bool)
        if has_vector.shape != (self.n_items,):
            raise ValueError(f"has_vector must have one flag per item ({self.n_items}), got {has_vector.shape}")
        if has_vector.all():
            return self
        keep = has_vector[self.train.indices]
        users = np.repeat(np.arange(self.n_users), np.diff(self.train.indptr))[keep]
        train = _csr(users, self.train.indices[keep], self.n_users)
        pool = np.arange(self.n_items) if self.candidates is None else self.candidates
        candidates = pool[has_vector[pool]].astype(np.int64)
        if len(candidates) == 0:
            raise ValueError("no candidate track has a vector: nothing can be ranked")
        return replace(
            self,
            train=train,
            train_plays=self.train_plays[keep],
            candidates=candidates,
            known=self.exclude,
            without_input=np.diff(train.indptr) == 0,
        )

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.track_ids)

    @property
    def n_train(self) -> int:
        return len(self.train.indices)

    def train_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) index arrays of every train row, grouped by user."""
        users = np.repeat(np.arange(self.n_users), np.diff(self.train.indptr))
        return users, self.train.indices


def read_part(path: str | os.PathLike[str]) -> pl.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"split part {path} does not exist; run the workflow's `split` rule first")
    return pl.read_parquet(path)


def check_part(df: pl.DataFrame, path: str) -> pl.DataFrame:
    """The part's contract columns, checked; `path` names the source in error messages."""
    missing = [c for c in SPLIT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path} lacks column(s) {missing}; a split part needs {list(SPLIT_COLUMNS)} "
            f"(ARCHITECTURE §3). Re-run the `split` rule."
        )
    for col in ("user_id", "track_id"):
        if df.schema[col] != pl.String:
            raise ValueError(f"{path}: column {col} must be a string, got {df.schema[col]}; re-run the `split` rule")
    if df.select(pl.any_horizontal(pl.col(["user_id", "track_id", "timestamp"]).is_null().any())).item():
        raise ValueError(f"{path} has null user_id/track_id/timestamp values; re-run the `split` rule")
    dupes = df.height - df.select(pl.struct("user_id", "track_id").n_unique()).item()
    if dupes:
        raise ValueError(
            f"{path} has {dupes} duplicate (user_id, track_id) rows; a split part holds one row per pair "
            f"(first listen, plays summed). Re-run the `split` rule."
        )
    return df.select("user_id", "track_id", "timestamp", pl.col("plays").cast(pl.Int64))


def _csr(user_idx: np.ndarray, item_idx: np.ndarray, n_users: int) -> Seen:
    """CSR of rows already sorted by user."""
    counts = np.bincount(user_idx, minlength=n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Seen(indptr=indptr, indices=item_idx.astype(np.int64))


def load_split(
    train: str | os.PathLike[str],
    val: str | os.PathLike[str],
    test: str | os.PathLike[str],
    catalogue: str | os.PathLike[str] | None = None,
    known: str | os.PathLike[str] | None = None,
) -> SplitData:
    """Read the three split parts (ARCHITECTURE §3) into index arrays, checking the contract;
    `catalogue` (a cold-item split's catalogue.parquet) fixes the items and the candidates;
    `known` (known.parquet) is what ranking excludes (default: the train pairs)."""
    frames = {"train": read_part(train), "val": read_part(val), "test": read_part(test)}
    sources = {"train": str(train), "val": str(val), "test": str(test)}
    return split_from_frames(
        frames,
        sources,
        None if catalogue is None else read_part(catalogue),
        str(catalogue),
        known=None if known is None else read_part(known),
        known_source=str(known),
    )


def check_catalogue(catalogue: pl.DataFrame, path: str) -> pl.DataFrame:
    missing = [c for c in ("track_id", "candidate") if c not in catalogue.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; re-run the `split` rule")
    if catalogue["track_id"].is_duplicated().any() or catalogue["track_id"].null_count():
        raise ValueError(f"{path} lists a track twice or an empty track id; re-run the `split` rule")
    return catalogue


def split_from_frames(
    frames: dict[str, pl.DataFrame],
    sources: dict[str, str] | None = None,
    catalogue: pl.DataFrame | None = None,
    catalogue_source: str = "<catalogue>",
    known: pl.DataFrame | None = None,
    known_source: str = "<known pairs>",
) -> SplitData:
    """Index arrays from in-memory parts (`train`, `val`, `test`); `sources` name them in errors.

    `catalogue` (track_id, candidate): every item to index, and which val/test may rank.
    `known` (user_id, track_id): pairs ranking excludes; train pairs are always among them."""
    sources = sources or {name: f"<{name} part>" for name in frames}
    frames = {name: check_part(df, sources[name]) for name, df in frames.items()}
    train, val, test = sources["train"], sources["val"], sources["test"]
    if frames["train"].is_empty():
        raise ValueError(f"{train} is empty: nothing to train on. Check the dataset and the split dates.")
    user_ids = frames["train"].get_column("user_id").unique().sort().to_list()
    track_ids = (
        pl.concat([f.select("track_id") for f in frames.values()]).get_column("track_id").unique().sort().to_list()
    )
    candidates = None
    if catalogue is not None:
        catalogue = check_catalogue(catalogue, catalogue_source).sort("track_id")
        outside = sorted(set(track_ids) - set(catalogue["track_id"].to_list()))
        if outside:
            raise ValueError(
                f"{catalogue_source} lacks {len(outside)} track(s) of the split parts (e.g. {outside[:3]}); "
                "it is stale. Re-run the `split` rule."
            )
        track_ids = catalogue["track_id"].to_list()
        flags = catalogue["candidate"].to_numpy()
        if not flags.all():
            candidates = np.flatnonzero(flags).astype(np.int64)
    users = pl.DataFrame({"user_id": user_ids, "u": np.arange(len(user_ids), dtype=np.int64)})
    tracks = pl.DataFrame({"track_id": track_ids, "i": np.arange(len(track_ids), dtype=np.int64)})

    def indexed(name: str, path: str | os.PathLike[str]) -> pl.DataFrame:
        df = frames[name].join(users, on="user_id", how="left").join(tracks, on="track_id", how="left")
        unknown = df.filter(pl.col("u").is_null())
        if unknown.height:
            examples = unknown.get_column("user_id").unique().sort().head(3).to_list()
            raise ValueError(
                f"{path}: {unknown.get_column('user_id').n_unique()} user(s) have no train interactions "
                f"(e.g. {examples}); val/test users must be train users (ARCHITECTURE §3). Re-run the `split` rule."
            )
        return df.sort(["u", "timestamp", "track_id"])

    tr = indexed("train", train)
    train_csr = _csr(tr.get_column("u").to_numpy(), tr.get_column("i").to_numpy(), len(user_ids))
    parts = {}
    for name, path in (("val", val), ("test", test)):
        df = indexed(name, path)
        u = df.get_column("u").to_numpy()
        parts[name] = EvalPart(name=name, users=np.unique(u), relevant=_csr(u, df.get_column("i").to_numpy(), len(user_ids)))
    if candidates is not None:
        for name, part in parts.items():
            asked = np.unique(part.relevant.indices)
            if not np.isin(asked, candidates).all():
                raise ValueError(
                    f"{sources[name]} asks for tracks that {catalogue_source} does not mark as candidates; "
                    "the split files are from different runs. Re-run the `split` rule."
                )
    return SplitData(
        user_ids=user_ids,
        track_ids=track_ids,
        train=train_csr,
        train_plays=tr.get_column("plays").to_numpy(),
        parts=parts,
        candidates=candidates,
        known=None if known is None else _known_csr(known, tr, users, tracks, known_source),
    )


def _known_csr(known: pl.DataFrame, train: pl.DataFrame, users: pl.DataFrame, tracks: pl.DataFrame, source: str) -> Seen:
    """The excluded pairs as CSR: the split's known pairs plus every train pair (a known file
    that forgot one would otherwise let a train track be recommended). Pairs of users or
    tracks outside the split's index cannot be ranked and are left out."""
    missing = [c for c in ("user_id", "track_id") if c not in known.columns]
    if missing:
        raise ValueError(f"{source} lacks column(s) {missing}; re-run the `split` rule")
    indexed = known.select("user_id", "track_id").join(users, on="user_id", how="inner").join(tracks, on="track_id", how="inner")
    pairs = pl.concat([indexed.select("u", "i"), train.select("u", "i")]).unique().sort("u", "i")
    return _csr(pairs.get_column("u").to_numpy(), pairs.get_column("i").to_numpy(), len(users))
