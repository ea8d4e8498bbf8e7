"""Exact, hand-written batched derivatives of the MSE of a ReLU MLP: gradient and Hessian-vector product.

The regression networks are tiny, so a meta-iteration's time goes to per-operation overhead; autograd adds a
node per view, reshape and split. Writing the backward pass (and Pearlmutter's R-operator for H v) by hand
with one batched matmul per layer roughly halves the operations. Exactness against autograd is tested in
float64 (tests/test_mlp_derivatives.py). ReLU's second derivative is zero almost everywhere, so the
R-operator below is the exact Hessian wherever the loss is twice differentiable.

The maths are pure functions of tensors (plus a constant ``Plan`` of where each layer sits), so
``torch.compile`` can fuse them without guarding on per-meta-iteration objects; ``compiled=True`` switches
to the compiled versions.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from imaml_core.engine.inner import gd_step
from imaml_core.engine.lam import FlatLam
from imaml_core.engine.objective import Matvec
from imaml_core.engine.params import ParamLayout

Weights = list[tuple[Tensor, Tensor]]  # per layer: W (B, out, in) and b (B, 1, out), views into phi


@dataclass(frozen=True)
class Plan:
    """Where every layer sits in the flat parameter vector, worked out once per layout.

    ``order`` lists, in the layout's order, the positions of the per-layer gradient pieces
    [dW_0, db_0, dW_1, db_1, ...]; None when that already is the layout's order (the trainer's canonical
    layout), so a gradient is one ``cat`` with no lookups by name."""

    layers: tuple[tuple[int, int, int, int], ...]  # (weight offset, bias offset, fan-in, fan-out)
    order: tuple[int, ...] | None

    @staticmethod
    @functools.cache
    def of(layout: ParamLayout, n_layers: int) -> Plan:
        offsets = layout.offsets
        shapes = dict(zip(layout.names, layout.shapes, strict=True))
        layers, pieces = [], []
        for i in range(n_layers):
            w, b = f"{2 * i}.weight", f"{2 * i}.bias"
            fan_out, fan_in = shapes[w]
            layers.append((offsets[w], offsets[b], fan_in, fan_out))
            pieces += [w, b]
        order = tuple(pieces.index(name) for name in layout.names)
        return Plan(tuple(layers), None if order == tuple(range(len(order))) else order)


def _weights(plan: Plan, phi: Tensor) -> Weights:
    """Per layer (W as (B, out, in), b as (B, 1, out)), both strided views straight into ``phi``: one view
    operation each instead of a split, a reshape and an unsqueeze."""
    if phi.stride(-1) != 1:
        phi = phi.contiguous()
    if torch.compiler.is_compiling():  # storage offsets are not traceable; slices fuse away anyway
        return [
            (phi[:, w : w + fi * fo].view(-1, fo, fi), phi[:, b : b + fo].view(-1, 1, fo))
            for w, b, fi, fo in plan.layers
        ]
    batch, row, base = phi.shape[0], phi.stride(0), phi.storage_offset()
    return [
        (
            phi.as_strided((batch, fo, fi), (row, fi, 1), base + w),
            phi.as_strided((batch, 1, fo), (row, fo, 1), base + b),
        )
        for w, b, fi, fo in plan.layers
    ]


# The first and last layers go through the helpers below, which special-case 1-wide sides (the regression
# nets' input and output), where a batched matmul is mostly per-matrix overhead: a contraction of length 1
# is a broadcast multiply, and a matrix-vector product a broadcast multiply and a sum (measured 3-7x faster
# at meta-batch 400). In the hot paths (``forward_backward``, ``hvp``) middle layers call ``bmm``/``baddbmm``
# directly: the per-call shape checks and bookkeeping of a generic layer loop measured ~8% of a gradient at
# meta-batch 25. ``bmm`` rather than ``@``: matmul's shape dispatch costs ~20% of a 40x40 product at
# meta-batch 25.


def _affine(b: Tensor, a: Tensor, w: Tensor) -> Tensor:
    """b + a @ w^T per task: a layer's pre-activation from its input a (B, N, in)."""
    if a.shape[-1] == 1:
        return torch.addcmul(b, a, w.mT)
    if w.shape[1] == 1:
        return (a * w).sum(-1, keepdim=True) + b
    return b.baddbmm(a, w.mT)


