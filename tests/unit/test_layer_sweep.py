"""The layer sweep: reads the cache only, matches separate runs layer by layer, names the best layer."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from _tiny_split import one_thread, part, run_paths  # noqa: F401 (autouse fixture)

from audiorec.analysis.layer_sweep import (
    MEAN_LAYER,
    LayerMismatchError,
    SweepPaths,
    configured_layer,
    sweep_layers,
)
from audiorec.analysis.layer_sweep_report import (
    SweepReportSettings,
    best_layers,
    build_sweep_report,
    summarise_sweeps,
)
from audiorec.backends import registry
from audiorec.backends.declarations import read_declarations
from audiorec.evaluation.metrics import per_user_metrics
from audiorec.extraction.store import LayerInfo, write_embeddings
from audiorec.models.run import train_run
from audiorec.report.aggregate import Catalogue

ROOT = Path(__file__).resolve().parents[2]
K = 5
N_GENRES, TRACKS_PER_GENRE, USERS = 4, 12, 40
LAYER_NAMES = ["embedding", "layer1", "layer2", "layer3"]
# how much of each layer is the genre (the rest noise): layer2 carries it best
SIGNAL = [0.0, 0.4, 1.0, 0.6]
DIM = 6


def smk_constant(name: str) -> tuple:
    text = (ROOT / "rules" / "common.smk").read_text()
    match = re.search(rf"^{name} = (\(.*?\))$", text, flags=re.M | re.S)
    assert match, f"{name} not found in rules/common.smk"
    return ast.literal_eval(match.group(1))


@pytest.mark.parametrize("type_name", sorted(registry.BACKEND_TYPES))
def test_layered_declarations_match_the_backends(type_name):
    declaration = read_declarations()[type_name]
    backend = registry.build_backend({"type": type_name})
    assert (len(backend.layer_names) > 1) == declaration.has_layers({}), (type_name, backend.layer_names)
    if type_name == "jukebox":  # counted when several prior layers are cached
        spec = {"type": "jukebox", "layers": [12, 36]}
        assert len(registry.build_backend(spec).layer_names) == 2 and declaration.has_layers(spec)


def test_sweep_model_types_agree():
    from audiorec.analysis.layer_sweep import SWEEP_MODEL_TYPES

    assert smk_constant("SWEEP_MODEL_TYPES") == SWEEP_MODEL_TYPES


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("last", "layer3"), ("2", "layer2"), ("-1", "layer3"), ("layer1", "layer1"), ("mean", MEAN_LAYER)],
)
def test_configured_layer(setting, expected):
    assert configured_layer({"layer": setting}, LayerInfo(LAYER_NAMES, [DIM] * 4)) == expected


@pytest.mark.parametrize("setting", ["7", "layer9"])
def test_configured_layer_that_is_not_cached_is_an_error(setting):
    with pytest.raises(ValueError, match="layer"):
        configured_layer({"layer": setting}, LayerInfo(LAYER_NAMES, [DIM] * 4))


# --- a split whose users like genres, and a cache whose layers hear them to different degrees ---


def write_split(root: Path) -> None:
    rng = np.random.default_rng(1)
    train, val, test = [], [], []
    for u in range(USERS):
        g = u % N_GENRES
        own = rng.permutation(TRACKS_PER_GENRE)
        train += [(f"u{u:02d}", f"t{g}-{i:02d}", j) for j, i in enumerate(own[:5])]
        other = (g + 1) % N_GENRES
        train.append((f"u{u:02d}", f"t{other}-{int(rng.integers(TRACKS_PER_GENRE)):02d}", 6))
        (val if u % 2 else test).extend((f"u{u:02d}", f"t{g}-{i:02d}", 100 + j) for j, i in enumerate(own[5:8]))
    for name, rows in (("train", train), ("val", val), ("test", test)):
        part(rows).write_parquet(root / f"{name}.parquet")


def track_ids() -> list[str]:
    return [f"t{g}-{i:02d}" for g in range(N_GENRES) for i in range(TRACKS_PER_GENRE)]


def make_layers(seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ids = track_ids()
    genre = np.array([int(t[1]) for t in ids])
    onehot = np.hstack([np.eye(N_GENRES)[genre], np.zeros((len(ids), DIM - N_GENRES))])
    return np.stack([s * onehot + rng.standard_normal((len(ids), DIM)) * 0.5 for s in SIGNAL], axis=1)


def write_cache(path: Path, layers: np.ndarray, configured: str, embeddings: np.ndarray | None = None) -> None:
    index = LAYER_NAMES.index(configured) if configured in LAYER_NAMES else None
    if embeddings is None:
        embeddings = layers.mean(axis=1) if index is None else layers[:, index]
    attrs = {"layer": configured, "layer_names": LAYER_NAMES, "layer_dims": [DIM] * 4, "backend_type": "mert"}
    write_embeddings(path, track_ids(), embeddings, layers=layers, attrs=attrs, layer_dtype=np.float16)


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    write_split(root)
    # values already on the float16 grid: /layers (float16) and /embeddings (float32) agree exactly
    exact = make_layers().astype(np.float16).astype(np.float32)
    write_cache(root / "exact.h5", exact, "layer1")
    write_cache(root / "rounded.h5", make_layers(), "layer2")  # float32 /embeddings, float16 /layers
    return root


def sweep_paths(root: Path, out: Path, cache: str | Path) -> SweepPaths:
    return SweepPaths(
        train=str(root / "train.parquet"), val=str(root / "val.parquet"), test=str(root / "test.parquet"),
        embeddings=str(root / cache), metrics=str(out / "metrics.parquet"), info=str(out / "sweep.json"),
    )


def run_metrics(root: Path, out: Path, spec: dict, embeddings: Path) -> pl.DataFrame:
    """A normal training job on `embeddings`, then the evaluate rule's metrics, val and test."""
    out.mkdir(parents=True, exist_ok=True)
    paths = run_paths(root, out, embeddings)
    train_run(dict(spec), "emb", 0, K, paths)
    frames = []
    for name in ("val", "test"):
        truth = pl.read_parquet(root / f"{name}.parquet")
        recs = pl.read_parquet(out / f"recs_{name}.parquet")
        frames.append(per_user_metrics(recs, truth, K).with_columns(pl.lit(name).alias("split")))
    return pl.concat(frames).drop("n_relevant", "n_recs")


