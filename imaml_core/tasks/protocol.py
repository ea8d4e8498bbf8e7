"""What a task family is to the engine: one small protocol.

A family samples batches of tasks (support and query sets, on the trainer's device, from its generator),
says how a task's loss is computed from a prediction, what users call that loss, and what one task looks
like for a preview. The trainer takes a family and knows nothing else about it; the model maps a
family's inputs to its targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor


class TaskBatch(Protocol):
    """B tasks: support inputs and targets (B, K, ...), query inputs and targets (B, Q, ...)."""

    x_support: Tensor
    y_support: Tensor
    x_query: Tensor
    y_query: Tensor

    def __len__(self) -> int: ...

    def slice(self, start: int, stop: int) -> TaskBatch:
        """Tasks start..stop-1 (for chunked evaluation)."""
        ...


@dataclass(frozen=True)
class PreviewTask:
    """One task to preview, drawn on the CPU in float64: its family-specific parameters (what the truth is
    computed from) and its support set; a classification task also has its query set (images and labels),
    which the preview classifies."""

    params: tuple[float, ...]
    x_support: np.ndarray
    y_support: np.ndarray
    x_query: np.ndarray | None = None
    y_query: np.ndarray | None = None


class TaskFamily(Protocol):
    """A family of tasks the trainer meta-learns over."""

    name: str  # as the config and the command line name it
    label: str  # what tables, plots and run names call its data ("synthetic glyphs")
    loss_name: str  # what users read the per-task loss as ("MSE")
    metric_name: str | None  # a number users read beside the loss ("accuracy"), or None
    input_range: tuple[float, float]  # the inputs' range, for a preview's grid
    input_shape: tuple[int, ...]  # one example's input: (features,) for an MLP, (C, H, W) for the conv net
    n_outputs: int  # the model's outputs per example (classes, for classification)
    eval_chunk: int  # tasks adapted at once in evaluation (bounded by activation memory)
    defaults: dict[str, object]  # config settings suggested with this family (the paper's, for Omniglot)

    def sample(
        self,
        n: int,
        shots: int,
        query: int,
        generator: torch.Generator,
        dtype: torch.dtype,
        device: torch.device,
        split: str = "train",
    ) -> TaskBatch:
        """``n`` tasks with ``shots`` support and ``query`` query examples each (per class, for classification),
        from ``split``: "train" (meta-training), "val" (validation) or "test" (evaluation)."""
        ...

    def loss_per_task(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Each task's loss over its examples: (B, N, ...) -> (B,). Must be differentiable twice."""
        ...

    def metric_per_task(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Each task's ``metric_name`` number (B,); only families with a ``metric_name`` have it."""
        ...

    def preview_task(self, shots: int, generator: torch.Generator) -> PreviewTask:
        """One task to show (drawn from ``generator``, a CPU generator of its own)."""
        ...

    def truth(self, params: tuple[float, ...], x: np.ndarray) -> np.ndarray:
        """The true targets of the task with ``params`` at inputs ``x`` (float64, a fresh array)."""
        ...
