"""Parameter dicts <-> flat vectors.

The engine's hot path works on one flat tensor per task batch, shape (B, P): a dot product is one
kernel instead of one per tensor. Models still see ``dict[str, Tensor]`` (views into the flat tensor),
so any functional model works and autograd flows through the views.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import prod

import torch
from torch import Tensor

Params = dict[str, Tensor]


@dataclass(frozen=True)
class ParamLayout:
    """Names, shapes and offsets of a parameter dict laid out in one flat vector."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, params: Mapping[str, Tensor], batched: bool = False) -> ParamLayout:
        """Layout of ``params``; with ``batched`` the leading (task) dimension is not part of a shape."""
        skip = 1 if batched else 0
        return cls(tuple(params), tuple(tuple(t.shape[skip:]) for t in params.values()))

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(prod(s) for s in self.shapes)

    @property
    def offsets(self) -> dict[str, int]:
        """Where each tensor starts in the flat vector."""
        starts, at = {}, 0
        for name, size in zip(self.names, self.sizes, strict=True):
            starts[name], at = at, at + size
        return starts

    @property
    def numel(self) -> int:
        return sum(self.sizes)

    def flatten(self, params: Mapping[str, Tensor], batch: int | None = None) -> Tensor:
        """Concatenate into (P,) or, with ``batch``, (batch, P)."""
        if batch is None:
            return torch.cat([params[n].reshape(-1) for n in self.names])
        return torch.cat([params[n].reshape(batch, -1) for n in self.names], dim=1)

    def unflatten(self, flat: Tensor) -> Params:
        """Views of ``flat`` ((P,) or (B, P)) as a parameter dict, keeping any leading batch dimension.

        Shapes are passed to ``reshape`` as one tuple: a 0-d parameter (a scalar temperature or bias) of an
        unbatched ``flat`` has the empty shape (), which ``reshape`` accepts only as a tuple."""
        lead = tuple(flat.shape[:-1])
        pieces = torch.split(flat, self.sizes, dim=-1)
        return {n: p.reshape(lead + s) for n, p, s in zip(self.names, pieces, self.shapes, strict=True)}


def batch_dot(a: Tensor, b: Tensor) -> Tensor:
    """Per-task dot products of (B, P) tensors -> (B,) (one fused pass, no (B, P) temporary)."""
    return torch.linalg.vecdot(a, b)


def batch_norm(a: Tensor) -> Tensor:
    """Per-task Euclidean norms of a (B, P) tensor -> (B,)."""
    return torch.linalg.vector_norm(a, dim=-1)
