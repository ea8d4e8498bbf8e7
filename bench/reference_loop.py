"""The baselines the batched engine is measured against: the same iMAML meta-iteration, one task at a time.

Each function returns the mean meta-gradient (flat, (P,)) of a batch of tasks at the trainer's θ, with the
trainer's config; ``per_task_step`` wraps one into a meta-iteration (the trainer's task stream and Adam
step, as ``MetaTrainer.step`` uses them). tests/test_batched.py checks that every loop computes the
engine's meta-gradient.

- ``careful_meta_gradient``: what a careful person writes from the paper. Per task a list of weight
  tensors, autograd for the training-loss gradient, the proximal term's gradient written out, and the
  gradient graph at φ built once and reused (``retain_graph``) by every Hessian-vector product of CG.
  The speed-up in the README is quoted against this loop.
- ``official_shape_meta_gradient``: the structure of the authors' code (aravindr93/imaml_dev,
  ``Learner.hessian_vector_product``): the proximal term differentiated by autograd, and every
  Hessian-vector product runs the forward pass and the gradient graph anew.
- ``public_api_meta_gradient``: this package's per-task functions (``solve_inner``,
  ``implicit_meta_gradient``), which run the batched code with one task.

All three use the engine's algorithm exactly: safeguarded proximal GD (a rejected step halves the step
size, an accepted one grows it by ``GROW``) and CG started at the test gradient, stopped at the tolerance
or at non-positive curvature, so the comparison is of implementations, not of algorithms.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.engine.implicit import implicit_meta_gradient
from imaml_core.engine.inner import GROW, solve_inner
from imaml_core.engine.params import Params
from imaml_core.tasks.sinusoid import TaskBatch, mse_per_task

MetaGradientFn = Callable[[MetaTrainer, TaskBatch], Tensor]
Weights = list[Tensor]  # [W_0, b_0, W_1, b_1, ...] of one task


def _mlp(p: Weights, x: Tensor) -> Tensor:
    for i in range(0, len(p), 2):
        x = torch.nn.functional.linear(x, p[i], p[i + 1])
        if i + 2 < len(p):
            x = torch.relu(x)
    return x


def _mse(p: Weights, x: Tensor, y: Tensor) -> Tensor:
    return ((_mlp(p, x) - y) ** 2).mean()


def _dot(a: Weights, b: Weights) -> Tensor:
    return sum((u * v).sum() for u, v in zip(a, b, strict=True))


def _leaves(p: Weights) -> Weights:
    return [t.detach().requires_grad_(True) for t in p]


def _proximal_gd(theta: Weights, xs: Tensor, ys: Tensor, cfg: ExperimentConfig, autograd_prox: bool) -> Weights:
    """Safeguarded GD on L(φ) + λ/2 ||φ - θ||², from θ. With ``autograd_prox`` the proximal term goes
    through autograd with the loss (as the authors' code adds it to the loss); else its gradient λ(φ - θ)
    is added by hand."""
    lam = cfg.lam

    def objective(p: Weights) -> tuple[Tensor, Weights]:
        leaves = _leaves(p)
        if autograd_prox:
            diff = [a - t for a, t in zip(leaves, theta, strict=True)]
            obj = _mse(leaves, xs, ys) + 0.5 * lam * _dot(diff, diff)
            return obj.detach(), list(torch.autograd.grad(obj, leaves))
        loss = _mse(leaves, xs, ys)
        grads = torch.autograd.grad(loss, leaves)
        diff = [a - t for a, t in zip(p, theta, strict=True)]
        return loss.detach() + 0.5 * lam * _dot(diff, diff), [g + lam * d for g, d in zip(grads, diff, strict=True)]

    phi, step = theta, cfg.inner_lr
    obj, g = objective(phi)
    for _ in range(cfg.inner_steps):
        trial = [a - step * b for a, b in zip(phi, g, strict=True)]
        t_obj, t_g = objective(trial)
        if not cfg.inner_safeguard:
            phi, obj, g = trial, t_obj, t_g
        elif bool(t_obj <= obj):
            phi, obj, g, step = trial, t_obj, t_g, step * GROW
        else:
            step *= 0.5
    return [t.detach() for t in phi]


def _cg(apply_a: Callable[[Weights], Weights], v: Weights, cfg: ExperimentConfig) -> Weights:
    """CG on A x = v from x = v: at most ``cg_steps`` iterations, stops at the relative tolerance or at
    non-positive curvature (keeping the last iterate), as the engine's CG does."""
    x = v
    r = [b - a for b, a in zip(v, apply_a(x), strict=True)]
    p, rr = r, _dot(r, r)
    threshold = (cfg.cg_tol**2) * _dot(v, v)
    tiny = torch.finfo(rr.dtype).eps ** 2
    for _ in range(cfg.cg_steps):
        if not bool(rr > threshold):
            break
        ap = apply_a(p)
        pap = _dot(p, ap)
        if not bool(pap > rr * tiny):
            break
        alpha = rr / pap
        x = [a + alpha * b for a, b in zip(x, p, strict=True)]
        r = [a - alpha * b for a, b in zip(r, ap, strict=True)]
        rr_new = _dot(r, r)
        p, rr = [a + (rr_new / rr) * b for a, b in zip(r, p, strict=True)], rr_new
    return [t.detach() for t in x]


def _task_gradient(
    theta: Weights, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor, cfg: ExperimentConfig, careful: bool
) -> Weights:
    """One task's iMAML meta-gradient (I + H/λ)⁻¹ ∇L_test(φ), H the training-loss Hessian at φ."""
    lam = cfg.lam
    phi = _proximal_gd(theta, xs, ys, cfg, autograd_prox=not careful)
    leaves = _leaves(phi)
    v = list(torch.autograd.grad(_mse(leaves, xq, yq), leaves))
    if careful:
        train_grad = torch.autograd.grad(_mse(leaves, xs, ys), leaves, create_graph=True)

        def apply_a(u: Weights) -> Weights:  # one double backward through the kept gradient graph
            hu = torch.autograd.grad(train_grad, leaves, u, retain_graph=True)
            return [a + h / lam for a, h in zip(u, hu, strict=True)]

    else:

        def apply_a(u: Weights) -> Weights:  # forward, gradient graph and double backward, every time
            p = _leaves(phi)
            grads = torch.autograd.grad(_mse(p, xs, ys), p, create_graph=True)
            hu = torch.autograd.grad(_dot(list(grads), u), p)
            return [a + h / lam for a, h in zip(u, hu, strict=True)]

    return _cg(apply_a, v, cfg)


def _weight_loop(trainer: MetaTrainer, tasks: TaskBatch, careful: bool) -> Tensor:
    cfg = trainer.config
    if cfg.method != "imaml" or cfg.inner_solver != "gd":
        raise ValueError("the weight-list loops are written for iMAML with the GD inner solver")
    names = [name for pair in trainer.model.linear_names for name in pair]  # W_0, b_0, W_1, ... (any θ order)
    params = trainer.layout.unflatten(trainer.theta.detach())
    theta = [params[name] for name in names]
    total = [torch.zeros_like(t) for t in theta]
    for i in range(len(tasks)):
        x_s, y_s, x_q, y_q = tasks.x_support[i], tasks.y_support[i], tasks.x_query[i], tasks.y_query[i]
        for t, g in zip(total, _task_gradient(theta, x_s, y_s, x_q, y_q, cfg, careful), strict=True):
            t += g
    return trainer.layout.flatten(dict(zip(names, total, strict=True))) / len(tasks)


def careful_meta_gradient(trainer: MetaTrainer, tasks: TaskBatch) -> Tensor:
    """Mean meta-gradient of ``tasks``, task by task with plain autograd, one gradient graph per task."""
    return _weight_loop(trainer, tasks, careful=True)


def official_shape_meta_gradient(trainer: MetaTrainer, tasks: TaskBatch) -> Tensor:
    """Mean meta-gradient of ``tasks`` in the authors' code's shape: a new forward pass and gradient graph
    for every Hessian-vector product."""
    return _weight_loop(trainer, tasks, careful=False)


def public_api_meta_gradient(trainer: MetaTrainer, tasks: TaskBatch) -> Tensor:
    """Mean meta-gradient of ``tasks`` through this package's per-task API, one task at a time."""
    cfg = trainer.config
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


LOOPS: dict[str, MetaGradientFn] = {
    "careful": careful_meta_gradient,
    "official_shape": official_shape_meta_gradient,
    "public_api": public_api_meta_gradient,
}


def per_task_step(trainer: MetaTrainer, meta_gradient: MetaGradientFn = careful_meta_gradient) -> None:
    """One iMAML meta-iteration of ``trainer`` with a per-task loop: the next tasks of its stream, the mean
    meta-gradient from ``meta_gradient``, and the trainer's Adam step."""
    tasks = trainer.sample_batch()
    message = trainer.apply_meta_gradient(meta_gradient(trainer, tasks))
    if message:
        raise RuntimeError(message)
