"""An optimizer's per-parameter state as named tensors, and back, for files that never pickle.

``optimizer.state_dict()`` holds tensors (Adam: ``exp_avg``, ``exp_avg_sq`` and the 0-d ``step``) in
nested dicts keyed by parameter index; here they become flat names ``<prefix>.<index>.<key>``, which
safetensors stores as they are. Loading goes through ``optimizer.load_state_dict`` with the optimizer's
own hyperparameters (so a live change of the step size survives), which puts every tensor on its
parameter's device and dtype the way torch itself does; shapes and finiteness are checked first, since
``load_state_dict`` takes any shape and the next step would fail or silently broadcast.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from imaml_core.common.errors import CheckpointError


def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, Tensor]:
    """The optimizer's per-parameter state as ``{f"{prefix}.{index}.{key}": tensor}`` (copies on the CPU).

    An optimizer that has not stepped yet has no state and gives an empty dict."""
    out: dict[str, Tensor] = {}
    for index, entries in optimizer.state_dict()["state"].items():
        for key, value in entries.items():
            if not isinstance(value, Tensor):
                raise TypeError(f"optimizer state {key!r} is a {type(value).__name__}, not a tensor")
            out[f"{prefix}.{index}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
    return out


def _entries(optimizer: torch.optim.Optimizer, prefix: str, state: dict[str, Tensor]) -> dict[int, dict[str, Tensor]]:
    """The tensors of ``state`` under ``prefix``, checked against the optimizer's parameters."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    found: dict[int, dict[str, Tensor]] = {}
    for name, value in state.items():
        if not name.startswith(prefix + "."):
            continue
        index_text, _, key = name[len(prefix) + 1 :].partition(".")
        if not index_text.isdigit() or int(index_text) >= len(params) or not key:
            raise CheckpointError(f"optimizer state {name!r} does not belong to this optimizer")
        param = params[int(index_text)]
        if key == "step":
            if value.numel() != 1 or not bool(torch.isfinite(value).all()) or float(value) < 0:
                raise CheckpointError(f"optimizer state {name!r} must be one non-negative number")
        elif tuple(value.shape) != tuple(param.shape):
            shape = tuple(param.shape)
            raise CheckpointError(f"optimizer state {name!r} has shape {tuple(value.shape)}, expected {shape}")
        elif not value.is_floating_point() or not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"optimizer state {name!r} must hold finite floating-point values")
        found.setdefault(int(index_text), {})[key] = value.clone()  # torch keeps the tensors it is given
    return found


def check_optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str, state: dict[str, Tensor]) -> None:
    """Raise :class:`CheckpointError` unless ``state``'s entries under ``prefix`` fit ``optimizer``."""
    _entries(optimizer, prefix, state)


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str, state: dict[str, Tensor]) -> None:
    """Replace the optimizer's per-parameter state by ``state``'s entries under ``prefix`` (none: a
    fresh optimizer), keeping its hyperparameters."""
    entries = _entries(optimizer, prefix, state)
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": entries, "param_groups": current["param_groups"]})


def adam(theta: Tensor, lr: float) -> torch.optim.Adam:
    """Adam on theta, fused into one kernel where this torch and device support it (CPU since torch 2.4).

    On CPU the default is a per-tensor Python loop, which costs more than the fused kernel on a meta-iteration
    of a few milliseconds."""
    return torch.optim.Adam([theta], lr=lr, fused=_fused_adam_works(theta.device, theta.dtype))


@functools.cache
def _fused_adam_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Since torch 2.4 an unsupported device is only refused at the first ``step()``, so a throwaway
    optimizer takes one step first (once per device and dtype)."""
    try:
        probe = torch.zeros(1, dtype=dtype, device=device, requires_grad=True)
        probe.grad = torch.zeros_like(probe)
        torch.optim.Adam([probe], fused=True).step()
    except (RuntimeError, ValueError, TypeError):  # older torch, or a device without the fused kernel
        return False
    return True