def _back(d: Tensor, w: Tensor, c: Tensor | None = None) -> Tensor:
    """(c +) d @ w per task: a gradient w.r.t. a layer's output (B, N, out) taken back to its input."""
    if d.shape[-1] == 1:
        return d * w if c is None else torch.addcmul(c, d, w)
    return torch.bmm(d, w) if c is None else c.baddbmm(d, w)


def _gram(d: Tensor, a: Tensor, d2: Tensor | None = None, a2: Tensor | None = None) -> Tensor:
    """d^T a (+ d2^T a2) per task, flattened row-major: a weight gradient as a (B, out * in) block.

    d: (B, N, out), a: (B, N, in). When either side is 1 wide the contraction over N is a broadcast
    multiply and one sum, already in flat order."""
    if d.shape[-1] == 1 or a.shape[-1] == 1:
        prod = d * a if d2 is None else torch.addcmul(d * a, d2, a2)
        return prod.sum(1)
    gw = torch.bmm(d.mT, a) if d2 is None else torch.bmm(d.mT, a).baddbmm(d2.mT, a2)
    return gw.flatten(1)


def _flat(plan: Plan, pieces: list[Tensor]) -> Tensor:
    """[db_L, dW_L, ..., db_0, dW_0] (last layer first, as a backward pass makes them), each (B, ·), as one
    (B, P) gradient in the layout's order."""
    pieces = pieces[::-1]
    if plan.order is not None:
        pieces = [pieces[i] for i in plan.order]
    return torch.cat(pieces, dim=1)


