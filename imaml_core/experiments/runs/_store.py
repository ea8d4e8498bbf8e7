"""A runs folder: a folder of run folders, listed quickly, opened by id, created, forked and trashed.

Listing reads each run's run.json and config.toml, the tail of its metrics.csv and the headers of its
safetensors files, never whole files, so hundreds of runs with long histories list in well under a
second (``bench/runs_store.py`` measures it). A subfolder that is not a readable run is listed with status
``unreadable`` and the reason, and never stops the others from listing; nothing is written while listing.
Folders whose names start with a dot (``.trash``) are not listed.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.common.safetensors_header import CHECKPOINT_FORMAT, LAM_KEY, read_metadata
from imaml_core.common.text import printable
from imaml_core.experiments.runs._history import METRICS_FILE, tail_summary
from imaml_core.experiments.runs._info import INFO_FILE, UNREADABLE, RunError, new_run_id, read_info
from imaml_core.experiments.runs._lock import RunLockedError, lock_holder
from imaml_core.experiments.runs._resume import RESUME_FILE, RESUME_FORMAT
from imaml_core.experiments.runs._run import CONFIG_FILE, PARAMS_FILE, Run, read_config

TRASH_FOLDER = ".trash"
_ROW_FILES = (INFO_FILE, CONFIG_FILE, METRICS_FILE, PARAMS_FILE, RESUME_FILE)  # what a listing row reads
_RACY_NS = 2_000_000_000  # files changed this recently are read again (coarse timestamps: FAT's are 2 s)
# The keys of one row of a listing (``imaml runs list --json``), in order.
SUMMARY_KEYS = (
    "id",
    "name",
    "task",
    "method",
    "lam",
    "current_lam",
    "lam_learned",
    "cg_steps",
    "inner_steps",
    "iterations",
    "val_mse",
    "val_loss",
    "val_accuracy",
    "status",
    "parent",
    "fork_iteration",
    "path",
)


@dataclass(frozen=True)
class RunSummary:
    """One row of a listing. For an unreadable folder: id and name are the folder's name, status is
    ``unreadable``, ``reason`` says why, and the settings are None."""

    id: str
    name: str
    method: str | None
    lam: float | None  # where λ starts (the config's)
    cg_steps: int | None
    inner_steps: int | None
    iterations: int | None
    val_mse: float | None  # the last validation loss of a regression run; None for classification, or not yet
    status: str
    parent: str | None
    fork_iteration: int | None
    path: str
    created: str = ""
    reason: str = ""  # why the folder is unreadable; "" for a readable run
    # λ at the last save: the geometric mean of a learned λ's entries, else the config's
    current_lam: float | None = None
    lam_learned: bool = False  # whether the run meta-learns λ
    task: str | None = None  # the task family (config.task)
    val_loss: float | None = None  # the last validation loss, of any family
    val_accuracy: float | None = None  # classification: that validation's accuracy (0-1)

    @property
    def readable(self) -> bool:
        return self.status != UNREADABLE

    def row(self) -> dict[str, Any]:
        """The listing's keys (``SUMMARY_KEYS``) with JSON-ready values."""
        return {k: getattr(self, k) for k in SUMMARY_KEYS}


def summarize(folder: Path) -> RunSummary:
    """The listing row of ``folder``; any problem gives an ``unreadable`` row with the reason."""
    return _writer_status(folder, _summarize_files(folder))


def _summarize_files(folder: Path) -> RunSummary:
    """The row as the folder's files say it, status as recorded (see ``_writer_status``)."""
    try:
        return _summarize(folder)
    except ImamlError as exc:
        return _unreadable(folder, str(exc))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return _unreadable(folder, f"{folder}: {exc}")


def _writer_status(folder: Path, summary: RunSummary) -> RunSummary:
    """A run recorded as running whose writer is gone is paused: it continues from its last checkpoint."""
    if summary.status == "running" and lock_holder(folder) is None:
        return dataclasses.replace(summary, status="paused")
    return summary


