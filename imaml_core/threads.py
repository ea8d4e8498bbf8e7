"""CPU thread policy for the engine.

A sinusoid meta-iteration is thousands of small operations: spread over several threads, a small one costs
more in synchronisation than it saves, a large one (a big batched matmul, a (B, P) update) runs nearly
twice as fast on two cores. Where the crossover lies depends on how OpenMP's idle threads wait:

- Spinning (OpenMP's default, a headless run): measured on this project's 2-core VM with
  ``python -m bench.threads`` (the same trainer alternating 1 thread and both cores, each timed step after
  an untimed one with the same count; bench/RESULTS.md), six runs: meta-batch 25 of the default net
  0.91-1.09x as fast with 2 threads (a tie), 50 0.97-1.13x (a tie), 100 (176k elements in a (B, P)
  tensor) 1.13-1.47x, 400 1.39-1.71x. So both cores from 150k elements on (meta-batch 86 of the default
  net), a bar placed inside the unmeasured gap between 88k (50 tasks, a tie) and 176k (100 tasks, a win);
  one thread below, where the gain is within noise and a core stays free for other work.
- Sleeping (``OMP_WAIT_POLICY=PASSIVE``, which the window sets so that the GUI thread wins the CPU):
  every parallel region first wakes its threads. Same runs: 2 threads 0.27-0.35x as fast at meta-batch
  25 and 0.54-0.95x at 400 (704k elements); at 4.08M (100 tasks of a 200-200 net) 1.19-1.35x in the
  first four runs, 0.990x and 0.995x (ties) in the latest two. So there one thread up to 4M elements
  (with the default net: every meta-batch the window's slider offers, up to 256), and both cores above,
  where they win or tie.

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
