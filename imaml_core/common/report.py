"""Plain-data results of the engine: what one meta-iteration did, and what an evaluation measured.

Reports carry floats and small numpy copies only, so they can cross threads (the GUI worker) and be
written to CSV/JSON without touching a tensor.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from imaml_core.common.columns import CSV_FIELDS
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.files import atomic_write_text


# Columns of the metrics CSV, in order: a report's own numbers, then the settings it ran with (from
# ``StepReport.config``), so a row says what changed when a curve bends.
@dataclass
class StepReport:
    """One meta-iteration. ``meta_loss`` is the mean query loss after adaptation (the outer objective)."""

    iteration: int  # number of finished meta-iterations after this one (unchanged if it diverged)
    config: ExperimentConfig  # the settings this iteration used
    meta_loss: float
    pre_loss: float  # mean query loss at theta, before adaptation
    val_loss: float  # post-adaptation MSE on the fixed validation set; NaN when not validated this step
    cg_residual: float  # mean relative CG residual (NaN when no CG ran)
    cg_iterations: float  # mean CG iterations per task
    cg_nonpositive: int  # tasks whose CG stopped at non-positive curvature
    stationarity: float  # mean inner stationarity residual
    memory_bytes: int
    seconds: float
    grad_norm: float
    diverged: bool = False
    message: str = ""
    task_post_loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # iMAML's lambda after this iteration: parameter-tensor name -> that tensor's lambda (the geometric
    # mean of a per-coordinate lambda), or the one key "λ" for a scalar; empty for the other methods.
    lam_by_layer: dict[str, float] = field(default_factory=dict)
    lam_clipped: int = 0  # entries of a learned lambda clipped to its bounds in this iteration
    val_accuracy: float = float("nan")  # classification: post-adaptation validation accuracy (0-1); else NaN

    def row(self) -> dict[str, object]:
        """This report as a row of the metrics CSV (the columns of ``CSV_FIELDS``)."""
        cfg = self.config
        values = {**self.__dict__, **{k: getattr(cfg, k) for k in CSV_FIELDS if hasattr(cfg, k)}}
        values["diverged"] = int(self.diverged)
        return {k: values[k] for k in CSV_FIELDS}


def metrics_csv(reports: Iterable[StepReport], header: bool = True, columns: Sequence[str] = CSV_FIELDS) -> str:
    """The metrics CSV of a run: a header of ``columns``, then one row per report (``StepReport.row``), in order.

    ``imaml train``'s run folders, the run store's appends (``header=False``, in the columns the file already
    has: a column a report lacks stays empty) and the window's export all come from here, so they agree."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", restval="", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(report.row() for report in reports)
    return out.getvalue()


def write_metrics_csv(path: str | os.PathLike[str], reports: Iterable[StepReport]) -> None:
    """Write ``metrics_csv(reports)`` to ``path`` atomically."""
    atomic_write_text(path, metrics_csv(reports))


@dataclass
class EvalResult:
    """Mean query loss of fresh tasks after ``steps`` adaptation steps, with a 95% interval; for classification
    also accuracy (a fraction in 0-1) with its interval. ``mse`` holds the loss of any family (the name is kept
    for regression's scripts); ``loss_name`` says which loss it is."""

    mse: float
    ci95: float  # half-width: mse +- ci95 (normal approximation over tasks)
    mse_per_step: list[float]  # index = adaptation steps taken (0..steps)
    tasks: int
    shots: int
    steps: int
    loss_name: str = "MSE"
    accuracy: float | None = None
    accuracy_ci95: float | None = None
    accuracy_per_step: list[float] | None = None
    adapt_lam: str = "trained"  # iMAML's adaptation: "trained" (the run's lambda) or "zero" (plain GD)
    data: str = "sinusoid"  # what the tasks were drawn from ("synthetic glyphs", "Omniglot (lake split)")

    @property
    def loss(self) -> float:
        return self.mse

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "loss": self.mse,
            "loss_name": self.loss_name,
            "ci95": self.ci95,
            "ci95_interval": [self.mse - self.ci95, self.mse + self.ci95],
            "loss_per_step": self.mse_per_step,
            "tasks": self.tasks,
            "shots": self.shots,
            "steps": self.steps,
            "adapt_lam": self.adapt_lam,
            "data": self.data,
        }
        if self.loss_name == "MSE":
            out["mse"], out["mse_per_step"] = self.mse, self.mse_per_step
        if self.accuracy is not None:
            out["accuracy"], out["accuracy_ci95"] = self.accuracy, self.accuracy_ci95
            out["accuracy_per_step"] = self.accuracy_per_step
        return out
