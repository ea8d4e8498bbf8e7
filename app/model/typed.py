"""What a person typed into a control, and the one rule that answers it (Qt-free).

Every editor hands its text over unparsed (``Typed``); ``parse`` reads it in the field's config type, the
config's own validation judges the value, and ``refusal_text`` words a refusal the same way for every field:
its label, the text as typed (escaped and shortened), why, the range the config allows and the value kept.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from app.model.fields import LABELS
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ConfigError
from imaml_core.common.text import printable

SHOWN_CHARS = 40  # a typed value longer than this is shortened in the message


@dataclass(frozen=True)
class Typed:
    """Text a person entered into the field's editor (Enter or leaving it), not yet read as a value."""

    text: str


def field_type(name: str) -> str:
    """The config field's type as written in ``ExperimentConfig`` ("float", "int", "list[int]", "str"...)."""
    return str({f.name: f for f in dataclasses.fields(ExperimentConfig)}[name].type)


def parse(name: str, text: str) -> object:
    """``text`` as a value of field ``name``'s type; ``ConfigError`` with a short reason when it is not one.
    Whether the value is in range is the config's to judge."""
    kind, stripped = field_type(name), text.strip()
    if kind == "str":
        return stripped
    if not stripped:
        raise ConfigError("nothing was typed")
    if kind == "list[int]":
        parts = stripped.replace(",", " ").split()
        try:
            return [_whole(_number(p)) for p in parts]
        except (ValueError, OverflowError):
            raise ConfigError("that is not a list of whole numbers") from None
    try:
        number = _number(stripped)
    except ValueError:
        raise ConfigError("that is not a number") from None
    if isinstance(number, int):  # exact; the config judges its range
        return number if kind == "int" else _as_float(number)
    if not math.isfinite(number):
        raise ConfigError("that is not a finite number")
    if kind == "int":
        try:
            return _whole(number)
        except ValueError:
            raise ConfigError("that is not a whole number") from None
    return number


def shown_text(value: object) -> str:
    """A typed value as the banner quotes it: printable, at most ``SHOWN_CHARS`` characters."""
    text = value.text if isinstance(value, Typed) else _format(value)
    text = printable(text)
    return f"“{text[:SHOWN_CHARS]}…”" if len(text) > SHOWN_CHARS else f"“{text}”"


def refusal_text(name: str, value: object, reason: str, kept: object) -> str:
    """The banner's answer to a refused value of ``name``: label, what was typed, why, what is allowed, and
    the value that stays in force."""
    label = LABELS.get(name, name)
    return (
        f"{label}: {shown_text(value)} was not accepted — {reason.rstrip('.')}. "
        f"Allowed: {ExperimentConfig.allowed(name, label)}. {label} stays {_format(kept)}."
    )


def reason_of(name: str, value: object, exc: Exception) -> str:
    """The reason to show for a value the config refused: "out of range" for a number of the field's type
    (the allowed range follows in the message), the config's own words otherwise."""
    kind = field_type(name)
    number = not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    )
    if number and (kind == "float" or (kind == "int" and isinstance(value, int))):
        return "out of range"
    return str(exc)


def _number(text: str) -> int | float:
    """Digits as an exact integer (a seed of 19 digits must not pass through a float's 53 bits), anything
    else (``1e3``, ``0.5``, ``nan``) as a float; ``ValueError`` when it is neither."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _as_float(number: int) -> float:
    try:
        return float(number)
    except OverflowError:  # more digits than a float holds: as infinite as the config can tell
        raise ConfigError("that is not a finite number") from None


def _whole(number: int | float) -> int:
    if isinstance(number, int):
        return number
    if not math.isfinite(number) or number != int(number):
        raise ValueError(number)
    return int(number)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
