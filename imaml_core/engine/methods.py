"""Meta-gradient methods behind one interface, batched over tasks.

Every method gets the same per-task losses (closures over the same sampled tasks and the same model)
and returns per-task meta-gradients, so comparisons are fair:

- ``imaml``: inner solve of the proximal problem, then (I + H/lam)^-1 grad L_test(phi) by CG.
- ``maml``: differentiate through ``inner_steps`` unrolled GD steps (second order; memory grows).
- ``fomaml``: grad L_test(phi) at the end of plain GD, no Jacobian.
- ``reptile``: theta - phi after plain GD.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import StepCancelled
from imaml_core.engine.cg import CGInfo
from imaml_core.engine.implicit import implicit_batched
from imaml_core.engine.inner import LossFn, StepCallback, gd_batched, solve_batched
from imaml_core.engine.lam import FlatLam
from imaml_core.engine.objective import as_task_loss
from imaml_core.engine.params import batch_norm


@dataclass
class MetaGradient:
    """Per-task meta-gradients and diagnostics of one meta-batch."""

    grad: Tensor  # (B, P)
    post_loss: Tensor  # (B,) query loss after adaptation
    phi: Tensor  # (B, P) adapted parameters
    stationarity: Tensor  # (B,) iMAML: ||grad L(phi) + lam (phi - theta)||; else ||grad L(phi)|| or NaN
    cg: CGInfo | None  # iMAML only
    lam_grad: Tensor | None = None  # (B, P) iMAML: d L_test / d lam_j per coordinate (see implicit.py)


def adapt(
    cfg: ExperimentConfig,
    train_losses: LossFn,
    theta: Tensor,
    steps: int,
    on_step: StepCallback | None = None,
    lam: FlatLam | None = None,
) -> Tensor:
    """Adapt every task of the batch from theta ((B, P)) the way ``cfg.method`` does at meta-train time.

    iMAML uses ``lam`` (a float or a (P,) tensor, as the trainer holds it; default: the base value
    ``cfg.lam``); the other methods adapt by plain GD and use no lambda."""
    if cfg.method == "imaml":
        phi, _ = solve_batched(
            train_losses,
            theta,
            lam=cfg.lam if lam is None else lam,
            steps=steps,
            lr=cfg.inner_lr,
            solver=cfg.inner_solver,
            safeguard=cfg.inner_safeguard,
            hf_cg_steps=cfg.hf_cg_steps,
            on_step=on_step,
        )
    else:
        phi, _ = gd_batched(train_losses, theta, 0.0, steps, cfg.inner_lr, on_step=on_step)
    return phi


def meta_gradient(
    cfg: ExperimentConfig,
    train_losses: LossFn,
    test_losses: LossFn,
    theta: Tensor,
    batch: int,
    should_stop: Callable[[], bool] | None = None,
    lam: FlatLam | None = None,
) -> MetaGradient:
    """Per-task meta-gradients at theta ((P,)) for a batch of ``batch`` tasks under ``cfg.method``.

    iMAML solves with ``lam`` (default ``cfg.lam``) and also returns the per-coordinate gradient of the
    query loss with respect to lambda, ``lam_grad``, from the same CG solve.

    ``should_stop`` is polled after every inner step and CG iteration; when it returns True the
    computation is abandoned with :class:`StepCancelled` (a huge setting never holds a caller hostage).
    """
    check = _checker(should_stop)
    theta_b = theta.detach().expand(batch, -1)
    if cfg.method == "imaml":
        lam = cfg.lam if lam is None else lam
        with _without_autograd(train_losses, test_losses):
            phi = adapt(cfg, train_losses, theta_b, cfg.inner_steps, on_step=check, lam=lam)
            res = implicit_batched(
                train_losses, test_losses, phi, lam, cfg.cg_steps, cfg.cg_tol, theta_b, on_iteration=check
            )
        return MetaGradient(res.grad, res.test_loss, phi, res.stationarity, res.cg, res.lam_grad)
    if cfg.method == "maml":
        return _maml(cfg, train_losses, test_losses, theta_b, check)
    phi = adapt(cfg, train_losses, theta_b, cfg.inner_steps, on_step=check)
    with torch.enable_grad():
        leaf = phi.detach().requires_grad_(True)
        test = test_losses(leaf)
        (v,) = torch.autograd.grad(test.sum(), leaf)
    nan = torch.full_like(test, float("nan")).detach()
    grad = v if cfg.method == "fomaml" else theta_b - phi
    return MetaGradient(grad.detach(), test.detach(), phi.detach(), nan, None)


def _without_autograd(*losses: LossFn) -> contextlib.AbstractContextManager[object]:
    """``torch.inference_mode`` when every loss brings exact derivatives (iMAML then never records a graph).

    Each of the ~1,200 small operations of a meta-iteration otherwise passes autograd's dispatch layer
    and bumps version counters, a sizeable share of a small meta-batch's time on CPU. Losses
    differentiated by autograd need grad mode, so they get it."""
    exact = all(as_task_loss(f).derivatives is not None for f in losses)
    return torch.inference_mode() if exact else contextlib.nullcontext()


def _checker(should_stop: Callable[[], bool] | None) -> Callable[..., None] | None:
    if should_stop is None:
        return None

    def check(*_: object) -> None:
        if should_stop():
            raise StepCancelled("meta-iteration cancelled")

    return check


def _maml(
    cfg: ExperimentConfig,
    train_losses: LossFn,
    test_losses: LossFn,
    theta_b: Tensor,
    check: Callable[..., None] | None = None,
) -> MetaGradient:
    """Second-order MAML: keep every inner step's graph and backpropagate through all of them."""
    with torch.enable_grad():
        start = theta_b.detach().clone().requires_grad_(True)
        phi = start
        for k in range(cfg.inner_steps):
            if check is not None:
                check(k)
            (g,) = torch.autograd.grad(train_losses(phi).sum(), phi, create_graph=True)
            phi = phi - cfg.inner_lr * g
        test = test_losses(phi)
        (grad,) = torch.autograd.grad(test.sum(), start)
    stationarity = batch_norm(g.detach()) if cfg.inner_steps else torch.full_like(test, float("nan"))
    return MetaGradient(grad.detach(), test.detach(), phi.detach(), stationarity, None)
