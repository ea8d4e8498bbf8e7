"""The proximal strength lambda: its shapes, its validation, and its flat form for the engine.

The inner objective is L(phi) + 1/2 sum_j lam_j (phi_j - theta_j)^2. A person gives lambda as

- a Python number: one strength for every coordinate ("scalar");
- a dict from parameter name to a tensor that broadcasts to that parameter: a one-element tensor per
  parameter tensor ("layer"), or a tensor of the parameter's own shape ("parameter").

The batched engine works on flat (B, P) task parameters, so it takes lambda as a float or as a flat tensor
of shape (P,) (or (B, P)). A float stays a float all the way down: the scalar path runs the same operations
as it would with no vector support at all. ``reduce_to_lam`` takes a per-coordinate quantity, such as the
gradient with respect to every lam_j, back to the structure the person gave.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

import torch
from torch import Tensor

from imaml_core.common.config import LAM_SHAPES
from imaml_core.engine.params import ParamLayout

Lam = float | Mapping[str, Tensor]  # what a person passes
FlatLam = float | Tensor  # what the batched engine takes: a float, or (P,) / (B, P) per coordinate


def check_lam(lam: object, params: ParamLayout | Mapping[str, Tensor] | None = None) -> None:
    """Raise a one-line ``ValueError`` naming the entry unless ``lam`` is a valid lambda for ``params``.

    lambda is the strength of the proximal term and its inverse square root scales the implicit system,
    so every entry must be positive and finite. A dict needs ``params`` (a layout or a parameter dict) to
    check its names and that each tensor broadcasts to its parameter."""
    if isinstance(lam, Real) and not isinstance(lam, bool):
        if not (lam > 0 and lam < math.inf):
            raise ValueError(f"lam must be a positive finite number, got {lam}")
        return
    if not isinstance(lam, Mapping):
        raise ValueError(
            f"lam must be a positive number or a dict of tensors by parameter name, got {type(lam).__name__}"
        )
    if params is None:
        raise ValueError("a dict lam needs the parameters it applies to")
    layout = params if isinstance(params, ParamLayout) else ParamLayout.of(params)
    missing = [n for n in layout.names if n not in lam]
    if missing:
        raise ValueError(f"lam has no entry for parameter(s) {', '.join(map(repr, missing))}")
    unknown = [str(n) for n in lam if n not in layout.names]
    if unknown:
        raise ValueError(f"lam has entries for unknown parameter(s) {', '.join(map(repr, unknown))}")
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        entry = lam[name]
        if not isinstance(entry, Tensor | Real) or isinstance(entry, bool):
            raise ValueError(f"lam[{name!r}] must be a tensor or a number, got {type(entry).__name__}")
        t = torch.as_tensor(entry)
        if t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"lam[{name!r}] must be real, got dtype {t.dtype}")
        if not _broadcasts(tuple(t.shape), shape):
            raise ValueError(f"lam[{name!r}] of shape {tuple(t.shape)} does not broadcast to the parameter's {shape}")
        if t.numel() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"lam[{name!r}] must be finite, got {_worst(t, ~torch.isfinite(t))}")
        if t.numel() and not bool((t > 0).all()):
            raise ValueError(f"lam[{name!r}] must be positive, got {_worst(t, ~(t > 0))}")


def flat_lam(lam: Lam, layout: ParamLayout, dtype: torch.dtype, device: torch.device | str) -> FlatLam:
    """lambda in the engine's form: a float stays a float (the scalar fast path), a dict becomes one (P,)
    tensor in ``layout``'s order with every entry broadcast to its parameter's shape."""
    if not isinstance(lam, Mapping):
        return float(lam)
    pieces = []
    for name, shape in zip(layout.names, layout.shapes, strict=True):
        t = torch.as_tensor(lam[name]).detach()  # the engine differentiates lambda by hand, never by autograd
        t = t.reshape(_aligned(tuple(t.shape), shape)).to(dtype=dtype, device=device)
        pieces.append(t.expand(shape).reshape(-1))
    return torch.cat(pieces) if pieces else torch.zeros(0, dtype=dtype, device=device)


def reduce_to_lam(q: Tensor, lam: Lam, layout: ParamLayout) -> Tensor | dict[str, Tensor]:
    """Sum a per-coordinate quantity ``q`` of shape (..., P) over the coordinates that share one lambda.

    For a scalar lambda that is the sum over all coordinates (shape (...)); for a dict it is a dict of
    tensors of shape (..., *lam[name].shape), each summed over the dimensions its entry broadcasts along.
    This is the chain rule for d/d lambda when one entry of lambda serves many coordinates."""
    if not isinstance(lam, Mapping):
        return q.sum(-1)
    lead = q.shape[:-1]
    shapes = dict(zip(layout.names, layout.shapes, strict=True))
    out = {}
    for name, piece in layout.unflatten(q).items():
        lam_shape = tuple(torch.as_tensor(lam[name]).shape)
        aligned = _aligned(lam_shape, shapes[name])
        dims = [len(lead) + i for i, (a, b) in enumerate(zip(aligned, shapes[name], strict=True)) if a == 1 and b != 1]
        summed = piece.sum(dim=dims, keepdim=True) if dims else piece
        out[name] = summed.reshape((*lead, *lam_shape))
    return out


def lam_of_shape(value: float, shape: str, params: Mapping[str, Tensor]) -> float | dict[str, Tensor]:
    """A lambda of ``value`` everywhere with the given ``shape`` (one of ``LAM_SHAPES``): a float, one
    0-d tensor per parameter tensor, or a tensor of each parameter's shape (dtype and device of params)."""
    check_lam(value)
    if shape == "scalar":
        return float(value)
    if shape == "layer":
        return {n: torch.full((), float(value), dtype=p.dtype, device=p.device) for n, p in params.items()}
    if shape == "parameter":
        return {n: torch.full_like(p, float(value)) for n, p in params.items()}
    raise ValueError(f"unknown lam shape {shape!r}; choose one of {', '.join(LAM_SHAPES)}")


def _aligned(small: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """``small`` with as many dimensions as ``shape``: leading 1s added, or leading 1s dropped (a (1,)
    entry for a 0-d parameter), so that it lines up with ``shape`` dimension by dimension."""
    if len(small) > len(shape):
        return small[len(small) - len(shape) :]
    return (1,) * (len(shape) - len(small)) + small


def _broadcasts(small: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    """Whether a tensor of shape ``small`` broadcasts to exactly ``shape`` (never the other way round)."""
    extra = len(small) - len(shape)
    if extra > 0 and any(s != 1 for s in small[:extra]):
        return False
    return all(a in (1, b) for a, b in zip(_aligned(small, shape), shape, strict=True))


def is_vector(lam: FlatLam) -> bool:
    """Whether the engine's ``lam`` varies per coordinate ((P,) or (B, P)) rather than being one number
    (a float, or the 0-d tensor a compiled step receives so that a new value does not recompile)."""
    return isinstance(lam, Tensor) and lam.dim() > 0


def _worst(t: Tensor, bad: Tensor) -> str:
    """The first offending value of ``t`` (and how many there are), for a one-line message."""
    values = t.detach().reshape(-1)[bad.reshape(-1)]
    more = f" (and {values.numel() - 1} more)" if values.numel() > 1 else ""
    return f"{float(values[0])}{more}"