def same_metrics(sweep: pl.DataFrame, layer_name: str, expected: pl.DataFrame) -> None:
    got = sweep.filter(pl.col("layer_name") == layer_name).select(expected.columns).sort("split", "user_id")
    assert got.equals(expected.sort("split", "user_id")), layer_name


KNN = {"type": "knn"}


def test_knn_sweep_matches_a_separate_run_on_every_layer(split_dir, tmp_path):
    sweep = sweep_layers(KNN, "emb", 0, K, sweep_paths(split_dir, tmp_path, "exact.h5"))
    assert sweep["layer_name"].unique(maintain_order=True).to_list() == [*LAYER_NAMES, MEAN_LAYER]
    assert sweep.filter(pl.col("configured"))["layer_name"].unique().to_list() == ["layer1"]
    # the configured layer: the normal KNN run on /embeddings
    same_metrics(sweep, "layer1", run_metrics(split_dir, tmp_path / "run", KNN, split_dir / "exact.h5"))
    # every other layer: a normal run on a cache whose /embeddings is that layer
    layers = make_layers().astype(np.float16).astype(np.float32)
    for i, name in enumerate(LAYER_NAMES):
        write_cache(tmp_path / f"only{i}.h5", layers, name)
        same_metrics(sweep, name, run_metrics(split_dir, tmp_path / f"run{i}", KNN, tmp_path / f"only{i}.h5"))
    write_cache(tmp_path / "mean.h5", layers, MEAN_LAYER)
    mean_run = run_metrics(split_dir, tmp_path / "runmean", KNN, tmp_path / "mean.h5")
    got = sweep.filter(pl.col("layer_name") == MEAN_LAYER).sort("split", "user_id")
    # the mean of float16-rounded layers, accumulated in float64: equal up to float32 rounding of ties
    assert np.allclose(got["ndcg"], mean_run.sort("split", "user_id")["ndcg"], atol=1e-6)
    info = json.loads((tmp_path / "sweep.json").read_text())
    assert info["configured_layer"] == "layer1" and len(info["layers"]) == 5
    assert info["layers"][1]["max_deviation_from_embeddings"] == 0.0


