"""The run that a live, interactively driven trainer is recorded into (the window's worker keeps one).

Every trainer the user starts — a reset, an imported θ — gets a new run in the runs folder; a fork ends
the current run at this iteration (``end``) and begins a new one that names it as parent (``begin`` with
``parent`` and ``fork``); continuing a run (``prepare_continue``, then ``continue_run``) records on where it
stopped, exactly. All of it is Qt-free, so the rules are tested without a window.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.experiments.runs._info import RunError
from imaml_core.experiments.runs._recorder import RunRecorder
from imaml_core.experiments.runs._run import Run
from imaml_core.experiments.runs._store import RunStore


class RunKeeper:
    """Records one live trainer at a time into runs of ``root`` (no recording while ``root`` is None)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.store = RunStore(root) if root is not None else None
        self.recorder: RunRecorder | None = None

    @property
    def run(self) -> Run | None:
        """The run being recorded, if any."""
        return self.recorder.run if self.recorder is not None else None

    def set_root(self, root: str | Path) -> None:
        """New runs go to ``root`` (created if missing); the run being recorded stays where it is."""
        folder = Path(root)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot use {folder} as the runs folder: {exc.strerror or exc}") from None
        self.store = RunStore(folder)

    def begin(self, trainer: Any, name: str = "", parent: str | None = None, fork: int | None = None) -> Run | None:
        """A new run for ``trainer`` holding its present state (so it can be opened at once); call
        :meth:`end` for the previous one first."""
        if self.store is None:
            return None
        run = self.store.create(trainer.config, name, parent=parent, fork_iteration=fork)
        try:
            run.save_checkpoint(trainer)
        except BaseException:
            run.close()
            raise
        self.recorder = RunRecorder(run, saved_iteration=trainer.iteration)
        return run

    def end(self, trainer: Any, status: str = "paused") -> None:
        """Save ``trainer`` (the one being recorded) into the current run and let go of it."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close(trainer, status)

    def abandon(self) -> None:
        """Stop recording after a failed write, saving nothing more: the run's TensorBoard writer (a thread)
        is closed and its lock released, so neither outlives the recording."""
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            with contextlib.suppress(ImamlError, OSError):  # the folder may be gone: that is why we stop
                recorder.run.close()

    def prepare_continue(self, ref: str | Path, config: ExperimentConfig | None = None) -> tuple[Run, Any]:
        """The run ``ref`` and a trainer that continues it exactly; nothing changes until
        :meth:`continue_run`."""
        run = self.store.open(ref) if self.store is not None else Run.open(ref)
        if self.run is not None and run.path.resolve() == self.run.path.resolve():
            raise RunError(f"{run.path} is the run being recorded now")
        return run, run.trainer(config)

    def continue_run(self, run: Run, trainer: Any) -> None:
        """Record into ``run`` from ``trainer``'s iteration on (call :meth:`end` for the previous run first)."""
        run.continue_from_checkpoint(trainer.iteration)
        self.recorder = RunRecorder(run, saved_iteration=trainer.iteration)

    def pause(self, trainer: Any) -> None:
        """Everything to disk, status paused."""
        if self.recorder is not None:
            self.recorder.save(trainer, "paused")

    def running(self) -> None:
        run = self.run
        if run is not None and run.info.status != "running":
            run.set_status("running")

    def rename(self, run_id: str, name: str) -> None:
        """Rename a run: the recorded one through its open writer, any other through its folder."""
        if self.run is not None and self.run.id == run_id:
            self.run.rename(name)
            return
        if self.store is None:
            raise RunError("no runs folder is open")
        with self.store.open(run_id) as run:
            run.rename(name)
