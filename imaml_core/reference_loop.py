"""The baseline to beat: the same meta-iteration as ``MetaTrainer.step`` written as a straightforward
per-task Python loop over the public per-task API (``solve_inner``, ``implicit_meta_gradient``).

Kept for the speed comparison in ``imaml profile`` and ``bench/``, and as an independent check that the
batched engine computes the same meta-gradient (tests/test_batched.py).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from .config import ExperimentConfig
from .implicit import implicit_meta_gradient
from .inner import solve_inner
from .model import mse_per_task
from .params import Params
from .sinusoid import TaskBatch
from .trainer import MetaTrainer

MetaGradientFn = Callable[[MetaTrainer, TaskBatch], Tensor]


def per_task_meta_gradient(trainer: MetaTrainer, tasks: TaskBatch, cfg: ExperimentConfig) -> Tensor:
    """Mean iMAML meta-gradient (flat, (P,)) of ``tasks``, one task at a time."""
    theta = trainer.layout.unflatten(trainer.theta.detach())
    total: Tensor | None = None
    for i in range(len(tasks)):
        xs, ys = tasks.x_support[i : i + 1], tasks.y_support[i : i + 1]
        xq, yq = tasks.x_query[i : i + 1], tasks.y_query[i : i + 1]

        def train_loss(p: Params, xs: Tensor = xs, ys: Tensor = ys) -> Tensor:
            return mse_per_task(trainer.model.forward({k: v[None] for k, v in p.items()}, xs), ys)[0]

        def test_loss(p: Params, xq: Tensor = xq, yq: Tensor = yq) -> Tensor:
            return mse_per_task(trainer.model.forward({k: v[None] for k, v in p.items()}, xq), yq)[0]

        phi, _ = solve_inner(
            train_loss,
            theta,
            lam=cfg.lam,
            steps=cfg.inner_steps,
            lr=cfg.inner_lr,
            solver=cfg.inner_solver,
            safeguard=cfg.inner_safeguard,
            hf_cg_steps=cfg.hf_cg_steps,
        )
        g, _ = implicit_meta_gradient(train_loss, test_loss, phi, lam=cfg.lam, cg_steps=cfg.cg_steps, cg_tol=cfg.cg_tol)
        flat = trainer.layout.flatten(g)
        total = flat if total is None else total + flat
    assert total is not None
    return total / len(tasks)


def _reference_gradient(trainer: MetaTrainer, tasks: TaskBatch) -> Tensor:
    return per_task_meta_gradient(trainer, tasks, trainer.config)


def per_task_step(trainer: MetaTrainer, meta_gradient: MetaGradientFn = _reference_gradient) -> None:
    """One iMAML meta-iteration of ``trainer`` computed task by task (sampling and Adam as in ``step``).

    ``meta_gradient(trainer, tasks)`` computes the mean meta-gradient; default: ``per_task_meta_gradient``.
    (bench/plain_loop.py passes a second, hand-written loop.)"""
    cfg = trainer.config
    tasks = trainer._sample(cfg.meta_batch, cfg.shots, cfg.query, trainer._tasks)
    trainer.theta.grad = meta_gradient(trainer, tasks)
    trainer.optimizer.step()
    trainer.theta.grad = None
    trainer.iteration += 1


__all__ = ["per_task_meta_gradient", "per_task_step"]
