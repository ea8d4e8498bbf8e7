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
- :class:`RunInfo`: run.json; :class:`RunError` and :class:`RunLockedError`: what goes wrong, in one line.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

# Imported on first use: the history reader (_history.py) loads without PyTorch.
_EXPORTS = {
    "Metrics": "_history",
    "downsample": "_history",
    "STATUSES": "_info",
    "UNREADABLE": "_info",
    "RunError": "_info",
    "RunInfo": "_info",
    "RunKeeper": "_keeper",
    "RunLockedError": "_lock",
    "RunRecorder": "_recorder",
    "HistoryReader": "_reader",
    "ResumeFile": "_resume",
    "Run": "_run",
    "SUMMARY_KEYS": "_store",
    "TRASH_FOLDER": "_store",
    "RunStore": "_store",
    "RunSummary": "_store",
    "summarize": "_store",
    "tensorboard_available": "_tensorboard",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from ._history import Metrics, downsample
    from ._info import STATUSES, UNREADABLE, RunError, RunInfo
    from ._keeper import RunKeeper
    from ._lock import RunLockedError
    from ._reader import HistoryReader
    from ._recorder import RunRecorder
    from ._resume import ResumeFile
    from ._run import Run
    from ._store import SUMMARY_KEYS, TRASH_FOLDER, RunStore, RunSummary, summarize
    from ._tensorboard import tensorboard_available

__all__ = [
    "HistoryReader",
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
