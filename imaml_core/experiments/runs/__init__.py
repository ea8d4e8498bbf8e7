"""The experiment layer's run store: every run a folder, a runs folder a folder of them. Qt-free.

A run folder holds ``config.toml``, ``metrics.csv`` and ``meta_params.safetensors`` (as ``imaml train
--out`` always wrote), ``run.json`` (id, name, notes, created, status, parent and fork iteration, engine
version), ``resume.safetensors`` (the trainer's whole state, for an exact continuation), ``run.lock``
while a process writes it, and ``tb/`` with TensorBoard scalars when ``tensorboard`` is installed.

- :class:`RunStore`: a runs folder (``list``, ``find``, ``open``, ``create``, ``fork``, ``trash``);
- :class:`Run`: one run (``info``, ``config``, ``metrics``, ``trainer`` to continue it; as its writer
  ``append_metrics``, ``save_checkpoint``, ``set_status``, ``rename``, ``close``);
- :class:`RunKeeper`: the run a live trainer records into (new runs, forks, continued runs);
- :class:`HistoryReader`: reads histories in a process of its own (for a GUI's overlays);
- :class:`RunRecorder`: writes a run while another object drives its trainer (the window's worker);
- :class:`RunSummary`: one row of a listing (``row()`` gives the keys of ``SUMMARY_KEYS``);
- :func:`seed_groups`: runs that differ only by seed, as :class:`SeedGroup` (with :func:`seed_interval`
  and :func:`seed_band` for their statistics; Student's t from ``imaml_core.common.stats``);
- :class:`RunInfo`: run.json; :class:`RunError` and :class:`RunLockedError`: what goes wrong, in one line.
"""

from imaml_core.experiments.runs._groups import (
    ConfigCache,
    Interval,
    SeedGroup,
    seed_band,
    seed_groups,
    seed_interval,
)
from imaml_core.experiments.runs._history import Metrics, downsample
from imaml_core.experiments.runs._info import (
    STATUSES,
    UNREADABLE,
    RecordKind,
    RunError,
    RunInfo,
    read_info,
    read_record,
    utc_now,
    write_info,
)
from imaml_core.experiments.runs._keeper import RunKeeper
from imaml_core.experiments.runs._lock import LOCK_FILE, RunLock, RunLockedError, lock_holder, release_ended
from imaml_core.experiments.runs._reader import HistoryReader
from imaml_core.experiments.runs._recorder import RunRecorder
from imaml_core.experiments.runs._resume import RESUME_FILE, ResumeFile
from imaml_core.experiments.runs._run import Run
from imaml_core.experiments.runs._store import SUMMARY_KEYS, TRASH_FOLDER, RunStore, RunSummary, summarize
from imaml_core.experiments.runs._tensorboard import tensorboard_available

__all__ = [
    "ConfigCache",
    "HistoryReader",
    "Interval",
    "LOCK_FILE",
    "Metrics",
    "RESUME_FILE",
    "RecordKind",
    "ResumeFile",
    "Run",
    "RunError",
    "RunInfo",
    "RunKeeper",
    "RunLock",
    "RunLockedError",
    "RunRecorder",
    "RunStore",
    "RunSummary",
    "STATUSES",
    "SeedGroup",
    "SUMMARY_KEYS",
    "TRASH_FOLDER",
    "UNREADABLE",
    "downsample",
    "lock_holder",
    "read_info",
    "read_record",
    "release_ended",
    "seed_band",
    "seed_groups",
    "seed_interval",
    "summarize",
    "tensorboard_available",
    "utc_now",
    "write_info",
]
