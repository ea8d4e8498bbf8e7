"""TensorBoard scalars beside a run's metrics.csv, when the optional ``tensorboard`` package is installed.

Each run writes event files into its own ``tb/`` folder, so ``tensorboard --logdir RUNS`` shows every run
of a runs folder under its folder name. metrics.csv stays the record the studio reads; these events are
a view for people who keep their other work in TensorBoard. A writer that continues a run purges the
events at and after its first new step, so a run resumed from its last checkpoint shows no doubled steps.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imaml_core.common.files import FileRefused
from imaml_core.common.report import StepReport

TB_FOLDER = "tb"
# StepReport field -> TensorBoard tag
SCALARS = {
    "meta_loss": "loss/meta_train",
    "pre_loss": "loss/pre_adaptation",
    "val_loss": "loss/validation",
    "val_accuracy": "accuracy/validation",
    "cg_residual": "cg/residual",
    "cg_iterations": "cg/iterations",
    "stationarity": "inner/stationarity",
    "grad_norm": "meta_gradient/norm",
    "seconds": "time/seconds_per_iteration",
    "memory_bytes": "memory/bytes",
}


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package is installed (checked without importing it)."""
    return importlib.util.find_spec("tensorboard") is not None


class ScalarWriter:
    """Writes the finite scalars of finished meta-iterations to ``folder/tb``; opens the event file on
    the first write, so a run that writes nothing creates nothing."""

    def __init__(self, folder: Path, first_step: int) -> None:
        self.folder = folder / TB_FOLDER
        self.first_step = first_step
        self._writer: Any = None
        self._failed = False

    def write(self, reports: Iterable[StepReport]) -> None:
        """Add the reports' scalars. A failure (a broken install, a full disk) turns this writer off with
        one warning: the events are a view, and training and metrics.csv go on without them."""
        if self._failed:
            return
        try:
            for report in reports:
                if report.diverged:
                    continue
                writer = self._open()
                for name, tag in SCALARS.items():
                    value = float(getattr(report, name))
                    if math.isfinite(value):
                        writer.add_scalar(tag, value, report.iteration)
                for layer, lam in report.lam_by_layer.items():
                    writer.add_scalar(f"lambda/{layer}", lam, report.iteration)
            if self._writer is not None:
                self._writer.flush()
        except Exception as exc:  # any failure of the optional package stays out of training
            self._failed = True
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            warnings.warn(f"TensorBoard scalars for {self.folder} stopped: {first}", RuntimeWarning, stacklevel=2)

    def _open(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            if self.folder.is_symlink():
                raise FileRefused(f"{self.folder} is a symbolic link (refused: a run's files are never followed)")

            self._writer = SummaryWriter(str(self.folder), purge_step=self.first_step)
        return self._writer

    def close(self) -> None:
        """Flush and close the event file, ending the writer's thread. A failure (the folder is gone) is
        warned about, never raised: the events are a view."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as exc:  # any failure of the optional package stays out of training
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                warnings.warn(f"TensorBoard scalars for {self.folder}: {first}", RuntimeWarning, stacklevel=2)
