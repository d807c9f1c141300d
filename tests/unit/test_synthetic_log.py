"""The synthetic listening log: format, determinism, and the structure it promises.

Most checks run on a mid-sized log generated without audio (a second or two); the
paper's split is recomputed here with polars, independently of the workflow's split code.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audiorec.data.synthetic import generate_dataset
from audiorec.data.synthetic.dataset import GENRES_NAME, INFORMATION_NAME, LOG_NAME, TASTES_NAME
from tests.conftest import TINY_SYNTHETIC

MEDIUM = {"n_tracks": 400, "n_users": 600, "events_per_user": 60, "seed": 3}


def read_log(folder: Path) -> pl.DataFrame:
    return pl.read_csv(folder / LOG_NAME, separator="\t", try_parse_dates=True)


def read_tsv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator="\t", infer_schema_length=None)


def paper_split(log: pl.DataFrame, test_start: str = "2020-02-20") -> tuple[pl.DataFrame, pl.DataFrame]:
    """(train pairs, held-out pairs) of the paper's protocol (before halving the users)."""
    start = pl.lit(test_start).str.to_datetime("%Y-%m-%d")
    train_from = pl.lit("2019-02-20").str.to_datetime("%Y-%m-%d")
    train = log.filter((pl.col("timestamp") >= train_from) & (pl.col("timestamp") < start))
    seen = log.filter(pl.col("timestamp") < start).select("user_id", "track_id").unique()
    held = (
        log.filter(pl.col("timestamp") >= start)
        .join(seen, on=["user_id", "track_id"], how="anti")
        .filter(pl.col("user_id").is_in(train["user_id"].unique().implode()))
        .filter(pl.col("track_id").is_in(train["track_id"].unique().implode()))
        .select("user_id", "track_id")
        .unique()
    )
    return train.select("user_id", "track_id").unique(), held


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("medium")
    generate_dataset(MEDIUM, folder, threads=2, audio=False)
    return folder


# --- format ---


def test_log_has_the_music4all_onion_format(medium: Path) -> None:
    lines = (medium / LOG_NAME).read_text().splitlines()
    assert lines[0] == "user_id\ttrack_id\ttimestamp"
    pattern = re.compile(r"^user_[0-9A-Za-z]{8}\t[0-9A-Za-z]{16}\t\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
    assert all(pattern.match(line) for line in lines[1:])
    log = read_log(medium)
    assert log.schema["timestamp"] == pl.Datetime("us")
    first, last = log["timestamp"].min(), log["timestamp"].max()
    assert str(first) >= "2019-01-01" and str(last) < "2020-03-21"
    assert log.height > 0.7 * MEDIUM["n_users"] * MEDIUM["events_per_user"]


def test_log_is_grouped_by_user_and_newest_first(medium: Path) -> None:
    log = read_log(medium)
    users = log["user_id"].to_list()
    changes = sum(1 for a, b in zip(users, users[1:], strict=False) if a != b)
    assert changes == log["user_id"].n_unique() - 1  # each user's rows are contiguous
    ordered = log.group_by("user_id", maintain_order=True).agg(
        (pl.col("timestamp").diff().dt.total_seconds() < 0).drop_nulls().all().alias("newest_first")
    )
    assert ordered["newest_first"].all()


def test_every_logged_track_has_ground_truth(medium: Path) -> None:
    log, genres, info = read_log(medium), read_tsv(medium / GENRES_NAME), read_tsv(medium / INFORMATION_NAME)
    assert genres.columns[:2] == ["id", "genre"]
    assert {"tempo", "density", "register", "brightness", "energy", "mode", "key"} <= set(genres.columns)
    assert genres["id"].n_unique() == genres.height == MEDIUM["n_tracks"]
    assert set(log["track_id"].unique()) <= set(genres["id"])
    assert info["id"].to_list() == genres["id"].to_list()
    assert info.columns[:4] == ["id", "artist", "song", "album_name"]
    tastes = read_tsv(medium / TASTES_NAME)
    assert tastes.height == MEDIUM["n_users"] and set(log["user_id"].unique()) <= set(tastes["user_id"])
    weights = tastes.select(pl.col("^taste_[a-z]+$")).to_numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-3)


