"""table3.md (Tables 2, 3, 4), the reference tables and the whole report build with figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import polars as pl
import pytest
from test_report_aggregate import CATALOGUE, LEVEL, RUNS, write_runs

from audiorec.report.aggregate import Catalogue, ReportSettings, compare, summarise
from audiorec.report.build import ReportOutputs, build_report
from audiorec.report.collect import load_per_user, seed_average
from audiorec.report.reference import ReferenceError, paper_table3, read_mir_scores
from audiorec.report.tables import read_split_stats, table2, table3, table4

SETTINGS = ReportSettings(k=50, n_permutations=1000)


def _report_inputs(tmp_path, catalogue=CATALOGUE, runs=RUNS, level=LEVEL, settings=SETTINGS):
    averaged = seed_average(load_per_user(write_runs(tmp_path, runs=runs, level=level)))
    summary = summarise(averaged, settings, catalogue)
    return averaged, summary, compare(averaged, summary, settings, catalogue)


def _row(table: str, *cells: str) -> list[str]:
    """The cells of the first markdown row that contains all `cells`."""
    for line in table.splitlines():
        parts = [c.strip() for c in line.strip("|").split("|")]
        if all(c in parts for c in cells):
            return parts
    raise AssertionError(f"no row with {cells} in\n{table}")


def test_paper_reference_tables_are_complete():
    ref = paper_table3()
    assert len(ref) == 23
    assert ref.filter((pl.col("model_type") == "bert4rec") & (pl.col("backend_type") == "musicnn"))["ndcg"].item() == 0.044
    assert ref.filter((pl.col("model_type") == "shallow") & (pl.col("backend_type") == "random"))["hitrate"].item() == 0.021


def test_table3_marks_and_layout(tmp_path):
    _, summary, sig = _report_inputs(tmp_path)
    md = table3(summary, sig, SETTINGS, CATALOGUE, "test", with_reference=False)
    assert md.splitlines()[0] == "| Model | Backend | HR@50 | Recall@50 | NDCG@50 |"
    shallow_rows = md.split("**ShallowNet**")[1].splitlines()
    assert "MFCC" in shallow_rows[0]
    musicnn = _row("\n".join(shallow_rows), "MusiCNN")
    random = _row("\n".join(shallow_rows), "Random")
    assert all(cell.endswith("▲") for cell in musicnn[2:5])
    assert all(cell.endswith("°") for cell in random[2:5])
    # knn: mfcc is significantly below the best validation backend.
    knn_mfcc = _row(md.split("**KNN**")[1], "MFCC")
    assert all(cell.endswith("▼") for cell in knn_mfcc[2:5])
    assert "(paper)" not in md


def test_table3_reference_column_matches_by_type(tmp_path):
    catalogue = Catalogue(
        model_types={"pop": "pop", "knn": "knn", "shallow": "shallow"},
        backend_types={"mfcc": "mfcc", "mert-330m": "mert"},
    )
    runs = {"knn": ["mfcc", "mert-330m"], "shallow": ["mert-330m", "random"]}
    level = {("knn", "mfcc"): 0.1, ("knn", "mert-330m"): 0.2, ("shallow", "mert-330m"): 0.3, ("shallow", "random"): 0.1}
    _, summary, sig = _report_inputs(tmp_path, catalogue, runs, level)
    md = table3(summary, sig, SETTINGS, catalogue, "test", with_reference=True)
    assert "HR@50 (paper)" in md.splitlines()[0]
    knn_mert = _row(md.split("**KNN**")[1].split("**ShallowNet**")[0], "mert-330m (MERT)")
    assert knn_mert[3] == "0.049" and knn_mert[5] == "0.003" and knn_mert[7] == "0.002"
    random = _row(md.split("**ShallowNet**")[1], "Random")
    assert random[3] == "0.021"


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        ("part,users,items,interactions\ntrain,10,20,30\nvalidation,4,5,6\ntest,4,6,7\n", {"val": 4}),
        ("Split,Users,Items,Interactions,malformed_columns\ntrain,10,20,30,0\nval,4,5,6,0\n", {"val": 4}),
        ("part,statistic,value\ntrain,users,10\nvalidation,users,4\ntrain,items,20\nvalidation,items,5\n", {"val": 4}),
        (  # the split stage's own layout (docs/split.md)
            "stage,name,listens,interactions,users,items\ninput,log,100,,12,30\nremoved,too_old,5,,1,2\n"
            "part,train,50,40,10,20\npart,val,9,6,4,5\npart,test,9,7,4,6\n",
            {"val": 4},
        ),
    ],
)
def test_read_split_stats_is_tolerant(tmp_path, csv, expected):
    path = tmp_path / "stats.csv"
    path.write_text(csv)
    frame, _ = read_split_stats(path)
    assert frame is not None
    assert frame.filter(pl.col("part") == "val")["users"].item() == expected["val"]
    md = table2(path, with_reference=True)
    assert _row(md, "val")[1] == "4"
    assert "6,092" in _row(md, "val")
    assert frame.columns[:3] == ["part", "users", "items"]
    if "stage" in csv:
        assert frame["part"].to_list() == ["train", "val", "test"]
        assert _row(md, "removed", "too_old")  # the whole file is shown below the per-part table


def test_table2_unknown_layout_is_shown_raw(tmp_path):
    path = tmp_path / "stats.csv"
    path.write_text("a,b\n1,2\n")
    assert read_split_stats(path)[0] is None
    assert _row(table2(path, with_reference=True), "1", "2")


def test_table4_and_mir_scores(tmp_path):
    _, summary, _ = _report_inputs(tmp_path)
    md = table4(summary, read_mir_scores(None), SETTINGS, CATALOGUE, with_reference=True)
    row = _row(md, "MusiCNN")
    assert row[1:4] == ["0.906", "0.790", "0.128"]
    assert row[4] == "0.385"  # the paper's BERT4Rec HR@50
    assert "MFCC" not in md  # no published MIR scores for MFCC
    custom = tmp_path / "mir.csv"
    custom.write_text("type,beats\nmfcc,0.5\n")
    md = table4(summary, read_mir_scores(custom), SETTINGS, CATALOGUE)
    assert _row(md, "MFCC", "0.500")
    bad = tmp_path / "bad.csv"
    bad.write_text("backend,tags\nmert,0.9\n")
    with pytest.raises(ReferenceError, match="`type` column"):
        read_mir_scores(bad)
    with pytest.raises(ReferenceError, match="no file"):
        read_mir_scores(tmp_path / "missing.csv")
    bad.write_text("type,tags\nmert,high\n")
    with pytest.raises(ReferenceError, match="not numeric"):
        read_mir_scores(bad)


def test_build_report_writes_everything(tmp_path):
    paths = write_runs(tmp_path / "res")
    stats = tmp_path / "stats.csv"
    stats.write_text("part,users,items,interactions\ntrain,60,20,30\nval,30,5,6\ntest,30,6,7\n")
    out = tmp_path / "report"
    outputs = ReportOutputs(
        metrics=out / "metrics.csv",
        significance=out / "significance.csv",
        table3=out / "table3.md",
        metrics_test=out / "figures" / "metrics_test.png",
        metrics_val=out / "figures" / "metrics_val.png",
        per_user_test=out / "figures" / "per_user_test.png",
        per_user_val=out / "figures" / "per_user_val.png",
        mir_vs_recs=out / "figures" / "mir_vs_recs.png",
        runs=out / "runs.csv",
    )
    build_report(paths, stats, outputs, SETTINGS, CATALOGUE, "onion", "music4all-onion")
    assert pl.read_csv(outputs.runs).columns[:3] == ["model", "backend", "seed"]
    metrics = pl.read_csv(outputs.metrics)
    assert len(metrics) == 6 * 2 * 5 and metrics["ci_low"].null_count() == 0
    assert pl.read_csv(outputs.significance)["p_adjusted"].null_count() == 0
    md = Path(outputs.table3).read_text()
    assert "## Table 3 — test split, K=50" in md and "(paper)" in md and "## Table 2" in md and "## Table 4" in md
    for name in ("metrics_test", "metrics_val", "per_user_test", "per_user_val", "mir_vs_recs"):
        image = mpimg.imread(getattr(outputs, name))
        assert image.shape[0] > 200 and image.shape[1] > 200, name
        assert image[..., :3].std() > 0.05, f"{name} looks blank"
    assert not list(out.rglob(".*.tmp"))


def test_table3_items_column_names_the_way_each_run_used_content(tmp_path):
    catalogue = Catalogue(
        model_types={"pop": "pop", "knn": "knn", "shallow": "shallow", "shallow_hybrid": "shallow"},
        backend_types={"mfcc": "mfcc"},
        model_ways={"pop": "", "knn": "content", "shallow": "content, standard", "shallow_hybrid": "hybrid"},
    )
    runs = {"knn": ["mfcc", "random"], "shallow": ["mfcc", "random"], "shallow_hybrid": ["mfcc"]}
    level = {("knn", "mfcc"): 0.2, ("knn", "random"): 0.1, ("shallow", "mfcc"): 0.3, ("shallow", "random"): 0.1, ("shallow_hybrid", "mfcc"): 0.2}
    _, summary, sig = _report_inputs(tmp_path, catalogue, runs, level)
    md = table3(summary, sig, SETTINGS, catalogue, "test", with_reference=False)
    assert md.splitlines()[0].startswith("| Model | Backend | Items | HR@50")
    shallow = md.split("**ShallowNet**")[1].split("**shallow_hybrid")[0]
    assert _row(shallow, "MFCC")[2] == "content, standard"
    assert _row(shallow, "Random")[2] == "id"  # the learned table, whatever the instance's mode
    assert _row(md.split("**KNN**")[1], "Random")[2] == "random"  # KNN's random vectors are fixed, not learned
    assert _row(md.split("**shallow_hybrid (ShallowNet)**")[1], "MFCC")[2] == "hybrid"


def test_cold_report_shows_every_model_that_cannot_score_unseen_tracks_as_the_floor(tmp_path):
    """Cold section: ials (none) and a learned `items: id` instance join pop as floors: labelled
    "(floor)", every other model tested against each in the `floor` family; a warm report keeps
    pop alone, unlabelled. content2cf's random backend is fixed noise (`random`, not `id`)."""
    types = {"pop": "pop", "ials": "ials", "shallow_id": "shallow", "content2cf": "content2cf"}
    runs = {"pop": ["none"], "ials": ["none"], "shallow_id": ["random"], "content2cf": ["mfcc", "random"]}
    level = {("pop", "none"): 0.1, ("ials", "none"): 0.1, ("shallow_id", "random"): 0.1,
             ("content2cf", "mfcc"): 0.4, ("content2cf", "random"): 0.1}  # fmt: skip
    ways = {"pop": "", "ials": "", "shallow_id": "id", "content2cf": "content, standard, warm items: predicted"}
    warm = Catalogue(model_types=types, backend_types={"mfcc": "mfcc"}, model_ways=ways)
    cold = Catalogue(model_types=types, backend_types={"mfcc": "mfcc"}, model_ways=ways, floors=("pop", "ials", "shallow_id"))
    averaged, summary, sig = _report_inputs(tmp_path, cold, runs, level)
    floor = sig.filter((pl.col("family") == "floor") & (pl.col("test") == "paired_t") & (pl.col("metric") == "ndcg")
                       & (pl.col("split") == "test"))  # fmt: skip
    assert sorted(floor.select("model", "backend_a", "backend_b").rows()) == [
        ("content2cf", b, f) for b in ("mfcc", "random") for f in ("ials", "pop", "shallow_id")
    ]
    md = table3(summary, sig, SETTINGS, cold, "test", with_reference=False)
    for label in ("**Pop (floor)**", "**iALS (floor)**", "**shallow_id (ShallowNet) (floor)**"):
        assert label in md
    assert "**Content2CF**" in md and "(floor): cannot score" in md
    assert _row(md.split("**Content2CF**")[1], "MFCC")[2] == "content, standard, warm items: predicted"
    assert _row(md.split("**Content2CF**")[1], "Random")[2] == "random"
    warm_sig = compare(averaged, summary, SETTINGS, warm)
    assert set(warm_sig.filter(pl.col("family") == "floor")["backend_b"].to_list()) == {"pop"}
    assert "(floor)" not in table3(summary, warm_sig, SETTINGS, warm, "test", with_reference=False)
