"""iMAML Studio's engine: batched implicit meta-learning in PyTorch. Never imports Qt.

Public functional API (dicts of tensors in, dicts of tensors out):
``conjugate_gradient``, ``solve_inner``, ``implicit_meta_gradient``.
Stateful API: ``ExperimentConfig``, ``MetaTrainer``, checkpoints (``save_checkpoint``, ``load_checkpoint``,
``load_model``).
"""

from .cg import CGInfo, conjugate_gradient
from .checkpoint import Checkpoint, load_checkpoint, load_model, save_checkpoint
from .config import ExperimentConfig
from .errors import CheckpointError, ConfigError, ImamlError, StepCancelled
from .implicit import implicit_hypergradients, implicit_meta_gradient
from .inner import InnerInfo, solve_inner
from .model import MLP, ModuleModel
from .report import EvalResult, StepReport
from .trainer import MetaTrainer

__version__ = "0.1.0"

__all__ = [
    "CGInfo",
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "EvalResult",
    "ExperimentConfig",
    "ImamlError",
    "InnerInfo",
    "MLP",
    "MetaTrainer",
    "ModuleModel",
    "StepCancelled",
    "StepReport",
    "__version__",
    "conjugate_gradient",
    "implicit_hypergradients",
    "implicit_meta_gradient",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "solve_inner",
]
