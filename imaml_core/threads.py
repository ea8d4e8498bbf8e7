"""CPU thread policy for the engine.

A sinusoid meta-iteration is thousands of small operations: spreading each over several threads costs more
in synchronisation than it saves. Measured here (2 cores, another process busy): meta-batch 25 took 14 ms
with 1 thread and 82 ms with 2 (OMP_WAIT_POLICY=PASSIVE; ~340 ms with OpenMP's default spinning);
meta-batch 400 took 0.20 s with 1 thread and 0.29 s with 2. So one thread unless a batched tensor is
really large. The CLI calls ``use_threads_for`` before training (``--threads`` overrides it); library users
keep full control of torch's setting.
"""

from __future__ import annotations

import os

import torch

SMALL_WORK = 4_000_000  # elements in a (meta-batch, parameters) tensor below which one thread is faster


def recommended_threads(meta_batch: int, n_params: int) -> int:
    """One thread for small batched tensors, every available core for large ones."""
    if meta_batch * n_params < SMALL_WORK:
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def use_threads_for(meta_batch: int, n_params: int, device: torch.device) -> int:
    """Apply the recommendation on CPU (GPU runs keep torch's default); returns the thread count in use."""
    if device.type == "cpu":
        torch.set_num_threads(recommended_threads(meta_batch, n_params))
    return torch.get_num_threads()
