"""One run: a folder with config.toml, metrics.csv, meta_params.safetensors, run.json and resume.safetensors.

Reading a run never modifies it and needs no lock. Writing takes the run's lock (run.lock) at the first
write and keeps it until ``close()``, so two processes never write one run. Every file is replaced
atomically, except metrics.csv, which grows by whole synced lines (see _metrics.py).

A writer records training in this order: ``append_metrics`` with the finished iterations, then
``save_checkpoint``. A crash between the two leaves metrics a little ahead of the checkpoint, and
``continue_from_checkpoint`` trims those rows before the run goes on, so no iteration is counted twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.common.report import StepReport
from imaml_core.experiments.runs._history import METRICS_FILE, Metrics, read_metrics
from imaml_core.experiments.runs._info import STATUSES, RunError, RunInfo, new_run_id, read_info, utc_now, write_info
from imaml_core.experiments.runs._lock import RunLock
from imaml_core.experiments.runs._metrics import append_metrics, start_metrics, trim_metrics
from imaml_core.experiments.runs._resume import RESUME_FILE, ResumeFile, load_resume, save_resume
from imaml_core.experiments.runs._tensorboard import ScalarWriter, tensorboard_available

if TYPE_CHECKING:
    from imaml_core.engine.checkpoint import Checkpoint

CONFIG_FILE = "config.toml"
PARAMS_FILE = "meta_params.safetensors"
# Files a new run replaces when it is created in a folder that held another run.
_RUN_FILES = (RESUME_FILE, PARAMS_FILE, METRICS_FILE, CONFIG_FILE)


def read_config(folder: Path) -> ExperimentConfig:
    """config.toml of ``folder``; a missing, linked or invalid file is a :class:`RunError` naming it."""
    path = folder / CONFIG_FILE
    if not path.exists() and not path.is_symlink():
        raise RunError(f"{folder}: no {CONFIG_FILE}")
    try:
        return ExperimentConfig.load(path, follow_links=False)  # a run's own file, never a link
    except ImamlError as exc:
        raise RunError(str(exc)) from None


class Run:
    """A run folder: read its record and history, continue it, and (as its one writer) record training."""

    def __init__(self, path: Path, info: RunInfo, config: ExperimentConfig, tensorboard: bool | None = None) -> None:
        """Use :meth:`open` or :meth:`create`. ``tensorboard`` None writes TensorBoard scalars when the
        package is installed; True or False decide it."""
        self.path = path
        self._info = info
        self._config = config
        self._lock = RunLock(path)
        self._tensorboard = tensorboard_available() if tensorboard is None else tensorboard
        self._scalars: ScalarWriter | None = None

    # -- opening and creating --------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, tensorboard: bool | None = None) -> Run:
        """The run in folder ``path`` (run.json and config.toml are read and checked here)."""
        folder = Path(path)
        if not folder.is_dir():
            raise RunError(f"{folder}: no such run folder")
        return cls(folder, read_info(folder), read_config(folder), tensorboard)

    @classmethod
    def create(
        cls,
        path: str | Path,
        config: ExperimentConfig,
        name: str = "",
        notes: str = "",
        parent: str | None = None,
        fork_iteration: int | None = None,
        tensorboard: bool | None = None,
        run_id: str | None = None,
    ) -> Run:
        """A new run in folder ``path`` (created if missing), holding its lock, with status running, and
        with id ``run_id`` (default: a new one).

        A folder that held another run gets the new run's files in place of that run's; a run still being
        written by a live process is refused."""
        from imaml_core.common.version import VERSION as __version__

        if (parent is None) != (fork_iteration is None):
            raise RunError("a fork needs both its parent's id and the fork iteration")
        folder = Path(path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create run folder {folder}: {exc.strerror or exc}") from None
        info = RunInfo(
            id=run_id or new_run_id(),
            name=name or folder.name,
            notes=notes,
            created=utc_now(),
            status="running",
            parent=parent,
            fork_iteration=fork_iteration,
            engine_version=__version__,
        )
        run = cls(folder, info, config.validate(), tensorboard)
        run._lock.acquire()
        try:
            for stale in _RUN_FILES:
                with contextlib.suppress(FileNotFoundError):
                    (folder / stale).unlink()
            config.save(folder / CONFIG_FILE)
            start_metrics(folder / METRICS_FILE)
            write_info(folder, info)
        except OSError as exc:
            run.close()
            raise RunError(f"cannot write run folder {folder}: {exc.strerror or exc}") from None
        run._scalars = run._new_scalars(fork_iteration or 0)
        return run

    # -- reading ---------------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._info.id

    @property
    def info(self) -> RunInfo:
        """run.json as this object last read or wrote it."""
        return self._info

    @property
    def config(self) -> ExperimentConfig:
        """config.toml: the settings the run trains with now (live changes included)."""
        return self._config

    def metrics(self, max_points: int | None = None, columns: Sequence[str] | None = None) -> Metrics:
        """The history as columns, read now: all columns or only ``columns`` (faster); ``max_points``
        bins it for an overlay (see _metrics.py)."""
        return read_metrics(self.path / METRICS_FILE, max_points, columns)

    def checkpoint(self) -> Checkpoint:
        """meta_params.safetensors, checked (a missing or damaged file is a :class:`RunError`)."""
        from imaml_core.engine.checkpoint import load_checkpoint  # torch: only when θ is wanted

        try:
            return load_checkpoint(self.path / PARAMS_FILE, follow_links=False)  # a run's own file, never a link
        except ImamlError as exc:
            raise RunError(str(exc)) from None

    def resume_file(self) -> ResumeFile:
        """resume.safetensors, checked; a run that has saved no state yet is a :class:`RunError`."""
        path = self.path / RESUME_FILE
        if not path.exists():
            raise RunError(f"{self.path}: no {RESUME_FILE} (the run saved no state to continue from)")
        return load_resume(path)

    def trainer(self, config: ExperimentConfig | None = None) -> Any:
        """A ``MetaTrainer`` that continues this run exactly from its last saved state.

        ``config`` (default: config.toml) may differ from the saved one in live settings only: a fork
        continues its parent's state with other live settings. Every file involved is checked against
        the others first (a :class:`RunError` says which disagree); nothing is written."""
        from imaml_core.engine.trainer import MetaTrainer

        config = config or self._config
        resume = self.resume_file()
        ckpt = self.checkpoint()
        for label, other in (("resume.safetensors", resume.config), ("meta_params.safetensors", ckpt.config)):
            differ = [k for k in config.changed(other) if not ExperimentConfig.is_live(k)]
            if differ:
                k = differ[0]
                raise RunError(
                    f"{self.path}: config.toml and {label} disagree on {k} "
                    f"({getattr(config, k)!r} vs {getattr(other, k)!r}); they are not one run"
                )
        try:
            trainer = MetaTrainer(config)
        except ImamlError as exc:
            raise RunError(f"{self.path}: {exc}") from None
        if resume.device and resume.device != trainer.device.type:
            raise RunError(
                f"{self.path}: the resume state was saved on {resume.device}, this run now resolves to "
                f"{trainer.device.type}; exact continuation needs the same device"
            )
        try:
            trainer.load_resume_state(resume.state)
        except ImamlError as exc:
            raise RunError(f"{self.path / RESUME_FILE}: {exc}") from None
        return trainer

    # -- writing (as the run's one writer) ---------------------------------------------------------------
    def continue_from_checkpoint(self, iteration: int) -> None:
        """Take the lock to go on writing from ``iteration`` (the restored trainer's): rows past it are
        trimmed from metrics.csv, and the status becomes running."""
        self._lock.acquire()
        try:
            trim_metrics(self.path / METRICS_FILE, iteration)
            self.set_status("running")
        except OSError as exc:
            self._lock.release()
            raise RunError(f"{self.path}: cannot rewrite {METRICS_FILE} ({exc.strerror or exc})") from None
        except BaseException:
            self._lock.release()
            raise
        self._scalars = self._new_scalars(iteration)

    def append_metrics(self, reports: Iterable[StepReport]) -> int:
        """Append the reports' rows to metrics.csv (and TensorBoard); returns the number of rows."""
        self._lock.acquire()
        reports = list(reports)
        rows = append_metrics(self.path / METRICS_FILE, reports)
        if self._scalars is not None and reports:
            self._scalars.write(reports)
        return rows

    def save_checkpoint(self, trainer: Any) -> None:
        """Save the trainer's state: resume.safetensors first, then meta_params.safetensors, each
        atomically; config.toml too when the trainer's (live) settings changed."""
        from imaml_core.engine.checkpoint import save_checkpoint

        self._lock.acquire()
        save_resume(self.path / RESUME_FILE, trainer.resume_state(), trainer.config, trainer.device.type)
        save_checkpoint(
            self.path / PARAMS_FILE, trainer.params(), trainer.config, trainer.iteration, trainer.current_lam()
        )
        if trainer.config != self._config:
            trainer.config.save(self.path / CONFIG_FILE)
            self._config = trainer.config

    def set_status(self, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        self._update(status=status)

    def rename(self, name: str, notes: str | None = None) -> None:
        """A new name (and notes, when given)."""
        self._update(name=name, **({} if notes is None else {"notes": notes}))

    def _update(self, **changes: Any) -> None:
        self._lock.acquire()
        info = self._info.replace(**changes)
        write_info(self.path, info)
        self._info = info

    def close(self) -> None:
        """Finish writing: flush TensorBoard and release the lock (reading goes on working)."""
        if self._scalars is not None:
            self._scalars.close()
            self._scalars = None
        self._lock.release()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _new_scalars(self, iteration: int) -> ScalarWriter | None:
        if self._scalars is not None:
            self._scalars.close()
        return ScalarWriter(self.path, iteration + 1) if self._tensorboard else None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, id={self.id!r}, status={self._info.status!r})"
