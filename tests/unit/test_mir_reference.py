"""The shipped MIR reference table (report Table 4): every row names where its numbers were
published, the `source` column is not a task, and rows exist for every audio network backend."""

from __future__ import annotations

import polars as pl

from audiorec.backends.declarations import read_declarations
from audiorec.report.reference import read_mir_scores, shipped_mir_scores


def test_source_is_named_per_row_and_is_not_a_task(tmp_path) -> None:
    raw = pl.read_csv(shipped_mir_scores())
    scores = read_mir_scores(None)
    assert "source" not in scores.columns and {"tags", "genres", "key"} <= set(scores.columns)
    for row in raw.iter_rows(named=True):
        assert row["source"], f"{row['type']}: name the source of its numbers (or say none was found)"
        numbers = [row[c] for c in ("tags", "genres", "key") if row[c] is not None]
        assert all(0 < x < 1 for x in numbers), row
    custom = tmp_path / "mir.csv"
    custom.write_text('type,tags,source\nmert,0.9,"a paper"\n')
    assert read_mir_scores(custom).columns == ["type", "name", "tags"]


def test_every_audio_network_type_has_a_row() -> None:
    types = set(read_mir_scores(None)["type"])
    networks = {t for t, d in read_declarations().items() if d.network}
    assert networks <= types, networks - types
