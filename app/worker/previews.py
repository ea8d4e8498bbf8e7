"""The adaptation preview as the worker makes it: which task, on what grid, and how often while training.

Qt-free: the worker calls these between meta-iterations and sends the result up as a ``PreviewResult``.
"""

from __future__ import annotations

import numpy as np

from app.model.messages import PreviewResult, PreviewTask
from imaml_core.common.config import ExperimentConfig
from imaml_core.engine.preview import X_RANGE, adapt_preview, sample_preview_task, true_curve

PREVIEW_GRID = 200  # x points on which the preview curves are drawn
PREVIEW_MIN_INTERVAL_S = 0.4  # at most ~2 previews a second while training
PREVIEW_MAX_SHARE = 0.2  # and never more than ~20% of the worker's time


def preview_task(config: ExperimentConfig, seed: int) -> PreviewTask:
    """The sinusoid and support points drawn from ``seed`` (the same for every θ, so previews compare)."""
    amplitude, phase, xs = sample_preview_task(config, seed)
    return PreviewTask(amplitude, phase, xs.copy(), true_curve(xs, amplitude, phase), seed)


def make_preview(trainer: object, task: PreviewTask) -> PreviewResult:
    """θ adapted to ``task``'s support points with the trainer's own inner solver and steps."""
    x_grid = np.linspace(X_RANGE[0], X_RANGE[1], PREVIEW_GRID)
    y_true = true_curve(x_grid, task.amplitude, task.phase)
    steps = trainer.config.inner_steps  # type: ignore[attr-defined]
    pv = adapt_preview(trainer, task.x_support, task.y_support, x_grid, y_true, steps)
    return PreviewResult(task, x_grid, y_true, pv.before, pv.after, pv.mse_per_step, steps, trainer.iteration)  # type: ignore[attr-defined]


def next_preview_at(started: float, finished: float) -> float:
    """When the next preview may run while training: ``PREVIEW_MIN_INTERVAL_S`` after this one, and later
    when previews are slow, so they take at most ``PREVIEW_MAX_SHARE`` of the worker's time."""
    return finished + max(PREVIEW_MIN_INTERVAL_S, (finished - started) / PREVIEW_MAX_SHARE)
