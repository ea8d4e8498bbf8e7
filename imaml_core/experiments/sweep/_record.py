"""sweep.json: a sweep's own record, beside its trials' run folders. Qt-free and Ray-free.

The sweep's driver is its one writer (it holds ``sweep.lock``) and replaces the file atomically whenever
a trial starts, ends, or (at most every few seconds) reports progress. Everything a viewer shows comes from
this one small file (settings, the metric's ``mode``, search space, base config, and per trial its searched
values, metric, status, iterations and run folders), so a window can poll it cheaply and never waits on Ray.

A sweep folder::

    DIR/sweep.json           this record
    DIR/sweep.lock           while a driver runs the sweep
    DIR/trial-<id>/          one run folder per trial (trial-<id>-seed<k>/ with --seeds K > 1)
    DIR/.tune/               Ray Tune's experiment state, for ``imaml sweep --resume``

Readers accept unknown keys; a missing or damaged file is a :class:`SweepError` naming the folder. A record
written before ``mode`` was recorded takes its metric's mode, and a trial without ``val_loss`` its ``val_mse``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.common.text import printable
from imaml_core.experiments.runs import RecordKind, lock_holder, read_record
from imaml_core.experiments.sweep._metrics import check_metric, metric_mode, rank_key
from imaml_core.experiments.sweep._space import SearchSpace, SweepError

SWEEP_FILE = "sweep.json"
SWEEP_LOCK = "sweep.lock"
TUNE_FOLDER = ".tune"
SWEEP_FORMAT = "imaml-studio-sweep"
SWEEP_FORMAT_VERSION = 1
MAX_SWEEP_BYTES = 64 << 20
SWEEP_RECORD = RecordKind(SWEEP_FILE, SWEEP_FORMAT, SWEEP_FORMAT_VERSION, "sweep", MAX_SWEEP_BYTES, SweepError)
# A sweep's status: running (a driver holds the lock), finished, interrupted (stopped before every trial
# ended; ``--resume`` continues it) or failed (the driver stopped on an error, given in ``message``).
SWEEP_STATUSES = ("running", "finished", "interrupted", "failed")
# A trial's status: running, finished (all iterations), pruned (stopped early by ASHA), failed (the
# reason says why), or paused (its sweep was interrupted; ``--resume`` continues it).
TRIAL_STATUSES = ("running", "finished", "pruned", "failed", "paused")


@dataclass(frozen=True)
class SweepSettings:
    """How a sweep runs. The metric's definition and direction are in _metrics.py's ``METRIC_TABLE``."""

    metric: str = "val_mse"
    trials: int = 16
    iterations: int = 500
    seeds: int = 1
    report_every: int = 50
    cpus_per_trial: int = 1
    address: str | None = None  # None: Ray started inside the sweep's process

    def validate(self) -> SweepSettings:
        metric_mode(self.metric)  # an unknown metric is a SweepError naming the known ones
        for name in ("trials", "iterations", "seeds", "report_every", "cpus_per_trial"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SweepError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names}).validate()
        except TypeError as exc:
            raise SweepError(f"invalid sweep settings: {exc}") from None


# The JSON types of a trial's fields (numbers may be null where the record writes None).
_TRIAL_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "number": (int,),
    "config": (dict,),
    "status": (str,),
    "metric": (int, float, type(None)),
    "val_mse": (int, float, type(None)),
    "val_loss": (int, float, type(None)),
    "val_accuracy": (int, float, type(None)),
    "iterations": (int,),
    "seconds": (int, float),
    "reason": (str,),
    "node": (str,),
}


def _is(value: object, kinds: tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


@dataclass(frozen=True)
class TrialSummary:
    """One trial as the record holds it. ``runs`` are the trial's run folders (one per seed, absolute
    paths when read with :func:`read_sweep`); ``metric`` is the sweep's metric (mean over seeds; for a
    trial that did not finish, its last value, an estimate); ``val_loss`` the last mean validation loss
    (what ASHA compares), ``val_mse`` the same for a regression family (None for classification, as in
    ``imaml runs list``) and ``val_accuracy`` the last mean validation accuracy (None for regression);
    ``reason`` says why a trial failed, or that Ray restarted it (a lost node)."""

    id: str
    number: int
    config: dict[str, Any]
    status: str = "running"
    metric: float | None = None
    val_mse: float | None = None
    iterations: int = 0
    seconds: float = 0.0
    runs: tuple[str, ...] = ()
    reason: str = ""
    node: str = ""  # the Ray node that last reported for the trial
    val_loss: float | None = None
    val_accuracy: float | None = None

    @property
    def run(self) -> str | None:
        """The trial's (first seed's) run folder."""
        return self.runs[0] if self.runs else None

    def replace(self, **changes: Any) -> TrialSummary:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["runs"] = list(self.runs)
        data["metric"] = _finite(self.metric)
        for key in ("val_mse", "val_loss", "val_accuracy"):
            data[key] = _finite(data[key])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialSummary:
        """A trial from the record, every field of the type it must have (a ``ValueError`` names the first
        that is not), so a damaged record fails here and not later while a summary is printed."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a trial is {type(data).__name__}, not an object")
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["runs"] = tuple(values.get("runs", ()))
        for key, kinds in _TRIAL_TYPES.items():
            if key in values and not _is(values[key], kinds):
                raise ValueError(f"trial field {key!r} is {type(values[key]).__name__}")
        if not all(isinstance(r, str) for r in values["runs"]) or values.get("status", "running") not in TRIAL_STATUSES:
            raise ValueError("a trial's runs or status are damaged")
        if "val_loss" not in values:  # a record of regression sweeps only
            values["val_loss"] = values.get("val_mse")
        return cls(**values)

    def row(self) -> dict[str, Any]:
        """The trial as ``imaml sweep --json`` prints it."""
        return {
            "id": self.id,
            "number": self.number,
            "config": dict(self.config),
            "metric": _finite(self.metric),
            "val_mse": _finite(self.val_mse),
            "val_loss": _finite(self.val_loss),
            "val_accuracy": _finite(self.val_accuracy),
            "status": self.status,
            "iterations": self.iterations,
            "seconds": self.seconds,
            "run": self.run,
            "runs": list(self.runs),
            "reason": self.reason,
            "node": self.node,
        }