def test_float16_layers_stay_close_to_the_float32_embeddings(split_dir, tmp_path):
    sweep = sweep_layers(KNN, "emb", 0, K, sweep_paths(split_dir, tmp_path, "rounded.h5"))
    run = run_metrics(split_dir, tmp_path / "run", KNN, split_dir / "rounded.h5")
    got = sweep.filter(pl.col("configured")).sort("split", "user_id")
    assert got["user_id"].equals(run.sort("split", "user_id")["user_id"])
    # float16 rounding may swap near-ties in a list, nothing more
    assert abs(got["ndcg"].mean() - run["ndcg"].mean()) < 0.02
    deviation = json.loads((tmp_path / "sweep.json").read_text())["layers"][2]["max_deviation_from_embeddings"]
    assert 0 < deviation < 2**-10


def test_the_sweep_finds_the_informative_layer(split_dir, tmp_path):
    sweep = sweep_layers(KNN, "emb", 0, K, sweep_paths(split_dir, tmp_path, "exact.h5"))
    val = sweep.filter(pl.col("split") == "val").group_by("layer_name").agg(pl.col("ndcg").mean())
    ndcg = dict(zip(val["layer_name"], val["ndcg"], strict=True))
    assert ndcg["layer2"] == max(ndcg[n] for n in LAYER_NAMES) and ndcg["layer2"] > ndcg["embedding"] + 0.2
    assert ndcg[MEAN_LAYER] > ndcg["layer1"]  # independent noise of the layers averages out


def test_shallow_sweep_matches_its_training_job(split_dir, tmp_path):
    spec = {"type": "shallow", "epochs": 2, "batch_size": 64, "n_negatives": 3}
    sweep = sweep_layers(spec, "emb", 0, K, sweep_paths(split_dir, tmp_path, "exact.h5"))
    same_metrics(sweep, "layer1", run_metrics(split_dir, tmp_path / "run", spec, split_dir / "exact.h5"))
    info = json.loads((tmp_path / "sweep.json").read_text())
    assert all(layer["epochs_run"] == 2 for layer in info["layers"])


def test_an_inconsistent_cache_is_an_error(split_dir, tmp_path):
    layers = make_layers()
    write_cache(tmp_path / "bad.h5", layers, "layer2", embeddings=layers[:, 3])  # labelled layer2, holds layer3
    with pytest.raises(LayerMismatchError, match="differs from /embeddings"):
        sweep_layers(KNN, "emb", 0, K, sweep_paths(split_dir, tmp_path, tmp_path / "bad.h5"))
    assert not (tmp_path / "metrics.parquet").exists()


def test_a_one_layer_cache_is_a_one_point_sweep(split_dir, tmp_path):
    write_embeddings(tmp_path / "one.h5", track_ids(), make_layers()[:, 2], attrs={"layer": "last", "layer_names": ["mfcc_stats"], "layer_dims": [DIM]})
    sweep = sweep_layers(KNN, "emb", 0, K, sweep_paths(split_dir, tmp_path, tmp_path / "one.h5"))
    assert sweep["layer_name"].unique().to_list() == ["mfcc_stats"] and sweep["configured"].all()


