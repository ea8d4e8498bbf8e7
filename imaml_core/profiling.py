"""Seconds and memory per meta-iteration, by method and inner steps (the paper's Figure 2b).

Shared by ``imaml profile`` and ``bench/``. Each row is measured on a fresh trainer with identical tasks
(same seed), after one warm-up iteration; times are medians. For iMAML rows the straightforward per-task
loop of the same algorithm can be timed in the same run, for the speed-up column: engine and loop
iterations alternate, so both see the same machine load (a shared machine's load drifts by seconds).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

import torch

from .config import ExperimentConfig
from .reference_loop import per_task_step
from .threads import use_threads_for
from .trainer import MetaTrainer


def _sync(trainer: MetaTrainer) -> None:
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)


def time_steps(trainer: MetaTrainer, iterations: int) -> tuple[float, int]:
    """Median seconds per meta-iteration and median memory bytes (memory from the engine's probe)."""
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


def _timed(trainer: MetaTrainer, run: Callable[[MetaTrainer], object]) -> float:
    _sync(trainer)
    start = time.perf_counter()
    run(trainer)
    _sync(trainer)
    return time.perf_counter() - start


def compare_with_loop(cfg: ExperimentConfig, rounds: int, engine_per_round: int = 5) -> tuple[float, float]:
    """Median seconds per meta-iteration of the engine and of the per-task loop, measured in alternating
    blocks (one loop iteration, then ``engine_per_round`` engine iterations) so that both see the same load.
    """
    engine, loop = MetaTrainer(cfg), MetaTrainer(cfg)
    engine.step()
    per_task_step(loop)  # warm-ups
    engine_s: list[float] = []
    loop_s: list[float] = []
    for _ in range(rounds):
        loop_s.append(_timed(loop, per_task_step))
        engine_s += [_timed(engine, MetaTrainer.step) for _ in range(engine_per_round)]
    return statistics.median(engine_s), statistics.median(loop_s)


def profile_rows(
    base: ExperimentConfig,
    methods: Iterable[str],
    inner_steps: Iterable[int],
    iterations: int = 5,
    compare_loop: bool = True,
    loop_iterations: int | None = None,
    auto_threads: bool = True,
) -> list[dict[str, object]]:
    """One row per (method, inner steps): seconds_per_iteration, memory_bytes, and for iMAML the loop's.

    With ``auto_threads`` each row runs with the engine's CPU thread policy (threads.py); the per-task loop
    of a row runs with the same thread count as the engine, so the speed-up compares like with like.
    """
    rows: list[dict[str, object]] = []
    for method in methods:
        for steps in inner_steps:
            cfg = base.replace(method=method, inner_steps=steps, val_every=0)
            trainer = MetaTrainer(cfg)
            threads = use_threads_for(cfg.meta_batch, trainer.theta.numel(), trainer.device) if auto_threads else 0
            seconds, memory = time_steps(trainer, iterations)
            row: dict[str, object] = {
                "method": method,
                "inner_solver": cfg.inner_solver if method == "imaml" else "gd",
                "inner_steps": steps,
                "meta_batch": cfg.meta_batch,
                "seconds_per_iteration": seconds,
                "memory_bytes": memory,
                "threads": threads or torch.get_num_threads(),
            }
            if compare_loop and method == "imaml":
                engine_s, loop_s = compare_with_loop(cfg, loop_iterations or max(1, min(iterations, 5)))
                row["loop_seconds_per_iteration"] = loop_s
                row["engine_seconds_alongside_loop"] = engine_s
                row["speedup_vs_loop"] = loop_s / engine_s
            rows.append(row)
    return rows
