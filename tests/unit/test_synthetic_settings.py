"""The generator's settings: the schema and the dataclass agree, and bad values are named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jsonschema
import pytest
import yaml

from audiorec.data.synthetic.genres import GENRE_NAMES
from audiorec.data.synthetic.settings import SettingsError, SyntheticSettings

ROOT = Path(__file__).resolve().parents[2]


def _schema() -> dict:
    return yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())


def _synthetic_schema() -> dict:
    return _schema()["$defs"]["synthetic"]


def test_schema_and_dataclass_have_the_same_knobs_and_defaults() -> None:
    props = _synthetic_schema()["properties"]
    fields = {f.name: f for f in dataclasses.fields(SyntheticSettings)}
    assert set(props) == set(fields)
    defaults = SyntheticSettings()
    for name, prop in props.items():
        assert "default" in prop, f"{name} has no default in the schema"
        assert prop.get("description"), f"{name} has no description in the schema"
        assert prop["default"] == getattr(defaults, name), name


def test_schema_is_strict_and_lists_every_genre() -> None:
    schema = _synthetic_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["genres"]["items"]["enum"] == list(GENRE_NAMES)


def test_schema_fills_defaults_and_rejects_unknown_knobs() -> None:
    schema = _schema()
    validator = jsonschema.Draft202012Validator(schema)
    good = {"datasets": {"s": {"format": "synthetic", "synthetic": {"n_users": 10}}}, "backends": {}, "models": {"pop": {"type": "pop"}}}
    validator.validate(good)
    bad = {"datasets": {"s": {"format": "synthetic", "synthetic": {"n_user": 10}}}, "backends": {}, "models": {"pop": {"type": "pop"}}}
    with pytest.raises(jsonschema.ValidationError, match="n_user"):
        validator.validate(bad)


def test_defaults_describe_the_paper_time_line() -> None:
    s = SyntheticSettings()
    assert (s.start_date, s.end_date, s.cold_start_date) == ("2019-01-01", "2020-03-20", "2020-02-20")
    assert s.clip_samples == 10 * 22050
    assert s.end.strftime("%Y-%m-%d %H:%M:%S") == "2020-03-21 00:00:00"  # exclusive


def test_unknown_key_is_named() -> None:
    with pytest.raises(SettingsError, match="n_trakcs"):
        SyntheticSettings.from_mapping({"n_trakcs": 10})


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"clip_seconds": 31}, "clip_seconds"),
        ({"audio_format": "ogg"}, "audio_format"),
        ({"sample_rate": 22000}, "sample_rate"),
        ({"genres": ["rock", "polka"]}, "genres"),
        ({"genres": ["rock"]}, "genres"),
        ({"n_tracks": 3}, "n_tracks"),
        ({"cold_start_date": "2021-01-01"}, "cold_start_date"),
        ({"cold_start_date": "2020-03-18"}, "cold_start_date"),
        ({"start_date": "2019-13-01"}, "start_date"),
        ({"audible_share": 1.5}, "audible_share"),
        ({"repeat_share": 0.8, "artist_continue": 0.3}, "artist_continue"),
    ],
)
def test_out_of_range_values_name_their_key(values: dict, key: str) -> None:
    with pytest.raises(SettingsError, match=key):
        SyntheticSettings.from_mapping(values)


def test_wav_allows_any_rate_in_range() -> None:
    assert SyntheticSettings.from_mapping({"audio_format": "wav", "sample_rate": 22000}).sample_rate == 22000