# --- determinism ---


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path, medium: Path) -> None:
    generate_dataset(MEDIUM, tmp_path / "one", threads=1, audio=False)
    for name in (LOG_NAME, GENRES_NAME, INFORMATION_NAME, TASTES_NAME):
        assert (tmp_path / "one" / name).read_bytes() == (medium / name).read_bytes(), name
    generate_dataset({**MEDIUM, "seed": 4}, tmp_path / "other", threads=1, audio=False)
    assert (tmp_path / "other" / LOG_NAME).read_bytes() != (medium / LOG_NAME).read_bytes()


# --- structure ---


def test_cold_items_and_cold_users_exist(medium: Path) -> None:
    log, info = read_log(medium), read_tsv(medium / INFORMATION_NAME)
    cold_start = pl.datetime(2020, 2, 20)
    first_play = log.group_by("track_id").agg(pl.col("timestamp").min().alias("first"))
    cold_items = first_play.filter(pl.col("first") >= cold_start)
    released_late = set(info.filter(pl.col("release") >= "2020-02-20")["id"])
    assert cold_items.height >= 5
    assert set(cold_items["track_id"]) <= released_late  # cold because released late, never earlier
    played_early = log.filter(pl.col("timestamp") < cold_start)["track_id"].unique()
    assert not set(played_early) & released_late  # nobody hears a track before its release
    first_user = log.group_by("user_id").agg(pl.col("timestamp").min().alias("first"))
    assert first_user.filter(pl.col("first") >= cold_start).height >= 5


@pytest.mark.parametrize("knobs", [MEDIUM, TINY_SYNTHETIC], ids=["medium", "tiny"])
def test_paper_split_leaves_val_and_test(knobs: dict, tmp_path: Path) -> None:
    generate_dataset(knobs, tmp_path, threads=1, audio=False)
    train, held = paper_split(read_log(tmp_path))
    users = held["user_id"].unique()
    assert users.len() >= 20, "too few held-out users to halve into val and test"
    assert held.height >= 3 * users.len() / 2
    assert set(held["track_id"]) <= set(train["track_id"]) and set(users) <= set(train["user_id"])


def test_most_played_genre_follows_taste(medium: Path) -> None:
    agreement, chance = _genre_agreement(medium)
    assert agreement > 2.5 * chance, (agreement, chance)
    assert agreement > 0.35


def _genre_agreement(folder: Path) -> tuple[float, float]:
    log, genres, tastes = read_log(folder), read_tsv(folder / GENRES_NAME), read_tsv(folder / TASTES_NAME)
    played = (
        log.join(genres.select("id", "genre"), left_on="track_id", right_on="id")
        .group_by("user_id", "genre").len()
        .sort(["user_id", "len", "genre"], descending=[False, True, False])
        .group_by("user_id", maintain_order=True).first()
        .join(tastes.select("user_id", "top_genre"), on="user_id")
    )
    agreement = float((played["genre"] == played["top_genre"]).mean())
    p_played = played["genre"].value_counts(normalize=True)
    p_top = played["top_genre"].value_counts(normalize=True).rename({"top_genre": "genre"})
    chance = float(p_played.join(p_top, on="genre").select(pl.col("proportion") * pl.col("proportion_right")).sum().item())
    return agreement, chance


def test_audible_share_controls_how_much_genre_taste_shows(tmp_path: Path) -> None:
    knobs = {"n_tracks": 300, "n_users": 300, "events_per_user": 40, "repeat_share": 0.1}
    generate_dataset({**knobs, "audible_share": 1.0}, tmp_path / "audible", audio=False)
    generate_dataset({**knobs, "audible_share": 0.0}, tmp_path / "inaudible", audio=False)
    audible, chance_a = _genre_agreement(tmp_path / "audible")
    inaudible, chance_i = _genre_agreement(tmp_path / "inaudible")
    assert audible > 0.6 and audible > 4 * chance_a
    assert inaudible < audible - 0.3
    assert inaudible < 2.5 * chance_i  # what remains is the popularity of genres, not taste


