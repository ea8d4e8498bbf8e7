"""What the banner and the status bar say about the run's lifecycle, kept true as the run moves on.

The banner's ``"run"`` topic carries messages about the live run (continued, imported, switched, evaluated,
a run that could not start); the ``"step"`` topic a failed or diverged meta-iteration. Each message is
cleared when it stops being true: "Press Start" messages by the first report after them, a step failure by
the next report that did not diverge, and any run message by the next lifecycle change (a reset, fork,
continue, import or family switch). The status bar's state field says what the app is doing now:
``building θ…`` while a trainer is being built, ``training`` while running, ``paused`` or ``idle`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

from app.model.messages import Failure, Job, RunRef, RunStart, TrainerChange, TrainerInfo
from app.model.tasks import family_name
from app.shell.banner import Banner, diverged_text, failure_text, loaded_text
from app.shell.status import StatusBar
from imaml_core.common.report import StepReport

RUN, STEP = "run", "step"
BUILDING, TRAINING, PAUSED, IDLE = "building θ…", "training", "paused", "idle"
# Failures of a lifecycle change: what they say is about the run, and the next change replaces it.
RUN_JOBS = (Job.RESET, Job.IMPORT, Job.CONTINUE, Job.FORK)
BUILD_JOBS = (Job.RESET, Job.IMPORT, Job.CONTINUE)  # the jobs that build a trainer


def switched_text(info: TrainerInfo) -> str:
    return f"Switched to {family_name(info.config)}: a new run, θ starts over from the new settings."


class Lifecycle:
    """Writes the banner's ``"run"`` and ``"step"`` messages and the status bar's state; ``iteration`` and
    ``running`` read the window's (a paused run with iterations is "paused", one without is "idle")."""

    def __init__(
        self, banner: Banner, status: StatusBar, iteration: Callable[[], int], running: Callable[[], bool]
    ) -> None:
        self._banner = banner
        self._status = status
        self._iteration = iteration
        self._running = running
        self._building = False
        self._until_report = False  # the shown "run" message is about pressing Start: a report ends it

    @property
    def state_text(self) -> str:
        """What the status bar's state field says now."""
        return self._status.state.text()

    def building(self) -> None:
        """A trainer is being built (start-up, reset, import, an opened run) until ``trainer_changed``."""
        self._building = True
        self._status.set_state(BUILDING)

    def running_changed(self) -> None:
        """The run started or paused (the window's ``running`` says which)."""
        self._show_state()

    def trainer_changed(self, info: TrainerInfo, switched: bool) -> None:
        """A new trainer: the previous run's messages no longer apply; say what this one is."""
        self._building = False
        self._until_report = False
        if info.reason in (TrainerChange.IMPORT, TrainerChange.CONTINUE):
            self._show_until_report(loaded_text(info))
        elif switched:
            self._show_until_report(switched_text(info))
        elif info.reason is TrainerChange.RESET:
            self._banner.clear(RUN)
        if info.reason is not TrainerChange.INIT:
            self._banner.clear(STEP)  # a new θ: the old one's failure is not this one's
        self._show_state()

    def run_changed(self, ref: RunRef) -> None:
        """A fork goes on in a new run: messages about the run it left no longer apply."""
        if ref.start is RunStart.FORK:
            self._until_report = False
            self._banner.clear(RUN)

    def report(self, report: StepReport) -> None:
        """A finished meta-iteration: a diverged one pauses the run and says so; a sound one ends a step
        failure's message and any "Press Start" message."""
        self._show_state()  # a Step from iteration 0 leaves an "idle" run "paused"
        if report.diverged:
            self._banner.show_message("error", diverged_text(report), topic=STEP)
            return
        self._banner.clear(STEP)
        if self._until_report:
            self._until_report = False
            self._banner.clear(RUN)

    def evaluated(self, text: str) -> None:
        self._until_report = False
        self._banner.show_message("info", text, topic=RUN)

    def failed(self, failure: Failure) -> None:
        """A worker failure in the banner, under the topic that a later success clears."""
        level, text = failure_text(failure)
        topic = STEP if failure.job is Job.STEP else RUN if failure.job in RUN_JOBS else ""
        if topic == RUN:
            self._until_report = False
        self._banner.show_message(level, text, topic=topic)
        if failure.job in BUILD_JOBS and self._building:
            self._building = False
            self._show_state()

    def _show_until_report(self, text: str) -> None:
        self._banner.show_message("info", text, topic=RUN)
        self._until_report = True

    def _show_state(self) -> None:
        if self._building:
            self._status.set_state(BUILDING)
        elif self._running():
            self._status.set_state(TRAINING)
        else:
            self._status.set_state(PAUSED if self._iteration() > 0 else IDLE)
