"""The GUI's memory of a run: one growable numpy column per reported quantity.

Appending a report is O(1) amortised (capacity doubles), so the report slot stays cheap; the plot timer
reads views of the filled part. Each row also remembers which config produced it (an index into a short
list of distinct configs), so the metrics CSV can be rebuilt row by row without keeping every report.
"""

from __future__ import annotations

import numpy as np

from imaml_core.common.columns import REPORT_COLUMNS
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.report import StepReport

SCALAR_LAM = "λ"  # the engine's key for a scalar λ in ``StepReport.lam_by_layer``
# The report's columns as metrics.csv holds them, and the gradient's norm, which only the live window plots.
COLUMNS = ("iteration", *REPORT_COLUMNS, "grad_norm")
_INITIAL_CAPACITY = 1024


class History:
    """Columns of every ``StepReport`` received since the last reset."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._n = 0
        self._data = {name: np.full(_INITIAL_CAPACITY, np.nan) for name in COLUMNS}
        self._config_index = np.zeros(_INITIAL_CAPACITY, dtype=np.int32)
        self._configs: list[ExperimentConfig] = []
        self._lam: dict[str, np.ndarray] = {}  # λ per layer (parameter tensor), as the engine reports it
        self.version = 0  # bumped on every change, so the plot timer redraws only when needed

    def __len__(self) -> int:
        return self._n

    def append(self, report: StepReport) -> None:
        if self._n == len(self._config_index):
            self._grow()
        i = self._n
        for name in COLUMNS:
            self._data[name][i] = float(getattr(report, name))
        if not self._configs or self._configs[-1] is not report.config:
            self._configs.append(report.config)
        self._config_index[i] = len(self._configs) - 1
        for name, value in getattr(report, "lam_by_layer", {}).items():
            if name not in self._lam:
                self._lam[name] = np.full(len(self._config_index), np.nan)
            self._lam[name][i] = value
        self._n += 1
        self.version += 1

    def load(self, columns: dict[str, np.ndarray], config: ExperimentConfig) -> None:
        """Replace the rows by a recorded run's (metrics.csv columns; missing ones stay NaN). The rows
        keep ``config``, the run's present settings: the file itself holds each row's own."""
        n = len(columns.get("iteration", ()))
        self.clear()
        while len(self._config_index) < n:
            self._grow()
        for name in COLUMNS:
            if name in columns and columns[name].dtype.kind == "f":
                self._data[name][:n] = columns[name]
        if _fixed_scalar_lam(config) and "lam" in columns and columns["lam"].dtype.kind == "f":
            # a fixed scalar λ is the config's, which metrics.csv keeps per row; a learned or per-layer λ
            # is not in the file, so its curve starts where the run goes on
            self._lam[SCALAR_LAM] = np.full(len(self._config_index), np.nan)
            self._lam[SCALAR_LAM][:n] = columns["lam"]
        self._configs = [config]
        self._n = n
        self.version += 1

    def column(self, name: str) -> np.ndarray:
        """A read-only view of one column's filled part."""
        view = self._data[name][: self._n]
        view.flags.writeable = False
        return view

    def last_finite(self, name: str) -> float | None:
        """The newest finite value of a column (validation runs only every few iterations)."""
        seen = self.column(name)
        seen = seen[np.isfinite(seen)]
        return float(seen[-1]) if len(seen) else None

    def lam_columns(self) -> dict[str, np.ndarray]:
        """λ per layer over the rows (read-only views; NaN where a row did not report a layer)."""
        views = {}
        for name, column in self._lam.items():
            views[name] = column[: self._n]
            views[name].flags.writeable = False
        return views

    def reports(self) -> list[StepReport]:
        """The rows rebuilt as ``StepReport`` objects (for ``StepReport.row()`` and the CSV export)."""
        ints = {"iteration", "cg_nonpositive", "memory_bytes"}
        out = []
        for i in range(self._n):
            values = {name: self._data[name][i] for name in COLUMNS}
            kwargs: dict[str, object] = {
                k: (int(v) if k in ints else float(v)) for k, v in values.items() if k != "diverged"
            }
            kwargs["diverged"] = bool(values["diverged"])
            out.append(StepReport(config=self._configs[self._config_index[i]], **kwargs))  # type: ignore[arg-type]
        return out

    def _grow(self) -> None:
        size = 2 * len(self._config_index)
        for name, old in self._data.items():
            new = np.full(size, np.nan)
            new[: self._n] = old[: self._n]
            self._data[name] = new
        for name, old in self._lam.items():
            new = np.full(size, np.nan)
            new[: self._n] = old[: self._n]
            self._lam[name] = new
        index = np.zeros(size, dtype=np.int32)
        index[: self._n] = self._config_index[: self._n]
        self._config_index = index


def _fixed_scalar_lam(config: ExperimentConfig) -> bool:
    return config.method == "imaml" and config.lam_shape == "scalar" and not config.learn_lam
