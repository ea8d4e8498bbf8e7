"""The batched engine computes exactly what a per-task loop computes (float64)."""

import pytest
import torch

from bench.reference_loop import LOOPS, public_api_meta_gradient
from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.engine.methods import meta_gradient

from .helpers import rel_err


def _trainer(**kw) -> MetaTrainer:
    return MetaTrainer(ExperimentConfig(dtype="float64", meta_batch=6, val_tasks=2, **kw))


def _batch_and_engine_gradient(trainer: MetaTrainer):
    """One sampled meta-batch and the batched engine's mean meta-gradient on it."""
    tasks = trainer.sample_batch()
    return tasks, trainer.meta_gradient(tasks).grad.mean(0)


@pytest.mark.parametrize("solver", ["gd", "hf"])
@pytest.mark.parametrize("analytic", [True, False])
def test_batched_imaml_equals_per_task_loop(solver, analytic):
    trainer = _trainer(inner_solver=solver, inner_steps=4, analytic_grads=analytic, lam=5.0)
    tasks, batched = _batch_and_engine_gradient(trainer)
    looped = public_api_meta_gradient(trainer, tasks)
    # Identical algorithms; only summation order differs (CG and line-search decisions are per task).
    assert rel_err(batched, looped) < 1e-9


@pytest.mark.parametrize("method", ["maml", "fomaml", "reptile"])
def test_batched_baselines_equal_one_task_at_a_time(method):
    trainer = _trainer(method=method, inner_steps=3)
    cfg = trainer.config
    tasks = trainer.sample_batch()

    def grads(tb):
        train, test = trainer.task_losses(tb)
        return meta_gradient(cfg, train, test, trainer.theta, len(tb)).grad

    together = grads(tasks)
    alone = torch.cat([grads(tasks.slice(i, i + 1)) for i in range(len(tasks))])
    assert rel_err(together, alone) < 1e-12


@pytest.mark.parametrize("loop", sorted(LOOPS))
@pytest.mark.parametrize("safeguard", [True, False])
def test_every_per_task_loop_of_the_speed_benchmark_computes_the_engines_meta_gradient(loop, safeguard):
    """The speed-up is quoted against these loops, so each must run the engine's algorithm exactly.

    inner_lr 0.05 makes the safeguard reject steps in some tasks while others accept, so a step size grown
    in the wrong precision (float32's 1.2 is 1.2000000477) would show as a relative error near 1e-7.
    Float64, same arithmetic in another order: 1e-12 with the safeguard; without it, steps of 0.05 on
    curvature up to ~100 amplify rounding ~4x per step (2e-12 seen), hence 1e-10."""
    trainer = _trainer(inner_steps=6, lam=5.0, inner_safeguard=safeguard, inner_lr=0.05, cg_steps=8)
    tasks, batched = _batch_and_engine_gradient(trainer)
    tol = 1e-12 if safeguard else 1e-10
    assert rel_err(LOOPS[loop](trainer, tasks), batched) < tol


def test_a_per_task_loop_step_moves_theta_as_the_engine_step_does():
    """``per_task_step`` draws the tasks ``step()`` would draw and takes the same Adam step."""
    from bench.reference_loop import per_task_step

    engine, loop = _trainer(val_every=0), _trainer(val_every=0)
    for _ in range(3):
        assert not engine.step().diverged
        per_task_step(loop)
    assert loop.iteration == engine.iteration == 3
    # Adam divides by sqrt(v): meta-gradients equal to ~1e-12 give thetas equal to ~1e-10 relative.
    assert rel_err(loop.theta, engine.theta) < 1e-9
