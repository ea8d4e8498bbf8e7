"""Conjugate gradient for A x = b, batched over tasks, with per-task stopping and curvature checks.

A is only touched through ``matvec``. Each task (row of a (B, P) tensor) stops on its own when its
relative residual ||r|| / ||b|| falls to ``tol``. A task whose search direction has non-positive
curvature (p^T A p <= 0: A is not positive definite there, common for I + H/lambda on a non-convex
loss) stops at its last iterate and is flagged, instead of dividing by a non-positive number; if that
happens on the very first direction the answer is b itself (the identity-preconditioned guess). No
step ever produces NaN from a finite operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from imaml_core.engine.params import ParamLayout, Params, batch_dot, batch_norm


@dataclass
class CGInfo:
    """Per-task outcome of CG. Batched solves hold (B,) tensors; the dict API holds Python scalars."""

    iterations: Any
    residual: Any  # relative residual ||b - A x|| / ||b|| (as tracked by the recurrence)
    converged: Any
    nonpositive_curvature: Any

    def task(self, i: int) -> CGInfo:
        """Task ``i`` of a batched outcome, as Python scalars (the dict API's form)."""
        return CGInfo(
            int(self.iterations[i]),
            float(self.residual[i]),
            bool(self.converged[i]),
            bool(self.nonpositive_curvature[i]),
        )


def batched_cg(
    matvec: Callable[[Tensor], Tensor],
    b: Tensor,
    max_iters: int,
    tol: float = 0.0,
    x0: Tensor | None = None,
    on_iteration: Callable[[int], None] | None = None,
) -> tuple[Tensor, CGInfo]:
    """Solve A_i x_i = b_i for every row i of ``b`` (shape (B, P)); ``matvec`` maps (B, P) -> (B, P).

    Starts from ``x0`` (default 0). Stops a task when ||r_i|| <= tol * ||b_i||, at non-positive
    curvature, or after ``max_iters`` iterations; ``max_iters = 0`` returns the start. A task whose
    first direction has non-positive curvature returns ``x0``, or b when no start was given.
    ``on_iteration(k)`` runs before iteration k (a caller may raise there to abandon the solve).
    """
    if max_iters < 0 or tol < 0:
        raise ValueError("max_iters and tol must be non-negative")
    if x0 is None:
        x = torch.zeros_like(b)
        r = b.clone()
    else:
        x = x0.clone()
        r = b - matvec(x)
    p = r.clone()
    rr = batch_dot(r, r)
    b_norm = rr.sqrt() if x0 is None else batch_norm(b)
    threshold_sq = (tol * b_norm) ** 2  # compare squared norms: no square root per iteration
    iterations = torch.zeros(b.shape[0], dtype=torch.long, device=b.device)
    tiny = torch.finfo(b.dtype).eps ** 2
    negative = torch.zeros(b.shape[0], dtype=torch.bool, device=b.device)
    active = rr > threshold_sq  # active implies r.r > 0, so beta = r'.r' / r.r never divides by zero
    for k in range(max_iters):
        if not bool(active.any()):
            break
        if on_iteration is not None:
            on_iteration(k)
        Ap = matvec(p)
        pAp = batch_dot(p, Ap)
        # Non-positive (or NaN) curvature, or curvature so small against the residual that the step
        # alpha = r.r / p.Ap would exceed 1/eps^2: the operator is numerically singular along p.
        bad = active & ~(pAp > rr * tiny)
        negative |= bad  # no sync on ``bad``: one fewer host round-trip per iteration
        if k == 0 and x0 is None:
            x = torch.where(bad[:, None], b, x)
        active &= ~bad
        # Inactive tasks get alpha = 0, so their x and r stay put; their p is never used again. (Their
        # quotients may be inf or NaN: ``where`` discards them.)
        alpha = torch.where(active, rr / pAp, 0.0)[:, None]
        x.addcmul_(alpha, p)
        r.addcmul_(alpha, Ap, value=-1.0)
        rr_new = batch_dot(r, r)
        iterations += active
        p = torch.addcmul(r, torch.where(active, rr_new / rr, 0.0)[:, None], p)
        rr = torch.where(active, rr_new, rr)
        active &= rr > threshold_sq
    safe_b = torch.where(b_norm > 0, b_norm, torch.ones_like(b_norm))
    # The recurrence residual is exact in exact arithmetic; for tasks that stopped on curvature we
    # report the residual of the iterate actually returned, which needs one more matvec only then.
    residual = rr.sqrt() / safe_b
    if bool(negative.any()) and max_iters > 0:
        true_r = batch_norm(b - matvec(x)) / safe_b
        residual = torch.where(negative, true_r, residual)
    # (a task with b = 0 reports the absolute residual ||A x||: its answer is 0, whatever x0 was)
    converged = (residual <= tol) & ~negative
    return x, CGInfo(iterations, residual, converged, negative)


def conjugate_gradient(
    matvec: Callable[[Params], Params],
    b: Mapping[str, Tensor],
    max_iters: int = 100,
    tol: float = 1e-10,
) -> tuple[Params, CGInfo]:
    """Solve A x = b where b, x and what ``matvec`` takes and returns are dicts of tensors.

    ``tol`` is relative: CG stops once ||b - A x|| <= tol * ||b||. Returns x and a :class:`CGInfo`
    with ``iterations``, ``residual`` (relative), ``converged`` and ``nonpositive_curvature``.
    """
    layout = ParamLayout.of(b)
    b_flat = layout.flatten(b)[None]

    def flat_matvec(v: Tensor) -> Tensor:
        return layout.flatten(matvec(layout.unflatten(v[0])))[None]

    x, info = batched_cg(flat_matvec, b_flat, int(max_iters), float(tol))
    return layout.unflatten(x[0]), info.task(0)
