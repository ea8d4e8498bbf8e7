"""The one train-and-record loop: a trainer stepped one meta-iteration at a time, each report recorded into
its run, and one rule for when divergence ends training.

``imaml train``, a sweep's trials and the window's worker all step a :class:`TrainingSession`; they differ
only in what stops them (a total, a report boundary, a user's Pause) and in what they do with a failure
(exit 2, fail the trial, pause with a banner).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imaml_core.common.errors import ImamlError
from imaml_core.common.report import StepReport
from imaml_core.experiments.runs import RunRecorder

if TYPE_CHECKING:  # the engine (and torch) load only with a trainer
    from imaml_core.engine.threads import ThreadTuner

MAX_CONSECUTIVE_DIVERGED = 20  # meta-iterations in a row that may diverge before a headless run gives up


class DivergenceGuard:
    """Counts diverged meta-iterations in a row; ``limit`` of them end training. A headless run rides out
    a few (Adam's undo leaves θ as it was); the window stops at the first so the user sees why."""

    def __init__(self, limit: int = MAX_CONSECUTIVE_DIVERGED) -> None:
        if limit < 1:
            raise ValueError(f"the divergence limit must be >= 1, got {limit}")
        self.limit = limit
        self.in_a_row = 0

    def observe(self, report: StepReport) -> str:
        """ "" while training may go on, else the one-line reason it stops."""
        if not report.diverged:
            self.in_a_row = 0
            return ""
        self.in_a_row += 1
        if self.in_a_row < self.limit:
            return ""
        if self.limit == 1:
            return report.message
        return f"training diverged {self.in_a_row} meta-iterations in a row: {report.message}"


class TrainingSession:
    """A trainer and the recorder of its run (None: not recorded), stepped by whoever drives training.

    ``stop_reason`` is set once the divergence guard ends training; ``record_error`` once recording failed
    (the recorder is then dropped, so training may go on unrecorded when the caller allows it)."""

    def __init__(
        self,
        trainer: Any,
        recorder: RunRecorder | None = None,
        guard: DivergenceGuard | None = None,
        threads: ThreadTuner | None = None,
    ) -> None:
        """``threads``: a tuner that picks the CPU thread count by timing these steps (None: as set)."""
        self.trainer = trainer
        self.threads = threads
        self.recorder = recorder
        self.guard = guard or DivergenceGuard()
        self.stop_reason = ""
        self.record_error = ""
        self.seconds = 0.0  # wall-clock seconds of the meta-iterations stepped here

    def step(self, should_stop: Callable[[], bool] | None = None) -> StepReport:
        """One meta-iteration, recorded; ``should_stop`` is polled inside it (see ``MetaTrainer.step``)."""
        if self.threads is not None:
            self.threads.apply()
        report = self.trainer.step(should_stop=should_stop)
        if self.threads is not None:
            self.threads.observe(report.seconds)
        self.seconds += report.seconds
        self.stop_reason = self.guard.observe(report)
        self._write(lambda recorder: recorder.record(report, self.trainer))
        return report

    def train(
        self,
        until: int,
        stop: Callable[[], bool] = lambda: False,
        on_report: Callable[[StepReport], None] | None = None,
    ) -> StepReport | None:
        """Meta-iterations until the trainer has done ``until`` in total, ``stop()`` says so, divergence
        ends training or recording fails; returns the last report (None when none ran)."""
        last = None
        while self.trainer.iteration < until and not stop() and not self.stop_reason and not self.record_error:
            last = self.step()
            if on_report is not None:
                on_report(last)
        return last

    def save(self, status: str | None = None) -> None:
        """The rows so far, θ and the resume state to disk (and the status, if given)."""
        self._write(lambda recorder: recorder.save(self.trainer, status))

    def close(self, status: str) -> None:
        """Save with ``status`` and let go of the run."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close(self.trainer, status)

    def take_record_error(self) -> str:
        """Why recording failed ("" if it did not), once: taking it clears it (training may go on unrecorded)."""
        error, self.record_error = self.record_error, ""
        return error

    def _write(self, write: Callable[[RunRecorder], None]) -> None:
        if self.recorder is None:
            return
        try:
            write(self.recorder)
        except (ImamlError, OSError) as exc:
            self.recorder = None
            self.record_error = _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
    return (text.splitlines() or [type(exc).__name__])[0]
