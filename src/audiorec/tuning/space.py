"""Search spaces of `tuning.models` (docs/models.md, "Tuning"): `{setting: [low, high, flags...]}`.

A range is checked against the setting's JSON-schema properties (the model type's declaration
plus the shared blocks it `uses`), so a typo, a boolean or an out-of-bounds range is a config
error naming the key, not a study that fails after an hour. Flags: `log` (sampled on a log
scale; low must be > 0) and `int` (whole numbers; implied by an integer setting).

Standard library only: rules/tuning_config.smk loads this file by path to check the config
before any job runs (the Snakefile's interpreter need not have audiorec installed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FLAGS = ("log", "int")
# Settings that choose which runs exist, where they run or what is measured: never searched.
NOT_SEARCHABLE = ("type", "backends", "random_baseline", "datasets", "device", "precision", "metric")


class SpaceError(ValueError):
    """A search space the config cannot have; the message names the key and the fix."""


@dataclass(frozen=True)
class Param:
    """One searched setting: a range, sampled as float or int, linear or log."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def suggest(self, trial: Any) -> int | float:
        """The trial's value (duck-typed optuna.Trial, so this module needs no optuna)."""
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and value != int(value):
            return False
        return self.low <= value <= self.high

    def as_list(self) -> list[Any]:
        """The config spelling back: [low, high, flags...]."""
        return [self.low, self.high] + (["log"] if self.log else []) + (["int"] if self.integer else [])


def model_settings(declared: Mapping[str, Any], uses: list[str], schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A model type's settings as JSON-schema properties: the shared blocks it `uses`
    (`$defs/model_<block>` of the config schema), then its declaration's own (which win)."""
    found: dict[str, dict[str, Any]] = {}
    for block in uses:
        found.update(schema.get("$defs", {}).get(f"model_{block}", {}).get("properties", {}))
    for name, props in declared.items():
        found[name] = {**found.get(name, {}), **(props or {})}
    return found


def _types(props: Mapping[str, Any]) -> set[str]:
    kind = props.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_param(where: str, name: str, raw: Any, props: Mapping[str, Any] | None) -> Param:
    """One `setting: [low, high, flags...]`; `props` (its schema properties) checks the range
    against the setting's type and bounds (None: no check, for an already checked space)."""
    key = f"{where}.{name}"
    if name in NOT_SEARCHABLE:
        raise SpaceError(f"{key}: `{name}` chooses which runs exist or how they are measured; it cannot be searched.")
    if not isinstance(raw, list | tuple) or len(raw) < 2 or not all(map(_is_number, raw[:2])):
        raise SpaceError(f"{key}: write a range as [low, high] with optional flags {list(FLAGS)}, e.g. [1e-4, 1e-2, log]; got {raw!r}.")
    low, high, flags = raw[0], raw[1], list(raw[2:])
    bad = [f for f in flags if f not in FLAGS]
    if bad or len(set(flags)) != len(flags):
        raise SpaceError(f"{key}: unknown or repeated flag(s) {bad or flags}; the flags are {list(FLAGS)}.")
    if not low < high:
        raise SpaceError(f"{key}: the range [{low}, {high}] is empty; low must be below high.")
    if "log" in flags and low <= 0:
        raise SpaceError(f"{key}: a log range needs low > 0; got {low}.")
    integer = "int" in flags
    if props is not None:
        types = _types(props)
        if not types & {"integer", "number"}:
            raise SpaceError(f"{key}: `{name}` is not a numeric setting ({props.get('type') or props.get('enum')}); only numbers can be searched.")
        if "integer" in types and "number" not in types:
            integer = True
        elif integer:
            raise SpaceError(f"{key}: `{name}` is a real number; drop the `int` flag.")
        _check_bounds(key, name, low, high, props)
    if integer and (low != int(low) or high != int(high)):
        raise SpaceError(f"{key}: `{name}` takes whole numbers; write the range with integers, not [{low}, {high}].")
    return Param(name=name, low=low, high=high, log="log" in flags, integer=integer)


def _check_bounds(key: str, name: str, low: float, high: float, props: Mapping[str, Any]) -> None:
    limits = (
        ("minimum", lambda b: low >= b, ">="),
        ("exclusiveMinimum", lambda b: low > b, ">"),
        ("maximum", lambda b: high <= b, "<="),
        ("exclusiveMaximum", lambda b: high < b, "<"),
    )
    for limit, ok, sign in limits:
        if limit in props and not ok(props[limit]):
            raise SpaceError(f"{key}: the range [{low}, {high}] leaves the schema's bounds of `{name}` (must be {sign} {props[limit]}).")


def parse_space(where: str, raw: Any, settings: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[Param, ...]:
    """`tuning.models.<model>` as Params, in the config's order. `settings`: the model type's
    settings (model_settings) to check names, types and bounds against; `where` names the key."""
    if not isinstance(raw, Mapping) or not raw:
        raise SpaceError(f"{where}: map each searched setting to a range, e.g. {{lr: [1e-4, 1e-2, log]}}; got {raw!r}.")
    params = []
    for name, spec in raw.items():
        if settings is not None and name not in settings:
            known = ", ".join(sorted(n for n, p in settings.items() if n not in NOT_SEARCHABLE and _types(p) & {"integer", "number"}))
            raise SpaceError(f"{where}.{name}: not a setting of this model type; its numeric settings are: {known}.")
        params.append(parse_param(where, str(name), spec, None if settings is None else settings[name]))
    return tuple(params)


def space_as_config(params: tuple[Param, ...]) -> dict[str, list[Any]]:
    """The canonical config spelling (`int` spelled out where the setting implies it)."""
    return {p.name: p.as_list() for p in params}
