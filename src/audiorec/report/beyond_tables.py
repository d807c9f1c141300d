"""table3.md's sections beyond Table 3: beyond-accuracy metrics, user groups, artist groups."""

from __future__ import annotations

import polars as pl

from audiorec.report.aggregate import Catalogue, ReportSettings
from audiorec.report.beyond import GROUPINGS
from audiorec.report.tables import (
    BASELINE,
    HIGHER,
    LOWER,
    _fmt,
    _md_table,
    backend_label,
    model_label,
)

BEYOND_LABELS = {"novelty": "Novelty", "arp": "ARP", "pop_lift": "Pop. lift", "diversity": "Diversity"}
GROUP_TITLES = {
    "mainstream": "mainstream vs niche listeners (terciles of the mean train popularity of their tracks)",
    "activity": "light vs heavy listeners (terciles of their number of train tracks)",
}
ARTIST_LABELS = {"seen_artist": "seen artist", "new_artist": "new artist", "unknown_artist": "unknown artist"}


def _cell(summary: pl.DataFrame, marks: pl.DataFrame, model: str, backend: str, metric: str, alpha: float, digits: int = 3) -> str:
    """The mean, marked ▲/▼ when significantly above/below the model's baseline (° on the baseline)."""
    cell = summary.filter((pl.col("model") == model) & (pl.col("backend") == backend) & (pl.col("metric") == metric))
    if cell.is_empty():
        return ""
    text = _fmt(cell["mean"][0], digits)
    own = marks.filter((pl.col("model") == model) & (pl.col("metric") == metric))
    tested = own.filter(pl.col("backend_a") == backend)
    if len(tested) == 1:
        r = tested.row(0, named=True)
        if r["p_adjusted"] is not None and r["p_adjusted"] < alpha:
            text += " " + (HIGHER if r["mean_diff"] > 0 else LOWER)
    elif len(own.filter(pl.col("backend_b") == backend)):
        text += " " + BASELINE
    return text


def _marks(significance: pl.DataFrame, settings: ReportSettings, split: str) -> pl.DataFrame:
    return significance.filter(
        (pl.col("split") == split) & (pl.col("family") == "baseline") & (pl.col("test") == settings.test)
    )


def _rows(part: pl.DataFrame, catalogue: Catalogue) -> list[tuple[str, str, bool]]:
    out = []
    for model in sorted(part["model"].unique().to_list(), key=catalogue.model_key):
        backends = sorted(part.filter(pl.col("model") == model)["backend"].unique().to_list(), key=catalogue.backend_key)
        out += [(model, b, i == 0) for i, b in enumerate(backends)]
    return out


def _label(model: str, backend: str, first: bool, catalogue: Catalogue) -> list[str]:
    return [f"**{model_label(model, catalogue)}**" if first else "", backend_label(backend, catalogue)]


