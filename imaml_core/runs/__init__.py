"""The experiment layer's run store: every run a folder, a runs folder a folder of them. Qt-free.

A run folder holds ``config.toml``, ``metrics.csv`` and ``meta_params.safetensors`` (as ``imaml train
--out`` always wrote), ``run.json`` (id, name, notes, created, status, parent and fork iteration, engine
version), ``resume.safetensors`` (the trainer's whole state, for an exact continuation), ``run.lock``
while a process writes it, and ``tb/`` with TensorBoard scalars when ``tensorboard`` is installed.

- :class:`RunStore`: a runs folder (``list``, ``find``, ``open``, ``create``, ``fork``, ``trash``);
- :class:`Run`: one run (``info``, ``config``, ``metrics``, ``trainer`` to continue it; as its writer
  ``append_metrics``, ``save_checkpoint``, ``set_status``, ``rename``, ``close``);
- :class:`RunKeeper`: the run a live trainer records into (new runs, forks, continued runs);
- :class:`RunRecorder`: writes a run while another object drives its trainer (the window's worker);
- :class:`RunSummary`: one row of a listing (``row()`` gives the keys of ``SUMMARY_KEYS``);
- :class:`RunInfo`: run.json; :class:`RunError` and :class:`RunLockedError`: what goes wrong, in one line.
"""

from ._info import STATUSES, UNREADABLE, RunError, RunInfo
from ._keeper import RunKeeper
from ._lock import RunLockedError
from ._metrics import Metrics, downsample
from ._recorder import RunRecorder
from ._resume import ResumeFile
from ._run import Run
from ._store import SUMMARY_KEYS, TRASH_FOLDER, RunStore, RunSummary, summarize
from ._tensorboard import tensorboard_available

__all__ = [
    "Metrics",
    "ResumeFile",
    "Run",
    "RunError",
    "RunInfo",
    "RunKeeper",
    "RunLockedError",
    "RunRecorder",
    "RunStore",
    "RunSummary",
    "STATUSES",
    "SUMMARY_KEYS",
    "TRASH_FOLDER",
    "UNREADABLE",
    "downsample",
    "summarize",
    "tensorboard_available",
]