def test_the_sweep_runs_no_backend_or_extraction_code(split_dir, tmp_path):
    """In a fresh interpreter: sweeping imports no backend module, no extraction engine, no
    audio library, and works with the backend registry made to fail."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT / "src")!r})
        from audiorec.backends import registry
        def refuse(*args, **kwargs):
            raise AssertionError("the layer sweep built a backend")
        registry.build_backend = registry.backend_class = refuse
        from audiorec.analysis.layer_sweep import SweepPaths, sweep_layers
        root, out = {str(split_dir)!r}, {str(tmp_path)!r}
        paths = SweepPaths(train=root + "/train.parquet", val=root + "/val.parquet", test=root + "/test.parquet",
                           embeddings=root + "/exact.h5", metrics=out + "/m.parquet", info=out + "/i.json")
        sweep_layers({{"type": "knn"}}, "emb", 0, 5, paths)
        loaded = sorted(m for m in sys.modules if m.startswith(("audiorec.backends.", "audiorec.extraction.engine",
                        "audiorec.extraction.shards", "audiorec.audio", "transformers", "librosa", "soundfile")))
        print("LOADED", loaded)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    registry_only = "LOADED ['audiorec.backends.base', 'audiorec.backends.declarations', 'audiorec.backends.registry']"
    assert registry_only in done.stdout or "LOADED []" in done.stdout, done.stdout
    assert (tmp_path / "m.parquet").exists()


# --- the report ---


def per_user_frame(values: dict[tuple[str, str], list[float]], model="knn", backend="mert") -> pl.DataFrame:
    """(layer_name, split) -> per-user ndcg (other metrics = ndcg / 2)."""
    rows = []
    for (name, split), per_user in values.items():
        index = None if name == MEAN_LAYER else LAYER_NAMES.index(name)
        for u, v in enumerate(per_user):
            rows.append(
                {"layer": index, "layer_name": name, "configured": name == "layer3", "split": split, "user_id": f"u{u}",
                 "hitrate": v / 2, "recall": v / 2, "ndcg": v, "mrr": v / 2, "precision": v / 2,
                 "model": model, "backend": backend, "seed": 0}
            )
    return pl.DataFrame(rows, schema_overrides={"layer": pl.Int64})


def test_best_layer_is_chosen_on_validation_with_ties_to_the_earlier_layer():
    frame = per_user_frame({
        ("embedding", "val"): [0.1, 0.3], ("embedding", "test"): [0.9, 0.9],  # best on test: not chosen
        ("layer1", "val"): [0.4, 0.6], ("layer1", "test"): [0.2, 0.4],
        ("layer2", "val"): [0.5, 0.5], ("layer2", "test"): [0.3, 0.3],  # ties layer1 on val
        ("layer3", "val"): [0.2, 0.2], ("layer3", "test"): [0.1, 0.1],
        (MEAN_LAYER, "val"): [0.5, 0.5], (MEAN_LAYER, "test"): [0.1, 0.1],  # ties too: loses to layers
    })
    summary = summarise_sweeps(frame, SweepReportSettings(k=5, metric="ndcg"))
    best = best_layers(summary, "ndcg").row(0, named=True)
    assert (best["layer_name"], best["layer"], best["val_mean"]) == ("layer1", 1, pytest.approx(0.5))
    flagged = summary.filter(pl.col("best"))["layer_name"].unique().to_list()
    assert flagged == ["layer1"]
    cell = summary.filter((pl.col("layer_name") == "layer1") & (pl.col("split") == "test") & (pl.col("metric") == "ndcg"))
    row = cell.row(0, named=True)
    # mean and t interval over 2 users: 0.3 ± t(0.975, 1) * 0.1414 / sqrt(2)
    assert row["mean"] == pytest.approx(0.3) and row["ci_high"] - 0.3 == pytest.approx(12.706205 * 0.1, rel=1e-5)
    # by another metric the choice follows that metric's validation means
    assert best_layers(summary, "hitrate")["layer_name"][0] == "layer1"


def test_report_files(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for backend, peak in (("mert", 2), ("musicnn", 0)):
        values = {}
        for i, name in enumerate(LAYER_NAMES):
            for split in ("val", "test"):
                values[name, split] = list(np.clip(0.5 - 0.15 * abs(i - peak) + 0.05 * rng.standard_normal(30), 0, 1))
        path = tmp_path / "layer_sweep" / "knn" / backend / "seed0" / "metrics.parquet"
        path.parent.mkdir(parents=True)
        per_user_frame(values, backend=backend).drop("model", "backend", "seed").write_parquet(path)
        files.append(path)
    out = {n: tmp_path / "report" / n for n in ("layer_sweep.csv", "layer_sweep.md", "layer_sweep.png")}
    catalogue = Catalogue(model_types={"knn": "knn"}, backend_types={"musicnn": "musicnn", "mert": "mert"})
    summary = build_sweep_report(files, out["layer_sweep.csv"], out["layer_sweep.md"], out["layer_sweep.png"],
                                 SweepReportSettings(k=5), catalogue, "synthetic")
    assert out["layer_sweep.png"].stat().st_size > 10_000
    text = out["layer_sweep.md"].read_text()
    # one row per backend in config order, naming the best layer; configured = layer3
    rows = [line for line in text.splitlines() if line.startswith("| KNN")]
    assert len(rows) == 2 and "MusiCNN" in rows[0] and "**embedding**" in rows[0] and "**layer2**" in rows[1]
    assert all("layer3" in r for r in rows)
    csv = pl.read_csv(out["layer_sweep.csv"])
    assert csv.height == summary.height == 2 * 4 * 2 * 5
    assert set(csv.columns) >= {"model", "backend", "layer", "layer_name", "configured", "best", "split", "metric", "mean"}
