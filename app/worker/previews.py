"""The adaptation preview as the worker makes it: which task, on what grid, and how often while training.

Qt-free: the worker calls these between meta-iterations and sends the result up as a ``PreviewResult``.
"""

from __future__ import annotations

import numpy as np

from app.model.messages import ClassPreviewResult, PreviewResult, PreviewTask
from imaml_core.engine.adaptation import adapt_one_task, classify_one_task, sample_preview_task
from imaml_core.engine.trainer import MetaTrainer

PREVIEW_GRID = 200  # x points on which the preview curves are drawn
PREVIEW_MIN_INTERVAL_S = 0.4  # at most ~2 previews a second while training
PREVIEW_MAX_SHARE = 0.2  # and never more than ~20% of the worker's time


PREVIEW_SETTINGS = ("task", "data", "split", "ways", "glyph_classes", "shots")  # what a preview task depends on


def preview_task(trainer: MetaTrainer, seed: int) -> PreviewTask:
    """A task of the trainer's family and its support set drawn from ``seed`` (the same for every θ, so
    previews compare); an empty task for a family the window cannot draw (regression on several inputs)."""
    key = drawn_for(trainer)
    task = sample_preview_task(trainer.tasks, trainer.config.shots, seed)
    images = task.x_query is not None and np.ndim(task.x_support) == 3  # (M, H, W): the images card
    if not images and tuple(trainer.tasks.input_shape) != (1,):
        return PreviewTask((), np.zeros(0), np.zeros(0), seed, drawn_for=key)
    return PreviewTask(task.params, task.x_support, task.y_support, seed, task.x_query, task.y_query, key)


def drawn_for(trainer: MetaTrainer) -> tuple[object, ...]:
    return tuple(getattr(trainer.config, k) for k in PREVIEW_SETTINGS)


def fitting_task(trainer: MetaTrainer, task: PreviewTask) -> PreviewTask:
    """``task`` when the trainer's family and sizes are the ones it was drawn under (the user's edits kept),
    else a new task of the trainer's settings from the same seed."""
    if task.drawn_for == drawn_for(trainer):
        return task
    return preview_task(trainer, task.seed)


def make_preview(trainer: MetaTrainer, task: PreviewTask) -> PreviewResult | ClassPreviewResult:
    """θ adapted to ``task``'s support set with the trainer's own inner solver and steps: on a grid for
    regression, and classifying the query images for classification."""
    steps = trainer.config.inner_steps
    if task.classifies:
        done = classify_one_task(trainer, task, steps)  # type: ignore[arg-type]
        label = str(getattr(trainer.tasks, "label", trainer.tasks.name))
        return ClassPreviewResult(
            task, done.before, done.after, done.loss_per_step, done.accuracy_per_step, steps, trainer.iteration, label
        )
    lo, hi = trainer.tasks.input_range
    x_grid = np.linspace(lo, hi, PREVIEW_GRID)
    y_true = trainer.tasks.truth(task.params, x_grid)
    pv = adapt_one_task(trainer, task.x_support, task.y_support, x_grid, y_true, steps)
    return PreviewResult(task, x_grid, y_true, pv.before, pv.after, pv.loss_per_step, steps, trainer.iteration)


def next_preview_at(started: float, finished: float) -> float:
    """When the next preview may run while training: ``PREVIEW_MIN_INTERVAL_S`` after this one, and later
    when previews are slow, so they take at most ``PREVIEW_MAX_SHARE`` of the worker's time."""
    return finished + max(PREVIEW_MIN_INTERVAL_S, (finished - started) / PREVIEW_MAX_SHARE)
