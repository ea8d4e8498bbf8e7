"""The batched engine computes exactly what a per-task loop computes (float64)."""

import pytest
import torch

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.methods import meta_gradient
from imaml_core.reference_loop import per_task_meta_gradient

from .helpers import rel_err


def _trainer(**kw) -> MetaTrainer:
    return MetaTrainer(ExperimentConfig(dtype="float64", meta_batch=6, val_tasks=2, **kw))


def _batch_and_engine_gradient(trainer: MetaTrainer):
    """One sampled meta-batch and the batched engine's mean meta-gradient on it."""
    cfg = trainer.config
    tasks = trainer._sample(cfg.meta_batch, cfg.shots, cfg.query, trainer._tasks)
    batched = meta_gradient(
        cfg,
        trainer.losses(tasks.x_support, tasks.y_support),
        trainer.losses(tasks.x_query, tasks.y_query),
        trainer.theta,
        cfg.meta_batch,
    ).grad.mean(0)
    return tasks, batched


@pytest.mark.parametrize("solver", ["gd", "hf"])
@pytest.mark.parametrize("analytic", [True, False])
def test_batched_imaml_equals_per_task_loop(solver, analytic):
    trainer = _trainer(inner_solver=solver, inner_steps=4, analytic_grads=analytic, lam=5.0)
    cfg = trainer.config
    tasks, batched = _batch_and_engine_gradient(trainer)
    looped = per_task_meta_gradient(trainer, tasks, cfg)
    # Identical algorithms; only summation order differs (CG and line-search decisions are per task).
    assert rel_err(batched, looped) < 1e-9


@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile"])
def test_batched_baselines_equal_one_task_at_a_time(method):
    trainer = _trainer(method=method, inner_steps=3)
    cfg = trainer.config
    tasks = trainer._sample(cfg.meta_batch, cfg.shots, cfg.query, trainer._tasks)

    def grads(tb):
        return meta_gradient(
            cfg, trainer.losses(tb.x_support, tb.y_support), trainer.losses(tb.x_query, tb.y_query),
            trainer.theta, len(tb),
        ).grad

    together = grads(tasks)
    alone = torch.cat([grads(tasks.slice(i, i + 1)) for i in range(len(tasks))])
    assert rel_err(together, alone) < 1e-12


@pytest.mark.parametrize("safeguard", [True, False])
def test_plain_autograd_loop_of_the_speed_benchmark_computes_the_engines_meta_gradient(safeguard):
    """bench/plain_loop.py is the second baseline of the speed claim, so it must be the same algorithm.

    inner_lr 0.05 makes the safeguard reject steps in some tasks while others accept: this caught the
    engine growing accepted steps by float32's 1.2 (1.2000000477) in float64 runs whenever another task of
    the batch rejected (relative error 8.5e-8). Float64, same arithmetic in another order: 1e-14 with the
    safeguard; without it, steps of 0.05 on curvature up to ~100 amplify rounding ~4x per step (2e-12)."""
    from bench.plain_loop import plain_meta_gradient

    trainer = _trainer(inner_steps=6, lam=5.0, inner_safeguard=safeguard, inner_lr=0.05, cg_steps=8)
    cfg = trainer.config
    tasks, batched = _batch_and_engine_gradient(trainer)
    tol = 1e-12 if safeguard else 1e-10
    assert rel_err(plain_meta_gradient(trainer, tasks), batched) < tol
    assert rel_err(per_task_meta_gradient(trainer, tasks, cfg), batched) < tol
