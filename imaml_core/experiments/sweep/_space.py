"""The search space of a sweep: which config fields vary, and how each is drawn.

A dimension is written ``FIELD=SPEC`` on the command line, or ``FIELD = "SPEC"`` (or ``FIELD = {DIST =
[...]}``) in the ``[search]`` table of a spec file. SPEC is one of:

- ``loguniform:LO:HI`` and ``uniform:LO:HI``: a real number in [LO, HI];
- ``int:LO:HI`` and ``intlog:LO:HI``: an integer in [LO, HI], both ends included;
- ``choice:A,B,...``: one of the values, each parsed to the field's type (``true``/``false`` for a flag,
  ``[40,40]`` for a list of layer widths; commas inside brackets do not separate choices).

Any field of :class:`ExperimentConfig` can be searched. Every check happens here, before a sweep writes
anything: the field exists, the distribution suits its type, the range is not empty (LO < HI), a log
range stays above 0, and both ends (or every choice) are values the config accepts. This module knows
nothing of Ray; the driver turns a dimension into a Ray Tune domain.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ConfigError, ImamlError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONTINUOUS = ("loguniform", "uniform")
INTEGER = ("int", "intlog")
DISTRIBUTIONS = (*CONTINUOUS, *INTEGER, "choice")
LOG_DISTRIBUTIONS = ("loguniform", "intlog")
SEARCH_TABLE = "search"


class SweepError(ImamlError):
    """A sweep that cannot start, resume or be read, with a one-line reason."""


def _field_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(ExperimentConfig)}


@dataclass(frozen=True)
class Dimension:
    """One searched field. ``low``/``high`` for a range (both included), ``choices`` for a choice."""

    field: str
    dist: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[Any, ...] = ()

    @property
    def log(self) -> bool:
        """Whether values are drawn (and best plotted) on a log scale."""
        return self.dist in LOG_DISTRIBUTIONS

    def spec(self) -> str:
        """The SPEC text this dimension reads back from."""
        if self.dist == "choice":
            return "choice:" + ",".join(_choice_text(v) for v in self.choices)
        return f"{self.dist}:{self.low!r}:{self.high!r}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "dist": self.dist, "log": self.log}
        if self.dist == "choice":
            data["choices"] = list(self.choices)
        else:
            data["low"], data["high"] = self.low, self.high
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Dimension:
        """Read back :meth:`to_dict` output, checked as if it were typed on the command line."""
        try:
            if data["dist"] == "choice":
                return make_dimension(data["field"], "choice", choices=list(data["choices"]))
            return make_dimension(data["field"], data["dist"], data["low"], data["high"])
        except (KeyError, TypeError) as exc:
            raise SweepError(f"a search dimension lacks {exc}") from None

    def to_config_value(self, sampled: Any) -> Any:
        """The config value of a value drawn by the search (choices of lists travel as JSON text, since
        Optuna's categorical values are scalars only)."""
        kind = _field_types()[self.field]
        if kind == "list[int]" and isinstance(sampled, str):
            return json.loads(sampled)
        if kind == "int":
            return int(sampled)
        if kind == "float":
            return float(sampled)
        return sampled

    def to_search_value(self, value: Any) -> Any:
        """The value the search draws for config value ``value`` (the inverse of :meth:`to_config_value`)."""
        return json.dumps(value) if self.dist == "choice" and isinstance(value, list) else value

    def search_choices(self) -> list[Any]:
        """The choices as the search sees them: scalars as they are, lists as JSON text."""
        return [json.dumps(v) if isinstance(v, list) else v for v in self.choices]


@dataclass(frozen=True)
class SearchSpace:
    """The searched dimensions, in the order given."""

    dimensions: tuple[Dimension, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(d.field for d in self.dimensions)

    @property
    def log_fields(self) -> tuple[str, ...]:
        """The fields searched on a log scale (their scatter plots want log axes)."""
        return tuple(d.field for d in self.dimensions if d.log)

    def __getitem__(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.field == name:
                return d
        raise KeyError(name)

    def config_values(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """Config values of one trial's draw (keys the searched fields)."""
        return {d.field: d.to_config_value(sampled[d.field]) for d in self.dimensions}

    def search_values(self, config_values: Mapping[str, Any]) -> dict[str, Any]:
        """The search's draw of a trial's config values (the inverse of :meth:`config_values`)."""
        return {d.field: d.to_search_value(config_values[d.field]) for d in self.dimensions}

    def to_list(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self.dimensions]

    @classmethod
    def from_list(cls, data: Iterable[Mapping[str, Any]]) -> SearchSpace:
        return cls.combine([Dimension.from_dict(d) for d in data])

    @classmethod
    def combine(cls, dimensions: Sequence[Dimension]) -> SearchSpace:
        """A space of ``dimensions``; a field searched twice, or none at all, is a :class:`SweepError`."""
        seen: set[str] = set()
        for d in dimensions:
            if d.field in seen:
                raise SweepError(f"{d.field} is searched twice")
            seen.add(d.field)
        if not dimensions:
            raise SweepError("a sweep needs at least one searched field (--search FIELD=SPEC or --spec FILE)")
        return cls(tuple(dimensions))


# -- parsing -----------------------------------------------------------------------------------------------
def parse_search(text: str) -> Dimension:
    """``FIELD=SPEC`` from the command line."""
    name, sep, spec = text.partition("=")
    if not sep or not name.strip():
        raise SweepError(f"--search {text!r}: expected FIELD=SPEC, e.g. lam=loguniform:0.1:100")
    return parse_spec(name.strip(), spec.strip())


def parse_spec(name: str, spec: str) -> Dimension:
    """One dimension from its field name and SPEC text."""
    dist, sep, rest = spec.partition(":")
    dist = dist.strip()
    where = f"{name}={spec}"
    if not sep:
        raise SweepError(f"{where}: expected DIST:..., with DIST one of {', '.join(DISTRIBUTIONS)}")
    _check_field_and_dist(name, dist, where)
    if dist == "choice":
        return make_dimension(name, dist, choices=[_parse_choice(name, part, where) for part in _split_choices(rest)])
    low_text, sep, high_text = rest.partition(":")
    if not sep or ":" in high_text:
        raise SweepError(f"{where}: expected {dist}:LO:HI")
    return make_dimension(name, dist, _number(low_text, dist, where), _number(high_text, dist, where))


def load_spec(path: str | Path) -> list[Dimension]:
    """The dimensions of a spec file: a TOML ``[search]`` table of ``FIELD = "SPEC"`` or
    ``FIELD = {DIST = [LO, HI]}`` / ``FIELD = {choice = [A, B, ...]}``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError(f"spec file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"cannot read spec file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepError(f"{path}: invalid TOML: {exc}") from None
    table = data.get(SEARCH_TABLE)
    unknown = sorted(set(data) - {SEARCH_TABLE})
    if unknown or not isinstance(table, dict):
        raise SweepError(f'{path}: expected one [{SEARCH_TABLE}] table of FIELD = "SPEC" entries')
    try:
        return [_entry(name, value) for name, value in table.items()]
    except SweepError as exc:
        raise SweepError(f"{path}: {exc}") from None


def _entry(name: str, value: Any) -> Dimension:
    if isinstance(value, str):
        return parse_spec(name, value)
    if isinstance(value, dict) and len(value) == 1:
        ((dist, args),) = value.items()
        where = f"{name} = {{{dist} = {args!r}}}"
        _check_field_and_dist(name, dist, where)
        if not isinstance(args, list):
            raise SweepError(f"{where}: expected a list")
        if dist == "choice":
            return make_dimension(name, dist, choices=args)
        if len(args) != 2:
            raise SweepError(f"{where}: expected [LO, HI]")
        return make_dimension(name, dist, args[0], args[1])
    raise SweepError(f'{name}: expected "SPEC" or {{DIST = [...]}}, got {value!r}')


def make_dimension(
    name: str, dist: str, low: Any = None, high: Any = None, choices: Sequence[Any] | None = None
) -> Dimension:
    """A checked dimension (see the module docstring for what is checked)."""
    where = f"{name}={dist}"
    _check_field_and_dist(name, dist, where)
    if dist == "choice":
        values = list(choices or [])
        if not values:
            raise SweepError(f"{where}: the choice list is empty")
        checked = tuple(_valid(name, v, where) for v in values)
        if len(set(map(_choice_text, checked))) < len(checked):
            raise SweepError(f"{where}: a choice is listed twice")
        return Dimension(name, dist, choices=checked)
    kind = _field_types()[name]
    for v in (low, high):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise SweepError(f"{where}: LO and HI must be finite numbers, got {v!r}")
        if dist in INTEGER and v != int(v):
            raise SweepError(f"{where}: LO and HI must be integers, got {v!r}")
    if dist in INTEGER:
        low, high = int(low), int(high)
    elif kind == "float":
        low, high = float(low), float(high)
    where = f"{name}={dist}:{low!r}:{high!r}"
    if low > high:
        raise SweepError(f"{where}: LO > HI")
    if low == high:
        raise SweepError(f"{where}: the range is empty (LO == HI); set the field in the config instead")
    if dist in LOG_DISTRIBUTIONS and low <= 0:
        raise SweepError(f"{where}: a log range must stay above 0 (LO > 0)")
    _valid(name, low, where)
    _valid(name, high, where)
    return Dimension(name, dist, low, high)


def _check_field_and_dist(name: str, dist: str, where: str) -> None:
    types = _field_types()
    if name not in types:
        raise SweepError(f"{where}: unknown config field {name!r} (fields: {', '.join(types)})")
    if dist not in DISTRIBUTIONS:
        raise SweepError(f"{where}: unknown distribution {dist!r} (use {', '.join(DISTRIBUTIONS)})")
    kind = types[name]
    if dist in CONTINUOUS and kind != "float":
        hint = "int:LO:HI or intlog:LO:HI" if kind == "int" else "choice:A,B,..."
        raise SweepError(f"{where}: {name} is not a real number; use {hint}")
    if dist in INTEGER and kind not in ("int", "float"):
        raise SweepError(f"{where}: {name} is not a number; use choice:A,B,...")


def _number(text: str, dist: str, where: str) -> float | int:
    text = text.strip()
    try:
        return int(text) if dist in INTEGER else float(text)
    except ValueError:
        kind = "an integer" if dist in INTEGER else "a number"
        raise SweepError(f"{where}: {text!r} is not {kind}") from None


def _split_choices(text: str) -> list[str]:
    """Split at top-level commas (a list value keeps its own commas); blank items are dropped."""
    parts, depth, current = [], 0, []
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _parse_choice(name: str, text: str, where: str) -> Any:
    kind = _field_types()[name]
    try:
        if kind == "str":
            return text
        if kind == "bool":
            return {"true": True, "false": False}[text.lower()]
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        value = json.loads(text)
        if not isinstance(value, list):
            raise ValueError(text)
        return value
    except (ValueError, KeyError):
        raise SweepError(f"{where}: {text!r} is not a value of {name}") from None


def _valid(name: str, value: Any, where: str) -> Any:
    """``value`` as the config holds it, or a :class:`SweepError` with the config's reason."""
    try:
        return getattr(ExperimentConfig().replace(**{name: value}), name)
    except ConfigError as exc:
        raise SweepError(f"{where}: {exc}") from None


def _choice_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
