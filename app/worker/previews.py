"""The adaptation preview as the worker makes it: which task, on what grid, and how often while training.

Qt-free: the worker calls these between meta-iterations and sends the result up as a ``PreviewResult``.
"""

from __future__ import annotations

import numpy as np

from app.model.messages import PreviewResult, PreviewTask
from imaml_core.engine.adaptation import adapt_one_task, sample_preview_task
from imaml_core.engine.trainer import MetaTrainer

PREVIEW_GRID = 200  # x points on which the preview curves are drawn
PREVIEW_MIN_INTERVAL_S = 0.4  # at most ~2 previews a second while training
PREVIEW_MAX_SHARE = 0.2  # and never more than ~20% of the worker's time


def preview_task(trainer: MetaTrainer, seed: int) -> PreviewTask:
    """A task of the trainer's family and its support set drawn from ``seed`` (the same for every θ, so
    previews compare)."""
    task = sample_preview_task(trainer.tasks, trainer.config.shots, seed)
    return PreviewTask(task.params, task.x_support, task.y_support, seed)


def make_preview(trainer: MetaTrainer, task: PreviewTask) -> PreviewResult:
    """θ adapted to ``task``'s support set with the trainer's own inner solver and steps."""
    lo, hi = trainer.tasks.input_range
    x_grid = np.linspace(lo, hi, PREVIEW_GRID)
    y_true = trainer.tasks.truth(task.params, x_grid)
    steps = trainer.config.inner_steps
    pv = adapt_one_task(trainer, task.x_support, task.y_support, x_grid, y_true, steps)
    return PreviewResult(task, x_grid, y_true, pv.before, pv.after, pv.loss_per_step, steps, trainer.iteration)


def next_preview_at(started: float, finished: float) -> float:
    """When the next preview may run while training: ``PREVIEW_MIN_INTERVAL_S`` after this one, and later
    when previews are slow, so they take at most ``PREVIEW_MAX_SHARE`` of the worker's time."""
    return finished + max(PREVIEW_MIN_INTERVAL_S, (finished - started) / PREVIEW_MAX_SHARE)