@dataclass(frozen=True)
class SweepSummary:
    """A sweep folder as :func:`read_sweep` reads it: what a viewer shows and ``--json`` prints."""

    path: str
    status: str
    settings: SweepSettings
    space: SearchSpace
    base: dict[str, Any]
    trials: tuple[TrialSummary, ...]
    created: str = ""
    updated: str = ""
    message: str = ""
    mode: str = "min"  # the metric's direction: "min" (lower is better) or "max"

    @property
    def metric(self) -> str:
        return self.settings.metric

    @property
    def log_fields(self) -> tuple[str, ...]:
        """Searched fields drawn on a log scale: their axes want a log scale too."""
        return self.space.log_fields

    @property
    def best(self) -> TrialSummary | None:
        """The finished trial with the best metric, the lowest or the highest by ``mode`` (the earlier trial of
        equals; pruned and failed trials never count)."""
        done = [t for t in self.trials if t.status == "finished" and t.metric is not None]
        return min(done, key=lambda t: (rank_key(t.metric, self.mode), t.number)) if done else None

    def ranked(self) -> list[TrialSummary]:
        """The trials best first: finished ones by their metric (by ``mode``), then the others by theirs."""
        return sorted(self.trials, key=lambda t: (t.status != "finished", rank_key(t.metric, self.mode), t.number))

    def counts(self) -> dict[str, int]:
        """Trials by status."""
        out = {s: 0 for s in TRIAL_STATUSES}
        for t in self.trials:
            out[t.status] = out.get(t.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """``{"best": {"config", "metric", "run"}, "trials": [...]}`` plus the sweep's own fields."""
        best = self.best
        return {
            "best": None if best is None else {"config": best.config, "metric": best.metric, "run": best.run},
            "trials": [t.row() for t in self.trials],
            "metric": self.metric,
            "mode": self.mode,
            "status": self.status,
            "path": self.path,
            "search": {d.field: d.spec() for d in self.space.dimensions},
            "log_fields": list(self.log_fields),
            "settings": self.settings.to_dict(),
            "message": self.message,
        }


def read_sweep(folder: str | os.PathLike[str]) -> SweepSummary:
    """The sweep in ``folder``, read now from its sweep.json (nothing is written; no Ray needed).

    A sweep recorded as running whose driver is gone reads as ``interrupted``, and its running trials as
    ``paused``: ``imaml sweep --resume`` continues them."""
    folder = Path(folder)
    data = read_record(folder, SWEEP_RECORD)
    where = f"{folder / SWEEP_FILE}"
    try:
        settings = SweepSettings.from_dict(data["settings"])
        space = SearchSpace.from_list(data["space"])
        base = dict(data["base"])
        listed = data.get("trials", [])
        if not isinstance(listed, list):
            raise ValueError(f"trials is {type(listed).__name__}, not a list")
        trials = tuple(TrialSummary.from_dict(t) for t in listed)
        status = data["status"]
        mode = data.get("mode", metric_mode(settings.metric))
        if mode != metric_mode(settings.metric):
            raise ValueError(f"mode {printable(str(mode))[:20]!r} is not {settings.metric}'s")
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError, ImamlError) as exc:
        raise SweepError(f"{where}: damaged ({printable(str(exc))[:200]})") from None
    if status not in SWEEP_STATUSES:
        raise SweepError(f"{where}: unknown status {status!r}")
    if status == "running" and lock_holder(folder, SWEEP_LOCK) is None:
        status = "interrupted"
    if status != "running":
        trials = tuple(t.replace(status="paused") if t.status == "running" else t for t in trials)
    root = folder.resolve()
    trials = tuple(t.replace(runs=tuple(str(root / r) for r in t.runs)) for t in trials)
    return SweepSummary(
        path=str(root),
        status=status,
        settings=settings,
        space=space,
        base=base,
        trials=trials,
        created=str(data.get("created", "")),
        updated=str(data.get("updated", "")),
        message=str(data.get("message", "")),
        mode=mode,
    )


def check_base(summary: SweepSummary) -> None:
    """A one-line :class:`SweepError` when the recorded base config is not a valid config, or its task family
    has no such metric: a sweep is only continued from a base that every new trial can train from."""
    try:
        base = ExperimentConfig.from_dict(summary.base).validate()
    except ImamlError as exc:
        raise SweepError(f"{summary.path}: the recorded base config is invalid: {printable(str(exc))}") from None
    try:
        check_metric(summary.metric, base, summary.space)
    except ImamlError as exc:
        raise SweepError(f"{summary.path}: {printable(str(exc))}") from None


def is_sweep(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds a sweep record (readable or not)."""
    return (Path(folder) / SWEEP_FILE).is_file()


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
