"""``ExperimentConfig``: the one serialisable description of a run.

Every field is marked *live* (applies at the next meta-iteration, keeping theta and the optimiser) or
*restart* (needs a new theta). Validation names the offending key in a one-line message; TOML is the
file format (``tomllib`` to read, ``tomli_w`` to write).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from imaml_core.common.errors import ConfigError
from imaml_core.common.files import atomic_write_text, read_bounded
from imaml_core.common.text import printable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

METHODS = ("imaml", "maml", "fomaml", "reptile")
INNER_SOLVERS = ("gd", "hf")
DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float32", "float64")
MAX_CONFIG_BYTES = 1 << 20  # a config is about a kilobyte; refuse to parse megabytes
LAM_SHAPES = ("scalar", "layer", "parameter")  # one lambda, one per parameter tensor, one per coordinate
BUILTIN_TASKS = ("sinusoid", "omniglot", "glyphs")  # task families the engine ships (imaml_core.tasks)
DATA_SPLITS = ("auto", "lake", "authors", "alphabet")  # how Omniglot's characters are split (tasks/omniglot.py)
# A family of the user's own: ``package.module:name`` (see docs/TASK_FAMILIES.md).
_USER_TASK = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
# Keys that configs no longer have, with the one value they could hold: files that carry them (checkpoints,
# presets and saved window settings written while the key existed) still load, and the key is dropped.
RETIRED_KEYS = {"task_family": "sinusoid"}


def _f(default: Any, live: bool, doc: str, **bounds: Any) -> Any:
    meta = {"live": live, "doc": doc, **bounds}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ExperimentConfig:
    """One run of meta-training. Defaults were chosen by measurement (see bench/RESULTS.md)."""

    task: str = _f(
        "sinusoid", False, "task family: sinusoid, omniglot, glyphs (synthetic), or package.module:name", task=True
    )
    data: str = _f("", False, "Omniglot's folder or zip ('' = the folder `imaml data omniglot` fills)", path=True)
    split: str = _f("auto", False, "Omniglot's character split: auto, lake, authors or alphabet", choices=DATA_SPLITS)
    ways: int = _f(5, False, "classes per task (N), for classification", ge=2, le=1000)
    filters: int = _f(64, False, "filters of each conv layer, for classification", ge=1, le=1024)
    glyph_classes: int = _f(600, False, "classes of the synthetic glyphs (split 70/10/20)", ge=10, le=100000)
    method: str = _f("imaml", False, "meta-gradient: imaml, maml, fomaml or reptile", choices=METHODS)
    inner_solver: str = _f("gd", True, "iMAML inner solver: gd or hf (Newton-CG)", choices=INNER_SOLVERS)
    lam: float = _f(20.0, True, "proximal regularisation strength lambda (the base value)", gt=0.0, le=1e6)
    lam_shape: str = _f(
        "scalar",
        False,
        "iMAML lambda: one (scalar), one per parameter tensor (layer) or per coordinate (parameter)",
        choices=LAM_SHAPES,
    )
    learn_lam: bool = _f(
        False,
        False,
        "iMAML: meta-learn lambda in log space with its own Adam (its gradient assumes a solved inner problem: "
        "pair it with inner_solver hf)",
    )
    lam_lr: float = _f(1e-2, True, "Adam step size on log lambda (when learned)", gt=0.0, le=10.0)
    cg_steps: int = _f(5, True, "CG iterations for the implicit gradient (0 = first-order)", ge=0, le=1000)
    cg_tol: float = _f(1e-5, True, "relative residual at which CG stops", ge=0.0, lt=1.0)
    inner_steps: int = _f(10, True, "inner solver steps (GD steps or Newton steps)", ge=1, le=10000)
    inner_lr: float = _f(0.01, True, "inner GD step size (all methods but iMAML-HF)", gt=0.0, le=1e3)
    inner_safeguard: bool = _f(True, True, "iMAML-GD: halve a task's step when its objective rises")
    hf_cg_steps: int = _f(10, True, "CG iterations per Newton step of the HF inner solver", ge=1, le=1000)
    analytic_grads: bool = _f(True, True, "hand-written exact MLP gradients and HVPs (off: autograd)")
    compile: bool = _f(False, True, "torch.compile the hand-written MLP derivatives (first steps are slow)")
    meta_lr: float = _f(1e-3, True, "Adam step size on theta", gt=0.0, le=10.0)
    meta_batch: int = _f(25, True, "tasks per meta-iteration", ge=1, le=100000)
    shots: int = _f(10, False, "support examples per task (K; per class for classification)", ge=1, le=10000)
    query: int = _f(10, False, "query examples per task (per class for classification)", ge=1, le=10000)
    hidden: list[int] = _f([40, 40], False, "hidden layer widths of the MLP")
    seed: int = _f(0, False, "seed of theta's initialisation and the task stream", ge=0, le=2**63 - 1)
    device: str = _f("cpu", False, "cpu, cuda or auto", choices=DEVICES)
    dtype: str = _f("float32", False, "float32 or float64", choices=DTYPES)
    val_tasks: int = _f(100, False, "size of the fixed validation set", ge=1, le=100000)
    val_every: int = _f(10, True, "validate every N meta-iterations (0 = never)", ge=0, le=10**9)

    def __post_init__(self) -> None:
        self.validate()

    # -- validation -------------------------------------------------------------------------------
    def validate(self) -> ExperimentConfig:
        """Raise :class:`ConfigError` naming the first invalid field; return self when valid."""
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        return self

    # -- live / restart ---------------------------------------------------------------------------
    @classmethod
    def live_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata["live"])

    @classmethod
    def restart_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata["live"])

    @classmethod
    def is_live(cls, name: str) -> bool:
        return name in cls.live_fields()

    @classmethod
    def doc(cls, name: str) -> str:
        return {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)}[name]

    @classmethod
    def allowed(cls, name: str, label: str | None = None) -> str:
        """The values ``name`` accepts, as text for people ("0 < λ ≤ 1e+06"; ``label`` stands for the field,
        its name when None), read from the same metadata that validation checks."""
        f = {f.name: f for f in dataclasses.fields(cls)}[name]
        label, kind, meta = label or name, str(f.type), f.metadata
        if kind == "list[int]":
            return f"1 to 16 whole numbers from 1 to 4096 (e.g. 40, 40) for {label}"
        if kind == "bool":
            return f"{label} on or off"
        if meta.get("task"):
            return f"{label}: {', '.join(BUILTIN_TASKS)} or package.module:name"
        if meta.get("path"):
            return f"{label}: a path of at most 4096 characters"
        if "choices" in meta:
            return f"{label}: one of {', '.join(meta['choices'])}"
        if kind == "str":
            return f"{label}: text"
        shown = (lambda v: str(int(v))) if kind == "int" else (lambda v: f"{v:g}")
        low = next((f"{shown(meta[k])} {sign} " for k, sign in (("gt", "<"), ("ge", "≤")) if k in meta), "")
        high = next((f" {sign} {shown(meta[k])}" for k, sign in (("lt", "<"), ("le", "≤")) if k in meta), "")
        what = "a whole number" if kind == "int" else "a finite number"
        return f"{low}{label}{high}, {what}" if low or high else f"{label}: {what}"

    def changed(self, other: ExperimentConfig) -> list[str]:
        """Names of the fields whose values differ between ``self`` and ``other``."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name)]

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A validated copy with ``changes`` applied (unknown keys are a :class:`ConfigError`)."""
        data = self.to_dict()
        data.update(changes)
        return ExperimentConfig.from_dict(data)

    # -- serialisation ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _copy(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Build from plain data (e.g. TOML); unknown keys and wrong types are a :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError("config must be a table of key = value pairs")
        names = {f.name: f for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if not (k in RETIRED_KEYS and v == RETIRED_KEYS[k])}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"unknown config key {printable(repr(unknown[0]))[:60]} (known keys: {', '.join(names)})")
        values = {k: _coerce(names[k], v) for k, v in data.items()}
        return cls(**values)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str) -> ExperimentConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"invalid TOML: {str(exc).splitlines()[0]}") from None
        except RecursionError:
            raise ConfigError("invalid TOML: nested too deeply") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path, follow_links: bool = True) -> ExperimentConfig:
        """Read a TOML config (a preset, or a run's config.toml: a run's own file, read without following
        a link). A FIFO or a device is refused, and so is a file over ``MAX_CONFIG_BYTES``."""
        try:
            text = read_bounded(path, MAX_CONFIG_BYTES, follow_links=follow_links).decode("utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            return cls.from_toml(text)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write as TOML, atomically."""
        atomic_write_text(path, self.to_toml())


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _type_name(f: dataclasses.Field) -> str:
    return {"str": "a string", "float": "a number", "int": "an integer", "bool": "true or false"}.get(
        str(f.type), "a list of positive integers"
    )


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """Accept ints for floats (TOML writes 2 for 2.0); reject everything else of the wrong type."""
    kind = str(f.type)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "list[int]" and isinstance(value, (list, tuple)):
        return list(value)
    return value


