"""The implicit meta-gradient g = (I + H/lam)^-1 grad L_test(phi), H = Hessian of the training loss at phi.

H is never formed: CG only needs H v, a Hessian-vector product by double backward through the training
loss gradient, whose graph is built once and reused by every CG iteration. Memory is that of one
gradient graph, whatever the inner solver did to reach phi.

CG starts from v = grad L_test(phi) itself (the first-order answer), so zero CG steps gives first-order
iMAML and every CG step improves on it; a task whose I + H/lam shows non-positive curvature keeps its
last iterate and is flagged (see cg.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .cg import CGInfo, batched_cg
from .inner import LossFn, check_lam
from .objective import as_task_loss
from .params import ParamLayout, Params, batch_norm


@dataclass
class ImplicitResult:
    """Batched implicit meta-gradients and what was learned on the way, all per task."""

    grad: Tensor  # (B, P)
    cg: CGInfo
    test_loss: Tensor  # (B,) query loss at phi
    stationarity: Tensor  # (B,) ||grad L_train(phi) + lam (phi - theta)||, NaN without theta


def implicit_batched(
    train_losses: LossFn,
    test_losses: LossFn,
    phi: Tensor,
    lam: float,
    cg_steps: int,
    cg_tol: float = 0.0,
    theta: Tensor | None = None,
    on_iteration: Callable[[int], None] | None = None,
) -> ImplicitResult:
    """Per-task implicit meta-gradients for flat task parameters ``phi`` of shape (B, P)."""
    train_loss, test_loss = as_task_loss(train_losses), as_task_loss(test_losses)
    phi = phi.detach()
    test, v = test_loss.value_and_grad(phi)
    if cg_steps > 0:
        _, g_train, hvp, kept = train_loss.hvp_operator(phi)
        grad, info = batched_cg(
            lambda x: torch.add(x, hvp(x), alpha=1.0 / lam), v, cg_steps, cg_tol, x0=v, on_iteration=on_iteration
        )
        del kept, hvp
    else:
        _, g_train = train_loss.value_and_grad(phi)
        grad = v
        zeros = torch.zeros(v.shape[0], device=v.device)
        info = CGInfo(zeros.long(), torch.full_like(zeros, float("nan")), zeros.bool(), zeros.bool())
    if theta is not None:
        stationarity = batch_norm(g_train + lam * (phi - theta.detach()))
    else:
        stationarity = torch.full_like(test, float("nan"))
    return ImplicitResult(grad.detach(), info, test.detach(), stationarity.detach())


def implicit_meta_gradient(
    train_loss: Callable[[Params], Tensor],
    test_loss: Callable[[Params], Tensor],
    phi: Mapping[str, Tensor],
    lam: float,
    cg_steps: int = 10,
    cg_tol: float = 1e-10,
) -> tuple[Params, CGInfo]:
    """Implicit meta-gradient (I + H/lam)^-1 grad test_loss(phi) for one task, as a parameter dict.

    ``train_loss`` and ``test_loss`` map a parameter dict to a scalar; ``phi`` should be (close to) the
    solution of the proximal inner problem. CG runs at most ``cg_steps`` iterations and stops once the
    relative residual ||(I + H/lam) g - v|| / ||v|| <= ``cg_tol``. Returns g and a :class:`CGInfo`.
    """
    check_lam(lam)
    if cg_steps < 0 or not cg_tol >= 0:
        raise ValueError("cg_steps and cg_tol must be non-negative")
    layout = ParamLayout.of(phi)
    flat = layout.flatten({k: v.detach() for k, v in phi.items()})[None]
    result = implicit_batched(
        lambda p: train_loss(layout.unflatten(p[0])).reshape(1),
        lambda p: test_loss(layout.unflatten(p[0])).reshape(1),
        flat,
        lam,
        int(cg_steps),
        float(cg_tol),
    )
    info = result.cg
    return layout.unflatten(result.grad[0]), CGInfo(
        int(info.iterations[0]),
        float(info.residual[0]),
        bool(info.converged[0]),
        bool(info.nonpositive_curvature[0]),
    )
