"""The window's adaptation preview: one sinusoid task, θ adapted to its support points, predictions on a grid.

Plain numpy in and out, so the GUI worker hands the results to the window without touching a tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from imaml_core.common.config import ExperimentConfig
from imaml_core.engine.methods import adapt
from imaml_core.engine.streams import PREVIEW_TASK, generator
from imaml_core.tasks.sinusoid import X_RANGE, sample_tasks, sinusoid

if TYPE_CHECKING:
    from imaml_core.engine.trainer import MetaTrainer

__all__ = ["X_RANGE", "Preview", "adapt_preview", "sample_preview_task", "true_curve"]


@dataclass
class Preview:
    """Adaptation of theta to one task's support points, on a grid of x (numpy, for plotting)."""

    before: np.ndarray  # prediction of theta on the grid
    after: np.ndarray  # prediction after ``steps`` adaptation steps
    mse_per_step: np.ndarray  # MSE on the grid's true curve after 0..steps steps


def true_curve(x: np.ndarray, amplitude: float, phase: float) -> np.ndarray:
    """The task's sinusoid at ``x``, as a flat float64 array (a fresh copy the caller may keep)."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(1, -1, 1)
    y = sinusoid(t, torch.tensor([amplitude], dtype=torch.float64), torch.tensor([phase], dtype=torch.float64))
    return y.reshape(-1).numpy().copy()


def sample_preview_task(
    config: ExperimentConfig, seed: int, shots: int | None = None
) -> tuple[float, float, np.ndarray]:
    """Amplitude, phase and support x of one task drawn from ``seed``.

    Drawn on the CPU from a stream of its own, so picking a preview task never moves the training stream.
    """
    gen = generator(torch.device("cpu"), seed, PREVIEW_TASK)
    tb = sample_tasks(1, shots or config.shots, 1, gen, dtype=torch.float64)
    return float(tb.amplitude[0]), float(tb.phase[0]), tb.x_support.reshape(-1).numpy()


def adapt_preview(
    trainer: MetaTrainer,
    x_support: np.ndarray,
    y_support: np.ndarray,
    x_grid: np.ndarray,
    y_grid: np.ndarray,
    steps: int,
) -> Preview:
    """Adapt the trainer's θ to the given support points the way its method does (iMAML with the trainer's
    current, possibly learned, λ), and predict on ``x_grid`` after 0..steps steps (θ itself is not changed)."""
    like = {"dtype": trainer.dtype, "device": trainer.device}
    xs = torch.as_tensor(x_support, **like).reshape(1, -1, 1)
    ys = torch.as_tensor(y_support, **like).reshape(1, -1, 1)
    xg = torch.as_tensor(x_grid, **like).reshape(1, -1, 1)
    yg = torch.as_tensor(y_grid, **like).reshape(1, -1, 1)
    preds: list[Tensor] = []

    def record(_: int, phi: Tensor) -> None:
        with torch.no_grad():
            preds.append(trainer.model.forward(trainer.layout.unflatten(phi), xg).reshape(-1))

    adapt(trainer.config, trainer.losses(xs, ys), trainer.theta.detach()[None], steps, record, trainer.engine_lam())
    mse = [float(((p - yg.reshape(-1)) ** 2).mean()) for p in preds]
    return Preview(preds[0].cpu().double().numpy(), preds[-1].cpu().double().numpy(), np.asarray(mse, dtype=float))
