"""lambda as the trainer holds it: fixed or meta-learned, in the structure ``lam_shape`` names.

The trainer keeps log lambda as one vector of L entries: one for ``scalar``, one per parameter tensor for
``layer``, one per coordinate for ``parameter``. Every meta-iteration hands the engine lambda in its flat
form (lam.py): a Python float for a scalar, so the scalar path stays the float path, or a (P,) tensor.

A learned lambda moves in log space, which keeps it positive and makes its steps relative: the gradient
of the meta-loss with respect to log lambda is lambda * g_lam, with g_lam the per-coordinate implicit
gradient summed over the coordinates each entry covers and averaged over the meta-batch. Its own Adam
takes the step, and every entry stays within ``LAM_BOUNDS``: a step that would leave them is clipped
there, and the step says how many entries were clipped.

The base value ``lam`` of the config sets lambda's scale. A fixed lambda is the base value everywhere; a
learned lambda starts there, and a new base value multiplies every learned entry by new / old, which keeps
what was learned about the layers' relative strengths and moves their common scale as asked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from imaml_core.common.config import LAM_SHAPES
from imaml_core.common.errors import CheckpointError, ConfigError
from imaml_core.engine.lam import FlatLam, Lam, check_lam, flat_lam, reduce_to_lam
from imaml_core.engine.optim_state import check_optimizer_tensors, load_optimizer_tensors, optimizer_tensors
from imaml_core.engine.params import ParamLayout

LAM_BOUNDS = (1e-3, 1e4)  # a learned lambda stays within these
SCALAR_KEY = "λ"  # the one entry of ``by_layer`` for a scalar lambda


class LamState:
    """log lambda in ``shape``'s structure, its Adam when learned, and its forms for the engine and reports."""

    def __init__(
        self,
        layout: ParamLayout,
        shape: str,
        learned: bool,
        base: float,
        lr: float,
        dtype: torch.dtype,
        device: torch.device,
        values: Lam | None = None,
    ) -> None:
        if shape not in LAM_SHAPES:
            raise ConfigError(f"lam_shape must be one of {', '.join(LAM_SHAPES)}, got {shape!r}")
        self.layout, self.shape, self.learned = layout, shape, learned
        self.base = float(base)
        self._dtype, self._device = dtype, device
        self._sizes = torch.tensor(layout.sizes, device=device)
        start = self._start(values) if learned and values is not None else None
        if start is None:
            first = min(max(self.base, LAM_BOUNDS[0]), LAM_BOUNDS[1]) if learned else self.base
            start = torch.full((self._entries(),), math.log(first), dtype=dtype, device=device)
        self.log = start
        self._log_bounds = (math.log(LAM_BOUNDS[0]), math.log(LAM_BOUNDS[1]))
        self.optimizer = torch.optim.Adam([self.log], lr=lr) if learned else None
        self._engine: FlatLam | None = None

    def _entries(self) -> int:
        return {"scalar": 1, "layer": len(self.layout.names), "parameter": self.layout.numel}[self.shape]

    def _start(self, values: Lam) -> Tensor:
        """log of a given lambda (a number fills every entry; a dict must fit ``shape``), clipped to the bounds."""
        try:
            check_lam(values, self.layout)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(values, Mapping):
            flat = torch.full((self._entries(),), float(values), dtype=self._dtype, device=self._device)
        elif self.shape == "scalar":
            raise ConfigError("lam_shape is scalar, but the lambda to continue from is a dict of tensors")
        elif self.shape == "layer":
            wrong = [n for n in self.layout.names if torch.as_tensor(values[n]).numel() != 1]
            if wrong:
                raise ConfigError(f"lam_shape is layer, but lam[{wrong[0]!r}] holds more than one value")
            flat = torch.stack([torch.as_tensor(values[n]).reshape(()) for n in self.layout.names])
        else:
            flat = flat_lam(values, self.layout, self._dtype, self._device)
        flat = flat.to(dtype=self._dtype, device=self._device)
        return flat.clamp(*LAM_BOUNDS).log()

    # -- lambda in its three forms ---------------------------------------------------------------------
    def engine(self) -> FlatLam:
        """lambda for the inner solver and the implicit solve: a float for a scalar (a fixed one is exactly
        the base value), else a (P,) tensor in the layout's order."""
        if self._engine is None:
            if not self.learned and self.shape == "scalar":
                self._engine = self.base
            elif not self.learned:
                self._engine = torch.full((self.layout.numel,), self.base, dtype=self._dtype, device=self._device)
            elif self.shape == "scalar":
                self._engine = math.exp(float(self.log[0]))
            else:
                lam = self.log.detach().exp()
                self._engine = lam if self.shape == "parameter" else lam.repeat_interleave(self._sizes)
        return self._engine

    def value(self) -> float | dict[str, Tensor]:
        """lambda in its structure (a copy): a float, one 0-d tensor per parameter tensor, or one tensor of
        each parameter's shape."""
        if self.shape == "scalar":
            return float(self.engine())
        if self.shape == "layer":
            lam = self.log.detach().exp() if self.learned else torch.full_like(self.log, self.base)
            return {n: lam[i].clone() for i, n in enumerate(self.layout.names)}
        flat = self.engine()
        assert isinstance(flat, Tensor)
        return {n: t.clone() for n, t in self.layout.unflatten(flat).items()}

    def by_layer(self) -> dict[str, float]:
        """Parameter-tensor name -> that tensor's lambda (the geometric mean for a per-coordinate lambda);
        a scalar lambda is the one entry ``SCALAR_KEY``."""
        if self.shape == "scalar":
            return {SCALAR_KEY: float(self.engine())}
        if not self.learned:
            return dict.fromkeys(self.layout.names, self.base)
        if self.shape == "layer":
            logs = self.log.detach()
        else:
            pieces = torch.split(self.log.detach(), self.layout.sizes)
            logs = torch.stack([p.mean() for p in pieces])
        return dict(zip(self.layout.names, logs.double().exp().tolist(), strict=True))

    # -- learning ----------------------------------------------------------------------------------------
    def log_gradient(self, lam_grad: Tensor) -> Tensor:
        """d meta-loss / d log lambda, (L,): the per-task, per-coordinate ``lam_grad`` ((B, P)) averaged over
        tasks, summed over the coordinates each entry covers, times lambda."""
        mean = lam_grad.mean(dim=0)
        if self.shape == "scalar":
            g = mean.sum().reshape(1)
        elif self.shape == "layer":
            parts = reduce_to_lam(mean, self.value(), self.layout)
            assert isinstance(parts, dict)
            g = torch.stack([parts[n].reshape(()) for n in self.layout.names])
        else:
            g = mean
        return g.to(self.log.dtype) * self.log.detach().exp()

    def structured(self, vector: Tensor) -> float | dict[str, Tensor]:
        """An (L,) vector laid out like lambda: a float, or a dict of tensors shaped like ``value()``'s."""
        if self.shape == "scalar":
            return float(vector[0])
        if self.shape == "layer":
            return {n: vector[i].clone() for i, n in enumerate(self.layout.names)}
        return {n: t.clone() for n, t in self.layout.unflatten(vector).items()}

    def step(self, log_grad: Tensor) -> int:
        """One Adam step on log lambda along ``log_grad`` ((L,)); returns how many entries were clipped to
        ``LAM_BOUNDS``. A fixed lambda does not move."""
        if self.optimizer is None:
            return 0
        self.log.grad = log_grad.to(self.log.dtype)
        self.optimizer.step()
        self.log.grad = None
        lo, hi = self._log_bounds
        with torch.no_grad():
            outside = (self.log < lo) | (self.log > hi)
            clipped = int(outside.sum())
            if clipped:
                self.log.clamp_(lo, hi)
        self._engine = None
        return clipped

    def set_lr(self, lr: float) -> None:
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    def rebase(self, base: float) -> None:
        """A new base value: a fixed lambda becomes it everywhere; a learned one is multiplied by
        base / old base (then kept within the bounds)."""
        if self.learned and base != self.base:
            with torch.no_grad():
                self.log.add_(math.log(base / self.base)).clamp_(*self._log_bounds)
        self.base = float(base)
        self._engine = None

    # -- exact continuation ------------------------------------------------------------------------------
    def resume_state(self) -> dict[str, Tensor]:
        """A learned lambda's log (``lam.log``) and its Adam (``adam.lam.*``); nothing for a fixed one,
        which the config alone restores."""
        if self.optimizer is None:
            return {}
        return {"lam.log": self.log.detach().clone(), **optimizer_tensors(self.optimizer, "adam.lam")}

    def check_resume_state(self, state: Mapping[str, Tensor]) -> set[str]:
        """The keys of ``state`` that are lambda's, after checking that they fit this lambda (a
        :class:`CheckpointError` otherwise)."""
        keys = {k for k in state if k == "lam.log" or k.startswith("adam.lam.")}
        if self.optimizer is None:
            if keys:
                raise CheckpointError("the resume state holds a learned lambda, but this config's lambda is fixed")
            return keys
        log = state.get("lam.log")
        if log is None:
            raise CheckpointError("the resume state lacks 'lam.log', which a learned lambda needs")
        if tuple(log.shape) != tuple(self.log.shape) or log.dtype != self.log.dtype:
            raise CheckpointError(
                f"resume tensor 'lam.log' is {log.dtype} {tuple(log.shape)}, expected "
                f"{self.log.dtype} {tuple(self.log.shape)} (lam_shape {self.shape})"
            )
        lo, hi = self._log_bounds
        if not bool(torch.isfinite(log).all()) or bool(((log < lo - 1e-6) | (log > hi + 1e-6)).any()):
            raise CheckpointError(f"resume tensor 'lam.log' leaves lambda's bounds {LAM_BOUNDS}")
        check_optimizer_tensors(self.optimizer, "adam.lam", dict(state))
        return keys

    def load_resume_state(self, state: Mapping[str, Tensor]) -> None:
        """Continue from ``state`` (checked by ``check_resume_state`` first)."""
        if self.optimizer is None:
            return
        with torch.no_grad():
            self.log.copy_(state["lam.log"])
        load_optimizer_tensors(self.optimizer, "adam.lam", dict(state))
        self._engine = None
