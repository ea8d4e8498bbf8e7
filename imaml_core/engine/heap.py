"""Process memory upkeep: the resident set size, and how glibc's heap keeps or returns freed tensor memory.

CPU tensors come from malloc, so how the C library's allocator treats freed blocks decides both the speed
of large meta-batches and how flat a long-running window's footprint stays. Where the C library is not
glibc these calls do nothing and say so.
"""

from __future__ import annotations

import ctypes


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
    them on free (or trim the heap top), so every elementwise operation first page-faults its output in,
    which makes large meta-batches markedly slower (bench/RESULTS.md). A training process calls this once;
    the window instead calls ``release_free_memory`` between iterations to keep its footprint flat. False
    where the C library has no ``mallopt``."""
    if _MALLOPT is None:
        return False
    ok = _MALLOPT(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)  # type: ignore[operator]
    ok &= _MALLOPT(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)  # type: ignore[operator]
    return bool(ok)


def release_free_memory() -> bool:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``); False where there is no such call.

    After a heavy meta-iteration (a large meta-batch, many inner steps) glibc keeps the freed pages, so the
    process's resident memory would stay at its peak for the rest of a long run. The window calls this
    between iterations, so its memory stays flat through long runs with extreme sliders, at the price of
    page-faulting a heavy iteration's temporaries back in (which a headless run avoids with
    ``keep_freed_memory``). The trim takes every allocator lock in turn, so the GUI thread calls it itself,
    between paints, rather than waiting on another thread's trim in the middle of one."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)  # type: ignore[operator]
    return True
