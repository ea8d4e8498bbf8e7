"""Recording a run while something else drives the trainer (the window's worker): when to write what.

Metrics rows are buffered and appended in batches, so hundreds of tiny iterations a second do not each
open the file; θ and the resume state are saved every ``save_every`` iterations, on pause and on close.
Time comes from ``clock``, so tests drive the batching with a fake one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from imaml_core.common.report import StepReport
from imaml_core.experiments.runs._run import Run

FLUSH_INTERVAL_S = 1.0  # buffered rows reach metrics.csv at least this often while training
FLUSH_ROWS = 200  # ... and whenever this many are waiting
SAVE_EVERY = 100  # iterations between saves of θ and the resume state while training


class RunRecorder:
    """Writes one run's history and state as the trainer reports; the run's one writer while open."""

    def __init__(
        self,
        run: Run,
        save_every: int = SAVE_EVERY,  # 0: only on save() and close()
        flush_interval: float = FLUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        saved_iteration: int | None = None,
    ) -> None:
        """``saved_iteration``: the iteration whose state the run already holds (a continued run)."""
        self.run = run
        self.save_every = save_every
        self.flush_interval = flush_interval
        self._clock = clock
        self._pending: list[StepReport] = []
        self._flushed_at = clock()
        self._saved_iteration = saved_iteration

    def record(self, report: StepReport, trainer: Any) -> None:
        """Take one report (a diverged, skipped iteration too: its row says so); flush and save when due."""
        self._pending.append(report)
        if len(self._pending) >= FLUSH_ROWS or self._clock() - self._flushed_at >= self.flush_interval:
            self.flush()
        due = self.save_every and trainer.iteration % self.save_every == 0
        if due and trainer.iteration != self._saved_iteration:
            self.save(trainer)

    def flush(self) -> None:
        """Append the buffered rows to metrics.csv (and TensorBoard)."""
        if self._pending:
            self.run.append_metrics(self._pending)
            self._pending = []
        self._flushed_at = self._clock()

    def save(self, trainer: Any, status: str | None = None) -> None:
        """Everything so far to disk: the rows, then θ and the resume state; and the status, if given."""
        self.flush()
        if trainer.iteration != self._saved_iteration:
            self.run.save_checkpoint(trainer)
            self._saved_iteration = trainer.iteration
        if status is not None and status != self.run.info.status:
            self.run.set_status(status)

    def close(self, trainer: Any, status: str = "paused") -> None:
        """Save and let go of the run (another process may then continue it)."""
        try:
            self.save(trainer, status)
        finally:
            self.run.close()
