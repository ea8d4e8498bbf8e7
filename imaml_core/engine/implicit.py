"""Implicit gradients of a query loss through the proximal inner solution, with respect to theta and lambda.

At phi* = argmin_phi L_train(phi) + 1/2 sum_j lam_j (phi_j - theta_j)^2, with Lambda = diag(lam),
v = grad L_test(phi*) and H the Hessian of the training loss there, u = (H + Lambda)^-1 v gives

    g_theta = Lambda u,    g_lam = -u * (phi* - theta)  (per coordinate).

One solve serves both. For a scalar lambda, g_theta = (I + H/lam)^-1 v: the usual iMAML meta-gradient,
solved in that form. For a per-coordinate lambda, CG runs on the symmetric scaling w = Lambda^(1/2) u,
(I + Lambda^-1/2 H Lambda^-1/2) w = Lambda^-1/2 v, which is the scalar system up to the constant sqrt(lam),
stays symmetric, and keeps the identity as the well-conditioned part. H is never formed: CG only needs
H v, a Hessian-vector product by double backward through the training loss gradient (or an exact
backend's R-operator), built once and reused by every CG iteration.

CG starts from the first-order answer (g_theta = v), so zero CG steps gives first-order iMAML and every CG
step improves on it; a task whose system shows non-positive curvature keeps its last iterate and is
flagged (see cg.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from imaml_core.engine.cg import CGInfo, batched_cg
from imaml_core.engine.inner import LossFn
from imaml_core.engine.lam import FlatLam, Lam, check_lam, flat_lam, reduce_to_lam
from imaml_core.engine.objective import as_task_loss
from imaml_core.engine.params import ParamLayout, Params, batch_norm


@dataclass
class ImplicitResult:
    """Batched implicit gradients and what was learned on the way, all per task."""

    grad: Tensor  # (B, P) g_theta = Lambda u
    cg: CGInfo
    test_loss: Tensor  # (B,) query loss at phi
    stationarity: Tensor  # (B,) ||grad L_train(phi) + lam * (phi - theta)||, NaN without theta
    lam_grad: Tensor | None = None  # (B, P) -u * (phi - theta), d L_test / d lam_j per coordinate; None without theta


def implicit_batched(
    train_losses: LossFn,
    test_losses: LossFn,
    phi: Tensor,
    lam: FlatLam,
    cg_steps: int,
    cg_tol: float = 0.0,
    theta: Tensor | None = None,
    on_iteration: Callable[[int], None] | None = None,
) -> ImplicitResult:
    """Per-task implicit gradients for flat task parameters ``phi`` of shape (B, P).

    ``lam`` is a float or a per-coordinate tensor of shape (P,) (shared by the tasks) or (B, P). The
    gradient with respect to lambda needs phi - theta, so ``lam_grad`` is filled only when ``theta`` is
    given; summing it over the coordinates that share one lambda entry is the caller's business (see
    ``lam.reduce_to_lam``). The CG residual in ``cg`` is relative to the system actually solved."""
    train_loss, test_loss = as_task_loss(train_losses), as_task_loss(test_losses)
    phi = phi.detach()
    test, v = test_loss.value_and_grad(phi)
    vector = isinstance(lam, Tensor)
    if vector:
        lam = lam.to(dtype=phi.dtype, device=phi.device)
        scale = lam.rsqrt()  # Lambda^-1/2
        b = v * scale
    else:
        b = v
    if cg_steps > 0:
        _, g_train, hvp, kept = train_loss.hvp_operator(phi)
        matvec = _scaled_operator(hvp, scale) if vector else _scalar_operator(hvp, lam)
        solution, info = batched_cg(matvec, b, cg_steps, cg_tol, x0=b, on_iteration=on_iteration)
        del kept, hvp, matvec
        grad = solution / scale if vector else solution
    else:
        _, g_train = train_loss.value_and_grad(phi)
        grad = v
        zeros = torch.zeros(v.shape[0], device=v.device)
        info = CGInfo(zeros.long(), torch.full_like(zeros, float("nan")), zeros.bool(), zeros.bool())
    if theta is not None:
        diff = phi - theta.detach()
        stationarity = batch_norm(g_train + lam * diff)
        lam_grad = torch.mul(grad, diff).div_(lam).neg_()  # -u * diff with u = Lambda^-1 g_theta
    else:
        stationarity = torch.full_like(test, float("nan"))
        lam_grad = None
    return ImplicitResult(grad.detach(), info, test.detach(), stationarity.detach(), lam_grad)


def _scalar_operator(hvp: Callable[[Tensor], Tensor], lam: float) -> Callable[[Tensor], Tensor]:
    """x -> (I + H/lam) x."""
    return lambda x: torch.add(x, hvp(x), alpha=1.0 / lam)


def _scaled_operator(hvp: Callable[[Tensor], Tensor], scale: Tensor) -> Callable[[Tensor], Tensor]:
    """w -> (I + S H S) w with S = diag(scale) = Lambda^-1/2: symmetric whenever H is."""
    return lambda w: torch.addcmul(w, scale, hvp(w * scale))


def implicit_hypergradients(
    train_loss: Callable[[Params], Tensor],
    test_loss: Callable[[Params], Tensor],
    phi: Mapping[str, Tensor],
    theta: Mapping[str, Tensor],
    lam: Lam,
    cg_steps: int = 10,
    cg_tol: float = 1e-10,
) -> tuple[Params, float | Params, CGInfo]:
    """Total derivatives of test_loss(phi*(theta, lam)) with respect to theta and lambda, for one task.

    phi* = argmin_phi train_loss(phi) + 1/2 sum_j lam_j (phi_j - theta_j)^2, and ``phi`` should be (close
    to) it. ``lam`` is a positive number, or a dict from parameter name to a positive tensor that
    broadcasts to that parameter. With u = (H + Lambda)^-1 grad test_loss(phi), returns

    - g_theta = Lambda u, as a parameter dict;
    - g_lam = -u * (phi - theta) summed over the coordinates each lambda entry covers: a float for a
      float lambda, a dict of tensors shaped like ``lam``'s entries for a dict;
    - a :class:`CGInfo` of the one CG solve both come from (at most ``cg_steps`` iterations, stopping at
      relative residual ``cg_tol``).

    A bad ``lam`` raises a ``ValueError`` naming the entry."""
    layout, result = _one_task(train_loss, test_loss, phi, theta, lam, cg_steps, cg_tol)
    g_lam = reduce_to_lam(result.lam_grad[0], lam, layout)
    g_lam = float(g_lam) if isinstance(g_lam, Tensor) else {k: t.clone() for k, t in g_lam.items()}
    return layout.unflatten(result.grad[0]), g_lam, result.cg.task(0)


def implicit_meta_gradient(
    train_loss: Callable[[Params], Tensor],
    test_loss: Callable[[Params], Tensor],
    phi: Mapping[str, Tensor],
    lam: Lam,
    cg_steps: int = 10,
    cg_tol: float = 1e-10,
) -> tuple[Params, CGInfo]:
    """Implicit meta-gradient (I + H/lam)^-1 grad test_loss(phi) for one task, as a parameter dict.

    ``train_loss`` and ``test_loss`` map a parameter dict to a scalar; ``phi`` should be (close to) the
    solution of the proximal inner problem. CG runs at most ``cg_steps`` iterations and stops once the
    relative residual ||(I + H/lam) g - v|| / ||v|| <= ``cg_tol``. Returns g and a :class:`CGInfo`.
    A dict ``lam`` (see ``implicit_hypergradients``) gives Lambda (H + Lambda)^-1 grad test_loss(phi): the
    transpose of d phi* / d theta = (H + Lambda)^-1 Lambda, applied to the query gradient.
    """
    layout, result = _one_task(train_loss, test_loss, phi, None, lam, cg_steps, cg_tol)
    return layout.unflatten(result.grad[0]), result.cg.task(0)


def _one_task(
    train_loss: Callable[[Params], Tensor],
    test_loss: Callable[[Params], Tensor],
    phi: Mapping[str, Tensor],
    theta: Mapping[str, Tensor] | None,
    lam: Lam,
    cg_steps: int,
    cg_tol: float,
) -> tuple[ParamLayout, ImplicitResult]:
    """The dict API's checks, and ``implicit_batched`` on a batch of one task."""
    check_lam(lam, phi)
    if cg_steps < 0 or not cg_tol >= 0:
        raise ValueError("cg_steps and cg_tol must be non-negative")
    layout = ParamLayout.of(phi)
    flat = layout.flatten({k: v.detach() for k, v in phi.items()})[None]
    flat_theta = None
    if theta is not None:
        if set(theta) != set(phi) or any(tuple(theta[k].shape) != tuple(phi[k].shape) for k in phi):
            raise ValueError("theta must have the same parameter names and shapes as phi")
        flat_theta = layout.flatten({k: theta[k].detach() for k in layout.names})[None].to(flat.dtype)
    result = implicit_batched(
        lambda p: train_loss(layout.unflatten(p[0])).reshape(1),
        lambda p: test_loss(layout.unflatten(p[0])).reshape(1),
        flat,
        flat_lam(lam, layout, flat.dtype, flat.device),
        int(cg_steps),
        float(cg_tol),
        flat_theta,
    )
    return layout, result
