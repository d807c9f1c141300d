"""Rule probe through Snakemake on planted caches and label files (no audio, no extraction).

The layered cache's middle layer hears the genre, the one-layer cache nothing: the probe of
every layer lands in scores.csv, and adding a second backend adds exactly one probe job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audiorec.extraction.store import write_embeddings
from tests.conftest import run_workflow
from tests.workflow.test_layer_sweep_workflow import planned_jobs

N = 60


def plant(root: Path) -> list[str]:
    rng = np.random.default_rng(0)
    data = root / "data"
    data.mkdir()
    ids = [f"t{i:02d}" for i in range(N)]
    genre = np.arange(N) % 3
    (data / "id_genres.tsv").write_text("id\tgenres\n" + "".join(f"{t}\tg{g}\n" for t, g in zip(ids, genre)))
    (data / "id_metadata.tsv").write_text("id\ttempo\n" + "".join(f"{t}\t{100 + g * 20 + rng.normal():.2f}\n" for t, g in zip(ids, genre)))
    (data / "id_information.tsv").write_text("id\tartist\n" + "".join(f"{t}\ta{i // 3}\n" for i, t in enumerate(ids)))
    emb = root / "results/tiny/embeddings"
    emb.mkdir(parents=True)
    layers = np.stack([s * np.eye(3)[genre] + rng.standard_normal((N, 3)) for s in (0.0, 4.0)], axis=1).astype(np.float16).astype(np.float32)
    attrs = {"layer": "layer1", "layer_names": ["layer0", "layer1"], "layer_dims": [3, 3], "backend_type": "mert"}
    write_embeddings(emb / "mert.h5", ids, layers[:, 1], layers=layers, attrs=attrs)
    write_embeddings(emb / "mfcc.h5", ids, rng.standard_normal((N, 4)).astype(np.float32), attrs={"backend_type": "mfcc"})
    pl.DataFrame({"track_id": ids, "status": ["ok"] * N}).write_parquet(root / "results/tiny/tracks.parquet")
    return ids


def _config(root: Path, backends: dict) -> dict:
    return {
        "datasets": {"tiny": {"format": "music4all-onion", "path": str(root / "data")}},
        "backends": backends,
        "models": {"pop": {}},
        "seeds": [0],
        "probes": {"enable": True, "folds": 3, "inner_folds": 2, "min_count": 5, "random_dim": 8},
    }


def test_probe_rule_probes_every_layer_and_a_new_backend_adds_one_job(tmp_path: Path) -> None:
    plant(tmp_path)
    targets = ["results/tiny/probes/mert/scores.csv", "results/tiny/probes/random/scores.csv"]
    done = run_workflow(tmp_path, _config(tmp_path, {"mert": {"layer": "layer1"}}), "--cores", "2", *targets, "--allowed-rules", "probe")
    assert planned_jobs(done.stdout + done.stderr) == {"probe": 2}
    scores = pl.read_csv(tmp_path / targets[0])
    acc = {r["layer"]: r["value"] for r in scores.filter((pl.col("task") == "genres") & (pl.col("metric") == "roc_auc")).iter_rows(named=True)}
    assert set(acc) == {"layer0", "layer1"} and acc["layer1"] > 0.9 > acc["layer0"]
    assert scores.filter(pl.col("configured"))["layer"].unique().to_list() == ["layer1"]
    predictions = pl.read_parquet(tmp_path / "results/tiny/probes/mert/predictions.parquet")
    assert predictions.filter((pl.col("layer") == "layer1") & (pl.col("task") == "tempo"))["track_id"].n_unique() == N
    both = _config(tmp_path, {"mert": {"layer": "layer1"}, "mfcc": {}})
    plan = run_workflow(tmp_path, both, "-n", "--cores", "2", *targets, "results/tiny/probes/mfcc/scores.csv", "--allowed-rules", "probe")
    assert planned_jobs(plan.stdout + plan.stderr) == {"probe": 1}


@pytest.mark.slow  # ~45 s: probes, sweep, KNN run and evaluations on the planted dataset
def test_probe_report_puts_the_best_layer_by_probe_beside_the_sweeps(tmp_path: Path) -> None:
    """Probes and the layer sweep on one planted dataset (split, layered cache, label files):
    mir_vs_recs.md gets the joined "Best layer: probe vs layer sweep" table. The cache's
    layer2 hears the genre best, so both pick it for genres."""
    import os

    from tests.conftest import tiny_config
    from tests.workflow.test_layer_sweep_workflow import plant as plant_sweep

    plant_sweep(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    tracks = [f"t{g}{i:02d}" for g in range(3) for i in range(10)]
    (data / "userid_trackid_timestamp.tsv").write_text("")  # the split is planted; older than it
    os.utime(data / "userid_trackid_timestamp.tsv", (1, 1))
    (data / "id_genres.tsv").write_text("id\tgenres\n" + "".join(f"{t}\tg{t[1]}\n" for t in tracks))
    (data / "id_information.tsv").write_text("id\tartist\n" + "".join(f"{t}\ta{n // 3}\n" for n, t in enumerate(tracks)))
    pl.DataFrame({"track_id": tracks, "status": ["ok"] * len(tracks)}).write_parquet(tmp_path / "results/tiny/tracks.parquet")
    config = tiny_config(backends={"mert": {"layer": "layer1"}}, models={"knn": {}}, evaluation={"k": 5})
    config["datasets"] = {"tiny": {"format": "music4all-onion", "path": str(data)}}
    config["probes"] = {"enable": True, "folds": 3, "inner_folds": 2, "min_count": 5, "random_dim": 8}
    config["layer_sweep"] = {"models": ["knn"]}
    run_workflow(
        tmp_path, config, "--cores", "2", "results/tiny/report/mir_vs_recs.md",
        "--allowed-rules", "probe", "probe_report", "layer_sweep", "layer_sweep_report", "train_baseline", "evaluate",
    )
    text = (tmp_path / "results/tiny/report/mir_vs_recs.md").read_text()
    assert "## Best layer: probe vs layer sweep" in text
    table = text.split("## Best layer: probe vs layer sweep")[1]
    assert "| backend | task | best_layer_by_probe | model | best_layer_by_sweep | same |" in table
    rows = [line.strip("| ").split(" | ") for line in table.splitlines() if line.startswith("| mert | genres |")]
    assert len(rows) == 1, table
    _, _, by_probe, model, by_sweep, same = rows[0]
    # the sweep's pick is layer2 (test_layer_sweep_workflow); the probe's is a layer with the top genre ROC-AUC
    scores = pl.read_csv(tmp_path / "results/tiny/probes/mert/scores.csv").filter(
        (pl.col("task") == "genres") & (pl.col("metric") == "roc_auc")
    )
    top = scores.filter(pl.col("value") == scores["value"].max())["layer"].to_list()
    assert model == "knn" and by_sweep == "layer2" and by_probe in top, (rows, top)
    assert same == str(by_probe == by_sweep)
