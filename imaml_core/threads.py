"""CPU thread policy for the engine.

A sinusoid meta-iteration is thousands of small operations: spread over several threads, a small one costs
more in synchronisation than it saves, a large one (a big batched matmul, a (B, P) update) runs nearly
twice as fast on two cores. Where the crossover lies depends on how OpenMP's idle threads wait:

- Spinning (OpenMP's default, a headless run): measured on this project's 2-core VM, alternating 1 and 2
  threads within one process (bench/RESULTS.md, "Fourth session"), 2 threads tie at meta-batch 100 with
  the default net (176k elements in a (B, P) tensor) and win from about 200k on: meta-batch 150 39 vs
  51 ms, 400 82 vs 130 ms; 25 tasks of a 100-100 net (260k) 33 vs 41 ms. Below that 1 thread wins
  (meta-batch 25: 16 vs 21 ms).
- Sleeping (``OMP_WAIT_POLICY=PASSIVE``, which the window sets so that the GUI thread wins the CPU):
  every parallel region first wakes its threads. Measured with another process busy, meta-batch 400 took
  0.20 s with 1 thread and 0.29 s with 2, so there a tensor must be far larger before threads pay.

The CLI and the window call ``use_threads_for`` before training (``--threads`` overrides it); library users
keep full control of torch's setting.
"""

from __future__ import annotations

import os

import torch

PARALLEL_WORK = 200_000  # elements in a (meta-batch, parameters) tensor from which spinning threads pay
PARALLEL_WORK_PASSIVE = 4_000_000  # the same where OpenMP's threads sleep between regions


def openmp_waits_passively() -> bool:
    """Whether this process asks OpenMP to put idle threads to sleep. OpenMP reads the variable once, when
    torch loads; the window sets it before that (``app/__init__.py``), so reading it now gives the same
    answer unless someone changed it after importing torch."""
    return os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE"


def available_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def recommended_threads(meta_batch: int, n_params: int, passive: bool | None = None) -> int:
    """One thread for small batched tensors, every available core for large ones. ``passive``: whether
    OpenMP's idle threads sleep (default: as this process asked, ``openmp_waits_passively``)."""
    if passive is None:
        passive = openmp_waits_passively()
    if meta_batch * n_params < (PARALLEL_WORK_PASSIVE if passive else PARALLEL_WORK):
        return 1
    return available_cores()


def use_threads_for(meta_batch: int, n_params: int, device: torch.device) -> int:
    """Apply the recommendation on CPU (GPU runs keep torch's default); returns the thread count in use."""
    if device.type == "cpu":
        torch.set_num_threads(recommended_threads(meta_batch, n_params))
    return torch.get_num_threads()
