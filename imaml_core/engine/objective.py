"""Per-task losses with the derivatives the solvers need: value and gradient, and Hessian-vector products.

``TaskLoss`` wraps a batched loss ``fn(phi: (B, P)) -> (B,)``. Derivatives come from autograd (any model,
any loss) unless an exact hand-written ``Derivatives`` backend is given (see ``mlp_derivatives.py``),
which skips autograd's per-node overhead on the hot path. Tasks never share parameters, so the gradient of
the summed loss holds every task's own gradient, and a Hessian-vector product of the sum is per task too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from imaml_core.engine.memory import hold

Matvec = Callable[[Tensor], Tensor]


class Derivatives(Protocol):
    """An exact derivative backend for one batch of tasks."""

    def value_and_grad(self, phi: Tensor) -> tuple[Tensor, Tensor]: ...

    def value(self, phi: Tensor) -> Tensor:
        """Per-task losses (B,) only: a forward pass without keeping anything for a backward one."""
        ...

    def hvp_operator(self, phi: Tensor) -> tuple[Tensor, Tensor, Matvec, tuple[Tensor, ...]]:
        """(loss, grad, v -> H v, tensors the operator keeps alive) at phi."""
        ...


class TaskLoss:
    """Batched per-task loss with first and second derivatives."""

    def __init__(self, fn: Callable[[Tensor], Tensor], derivatives: Derivatives | None = None) -> None:
        self.fn = fn
        self.derivatives = derivatives

    def __call__(self, phi: Tensor) -> Tensor:
        return self.fn(phi)

    def value(self, phi: Tensor) -> Tensor:
        """Per-task losses (B,), detached: for reporting and evaluation, where no derivative is wanted."""
        if self.derivatives is not None:
            return self.derivatives.value(phi.detach())
        with torch.no_grad():
            return self.fn(phi.detach())

    def value_and_grad(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        """Per-task losses (B,) and gradients (B, P), detached."""
        if self.derivatives is not None:
            return self.derivatives.value_and_grad(phi.detach())
        with torch.enable_grad():
            leaf = phi.detach().requires_grad_(True)
            loss = self.fn(leaf)
            (grad,) = torch.autograd.grad(loss.sum(), leaf)
        return loss.detach(), grad

    def hvp_operator(self, phi: Tensor) -> tuple[Tensor, Tensor, Matvec, object]:
        """Losses, gradients and a per-task Hessian-vector product at phi.

        The last item keeps the operator's state alive (autograd graph or held activations); drop it when
        done. With autograd, the gradient graph is built once and each product is one double-backward.
        """
        if self.derivatives is not None:
            loss, grad, matvec, kept = self.derivatives.hvp_operator(phi.detach())
            return loss, grad, matvec, hold(*kept)
        with torch.enable_grad():
            leaf = phi.detach().requires_grad_(True)
            loss = self.fn(leaf)
            (grad,) = torch.autograd.grad(loss.sum(), leaf, create_graph=True)

        def matvec(v: Tensor) -> Tensor:
            (hv,) = torch.autograd.grad(grad, leaf, grad_outputs=v, retain_graph=True)
            return hv

        return loss.detach(), grad.detach(), matvec, grad


def as_task_loss(fn: Callable[[Tensor], Tensor] | TaskLoss) -> TaskLoss:
    return fn if isinstance(fn, TaskLoss) else TaskLoss(fn)
