from .common.config import METHODS as METHODS
from .common.config import ExperimentConfig as ExperimentConfig
from .common.errors import (
    CheckpointError as CheckpointError,
)
from .common.errors import (
    ConfigError as ConfigError,
)
from .common.errors import (
    ImamlError as ImamlError,
)
from .common.errors import (
    StepCancelled as StepCancelled,
)
from .common.report import EvalResult as EvalResult
from .common.report import StepReport as StepReport
from .engine.cg import CGInfo as CGInfo
from .engine.cg import conjugate_gradient as conjugate_gradient
from .engine.checkpoint import (
    Checkpoint as Checkpoint,
)
from .engine.checkpoint import (
    load_checkpoint as load_checkpoint,
)
from .engine.checkpoint import (
    load_model as load_model,
)
from .engine.checkpoint import (
    save_checkpoint as save_checkpoint,
)
from .engine.implicit import (
    implicit_hypergradients as implicit_hypergradients,
)
from .engine.implicit import (
    implicit_meta_gradient as implicit_meta_gradient,
)
from .engine.inner import InnerInfo as InnerInfo
from .engine.inner import solve_inner as solve_inner
from .engine.methods import MetaGradient as MetaGradient
from .engine.model import MLP as MLP
from .engine.model import ModuleModel as ModuleModel
from .engine.trainer import MetaTrainer as MetaTrainer
from .engine.trainer import resolve_device as resolve_device
from .tasks.sinusoid import TaskBatch as TaskBatch
