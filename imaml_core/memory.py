"""Memory probe for one meta-iteration.

- CUDA: peak bytes allocated during the step, above what was allocated when it began.
- CPU: peak bytes of tensors held for backward (autograd's saved tensors), tracked live through
  ``torch.autograd.graph.saved_tensors_hooks``. This is the quantity that grows with MAML's unrolled
  steps and stays flat for iMAML. Storages are counted once however many times they are saved.
"""

from __future__ import annotations

import contextlib
import ctypes
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


def process_rss() -> int:
    """Resident set size of this process in bytes (for the status bar)."""
    import psutil

    return int(psutil.Process().memory_info().rss)


def _load_glibc(name: str, argtypes: list[type]) -> object | None:
    try:
        fn = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl; Windows refuses CDLL(None))
        return None
    fn.argtypes, fn.restype = argtypes, ctypes.c_int
    return fn


_MALLOC_TRIM = _load_glibc("malloc_trim", [ctypes.c_size_t])
_MALLOPT = _load_glibc("mallopt", [ctypes.c_int, ctypes.c_int])
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's ceiling for this setting on 64-bit systems
TRIM_THRESHOLD_BYTES = 512 * 2**20


def keep_freed_memory() -> bool:
    """Let glibc reuse freed tensor memory instead of handing it back to the OS after every operation.

    At meta-batch 400 each (B, P) temporary is ~2.8 MB. glibc's defaults map such blocks fresh and unmap
    them on free (or trim the heap top), so every elementwise operation first page-faults its output in:
    on this VM a meta-iteration took 105-190 ms that way against 82-143 ms kept (five process pairs,
    bench/RESULTS.md). A training process calls this once; the window instead calls
    ``release_free_memory`` after every iteration to keep its footprint flat. False where the C library has
    no ``mallopt``."""
    if _MALLOPT is None:
        return False
    ok = _MALLOPT(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)  # type: ignore[operator]
    ok &= _MALLOPT(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)  # type: ignore[operator]
    return bool(ok)


def release_free_memory() -> bool:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``); False where there is no such call.

    CPU tensors come from malloc. After a heavy meta-iteration (a large meta-batch, many inner steps) glibc
    keeps the freed pages, so the process's resident memory stays at its peak for the rest of a long run.
    The window calls this after every meta-iteration (median 0.24 ms, 26 ms at most in 4,000 soak-like
    iterations): its memory then stays flat through a 20,000-iteration soak with extreme sliders, at the
    price of page-faulting a heavy iteration's temporaries back in, which a headless run avoids with
    ``keep_freed_memory``. The trim takes every allocator lock in turn, so the GUI thread calls it itself,
    between paints, rather than waiting on another thread's trim in the middle of one."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)  # type: ignore[operator]
    return True
