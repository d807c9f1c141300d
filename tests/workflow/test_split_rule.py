"""Rule split through Snakemake on a hand-made Music4All-Onion folder (log + empty audios/)."""

from __future__ import annotations

import bz2
from datetime import date
from pathlib import Path

import polars as pl

from tests.conftest import run_workflow

HEADER = "user_id\ttrack_id\ttimestamp\n"
# Newest-first per user, like the real file. Test period from 2020-03-01 (train: 2019-12-01 on).
ROWS = [
    ("alice", "t3", "2020-03-05 10:00:00"),  # new to alice
    ("alice", "t3", "2020-03-02 10:00:00"),
    ("alice", "t1", "2020-03-01 00:00:00"),  # known from train
    ("alice", "t1", "2020-01-10 08:00:00"),
    ("alice", "t2", "2019-12-01 00:00:00"),  # first instant of train
    ("alice", "t1", "2019-12-24 08:00:00"),
    ("bob", "t2", "2020-03-03 12:00:00"),  # new to bob
    ("bob", "t3", "2020-02-01 00:00:00"),
    ("bob", "t1", "2019-12-31 23:59:59"),
    ("bob", "t4", "2019-06-01 00:00:00"),  # before train: history only
    ("bob", "t4", "2020-03-04 00:00:00"),  # known from history (history: all)
    ("bob", "t9", "1970-01-01 01:00:00"),  # corrupt, dropped
    ("carol", "t3", "2020-03-06 00:00:00"),  # cold user
]
SPLIT = {"test_start": date(2020, 3, 1), "train_months": 3, "seed": 4}  # an unquoted YAML date


def make_dataset(root: Path, rows: list[tuple[str, str, str]], extra: str = "", compress: bool = False) -> Path:
    root.mkdir(parents=True)
    (root / "audios").mkdir()
    text = HEADER + "".join("\t".join(r) + "\n" for r in rows) + extra
    name = "userid_trackid_timestamp.tsv"
    if compress:
        (root / f"{name}.bz2").write_bytes(bz2.compress(text.encode()))
    else:
        (root / name).write_text(text)
    return root


def config(data: Path, split: dict) -> dict:
    return {
        "datasets": {"onion": {"format": "music4all-onion", "path": str(data), "split": split}},
        "backends": {},
        "models": {"pop": {}},
    }


def test_split_rule_on_a_bz2_onion_log(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "onion", ROWS, compress=True)
    work = tmp_path / "run"
    run_workflow(work, config(data, SPLIT), "--cores", "2", "results/onion/split/stats.csv")
    out = work / "results/onion/split"
    train, val, test = (pl.read_parquet(out / f"{p}.parquet") for p in ("train", "val", "test"))
    for part in (train, val, test):
        assert part.schema == pl.Schema(
            {"user_id": pl.String, "track_id": pl.String, "timestamp": pl.Datetime("us"), "plays": pl.Int64}
        )
    assert train.select("user_id", "track_id", "plays").rows() == [
        ("alice", "t2", 1),
        ("alice", "t1", 2),
        ("bob", "t1", 1),
        ("bob", "t3", 1),
    ]
    held = pl.concat([val, test]).sort("user_id")
    assert held.select("user_id", "track_id", "plays").rows() == [("alice", "t3", 2), ("bob", "t2", 1)]
    assert str(held["timestamp"][0]) == "2020-03-02 10:00:00"
    assert val.height == 1 and test.height == 1

    stats = pl.read_csv(out / "stats.csv")
    table2 = {
        r["name"]: (r["users"], r["items"], r["interactions"]) for r in stats.filter(stage="part").iter_rows(named=True)
    }
    assert table2 == {"train": (2, 3, 4), "val": (1, 1, 1), "test": (1, 1, 1)}
    removed = {r["name"]: r["listens"] for r in stats.filter(stage="removed").iter_rows(named=True)}
    assert removed["too_old"] == 1 and removed["before_train_window"] == 1
    assert removed["known_pairs"] == 2 and removed["cold_users"] == 1

    log = (work / "logs/onion/split.log").read_text()
    assert "userid_trackid_timestamp.tsv.bz2" in log and "M rows/s" in log
    assert (work / "results/onion/benchmarks/split.tsv").exists()


def test_malformed_row_stops_the_job_naming_line_and_setting_then_skip_counts_it(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "onion", ROWS, extra="dave\tt1\n")
    work = tmp_path / "run"
    proc = run_workflow(work, config(data, SPLIT), "--cores", "2", "results/onion/split/stats.csv", check=False)
    assert proc.returncode != 0
    log = (work / "logs/onion/split.log").read_text()
    assert "line 15: malformed row (found 2 tab-separated field(s)" in log
    assert "datasets.onion.split.malformed_rows: skip" in log
    assert not (work / "results/onion/split/train.parquet").exists()

    run_workflow(
        work, config(data, {**SPLIT, "malformed_rows": "skip"}), "--cores", "2", "results/onion/split/stats.csv"
    )
    stats = pl.read_csv(work / "results/onion/split/stats.csv")
    assert stats.filter(name="malformed_columns")["listens"].item() == 1
    assert stats.filter(name="log")["listens"].item() == len(ROWS) + 1


def test_unknown_split_setting_is_refused_before_any_job(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "onion", ROWS)
    proc = run_workflow(tmp_path / "run", config(data, {"test_begin": "2020-03-01"}), "-n", check=False)
    assert proc.returncode != 0
    assert "test_begin" in proc.stdout + proc.stderr