def _signature(folder: Path) -> tuple[tuple[int, int, int, int] | None, ...] | None:
    """What a run's row is read from, as (inode, size, modification and change times) per file: the same
    signature, the same row (the files are replaced atomically or appended to, so each write changes it).
    None while a file was changed within the file system's timestamp granularity, when a second write in
    the same tick could leave all four unchanged: such a row is read again next time."""
    signature = []
    newest = 0
    for name in _ROW_FILES:
        try:
            st = os.stat(folder / name)
        except OSError:
            signature.append(None)
        else:
            signature.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    if time.time_ns() - newest < _RACY_NS:
        return None
    return tuple(signature)


def _summarize(folder: Path) -> RunSummary:
    info = read_info(folder)
    config = read_config(folder)
    iterations, val, accuracy = tail_summary(folder / METRICS_FILE)
    for name, fmt in ((PARAMS_FILE, CHECKPOINT_FORMAT), (RESUME_FILE, RESUME_FORMAT)):
        _check_safetensors_header(folder / name, fmt)
    current, learned = _current_lam(folder / PARAMS_FILE, config)
    status = info.status
    return RunSummary(
        id=info.id,
        name=info.name,
        method=config.method,
        lam=config.lam,
        cg_steps=config.cg_steps,
        inner_steps=config.inner_steps,
        iterations=iterations,
        val_mse=val if math.isfinite(val) and not math.isfinite(accuracy) else None,
        status=status,
        parent=info.parent,
        fork_iteration=info.fork_iteration,
        path=os.path.abspath(folder),
        created=info.created,
        current_lam=current,
        lam_learned=learned,
        task=config.task,
        val_loss=val if math.isfinite(val) else None,
        val_accuracy=accuracy if math.isfinite(accuracy) else None,
    )


