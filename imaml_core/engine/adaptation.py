"""One task adapted from θ, as a front end shows it: θ's predictions on chosen inputs before adaptation, after
each adaptation step and at the end (the window's adaptation card draws them; a notebook may too).

Plain numpy in and out, so the GUI worker hands the results to the window without touching a tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from imaml_core.engine.methods import adapt
from imaml_core.engine.streams import PREVIEW_TASK, generator
from imaml_core.tasks import PreviewTask, TaskFamily

if TYPE_CHECKING:
    from imaml_core.engine.trainer import MetaTrainer

__all__ = ["Adaptation", "Classified", "adapt_one_task", "classify_one_task", "sample_preview_task"]


@dataclass
class Adaptation:
    """Adaptation of theta to one task's support points, on a grid of x (numpy, for plotting)."""

    before: np.ndarray  # prediction of theta on the grid
    after: np.ndarray  # prediction after ``steps`` adaptation steps
    loss_per_step: np.ndarray  # the family's loss on the grid's truth after 0..steps steps


def sample_preview_task(tasks: TaskFamily, shots: int, seed: int) -> PreviewTask:
    """One task of ``tasks`` drawn from ``seed``, with ``shots`` support examples.

    Drawn on the CPU from a stream of its own, so picking a preview task never moves the training stream.
    """
    return tasks.preview_task(shots, generator(torch.device("cpu"), seed, PREVIEW_TASK))


def adapt_one_task(
    trainer: MetaTrainer,
    x_support: np.ndarray,
    y_support: np.ndarray,
    x_grid: np.ndarray,
    y_grid: np.ndarray,
    steps: int,
) -> Adaptation:
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
    loss = [float(trainer.tasks.loss_per_task(p.reshape(1, -1, 1), yg)[0]) for p in preds]
    return Adaptation(preds[0].cpu().double().numpy(), preds[-1].cpu().double().numpy(), np.asarray(loss, dtype=float))


@dataclass
class Classified:
    """One classification task adapted from theta: the query images' classes as theta and phi predict them,
    and the query loss and accuracy after 0..steps adaptation steps (numpy)."""

    before: np.ndarray  # (M,) classes predicted by theta
    after: np.ndarray  # (M,) classes predicted after ``steps`` steps
    loss_per_step: np.ndarray  # (steps + 1,) query loss (cross-entropy)
    accuracy_per_step: np.ndarray  # (steps + 1,) query accuracy, 0-1
    probabilities: np.ndarray  # (M, N) softmax of phi's logits


def classify_one_task(trainer: MetaTrainer, task: PreviewTask, steps: int) -> Classified:
    """Adapt theta to ``task``'s support images the way the trainer's method does and classify its query
    images after 0..steps steps (theta is not changed)."""
    if task.x_query is None or task.y_query is None:
        raise ValueError("a classification preview needs query images")
    like = {"dtype": trainer.dtype, "device": trainer.device}
    xs = torch.as_tensor(task.x_support, **like).reshape(1, -1, 1, *task.x_support.shape[-2:])
    xq = torch.as_tensor(task.x_query, **like).reshape(1, -1, 1, *task.x_query.shape[-2:])
    ys = torch.as_tensor(task.y_support, device=trainer.device).long().reshape(1, -1)
    yq = torch.as_tensor(task.y_query, device=trainer.device).long().reshape(1, -1)
    logits: list[Tensor] = []

    def record(_: int, phi: Tensor) -> None:
        with torch.no_grad():
            logits.append(trainer.predict(phi.detach(), xq))

    adapt(trainer.config, trainer.losses(xs, ys), trainer.theta.detach()[None], steps, record, trainer.engine_lam())
    loss = [float(trainer.tasks.loss_per_task(z, yq)[0]) for z in logits]
    accuracy = [float(trainer.tasks.metric_per_task(z, yq)[0]) for z in logits]
    return Classified(
        logits[0][0].argmax(-1).cpu().numpy(),
        logits[-1][0].argmax(-1).cpu().numpy(),
        np.asarray(loss, dtype=float),
        np.asarray(accuracy, dtype=float),
        torch.softmax(logits[-1][0].double(), -1).cpu().numpy(),
    )
