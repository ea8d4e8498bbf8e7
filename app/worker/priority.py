"""The worker thread's scheduling priority: below the GUI thread's, so a busy CPU still paints the window."""

from __future__ import annotations

import contextlib
import os
import threading

WORKER_NICENESS = 10  # the GUI thread wins the CPU when both want it


def yield_cpu_to_gui() -> None:
    """Lower the calling thread's scheduling priority (Linux: per-thread niceness), so that when the CPU is
    contended the GUI thread is scheduled first. Threads the engine starts from it (OpenMP's pool) inherit
    it. Elsewhere this is a no-op."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted: keep the default
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
