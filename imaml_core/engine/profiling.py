"""Seconds and memory per meta-iteration, by method and inner steps (the paper's Figure 2b).

Shared by ``imaml profile``, the window's memory plot and ``bench/``. Each row is measured on a fresh
trainer with identical tasks (same seed), after one warm-up iteration; times are medians. The engine
against a per-task loop is a benchmark (``python -m bench.batching``), not part of this profile.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable

import torch

from imaml_core.common.config import ExperimentConfig
from imaml_core.engine.threads import ThreadTuner
from imaml_core.engine.trainer import MetaTrainer


def _sync(trainer: MetaTrainer) -> None:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)


def time_steps(trainer: MetaTrainer, iterations: int, tuner: ThreadTuner | None = None) -> tuple[float, int]:
    """Median seconds per meta-iteration and median memory bytes (memory from the engine's probe). With a
    ``tuner``, its candidates are measured first and the timed steps run on the count it chose."""
    while tuner is not None and tuner.chosen is None:
        tuner.apply()
        tuner.observe(trainer.step().seconds)
    if tuner is not None:
        tuner.apply()
    seconds: list[float] = []
    memory: list[int] = []
    for i in range(iterations + 1):
        _sync(trainer)
        start = time.perf_counter()
        memory.append(trainer.step().memory_bytes)
        _sync(trainer)
        if i:  # the first iteration is a warm-up (allocator, lazy init)
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), int(statistics.median(memory))


def profile_rows(
    base: ExperimentConfig,
    methods: Iterable[str],
    inner_steps: Iterable[int],
    iterations: int = 5,
    auto_threads: bool = True,
) -> list[dict[str, object]]:
    """One row per (method, inner steps): seconds_per_iteration, memory_bytes, threads and the settings.

    With ``auto_threads`` each row measures its thread count on CPU (``ThreadTuner``), as training does.
    """
    rows: list[dict[str, object]] = []
    for method in methods:
        for steps in inner_steps:
            cfg = base.replace(method=method, inner_steps=steps, val_every=0)
            trainer = MetaTrainer(cfg)
            tuner = ThreadTuner() if auto_threads and trainer.device.type == "cpu" else None
            seconds, memory = time_steps(trainer, iterations, tuner)
            row: dict[str, object] = {
                "method": method,
                "inner_solver": cfg.inner_solver if method == "imaml" else "gd",
                "inner_steps": steps,
                "meta_batch": cfg.meta_batch,
                "seconds_per_iteration": seconds,
                "memory_bytes": memory,
                "threads": torch.get_num_threads(),
            }
            rows.append(row)
    return rows
