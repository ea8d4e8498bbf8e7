"""CPU thread policy for the engine.

A small regression meta-iteration is thousands of small operations: spread over several threads, a small one costs
more in synchronisation than it saves, a large one (a big batched matmul, a (B, P) update) runs nearly
twice as fast on two cores. Where the crossover lies depends on how OpenMP's idle threads wait
(``python -m bench.threads`` measures both; bench/RESULTS.md holds the table):

- Spinning (OpenMP's default, a headless run): two threads tie with one up to meta-batch 50 of the default
  net (88k elements in a (B, P) tensor) and win from 100 (176k). So both cores from ``PARALLEL_WORK``
  elements, a bar inside that gap; one thread below, where the gain is within noise and a core stays free
  for other work.
- Sleeping (``OMP_WAIT_POLICY=PASSIVE``, which the window sets so that the GUI thread wins the CPU): every
  parallel region first wakes its threads, so two threads lose clearly at small sizes and win or tie only
  from about 4M elements. So one thread up to ``PARALLEL_WORK_PASSIVE`` (with the default net: every meta-batch
  the window's slider offers), and both cores above.

The CLI and the window call ``use_threads_for`` before training (``--threads`` overrides it); library users
keep full control of torch's setting.
"""

from __future__ import annotations

import os

import torch

PARALLEL_WORK = 150_000  # elements in a (meta-batch, parameters) tensor from which spinning threads pay
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
