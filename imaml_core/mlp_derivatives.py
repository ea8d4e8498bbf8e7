"""Exact, hand-written batched derivatives of the MSE of a ReLU MLP: gradient and Hessian-vector product.

The sinusoid networks are tiny, so a meta-iteration's time goes to per-operation overhead; autograd adds a
node per view, reshape and split. Writing the backward pass (and Pearlmutter's R-operator for H v) by hand
with one batched matmul per layer roughly halves the operations. Exactness against autograd is tested in
float64 (tests/test_mlp_derivatives.py). ReLU's second derivative is zero almost everywhere, so the
R-operator below is the exact Hessian wherever the loss is twice differentiable.

The maths are pure functions of tensors (plus the constant layout), so ``torch.compile`` can fuse them
without guarding on per-meta-iteration objects; ``compiled=True`` switches to the compiled versions.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from .inner import gd_step
from .objective import Matvec
from .params import ParamLayout

Weights = list[tuple[Tensor, Tensor]]  # per layer: W^T (B, in, out) and b (B, 1, out)


def _mm(a: Tensor, b: Tensor) -> Tensor:
    """Batched a @ b. Sinusoid nets have 1-wide input and output layers, where a batched matmul is mostly
    per-matrix overhead: an outer product (contraction of length 1) is a broadcast multiply, and a
    matrix-vector product a broadcast multiply and sum (measured 3-7x faster at meta-batch 400)."""
    if a.shape[-1] == 1:
        return a * b
    if b.shape[-1] == 1:
        return (a * b.mT).sum(-1, keepdim=True)
    return torch.bmm(a, b)  # not ``@``: matmul's shape dispatch costs ~20% of a 40x40 product at meta-batch 25


def _addmm(c: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """c + a @ b (batched), with the same special cases as ``_mm``."""
    if a.shape[-1] == 1:
        return torch.addcmul(c, a, b)
    if b.shape[-1] == 1:
        return c + _mm(a, b)
    return c.baddbmm(a, b)


@functools.cache
def _views(layout: ParamLayout, n_layers: int) -> tuple[tuple[int, int, int, int], ...]:
    """(weight offset, bias offset, fan-in, fan-out) of every layer in the layout's flat order."""
    offsets = layout.offsets
    shapes = dict(zip(layout.names, layout.shapes, strict=True))
    views = []
    for i in range(n_layers):
        fan_out, fan_in = shapes[f"{2 * i}.weight"]
        views.append((offsets[f"{2 * i}.weight"], offsets[f"{2 * i}.bias"], fan_in, fan_out))
    return tuple(views)


def _weights(layout: ParamLayout, n_layers: int, phi: Tensor) -> Weights:
    """Per layer (W^T as (B, in, out), b as (B, 1, out)), both strided views straight into ``phi``: one
    view operation each instead of a split, a reshape, a transpose and an unsqueeze."""
    if phi.stride(-1) != 1:
        phi = phi.contiguous()
    batch, row, base = phi.shape[0], phi.stride(0), phi.storage_offset()
    return [
        (
            phi.as_strided((batch, fan_in, fan_out), (row, 1, fan_in), base + w_at),
            phi.as_strided((batch, 1, fan_out), (row, fan_out, 1), base + b_at),
        )
        for w_at, b_at, fan_in, fan_out in _views(layout, n_layers)
    ]


def _gram(d: Tensor, a: Tensor, d2: Tensor | None = None, a2: Tensor | None = None) -> Tensor:
    """d^T a (+ d2^T a2) per task, flattened row-major: a weight gradient as a (B, out * in) block.

    d: (B, N, out), a: (B, N, in). When either side is 1 wide (the sinusoid nets' first and last layers)
    the contraction over N is a broadcast multiply and one sum, already in flat order."""
    if d.shape[-1] == 1 or a.shape[-1] == 1:
        prod = d * a if d2 is None else torch.addcmul(d * a, d2, a2)
        return prod.sum(1)
    gw = torch.bmm(d.mT, a) if d2 is None else torch.baddbmm(torch.bmm(d.mT, a), d2.mT, a2)
    return gw.flatten(1)