def _current_lam(path: Path, config: ExperimentConfig) -> tuple[float | None, bool]:
    """λ as the run's last save holds it, and whether it is learned: a learned λ is the geometric mean of
    its entries (one number for a λ per layer or per coordinate), read as numpy (no torch)."""
    learned = config.learn_lam and config.method == "imaml"
    if not learned:
        return config.lam, False
    if not path.exists():
        return None, True
    try:
        with safe_open(str(path), framework="np") as fh:
            names = [k for k in fh.keys() if k == LAM_KEY or k.startswith(f"{LAM_KEY}.")]  # noqa: SIM118
            values = [fh.get_tensor(k) for k in names]
    except Exception as exc:  # safetensors raises its own error types for a corrupt file
        raise RunError(f"{path} is corrupt ({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    flat = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in values]) if values else np.zeros(0)
    if flat.size == 0 or not np.all(np.isfinite(flat)) or not np.all(flat > 0):
        raise RunError(f"{path}: its learned λ is missing or not positive")
    return float(np.exp(np.log(flat).mean())), True


def _check_safetensors_header(path: Path, fmt: str) -> None:
    """A present file must be safetensors with our format tag (header only: tensors are read on open)."""
    if not path.exists():
        return
    try:
        ours = read_metadata(path, follow_links=False).get("format") == fmt
    except ImamlError as exc:
        raise RunError(str(exc)) from None
    if not ours:
        raise RunError(f"{path} is not an iMAML Studio file (no '{fmt}' format metadata)")


def _being_created(folder: Path) -> bool:
    """A folder without run.json whose lock a live process holds: ``Run.create`` takes the lock first and
    writes run.json last, so such a folder is a run being made, not a damaged one."""
    return not (folder / INFO_FILE).exists() and lock_holder(folder) is not None


def _unreadable(folder: Path, reason: str) -> RunSummary:
    reason = printable(reason)  # one line, whatever the damaged file holds
    return RunSummary(
        id=folder.name,
        name=folder.name,
        method=None,
        lam=None,
        cg_steps=None,
        inner_steps=None,
        iterations=None,
        val_mse=None,
        status=UNREADABLE,
        parent=None,
        fork_iteration=None,
        path=os.path.abspath(folder),
        reason=reason,
    )


class RunStore:
    """The runs folder ``root``. Runs it creates live in ``root/<id>``; any subfolder is listed."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        # Rows read by the last listing, with the signature of the files they came from: listing again
        # (every few seconds, in the window) re-reads only the runs whose files changed.
        self._rows: dict[Path, tuple[tuple[object, ...], RunSummary]] = {}

    def folders(self) -> list[Path]:
        """The subfolders that listing looks at, by name; the root itself when it is one run's folder."""
        if not self.root.is_dir():
            raise RunError(f"{self.root}: no such runs folder")
        if (self.root / INFO_FILE).exists():
            return [self.root]
        return sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def list(self) -> list[RunSummary]:
        """Every run, oldest first (by creation time, then id); unreadable folders after the runs."""
        known = self._rows
        rows: dict[Path, tuple[tuple[object, ...], RunSummary]] = {}
        listed: list[RunSummary] = []
        for folder in self.folders():
            signature = _signature(folder)
            cached = known.get(folder)
            if signature is not None and cached is not None and cached[0] == signature:
                summary = cached[1]
            else:
                summary = _summarize_files(folder)
            if not summary.readable and _being_created(folder):
                continue  # a writer is making it now: listed once its run.json exists
            if signature is not None and summary.readable:  # an unreadable one may be a passing I/O error
                rows[folder] = (signature, summary)
            listed.append(_writer_status(folder, summary))
        self._rows = rows
        return sorted(listed, key=lambda r: (not r.readable, r.created, r.id))

    def find(self, ref: str | Path) -> Path:
        """The folder of run ``ref``: a path to a run folder, a folder name in the root, or a run id."""
        path = Path(ref)
        if path.is_dir() and ((path / INFO_FILE).exists() or len(path.parts) > 1):
            return path
        if (self.root / path).is_dir():
            return self.root / path
        if self.root.is_dir():
            for folder in self.folders():
                try:
                    if read_info(folder).id == str(ref):
                        return folder
                except RunError:
                    continue
        raise RunError(f"no run {str(ref)!r} in {self.root}")

    def open(self, ref: str | Path, tensorboard: bool | None = None) -> Run:
        """The run ``ref`` (see :meth:`find`), for reading; its writing methods take its lock."""
        return Run.open(self.find(ref), tensorboard)

    def create(
        self,
        config: ExperimentConfig,
        name: str = "",
        notes: str = "",
        parent: str | None = None,
        fork_iteration: int | None = None,
        tensorboard: bool | None = None,
    ) -> Run:
        """A new run in ``root/<new id>``, holding its lock. The name defaults to the method and lambda."""
        run_id = new_run_id()
        name = name or f"{config.method} λ={config.lam:g}"
        return Run.create(self.root / run_id, config, name, notes, parent, fork_iteration, tensorboard, run_id)

    def fork(
        self,
        parent: str | Path | Run,
        changes: dict[str, Any] | None = None,
        name: str = "",
        tensorboard: bool | None = None,
    ) -> Run:
        """A new run that starts from ``parent``'s last saved state with live settings ``changes``.

        The fork's run.json names the parent and the fork iteration; its metrics start after that
        iteration, so parent and fork share one x-axis. The parent is only read."""
        source = parent if isinstance(parent, Run) else self.open(parent)
        config = source.config.replace(**(changes or {}))
        restart = [k for k in config.changed(source.config) if not ExperimentConfig.is_live(k)]
        if restart:
            raise RunError(f"a fork keeps its parent's theta, so {', '.join(restart)} cannot change")
        trainer = source.trainer(config)
        run = self.create(config, name, "", source.id, trainer.iteration, tensorboard)
        try:
            run.save_checkpoint(trainer)
            run.set_status("paused")
        except BaseException:
            run.close()
            raise
        return run

    def trash(self, ref: str | Path) -> Path:
        """Move run ``ref`` into ``root/.trash`` (a run a live process is writing is refused); returns
        its new folder."""
        folder = self.find(ref)
        holder = lock_holder(folder)
        if holder is not None:
            raise RunLockedError(f"{folder}: the run is being written by process {holder.get('pid')}; not trashed")
        trash = self.root / TRASH_FOLDER
        trash.mkdir(exist_ok=True)
        target, n = trash / folder.name, 1
        while target.exists():
            target, n = trash / f"{folder.name}-{n}", n + 1
        shutil.move(str(folder), str(target))
        return target