def _check_field(f: dataclasses.Field, value: Any) -> None:
    name, kind, meta = f.name, str(f.type), f.metadata
    ok_type = {
        "str": isinstance(value, str),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }.get(kind)
    if kind == "list[int]":
        if (
            not isinstance(value, list)
            or not 1 <= len(value) <= 16
            or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in value)
        ):
            raise ConfigError(f"{name} must be a list of 1 to 16 integers in [1, 4096], got {value!r}")
        return
    if not ok_type:
        raise ConfigError(f"{name} must be {_type_name(f)}, got {value!r}")
    if meta.get("task") and value not in BUILTIN_TASKS and not _USER_TASK.fullmatch(value):
        shown = printable(repr(value))[:80]
        raise ConfigError(f"{name} must be one of {', '.join(BUILTIN_TASKS)} or package.module:name, got {shown}")
    if meta.get("path") and (len(value) > 4096 or "\0" in value):
        raise ConfigError(f"{name} must be a path of at most 4096 characters without NUL")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if kind in ("float", "int"):
        if kind == "float" and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        for key, test, word in (
            ("gt", lambda a, b: a > b, ">"),
            ("ge", lambda a, b: a >= b, ">="),
            ("lt", lambda a, b: a < b, "<"),
            ("le", lambda a, b: a <= b, "<="),
        ):
            if key in meta and not test(value, meta[key]):
                raise ConfigError(f"{name} must be {word} {meta[key]:g}, got {value!r}")
