"""Memory probe for one meta-iteration.

- CUDA: peak bytes allocated during the step, above what was allocated when it began.
- CPU: peak bytes of tensors held for backward (autograd's saved tensors), tracked live through
  ``torch.autograd.graph.saved_tensors_hooks``. This is the quantity that grows with MAML's unrolled
  steps and stays flat for iMAML. Storages are counted once however many times they are saved.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator

import torch
from torch import Tensor


class _Held:
    """Stands in for a saved tensor; releases its bytes from the meter when autograd drops it."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor


class SavedTensorMeter:
    """Live and peak bytes of distinct storages saved for backward inside ``with meter.track():``."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self._refs: dict[int, list[int]] = {}  # storage pointer -> [saved count, bytes]

    def _pack(self, tensor: Tensor) -> _Held:
        # Keep a detached alias: holding the live tensor would tie a saved output to its own grad_fn,
        # a reference cycle through C++ that no gc can collect (pytorch/pytorch#153049). Autograd
        # restores the grad_fn itself on unpack, so detaching loses nothing.
        held = _Held(tensor.detach())
        try:
            storage = tensor.untyped_storage()
            key, nbytes = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. tensors without storage
            return held
        entry = self._refs.get(key)
        if entry is None:
            self._refs[key] = [1, nbytes]
            self.current += nbytes
            self.peak = max(self.peak, self.current)
        else:
            entry[0] += 1
        weakref.finalize(held, self._release, key)
        return held

    def _release(self, key: int) -> None:
        entry = self._refs.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self._refs[key]

    @staticmethod
    def _unpack(held: _Held) -> Tensor:
        return held.tensor

    @contextlib.contextmanager
    def track(self) -> Iterator[SavedTensorMeter]:
        global _ACTIVE
        self.current = self.peak = 0
        self._refs.clear()
        previous, _ACTIVE = _ACTIVE, self
        try:
            with torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack):
                yield self
        finally:
            _ACTIVE = previous


_ACTIVE: SavedTensorMeter | None = None


def hold(*tensors: Tensor) -> list[object]:
    """Count ``tensors`` as held for a backward-like computation for as long as the result is alive.

    Hand-written derivative code (mlp_derivatives.py) keeps activations outside autograd; this makes the
    CPU memory probe see them exactly as it sees autograd's saved tensors.
    """
    if _ACTIVE is None:
        return list(tensors)
    return [_ACTIVE._pack(t) for t in tensors]


@contextlib.contextmanager
def measure_step(device: torch.device) -> Iterator[dict[str, int]]:
    """Measure one meta-iteration; after the block, ``result["bytes"]`` holds the figure."""
    result = {"bytes": 0}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        yield result
        torch.cuda.synchronize(device)
        result["bytes"] = int(torch.cuda.max_memory_allocated(device) - base)
        return
    meter = SavedTensorMeter()
    with meter.track():
        yield result
    result["bytes"] = int(meter.peak)
