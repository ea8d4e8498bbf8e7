"""Few-shot sinusoid regression (Finn et al. 2017): y = A sin(x + p), A ~ U[0.1, 5], p ~ U[0, pi], x ~ U[-5, 5].

Tasks are drawn on the target device from a seeded ``torch.Generator``, so a seed fixes the tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from imaml_core.tasks.protocol import PreviewTask

AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, math.pi)
X_RANGE = (-5.0, 5.0)


@dataclass(frozen=True)
class TaskBatch:
    """B tasks: support (train) and query (test) sets, plus each task's amplitude and phase."""

    x_support: Tensor  # (B, K, 1)
    y_support: Tensor  # (B, K, 1)
    x_query: Tensor  # (B, Q, 1)
    y_query: Tensor  # (B, Q, 1)
    amplitude: Tensor  # (B,)
    phase: Tensor  # (B,)

    def __len__(self) -> int:
        return self.amplitude.shape[0]

    def slice(self, start: int, stop: int) -> TaskBatch:
        """Tasks start..stop-1 (for chunked evaluation)."""
        return TaskBatch(*(t[start:stop] for t in self.tensors()))

    def tensors(self) -> tuple[Tensor, ...]:
        return (self.x_support, self.y_support, self.x_query, self.y_query, self.amplitude, self.phase)


def _uniform(shape: tuple[int, ...], bounds: tuple[float, float], gen: torch.Generator, like: dict) -> Tensor:
    lo, hi = bounds
    return torch.rand(shape, generator=gen, **like) * (hi - lo) + lo


def sample_tasks(
    n_tasks: int,
    shots: int,
    query: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> TaskBatch:
    """Draw ``n_tasks`` sinusoid tasks with ``shots`` support and ``query`` separate query points each."""
    like = {"dtype": dtype, "device": device}
    amplitude = _uniform((n_tasks,), AMPLITUDE, generator, like)
    phase = _uniform((n_tasks,), PHASE, generator, like)
    x_s = _uniform((n_tasks, shots, 1), X_RANGE, generator, like)
    x_q = _uniform((n_tasks, query, 1), X_RANGE, generator, like)
    return TaskBatch(x_s, sinusoid(x_s, amplitude, phase), x_q, sinusoid(x_q, amplitude, phase), amplitude, phase)


def sinusoid(x: Tensor, amplitude: Tensor, phase: Tensor) -> Tensor:
    """A sin(x + p) for x of shape (B, N, 1) and per-task A, p of shape (B,)."""
    return amplitude[:, None, None] * torch.sin(x + phase[:, None, None])


def mse_per_task(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of each task over its points: (B, N, out) -> (B,)."""
    return ((pred - target) ** 2).flatten(1).mean(dim=1)


class Sinusoid:
    """The sinusoid family (a :class:`~imaml_core.tasks.protocol.TaskFamily`): regression under MSE."""

    name = "sinusoid"
    label = "sinusoid"
    loss_name = "MSE"
    metric_name = None  # regression: the loss is the number users read
    input_range = X_RANGE
    input_shape = (1,)
    n_outputs = 1
    eval_query = 100  # query points per task in validation and evaluation
    eval_chunk = 1000  # tasks adapted at once in evaluation
    defaults: dict[str, object] = {}  # the config's own defaults suit sinusoids

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
        """Sinusoid tasks are drawn from one distribution: every split is the same family (``split`` only
        names the stream)."""
        return sample_tasks(n, shots, query, generator, dtype=dtype, device=device)

    def loss_per_task(self, prediction: Tensor, target: Tensor) -> Tensor:
        return mse_per_task(prediction, target)

    def preview_task(self, shots: int, generator: torch.Generator) -> PreviewTask:
        """Amplitude and phase, and the support points, of one task drawn from ``generator`` (float64)."""
        tb = sample_tasks(1, shots, 1, generator, dtype=torch.float64)
        x = tb.x_support.reshape(-1).numpy().copy()
        params = (float(tb.amplitude[0]), float(tb.phase[0]))
        return PreviewTask(params, x, self.truth(params, x))

    def truth(self, params: tuple[float, ...], x: np.ndarray) -> np.ndarray:
        amplitude, phase = params
        return amplitude * np.sin(np.asarray(x, dtype=np.float64) + phase)
