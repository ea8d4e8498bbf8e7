"""Seed groups: runs whose settings differ only by ``seed``, summarised over their seeds. Qt-free.

A group is what a tracker's "group by" shows: the same experiment repeated with other seeds, read as a mean
with a 95% confidence interval (Student's t: a handful of seeds is far from the normal limit).

- :func:`seed_groups`: the readable rows of a listing, grouped (a run without a seed partner is a group of 1);
- :func:`seed_interval`: mean, 95% half-width and count of some values (a group's final validation loss);
- :func:`seed_band`: mean and 95% half-width per iteration over several runs' curves (an overlay's band);
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.common.stats import t_quantile
from imaml_core.experiments.runs._run import CONFIG_FILE, read_config
from imaml_core.experiments.runs._store import RunSummary

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% half-width over ``n`` values; ``ci95`` is None below two values (no spread)."""

    mean: float | None
    ci95: float | None
    n: int


@dataclass(frozen=True)
class SeedGroup:
    """Runs with the same settings but ``seed``, in order of seed; named after its first run."""

    rows: tuple[RunSummary, ...]
    seeds: tuple[int, ...]  # each run's, in the same order
    config: ExperimentConfig  # the first run's; the others differ from it at most in ``seed``

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rows)

    @property
    def name(self) -> str:
        return self.rows[0].name

    @property
    def n(self) -> int:
        return len(self.rows)

    def final(self, metric: str) -> Interval:
        """Mean and 95% half-width over the runs of ``metric``'s last value (a ``RunSummary`` field such as
        ``val_loss``); runs that have no value yet are left out of it."""
        return seed_interval([v for v in (getattr(r, metric) for r in self.rows) if v is not None])


ConfigCache = dict[str, tuple[tuple[int, int, int], ExperimentConfig]]  # folder: (config.toml's stat, settings)


def seed_groups(rows: Sequence[RunSummary], cache: ConfigCache | None = None) -> list[SeedGroup]:
    """The readable runs of ``rows`` grouped by their settings less ``seed`` (``ExperimentConfig.changed``
    names at most ``seed``, so the task family is always shared) with distinct seeds (a rerun of a seed,
    or a fork that changes nothing, is no new sample: it starts a group of its own), in order of each
    group's first run, and each group's runs in order of seed.
    Unreadable rows, and runs whose config.toml cannot be read now, are in no group. A ``cache`` kept
    between calls (a window listing every few seconds) spares reading configs whose file has not changed."""
    groups: list[tuple[list[RunSummary], list[ExperimentConfig]]] = []
    for row in rows:
        if not row.readable:
            continue
        try:
            config = _config(Path(row.path), cache)
        except (ImamlError, OSError):
            continue
        for members, configs in groups:  # a repeat of a seed (a rerun, a fork) is no new sample
            if set(configs[0].changed(config)) <= {"seed"} and config.seed not in {c.seed for c in configs}:
                members.append(row)
                configs.append(config)
                break
        else:
            groups.append(([row], [config]))
    out = []
    for members, configs in groups:  # each group's runs by seed, so it reads "0,1,2" and is named by seed 0's
        ordered = sorted(zip(configs, members, strict=True), key=lambda pair: pair[0].seed)
        out.append(SeedGroup(tuple(m for _c, m in ordered), tuple(c.seed for c, _m in ordered), ordered[0][0]))
    return out


def _config(folder: Path, cache: ConfigCache | None) -> ExperimentConfig:
    """The run's settings; from ``cache`` while config.toml keeps its inode, size and modification time (a
    run's config is replaced atomically, so each write changes them)."""
    if cache is None:
        return read_config(folder)
    stat = (folder / CONFIG_FILE).stat()
    signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    cached = cache.get(str(folder))
    if cached is not None and cached[0] == signature:
        return cached[1]
    config = read_config(folder)
    cache[str(folder)] = (signature, config)
    return config


def seed_interval(values: Sequence[float]) -> Interval:
    """Mean, and ``t(0.975, n-1) · s / √n`` with ``s`` the sample standard deviation (ddof 1)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Interval(None, None, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, None, n)
    s = float(x.std(ddof=1))
    return Interval(mean, t_quantile(0.5 + CONFIDENCE / 2, n - 1) * s / math.sqrt(n), n)


def _by_iteration(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The curve sorted by iteration, one value per iteration (the last one given for it)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    reverse = np.arange(len(xs))[::-1]
    unique, first = np.unique(xs[::-1], return_index=True)  # first of the reversed order: the last given
    return unique, ys[reverse[first]]


def seed_band(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iterations, mean, 95% half-width) over runs' curves (iterations, values), aligned by iteration.

    The band covers the iterations every run has, so a run with fewer iterations shortens the group's
    curve. At each iteration the statistics use the runs with a finite value there (a validation column
    is NaN between validations): the mean is NaN where none has one, the half-width where fewer than two.
    A run's iterations may come in any order; an iteration it repeats counts once, with its last value."""
    if not curves:
        empty = np.array([], dtype=float)
        return empty, empty, empty
    runs = [_by_iteration(x, y) for x, y in curves]
    common = runs[0][0]
    for x, _ in runs[1:]:
        common = np.intersect1d(common, x)
    stacked = np.full((len(runs), len(common)), np.nan)
    for i, (xs, ys) in enumerate(runs):
        stacked[i] = ys[np.searchsorted(xs, common)]  # every common iteration is in each run's sorted xs
    finite = np.isfinite(stacked)
    n = finite.sum(axis=0)
    values = np.where(finite, stacked, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, values.sum(axis=0) / np.maximum(n, 1), np.nan)
        squares = np.where(finite, (stacked - mean) ** 2, 0.0).sum(axis=0)
        s = np.sqrt(squares / np.maximum(n - 1, 1))
    factor = np.full(len(common), np.nan)
    for count in np.unique(n[n >= 2]):
        factor[n == count] = t_quantile(0.5 + CONFIDENCE / 2, int(count) - 1) / math.sqrt(count)
    return common, mean, np.where(n >= 2, factor * s, np.nan)