def test_sessions_walk_through_albums_in_order(medium: Path) -> None:
    log, info = read_log(medium), read_tsv(medium / INFORMATION_NAME)
    seq = (
        log.join(info.select("id", "album_name", "artist", "album_track"), left_on="track_id", right_on="id")
        .sort(["user_id", "timestamp"])
        .with_columns(
            next_album=pl.col("album_name").shift(-1).over("user_id"),
            next_artist=pl.col("artist").shift(-1).over("user_id"),
            next_track=pl.col("album_track").shift(-1).over("user_id"),
        )
        .drop_nulls("next_album")
    )
    in_order = ((seq["next_album"] == seq["album_name"]) & (seq["next_artist"] == seq["artist"]) & (seq["next_track"] == seq["album_track"] + 1)).mean()
    assert in_order > 0.12, in_order  # by chance it would be about 1/n_tracks


def test_repeats_and_a_long_tail(medium: Path) -> None:
    log = read_log(medium)
    repeats = 1 - log.select("user_id", "track_id").unique().height / log.height
    assert 0.2 < repeats < 0.7
    plays = np.sort(log.group_by("track_id").len()["len"].to_numpy())[::-1]
    top_decile = plays[: len(plays) // 10].sum() / plays.sum()
    assert top_decile > 0.25  # a tenth of the tracks get well over a tenth of the plays
    assert np.median(plays) < 0.8 * plays.mean() and plays.max() > 8 * np.median(plays)  # skewed right


def test_taste_drifts_toward_the_end_mixture(tmp_path: Path) -> None:
    knobs = {"n_tracks": 300, "n_users": 300, "events_per_user": 80, "taste_drift": 1.0, "audible_share": 1.0,
             "repeat_share": 0.0, "album_session_share": 0.0, "artist_continue": 0.0}
    generate_dataset(knobs, tmp_path, audio=False)
    log, genres, tastes = read_log(tmp_path), read_tsv(tmp_path / GENRES_NAME), read_tsv(tmp_path / TASTES_NAME)
    names = genres["genre"].unique().sort().to_list()
    plays = log.join(genres.select("id", "genre"), left_on="track_id", right_on="id")
    early = plays.filter(pl.col("timestamp") < pl.datetime(2019, 4, 1))
    late = plays.filter(pl.col("timestamp") >= pl.datetime(2020, 1, 1))

    def closer_to_end(part: pl.DataFrame) -> float:
        counts = part.group_by("user_id", "genre").len().pivot(on="genre", index="user_id", values="len").fill_null(0)
        counts = counts.join(tastes, on="user_id")
        share = counts.select([pl.col(g) if g in counts.columns else pl.lit(0) for g in names]).to_numpy().astype(float)
        share /= share.sum(axis=1, keepdims=True)
        start = counts.select([f"taste_{g}" for g in names]).to_numpy()
        end = counts.select([f"taste_end_{g}" for g in names]).to_numpy()
        return float(np.mean(np.abs(share - start).sum(1) - np.abs(share - end).sum(1)))

    assert closer_to_end(late) > closer_to_end(early) + 0.3


def test_default_size_leaves_substantial_val_and_test(tmp_path: Path) -> None:
    """The default dataset (log only) under the paper's split: hundreds of users each side."""
    summary = generate_dataset({}, tmp_path, threads=2, audio=False)
    assert summary.n_events > 100_000
    train, held = paper_split(read_log(tmp_path))
    assert held["user_id"].n_unique() >= 600 and held.height >= 4000
    assert train["user_id"].n_unique() >= 1300 and train["track_id"].n_unique() >= 900