def beyond_table(
    summary: pl.DataFrame,
    significance: pl.DataFrame,
    runs: pl.DataFrame,
    metrics: tuple[str, ...],
    settings: ReportSettings,
    catalogue: Catalogue,
    split: str = "test",
) -> str:
    """Per run: the beyond-accuracy per-user metrics (tested) and coverage/Gini (per run)."""
    part = summary.filter(pl.col("split") == split)
    marks = _marks(significance, settings, split)
    run_part = runs.filter(pl.col("split") == split)
    k = settings.k
    header = ["Model", "Backend", *[f"{BEYOND_LABELS[m]}@{k}" for m in metrics], f"Coverage@{k}", f"Gini@{k}"]
    rows = []
    for model, backend, first in _rows(part, catalogue):
        row = _label(model, backend, first, catalogue)
        row += [_cell(part, marks, model, backend, m, settings.alpha) for m in metrics]
        run = run_part.filter((pl.col("model") == model) & (pl.col("backend") == backend))
        row += [_fmt(run[m][0]) if len(run) else "" for m in ("coverage", "gini")]
        rows.append(row)
    n_cand = sorted(set(run_part["n_candidates"].to_list())) if len(run_part) else []
    notes = [
        "Novelty: mean self-information -log2(pop) of the listed tracks; ARP: their mean train popularity "
        "(share of train users who played them; a track without train plays has ARP 0 and counts as played "
        "once for novelty); Pop. lift: ARP relative to the mean popularity of the user's own train tracks "
        "(negative: less popular than what the user played)."
        + (
            " Diversity: mean Jaccard distance of the genre sets over the pairs of genre-labelled listed tracks "
            "(0 for lists with fewer than 2 labelled tracks)."
            if "diversity" in metrics
            else " The dataset has no genre labels: no diversity column."
        ),
        f"Coverage: share of the {', '.join(map(str, n_cand))} candidate tracks recommended to anyone; Gini of how "
        "often each candidate track is recommended (per run, mean over seeds; beyond.csv).",
        f"{HIGHER}/{LOWER}: significantly higher/lower than the model's baseline ({BASELINE}), tested and "
        "Holm-corrected as Table 3 (higher is not better here: it says which way the lists moved).",
    ]
    return _md_table(header, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def group_table(
    summary: pl.DataFrame,
    significance: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    grouping: str,
    groups: tuple[str, ...],
    labels: dict[str, str],
    metrics: tuple[str, ...] = ("hitrate", "ndcg"),
    split: str = "test",
) -> str:
    """A column per metric × group, a row per run; marks tested within the group."""
    own = summary.filter((pl.col("grouping") == grouping) & (pl.col("split") == split))
    groups = tuple(g for g in groups if g in own["group"].to_list())
    if own.is_empty() or not groups:
        return f"_No results for grouping `{grouping}` on the {split} split._"
    names = {"hitrate": "HR", "recall": "Recall", "ndcg": "NDCG"}
    header = ["Model", "Backend"] + [f"{names.get(m, m)}@{settings.k} {labels.get(g, g)}" for m in metrics for g in groups]
    rows = []
    for model, backend, first in _rows(own, catalogue):
        row = _label(model, backend, first, catalogue)
        for metric in metrics:
            for group in groups:
                g_summary = own.filter(pl.col("group") == group)
                g_marks = _marks(significance.filter((pl.col("grouping") == grouping) & (pl.col("group") == group)), settings, split)
                row.append(_cell(g_summary, g_marks, model, backend, metric, settings.alpha))
        rows.append(row)
    users = own.group_by("group").agg(pl.col("n_users").max())
    counts = ", ".join(f"{labels.get(g, g)} {users.filter(pl.col('group') == g)['n_users'][0]}" for g in groups)
    return _md_table(header, rows) + (
        f"\n\n- Users per group: {counts}. {HIGHER}/{LOWER}: against the model's baseline ({BASELINE}) within "
        "the group (paired on its users, Holm-corrected within the group); every metric and test: groups.csv, "
        "groups_significance.csv."
    )


def beyond_markdown(
    summary: pl.DataFrame,
    significance: pl.DataFrame,
    runs: pl.DataFrame,
    metrics: tuple[str, ...],
    groups: pl.DataFrame,
    group_tests: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    artist_note: str | None = None,
) -> str:
    """The sections appended to table3.md."""
    k = settings.k
    sections = [f"## Beyond accuracy — test split, K={k}\n", beyond_table(summary, significance, runs, metrics, settings, catalogue) + "\n"]
    if "artist" in groups["grouping"].to_list() or artist_note:
        sections.append(f"## Artist-aware cold start — test split, K={k}\n")
        sections.append(
            "Cold targets whose artist has tracks in train (*seen artist*) and targets of artists with none "
            "(*new artist*), each evaluated on its own (relevant = the user's targets of the group, same lists).\n"
        )
        if artist_note:
            sections.append(artist_note + "\n")
        else:
            sections.append(
                group_table(groups, group_tests, settings, catalogue, "artist", ("seen_artist", "new_artist", "unknown_artist"),
                            ARTIST_LABELS, ("hitrate", "recall", "ndcg")) + "\n"
            )
    for grouping, labels in GROUPINGS.items():
        sections.append(f"## User groups — {GROUP_TITLES[grouping]}, test split\n")
        sections.append(group_table(groups, group_tests, settings, catalogue, grouping, labels, {}) + "\n")
    return "\n".join(sections)
