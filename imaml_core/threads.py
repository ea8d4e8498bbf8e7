"""CPU thread policy for the engine.

A sinusoid meta-iteration is thousands of tiny operations: spreading each over several threads costs more
in synchronisation than it saves (measured here: meta-batch 25 ran ~15x slower with 2 threads than with 1
while another process used the other core), while meta-batch 400 gains from a second thread. The CLI and
the GUI call ``use_threads_for`` before training; library users keep full control of torch's setting.
"""

from __future__ import annotations

import os

import torch

SMALL_WORK = 250_000  # elements in a (meta-batch, parameters) tensor below which one thread is faster


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
