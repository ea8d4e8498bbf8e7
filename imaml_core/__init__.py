"""iMAML Studio's engine: batched implicit meta-learning in PyTorch. Never imports Qt.

Public functional API (dicts of tensors in, dicts of tensors out):
``conjugate_gradient``, ``solve_inner``, ``implicit_meta_gradient``.
Stateful API: ``ExperimentConfig``, ``MetaTrainer`` (``step``, or ``sample_batch`` + ``meta_gradient`` +
``apply_meta_gradient`` for a loop of one's own), checkpoints (``save_checkpoint``, ``load_checkpoint``,
``load_model``), and ``resolve_device`` / ``METHODS`` for choosing them.

Everything else a front end needs lives in one submodule per concern, each imported by name:

- ``imaml_core.preview``: the adaptation preview of one task (``sample_preview_task``, ``adapt_preview``,
  ``true_curve``, ``X_RANGE``);
- ``imaml_core.profiling``: seconds and memory per meta-iteration by method and inner steps;
- ``imaml_core.threads``: the CPU thread policy (``use_threads_for``);
- ``imaml_core.heap``: process memory upkeep (``process_rss``, ``keep_freed_memory``, ``release_free_memory``);
- ``imaml_core.report``: the report types and the metrics CSV (``metrics_csv``, ``write_metrics_csv``);
- ``imaml_core.files``: atomic writes;
- ``imaml_core.runs``: the run store (``RunStore``, ``Run``, ``RunSummary``): run folders, listing, forks,
  exact resume (with ``MetaTrainer.resume_state`` / ``load_resume_state``);
- ``imaml_core.sweep``: sweeps of runs (Optuna's search, Ray Tune's execution), read back from a runs folder.

The other modules are the engine's own rooms (solvers, derivatives, methods) and may change shape.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

# Each public name and the module that defines it, imported on first use: the light submodules (the run
# store's history reader, the listing commands) then load without PyTorch.
_EXPORTS = {
    "CGInfo": "cg",
    "conjugate_gradient": "cg",
    "Checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_model": "checkpoint",
    "save_checkpoint": "checkpoint",
    "METHODS": "config",
    "ExperimentConfig": "config",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "ImamlError": "errors",
    "StepCancelled": "errors",
    "implicit_hypergradients": "implicit",
    "implicit_meta_gradient": "implicit",
    "InnerInfo": "inner",
    "solve_inner": "inner",
    "MetaGradient": "methods",
    "MLP": "model",
    "ModuleModel": "model",
    "EvalResult": "report",
    "StepReport": "report",
    "TaskBatch": "sinusoid",
    "MetaTrainer": "trainer",
    "resolve_device": "trainer",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .cg import CGInfo, conjugate_gradient
    from .checkpoint import Checkpoint, load_checkpoint, load_model, save_checkpoint
    from .config import METHODS, ExperimentConfig
    from .errors import CheckpointError, ConfigError, ImamlError, StepCancelled
    from .implicit import implicit_hypergradients, implicit_meta_gradient
    from .inner import InnerInfo, solve_inner
    from .methods import MetaGradient
    from .model import MLP, ModuleModel
    from .report import EvalResult, StepReport
    from .sinusoid import TaskBatch
    from .trainer import MetaTrainer, resolve_device

__all__ = [
    "CGInfo",
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "EvalResult",
    "ExperimentConfig",
    "ImamlError",
    "InnerInfo",
    "METHODS",
    "MLP",
    "MetaGradient",
    "MetaTrainer",
    "ModuleModel",
    "StepCancelled",
    "StepReport",
    "TaskBatch",
    "__version__",
    "conjugate_gradient",
    "implicit_hypergradients",
    "implicit_meta_gradient",
    "load_checkpoint",
    "load_model",
    "resolve_device",
    "save_checkpoint",
    "solve_inner",
]
