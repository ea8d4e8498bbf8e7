"""What crosses between the GUI thread and the worker thread: plain, immutable data and enums.

Commands carry configs and requests down; results carry reports, previews and failures up. Nothing here
holds a tensor or a widget, so a message can be queued across threads and kept by either side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from imaml_core.common.config import ExperimentConfig


class Job(Enum):
    """What the worker was doing when something failed (and which waiting call a result completes)."""

    INIT = "start-up"
    CONFIG = "setting"
    RESET = "reset"
    IMPORT = "import"
    EXPORT = "export"
    STEP = "step"
    PREVIEW = "preview"
    PROFILE = "profile"
    EVAL = "evaluation"
    RECORD = "recording"
    FORK = "fork"
    CONTINUE = "continue run"
    RENAME = "rename"


class TrainerChange(Enum):
    """Why the worker built a new trainer; the window re-syncs differently for each."""

    INIT = "init"
    RESET = "reset"
    IMPORT = "import"
    CONTINUE = "continue"  # a recorded run, continued exactly


@dataclass(frozen=True)
class Failure:
    """A one-line problem the window shows in its banner."""

    job: Job
    message: str
    fields: tuple[str, ...] = ()  # for a refused live setting: the fields at fault (``ConfigError.fields``)


@dataclass(frozen=True)
class PreviewTask:
    """The preview task (its family's parameters, which fix its truth) and the support points θ adapts to
    (the user may move or add points). A classification task also carries its query images and labels; the
    user may move a query image into the support set."""

    params: tuple[float, ...]
    x_support: np.ndarray
    y_support: np.ndarray
    seed: int = 0
    x_query: np.ndarray | None = None
    y_query: np.ndarray | None = None
    drawn_for: tuple[object, ...] = ()  # the settings it was drawn under (a task of other settings is redrawn)

    @property
    def classifies(self) -> bool:
        return self.x_query is not None

    def with_query_in_support(self, index: int) -> PreviewTask:
        """This task with query image ``index`` moved into the support set (with its label)."""
        if self.x_query is None or self.y_query is None or not 0 <= index < len(self.x_query):
            raise IndexError(f"no query image {index}")
        if len(self.x_query) == 1:
            raise IndexError("the last query image stays: the preview needs one to classify")
        return PreviewTask(
            self.params,
            np.concatenate([self.x_support, self.x_query[index : index + 1]]),
            np.append(self.y_support, self.y_query[index]),
            self.seed,
            np.delete(self.x_query, index, axis=0),
            np.delete(self.y_query, index),
            self.drawn_for,
        )


@dataclass(frozen=True)
class PreviewResult:
    """What the adaptation plot shows: true curve, predictions before/after, MSE per adaptation step."""

    task: PreviewTask
    x_grid: np.ndarray
    y_true: np.ndarray
    before: np.ndarray
    after: np.ndarray
    mse_per_step: np.ndarray
    steps: int
    iteration: int


@dataclass(frozen=True)
class ClassPreviewResult:
    """What the classification card shows: the task's images, the query classes θ and φ predict, and the
    query loss and accuracy per adaptation step."""

    task: PreviewTask
    before: np.ndarray  # (M,) θ's predicted class per query image
    after: np.ndarray  # (M,) φ's
    loss_per_step: np.ndarray
    accuracy_per_step: np.ndarray
    steps: int
    iteration: int
    label: str = ""  # what the data is ("synthetic glyphs")


@dataclass(frozen=True)
class TrainerInfo:
    """Sent when the worker builds a trainer: the config it was built with, where it runs, and why."""

    config: ExperimentConfig
    iteration: int
    device: str
    reason: TrainerChange
    loss_name: str = "MSE"  # the family's loss, as users read it


class RunStart(Enum):
    """How the live trainer came to record into a run."""

    NEW = "new"  # a new trainer (start-up, reset, import)
    FORK = "fork"  # the live trainer, from this iteration on
    CONTINUE = "continue"  # an opened run, continued where it stopped


@dataclass(frozen=True)
class RunRef:
    """The run the live trainer is recorded into now (sent whenever that changes)."""

    id: str
    path: str
    name: str
    parent: str | None
    fork_iteration: int | None
    start: RunStart = RunStart.NEW
    parent_name: str = ""  # the parent's name, for a parent listed in another folder (a sweep's trial)


@dataclass(frozen=True)
class ProfileRequest:
    """Memory-vs-inner-steps profile of ``methods`` at the settings of ``base``."""

    base: ExperimentConfig
    methods: tuple[str, ...]
    inner_steps: tuple[int, ...]
    iterations: int = 1


@dataclass(frozen=True)
class ProfileProgress:
    """Rows measured so far (``profile_rows`` dicts); ``done == total`` when finished."""

    rows: tuple[dict[str, object], ...] = field(default_factory=tuple)
    done: int = 0
    total: int = 0


def one_line(exc: BaseException) -> str:
    """An exception as a ``Failure`` carries it: its first line, or its type when it says nothing."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
