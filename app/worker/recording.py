"""The worker's runs with their names: a new run is named by its settings, a fork by what it changes from
its parent (``app.model.run_names``), and the live run's name follows its settings until its first
meta-iteration is recorded or the user names it. Qt-free; errors are raised for the worker to report.
"""

from __future__ import annotations

import contextlib

from app.model.messages import RunRef, RunStart
from app.model.run_names import AutoName, Parent, run_name
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.engine.trainer import MetaTrainer
from imaml_core.experiments.runs import Run, RunError, RunKeeper


class RunNamer:
    """Begins and forks the runs of ``keeper`` under their names, and renames the live one as it changes."""

    def __init__(self, keeper: RunKeeper) -> None:
        self._keeper = keeper
        self._auto: AutoName | None = None

    def begin(self, trainer: MetaTrainer, name: str = "") -> Run | None:
        """A new run for ``trainer``, named ``name``, or by its settings (then following them)."""
        self._auto = None
        run = self._keeper.begin(trainer, name or run_name(trainer.config))
        if run is not None and not name:
            self._auto = AutoName(run.id, trainer.iteration)
        return run

    def fork(self, trainer: MetaTrainer, config: ExperimentConfig | None) -> tuple[Run | None, Parent]:
        """End the live run at this iteration and go on in a child run with ``config`` (None: the same
        settings), named by what it changes; on a failure the trainer keeps its settings."""
        parent = self._keeper.run
        if parent is None:
            raise RunError("nothing is being recorded, so there is no run to fork")
        before, at = trainer.config, trainer.iteration
        origin = Parent(parent.info.name, before, at)
        self._auto = None
        try:
            self._keeper.end(trainer)
            if config is not None:
                trainer.apply_config(config)
            run = self._keeper.begin(trainer, AutoName("", at, origin).name(trainer.config), parent=parent.id, fork=at)
        except BaseException:
            with contextlib.suppress(ImamlError):
                trainer.apply_config(before)
            raise
        if run is not None:
            self._auto = AutoName(run.id, at, origin)
        return run, origin

    def continued(self) -> None:
        """A continued run keeps the name it has."""
        self._auto = None

    def renamed(self, run_id: str) -> None:
        """The user named ``run_id``: its name no longer follows its settings."""
        if self._auto is not None and self._auto.run_id == run_id:
            self._auto = None

    def follow_settings(self, trainer: MetaTrainer) -> None:
        """Rename the live run after its settings changed, while nothing has been recorded into it."""
        auto, run = self._auto, self._keeper.run
        if auto is None or run is None:
            return
        if not auto.follows(run.id, trainer.iteration):
            self._auto = None
            return
        name = auto.name(trainer.config)
        if name != run.info.name:
            self._keeper.rename(run.id, name)


def run_ref(run: Run, start: RunStart, parent_name: str = "") -> RunRef:
    """What the window is told about the run being recorded now."""
    info = run.info
    return RunRef(info.id, str(run.path), info.name, info.parent, info.fork_iteration, start, parent_name)