def _flat(layout: ParamLayout, grads: list[tuple[Tensor, Tensor]]) -> Tensor:
    """Per-layer flat (weight, bias) gradients, each (B, ·) -> (B, P) in the layout's order (whatever
    order theta has: checkpoints list tensors alphabetically). ``layout.flatten`` would reshape every
    piece first; these are already 2-D."""
    by_name = {}
    for i, (gw, gb) in enumerate(grads):
        by_name[f"{2 * i}.weight"], by_name[f"{2 * i}.bias"] = gw, gb
    return torch.cat([by_name[name] for name in layout.names], dim=1)


def loss_value(layout: ParamLayout, n_layers: int, phi: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Per-task losses (B,) by a forward pass alone."""
    z = x
    for i, (wt, b) in enumerate(_weights(layout, n_layers, phi)):
        z = _addmm(b, z, wt)
        if i < n_layers - 1:
            z = torch.relu(z)
    return (z - y).square().mean((1, 2))


def _forward_backward(
    layout: ParamLayout, n_layers: int, phi: Tensor, x: Tensor, y: Tensor
) -> tuple[Tensor, Weights, list[Tensor], list[Tensor], list[Tensor]]:
    """Loss, weights, layer inputs, ReLU masks and d loss / d z_i of every layer (scaled by 2/N)."""
    wb = _weights(layout, n_layers, phi)
    inputs, masks = [x], []
    z = x
    for i, (wt, b) in enumerate(wb):
        z = _addmm(b, inputs[-1], wt)
        if i < n_layers - 1:
            h = torch.relu(z)
            masks.append(torch.sign(h))  # ReLU'(z) as a float mask: no bool->float conversion per use
            inputs.append(h)
    err = z - y
    loss = err.square().mean((1, 2))
    deltas = [err * (2.0 / (y.shape[1] * y.shape[2]))]
    for i in range(n_layers - 1, 0, -1):
        deltas.append(_mm(deltas[-1], wb[i][0].mT) * masks[i - 1])
    return loss, wb, inputs, masks, deltas[::-1]


def _grad(layout: ParamLayout, inputs: list[Tensor], deltas: list[Tensor]) -> Tensor:
    return _flat(layout, [(_gram(d, a), d.sum(1)) for d, a in zip(deltas, inputs, strict=True)])


def value_and_grad(layout: ParamLayout, n_layers: int, phi: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-task losses (B,) and gradients (B, P)."""
    loss, _, inputs, _, deltas = _forward_backward(layout, n_layers, phi, x, y)
    return loss, _grad(layout, inputs, deltas)


def hvp(
    layout: ParamLayout,
    n_layers: int,
    v: Tensor,
    wb: Weights,
    inputs: list[Tensor],
    masks: list[Tensor],
    deltas: list[Tensor],
    scale: float,
) -> Tensor:
    """H v per task by the R-operator, from the forward/backward state at phi."""
    rwb = _weights(layout, n_layers, v)
    # R-forward: directional derivatives r_z of every pre-activation, r_a of every hidden layer's input.
    r_inputs: list[Tensor] = []
    r_z = _addmm(rwb[0][1], inputs[0], rwb[0][0])
    for i in range(1, n_layers):
        r_inputs.append(r_z * masks[i - 1])
        rwt, rb = rwb[i]
        r_z = _addmm(_addmm(rb, inputs[i], rwt), r_inputs[-1], wb[i][0])
    # R-backward: the directional derivative of every layer's weight and bias gradient.
    r_d = r_z * scale
    out: list[tuple[Tensor, Tensor]] = []
    for i in range(n_layers - 1, -1, -1):
        gw = _gram(r_d, inputs[i], deltas[i], r_inputs[i - 1]) if i else _gram(r_d, inputs[i])
        out.append((gw, r_d.sum(1)))
        if i:
            r_d = _addmm(_mm(r_d, wb[i][0].mT), deltas[i], rwb[i][0].mT) * masks[i - 1]
    return _flat(layout, out[::-1])


def mlp_gd_step(
    layout: ParamLayout,
    n_layers: int,
    x: Tensor,
    y: Tensor,
    phi: Tensor,
    g: Tensor,
    obj: Tensor,
    step: Tensor,
    theta: Tensor,
    lam: Tensor,
    safeguard: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``inner.gd_step`` with this MLP's derivatives: a whole inner step as one pure function, the unit
    ``torch.compile`` fuses (about 60 small operations become a few kernels)."""
    return gd_step(
        lambda p: value_and_grad(layout, n_layers, p, x, y), phi, g, obj, step, theta, lam, safeguard, branch_free=True
    )


class _CompiledOrEager:
    """``torch.compile(fn)`` that falls back to ``fn`` for good if compiling fails (no C++ compiler, an
    unsupported backend): the switch may make things faster, never broken."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.compiled: Callable | None = torch.compile(fn, dynamic=True)
        self.error = ""

    def __call__(self, *args: object) -> object:
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except Exception as exc:  # noqa: BLE001 - any compiler failure means: use eager
                self.compiled, self.error = None, f"{type(exc).__name__}: {exc}".splitlines()[0]
                warnings.warn(f"torch.compile failed, using eager mode: {self.error}", RuntimeWarning, stacklevel=2)
        return self.fn(*args)


@functools.cache
def _compiled(fn: Callable) -> _CompiledOrEager:
    """One compiled version per function, with dynamic shapes so a new meta-batch size doesn't recompile."""
    return _CompiledOrEager(fn)


class MLPMSEDerivatives:
    """Loss 1/N sum (f(x) - y)^2 per task for the ``MLP`` laid out by ``layout``; x, y: (B, N, ·)."""

    def __init__(self, layout: ParamLayout, n_layers: int, x: Tensor, y: Tensor, compiled: bool = False) -> None:
        self.layout = layout
        self.n_layers = n_layers
        self.x = x
        self.y = y
        self.scale = 2.0 / (y.shape[1] * y.shape[2])
        self._value_and_grad = _compiled(value_and_grad) if compiled else value_and_grad
        self._hvp = _compiled(hvp) if compiled else hvp
        self._gd_step = _compiled(mlp_gd_step) if compiled else None

    def value(self, phi: Tensor) -> Tensor:
        return loss_value(self.layout, self.n_layers, phi, self.x, self.y)

    def value_and_grad(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        return self._value_and_grad(self.layout, self.n_layers, phi, self.x, self.y)

    def gd_step(
        self, phi: Tensor, g: Tensor, obj: Tensor, step: Tensor, theta: Tensor, lam: float, safeguard: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One inner GD step (see ``inner.gd_step``); compiled as a whole when the switch is on."""
        if self._gd_step is None:
            return gd_step(self.value_and_grad, phi, g, obj, step, theta, lam, safeguard)
        # lambda as a tensor: a slider move must not recompile (a Python float would be a constant)
        lam_t = torch.as_tensor(lam, dtype=phi.dtype, device=phi.device)
        return self._gd_step(self.layout, self.n_layers, self.x, self.y, phi, g, obj, step, theta, lam_t, safeguard)

    def hvp_operator(self, phi: Tensor) -> tuple[Tensor, Tensor, Matvec, tuple[Tensor, ...]]:
        loss, wb, inputs, masks, deltas = _forward_backward(self.layout, self.n_layers, phi, self.x, self.y)

        def matvec(v: Tensor) -> Tensor:
            return self._hvp(self.layout, self.n_layers, v, wb, inputs, masks, deltas, self.scale)

        kept = (*inputs[1:], *masks, *deltas)
        return loss, _grad(self.layout, inputs, deltas), matvec, kept
