"""Model types are declared once (models/<type>.yaml + module): the registry, the schema and
the workflow read the same declarations, and a new type needs nothing else."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import polars as pl
import pytest
import yaml

from audiorec.models import registry
from audiorec.models.run import RunPaths, train_run

ROOT = Path(__file__).resolve().parents[2]

# A model type outside the package: the least popular tracks first, read from the `pop` run's
# model.pt (another job's output, declared as an extra input).
ANTIPOP_DECLARATION = {
    "type": "antipop",
    "label": "AntiPop",
    "summary": "least popular first (a test model)",
    "gpu": False,
    "inputs": [],
    "extra_inputs": {"popularity": "results/{dataset}/runs/pop/none/seed{seed}/model.pt"},
    "scores_unseen_tracks": False,
    "settings": {"sign": {"type": "number", "default": -1.0, "description": "score = sign x popularity"}},
}
ANTIPOP_MODULE = textwrap.dedent(
    '''
    """AntiPop: a model type declared outside the package (tests)."""
    import torch

    from audiorec.models.base import Factors, Recommender


    class AntiPop(Recommender):
        def __init__(self, popularity, n_users, sign):
            self.scores = sign * popularity
            self.n_users = n_users

        def factors(self):
            return Factors(users=torch.ones(self.n_users, 1), items=self.scores[:, None])

        def saved_state(self):
            return {"scores": self.scores}


    def build(context):
        saved = torch.load(context.inputs["popularity"], weights_only=True)
        assert saved["track_ids"] == list(context.data.track_ids)
        return AntiPop(saved["state"]["popularity"], context.data.n_users, float(context.spec["sign"]))
    '''
)


def write_antipop(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "antipop.yaml").write_text(yaml.safe_dump(ANTIPOP_DECLARATION))
    (folder / "antipop.py").write_text(ANTIPOP_MODULE)
    return folder


def test_builtin_declarations_match_their_modules_and_the_schema_blocks():
    decls = registry.declarations()
    assert list(decls) == ["artist_mean", "bert4rec", "cmf", "content2cf", "contrastive", "ials", "knn", "pop", "sasrec", "shallow"]
    schema = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())
    for decl in decls.values():
        assert callable(registry.builder(decl))
        for block in decl.uses:
            assert f"model_{block}" in schema["$defs"], (decl.type, block)
        for key, setting in decl.settings.items():
            inherited = any(key in schema["$defs"][f"model_{b}"]["properties"] for b in decl.uses)
            assert inherited or "description" in setting, f"{decl.type}.{key} needs a description"
    assert [t for t, d in decls.items() if d.gpu] == ["bert4rec", "sasrec", "shallow"]
    assert [t for t, d in decls.items() if not d.reads_embeddings] == ["ials", "pop"]


def test_a_declaration_must_be_named_after_its_type(tmp_path):
    (tmp_path / "other.yaml").write_text("type: antipop\n")
    with pytest.raises(ValueError, match="antipop.yaml"):
        registry.declarations([tmp_path])
    (tmp_path / "other.yaml").write_text("type: other\nunknown_key: 1\n")
    with pytest.raises(ValueError, match="takes only"):
        registry.declarations([tmp_path])
    (tmp_path / "other.yaml").write_text("type: pop\n")
    (tmp_path / "other.yaml").rename(tmp_path / "pop.yaml")
    with pytest.raises(ValueError, match="declared twice"):
        registry.declarations([tmp_path])


def test_a_model_type_in_a_temporary_folder_runs(tmp_path):
    folder = write_antipop(tmp_path / "models")
    decl = registry.declaration("antipop", [folder])
    assert decl.extra_inputs and not decl.gpu
    split = tmp_path / "split"
    split.mkdir()
    from _tiny_split import part, run_paths

    rows = [(f"u{u}", f"t{i}", i) for u in range(6) for i in range(u + 1)]  # t0 heard by all, t5 by one
    part(rows).write_parquet(split / "train.parquet")
    part([("u0", "t5", 100), ("u1", "t4", 100)]).write_parquet(split / "val.parquet")
    part([("u2", "t5", 100)]).write_parquet(split / "test.parquet")

    def paths(run: str, **extra: str) -> RunPaths:
        out = tmp_path / run
        out.mkdir()
        return run_paths(split, out, extra=extra)

    train_run({"type": "pop"}, "none", 0, 3, paths("pop"))
    info = train_run(
        {"type": "antipop", "sign": -1.0}, "none", 0, 3, paths("antipop", popularity=str(tmp_path / "pop/model.pt")), model_dirs=(str(folder),)
    )
    assert info["model"] == "antipop" and info["scores_unseen_tracks"] is False
    recs = pl.read_parquet(tmp_path / "antipop/recs_test.parquet")
    assert recs.filter(pl.col("user_id") == "u2")["track_id"].to_list() == ["t5", "t4", "t3"]  # least heard first
    assert json.loads((tmp_path / "antipop/run.json").read_text())["n_items"] == 6
