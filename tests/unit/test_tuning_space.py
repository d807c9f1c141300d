"""Search spaces of `tuning.models`: parsed in order, checked against the model's settings."""

from __future__ import annotations

import pytest

from audiorec.tuning.space import (
    Param,
    SpaceError,
    model_settings,
    parse_space,
    space_as_config,
)

SCHEMA = {
    "$defs": {
        "model_neural": {
            "properties": {
                "lr": {"type": "number", "exclusiveMinimum": 0},
                "patience": {"type": "integer", "minimum": 1},
                "metric": {"enum": ["ndcg", "hitrate"]},
            }
        },
        "model_transformer": {"properties": {"dropout": {"type": "number", "minimum": 0, "maximum": 1}}},
    }
}
DECLARED = {
    "margin": {"type": "number", "minimum": 0},
    "n_negatives": {"type": "integer", "minimum": 1},
    "tower": {"enum": ["shared", "separate"]},
    "hidden_size": {"type": ["integer", "null"], "minimum": 1},
    "erratum_x": {"type": "boolean"},
}
SETTINGS = model_settings(DECLARED, ["neural", "transformer"], SCHEMA)


def test_the_issue_example_parses_in_order_with_int_implied_by_the_schema():
    params = parse_space("tuning.models.shallow", {"lr": [1e-4, 1e-2, "log"], "margin": [0.05, 0.5], "n_negatives": [5, 50]}, SETTINGS)
    assert params == (
        Param("lr", 1e-4, 1e-2, log=True),
        Param("margin", 0.05, 0.5),
        Param("n_negatives", 5, 50, integer=True),
    )
    assert space_as_config(params)["n_negatives"] == [5, 50, "int"]


def test_shared_blocks_and_nullable_integers_are_searchable():
    params = parse_space("m", {"dropout": [0.0, 0.5], "hidden_size": [16, 64, "int", "log"]}, SETTINGS)
    assert params[1] == Param("hidden_size", 16, 64, log=True, integer=True)


@pytest.mark.parametrize(
    ("space", "words"),
    [
        ({"lrr": [1e-4, 1e-2]}, ["tuning.models.m.lrr", "not a setting", "lr, margin"]),
        ({"tower": [0, 1]}, ["tuning.models.m.tower", "not a numeric setting"]),
        ({"erratum_x": [0, 1]}, ["erratum_x", "not a numeric"]),
        ({"metric": [0, 1]}, ["metric", "cannot be searched"]),
        ({"lr": [1e-2, 1e-4]}, ["lr", "empty"]),
        ({"lr": [0.0, 1e-2, "log"]}, ["lr", "log range needs low > 0"]),
        ({"lr": [0.0, 1e-2]}, ["lr", "must be > 0"]),  # exclusiveMinimum
        ({"dropout": [0.1, 1.5]}, ["dropout", "must be <= 1"]),
        ({"n_negatives": [0, 10]}, ["n_negatives", "must be >= 1"]),
        ({"n_negatives": [1.5, 10]}, ["n_negatives", "whole numbers"]),
        ({"margin": [0.1, 0.5, "int"]}, ["margin", "drop the `int` flag"]),
        ({"lr": [1e-4, 1e-2, "logg"]}, ["lr", "unknown or repeated flag"]),
        ({"lr": [1e-4, 1e-2, "log", "log"]}, ["repeated"]),
        ({"lr": "1e-4..1e-2"}, ["lr", "[low, high]"]),
        ({"lr": [True, 2]}, ["lr", "[low, high]"]),
        ({}, ["tuning.models.m", "map each searched setting"]),
    ],
)
def test_bad_spaces_are_errors_naming_the_key(space, words):
    with pytest.raises(SpaceError) as err:
        parse_space("tuning.models.m", space, SETTINGS)
    for word in words:
        assert word in str(err.value)


def test_contains_and_suggest():
    p = Param("n", 2, 5, integer=True)
    assert p.contains(3) and not p.contains(6) and not p.contains(True) and not p.contains(None) and not p.contains(2.5)

    class Trial:
        def suggest_int(self, name, low, high, log):
            return ("int", name, low, high, log)

        def suggest_float(self, name, low, high, log):
            return ("float", name, low, high, log)

    assert p.suggest(Trial()) == ("int", "n", 2, 5, False)
    assert Param("lr", 1e-4, 1e-2, log=True).suggest(Trial()) == ("float", "lr", 1e-4, 1e-2, True)