def loss_value(plan: Plan, phi: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Per-task losses (B,) by a forward pass alone."""
    wb = _weights(plan, phi)
    z = _affine(wb[0][1], x, wb[0][0])
    for w, b in wb[1:]:
        z = _affine(b, torch.relu(z), w)
    return (z - y).square().mean((1, 2))


State = tuple[Weights, list[Tensor], list[Tensor], list[Tensor]]  # weights, layer inputs, ReLU masks, deltas


def forward_backward(plan: Plan, phi: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, State]:
    """Per-task losses (B,), gradients (B, P), and what H v needs: weights, every layer's input, ReLU masks
    and d loss / d z of every layer (scaled by 2/N)."""
    wb = _weights(plan, phi)
    last = len(wb) - 1
    inputs, masks = [x], []
    z = _affine(wb[0][1], x, wb[0][0])
    for i, (w, b) in enumerate(wb[1:], 1):
        h = torch.relu(z)
        inputs.append(h)
        masks.append(torch.sign(h))  # ReLU'(z) as a float mask: no bool->float conversion per use
        z = b.baddbmm(h, w.mT) if i < last else _affine(b, h, w)
    err = z - y
    loss = err.square().mean((1, 2))
    delta = err * (2.0 / (y.shape[1] * y.shape[2]))
    deltas, pieces = [delta], [delta.sum(1), _gram(delta, inputs[last])]
    for i in range(last, 0, -1):
        delta = (_back(delta, wb[i][0]) if i == last else torch.bmm(delta, wb[i][0])) * masks[i - 1]
        deltas.append(delta)
        a = inputs[i - 1]
        pieces += [delta.sum(1), _gram(delta, a) if i == 1 else torch.bmm(delta.mT, a).flatten(1)]
    deltas.reverse()
    return loss, _flat(plan, pieces), (wb, inputs, masks, deltas)


def value_and_grad(plan: Plan, phi: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-task losses (B,) and gradients (B, P)."""
    loss, grad, _ = forward_backward(plan, phi, x, y)
    return loss, grad


def hvp(plan: Plan, v: Tensor, state: State, scale: float) -> Tensor:
    """H v per task by the R-operator, from the forward/backward state at phi."""
    wb, inputs, masks, deltas = state
    rwb = _weights(plan, v)
    last = len(wb) - 1
    # R-forward: directional derivatives r_z of every pre-activation, r_a of every hidden layer's input.
    r_inputs: list[Tensor] = []
    r_z = _affine(rwb[0][1], inputs[0], rwb[0][0])
    for i in range(1, last + 1):
        r_inputs.append(r_z * masks[i - 1])
        (rw, rb), w = rwb[i], wb[i][0]
        if i < last:
            r_z = rb.baddbmm(inputs[i], rw.mT).baddbmm(r_inputs[-1], w.mT)
        else:
            r_z = _affine(_affine(rb, inputs[i], rw), r_inputs[-1], w)
    # R-backward: the directional derivative of every layer's weight and bias gradient.
    r_d = r_z * scale
    pieces: list[Tensor] = []
    for i in range(last, -1, -1):
        (rw, _), w, d, a = rwb[i], wb[i][0], deltas[i], inputs[i]
        if i == 0:
            pieces += [r_d.sum(1), _gram(r_d, a)]
        elif i == last:
            pieces += [r_d.sum(1), _gram(r_d, a, d, r_inputs[i - 1])]
            r_d = _back(d, rw, _back(r_d, w)) * masks[i - 1]
        else:
            pieces += [r_d.sum(1), torch.bmm(r_d.mT, a).baddbmm(d.mT, r_inputs[i - 1]).flatten(1)]
            r_d = torch.bmm(r_d, w).baddbmm(d, rw) * masks[i - 1]
    return _flat(plan, pieces)


def mlp_gd_step(
    plan: Plan,
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
    return gd_step(lambda p: value_and_grad(plan, p, x, y), phi, g, obj, step, theta, lam, safeguard, branch_free=True)


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
        self.plan = Plan.of(layout, n_layers)
        self.x = x
        self.y = y
        self.scale = 2.0 / (y.shape[1] * y.shape[2])
        self._value_and_grad = _compiled(value_and_grad) if compiled else value_and_grad
        self._hvp = _compiled(hvp) if compiled else hvp
        self._gd_step = _compiled(mlp_gd_step) if compiled else None

    def value(self, phi: Tensor) -> Tensor:
        return loss_value(self.plan, phi, self.x, self.y)

    def value_and_grad(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        return self._value_and_grad(self.plan, phi, self.x, self.y)

    def gd_step(
        self, phi: Tensor, g: Tensor, obj: Tensor, step: Tensor, theta: Tensor, lam: FlatLam, safeguard: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One inner GD step (see ``inner.gd_step``); compiled as a whole when the switch is on. ``lam`` is a
        float or a per-coordinate (P,) / (B, P) tensor."""
        if self._gd_step is None:
            return gd_step(self.value_and_grad, phi, g, obj, step, theta, lam, safeguard)
        # lambda as a tensor: a slider move must not recompile (a Python float would be a constant); a
        # per-coordinate lambda is a tensor already and only takes phi's dtype and device
        lam_t = torch.as_tensor(lam, dtype=phi.dtype, device=phi.device)
        return self._gd_step(self.plan, self.x, self.y, phi, g, obj, step, theta, lam_t, safeguard)

    def hvp_operator(self, phi: Tensor) -> tuple[Tensor, Tensor, Matvec, tuple[Tensor, ...]]:
        loss, grad, state = forward_backward(self.plan, phi, self.x, self.y)

        def matvec(v: Tensor) -> Tensor:
            return self._hvp(self.plan, v, state, self.scale)

        _, inputs, masks, deltas = state
        return loss, grad, matvec, (*inputs[1:], *masks, *deltas)
