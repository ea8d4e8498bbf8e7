"""Validation and evaluation of a trainer's theta: adapt fresh tasks the method's way and measure the query
loss (and, for classification, accuracy) after every adaptation step.

Adaptation is the method's own: iMAML solves its proximal inner problem with the run's current (possibly
learned) lambda; the other methods take plain GD steps. ``adapt_lam="zero"`` adapts an iMAML run by plain GD
(lambda = 0), as the iMAML authors' evaluation code does; every table says which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ConfigError
from imaml_core.common.report import EvalResult
from imaml_core.common.stats import mean_ci95
from imaml_core.engine.lam import FlatLam
from imaml_core.engine.methods import adapt
from imaml_core.engine.objective import TaskLoss
from imaml_core.tasks import TaskBatch, TaskFamily, describe

ADAPT_LAMS = ("trained", "zero")


@dataclass
class Curves:
    """Per-task query loss and metric (accuracy) after 0..steps adaptation steps: lists of (B,) tensors."""

    loss: list[Tensor]
    metric: list[Tensor] | None


def adapt_curves(
    cfg: ExperimentConfig,
    family: TaskFamily,
    losses: Callable[[Tensor, Tensor], TaskLoss],  # (x, y) -> per-task loss of phi: the trainer's ``losses``
    predict: Callable[[Tensor, Tensor], Tensor],  # (phi, x) -> predictions
    theta: Tensor,
    tasks: TaskBatch,
    steps: int,
    lam: FlatLam,
    adapt_lam: str = "trained",
) -> Curves:
    """Adapt ``tasks`` from ``theta`` and record the query loss (and metric) after every step."""
    train: TaskLoss = losses(tasks.x_support, tasks.y_support)
    test: TaskLoss = losses(tasks.x_query, tasks.y_query)
    scored = getattr(family, "metric_name", None) is not None
    curves = Curves([], [] if scored else None)

    def record(_: int, phi: Tensor) -> None:
        curves.loss.append(test.value(phi))
        if curves.metric is not None:
            with torch.no_grad():
                curves.metric.append(family.metric_per_task(predict(phi.detach(), tasks.x_query), tasks.y_query))

    how = cfg if adapt_lam == "trained" or cfg.method != "imaml" else cfg.replace(method="fomaml")
    adapt(how, train, theta.detach().expand(len(tasks), -1), steps, on_step=record, lam=lam)
    return curves


def evaluate(
    cfg: ExperimentConfig,
    family: TaskFamily,
    losses: Callable[[Tensor, Tensor], TaskLoss],
    predict: Callable[[Tensor, Tensor], Tensor],
    theta: Tensor,
    batch: TaskBatch,
    steps: int,
    lam: FlatLam,
    adapt_lam: str = "trained",
) -> EvalResult:
    """Loss (and accuracy) of ``batch``'s tasks after 0..steps adaptation steps, means with 95% intervals,
    adapted ``family.eval_chunk`` tasks at a time."""
    if adapt_lam not in ADAPT_LAMS:
        raise ConfigError(f"adapt_lam must be one of {', '.join(ADAPT_LAMS)}, got {adapt_lam!r}")
    chunk = int(getattr(family, "eval_chunk", 1000))
    parts = [
        adapt_curves(cfg, family, losses, predict, theta, batch.slice(lo, lo + chunk), steps, lam, adapt_lam)
        for lo in range(0, len(batch), chunk)
    ]

    def joined(pick: str) -> list[np.ndarray]:
        return [torch.cat([getattr(p, pick)[k] for p in parts]).cpu().double().numpy() for k in range(steps + 1)]

    loss = joined("loss")
    mean, ci = mean_ci95(loss[-1])
    result = EvalResult(mean, ci, [float(c.mean()) for c in loss], len(batch), 0, steps)
    result.loss_name = family.loss_name
    result.data = describe(family)
    result.adapt_lam = adapt_lam if cfg.method == "imaml" else "none (GD)"
    if parts[0].metric is not None:
        metric = joined("metric")
        result.accuracy, result.accuracy_ci95 = mean_ci95(metric[-1])
        result.accuracy_per_step = [float(c.mean()) for c in metric]
    return result
