"""Seconds per meta-iteration of the batched engine against a per-task Python loop of the same algorithm.

Engine: ``MetaTrainer.step`` (all tasks of the meta-batch in one (B, P) tensor). Loop: the reference
``bench.reference_loop.careful_meta_gradient`` (plain autograd task by task, the gradient graph at φ built
once per task and reused by every CG product; the same sampling and Adam step), the fastest of the per-task
loops in ``bench.loops``; tests/test_batched.py checks that both give the same meta-gradient.
Both run the default config (iMAML-GD, λ 20, 10 inner steps, 5 CG steps, 10 shots) on two trainers with
the same seed, timed alternately in the same run so that background load hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from imaml_core import ExperimentConfig, MetaTrainer  # noqa: E402
from imaml_core.engine.threads import recommended_threads  # noqa: E402

from .common import (
    THREADS,
    add_device_option,
    device_name,
    markdown_table,
    parse_args,
    setup_timing,
    sync,
    write_csv,
    write_markdown,
)  # noqa: E402
from .reference_loop import per_task_step  # noqa: E402

SPEEDUP_TARGET = 30.0  # the project's goal: the engine >= 30x faster than the reference loop at meta-batch 25
SCALING_TARGET = 8.0  # and at meta-batch 400 <= 8x its own time at meta-batch 25


def _timed(fn: Callable[[], object], device: str) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call (CPU time is less disturbed by background load)."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def alternate(
    engine: Callable[[], object], loop: Callable[[], object], engine_reps: int, loop_reps: int, device: str = "cpu"
) -> dict[str, float]:
    """Median wall and CPU seconds of both, one warm-up each, timed in alternation.

    While the loop still has runs to do, each round times it, then the engine right after it ("cold": the
    loop's hundreds of milliseconds of small allocations have just evicted the engine's working set from the
    caches); every round then times the engine again right after that step, the steady state of a training
    run, where meta-iterations follow each other. So the cold median has as many samples as the loop's. The
    speed-up is judged on the steady state; the cold figure is reported next to it."""
    engine()
    loop()
    eng: list[tuple[float, float]] = []
    cold: list[tuple[float, float]] = []
    lp: list[tuple[float, float]] = []
    for i in range(max(engine_reps, loop_reps)):
        if i < loop_reps:
            lp.append(_timed(loop, device))
            cold.append(_timed(engine, device))
        if i < engine_reps:
            eng.append(_timed(engine, device))
    return {
        "engine_seconds": statistics.median(t[0] for t in eng),
        "loop_seconds": statistics.median(t[0] for t in lp),
        "engine_cold_seconds": statistics.median(t[0] for t in cold),
        "engine_cpu_seconds": statistics.median(t[1] for t in eng),
        "loop_cpu_seconds": statistics.median(t[1] for t in lp),
        "engine_repeats": len(eng),
        "loop_repeats": len(lp),
    }


def measure(
    batches: Sequence[int], engine_reps: int, loop_reps: dict[int, int], device: str = "cpu", compile: bool = False
) -> list[dict]:
    rows = []
    for b in batches:
        cfg = ExperimentConfig(meta_batch=b, val_every=0, device=device, compile=compile)
        engine, reference = MetaTrainer(cfg), MetaTrainer(cfg)
        t = alternate(engine.step, lambda r=reference: per_task_step(r), engine_reps, loop_reps[b], device)
        rows.append(
            {
                "meta_batch": b,
                **t,
                "speedup": t["loop_seconds"] / t["engine_seconds"],
                "speedup_cold": t["loop_seconds"] / t["engine_cold_seconds"],
                "speedup_cpu": t["loop_cpu_seconds"] / t["engine_cpu_seconds"],
                "engine_ms_per_task": t["engine_seconds"] / b * 1e3,
                "loop_ms_per_task": t["loop_seconds"] / b * 1e3,
            }
        )
    ref = next((r for r in rows if r["meta_batch"] == 25), None)
    for r in rows:
        r["engine_vs_batch25"] = r["engine_seconds"] / ref["engine_seconds"] if ref else float("nan")
    return rows


def paired_scaling(small: int, large: int, reps: int, device: str = "cpu", compile: bool = False) -> dict[str, float]:
    """Engine time at meta-batch ``large`` over ``small``, all timed alternately in one run.

    The table's per-batch rows are measured minutes apart, and on a shared machine the speed of the whole
    machine drifts by more than the ratio's margin in that time; alternating puts everything under the same
    load, as the engine-vs-loop speed-up already is. Each round times ``small`` on one thread, ``large`` on
    one thread and, on CPU, ``large`` on the threads ``imaml train`` picks for it (imaml_core/engine/threads.py),
    all against the same ``small`` denominator. Each timed step follows an untimed one with the same thread
    count: a one-thread step right after a two-thread one measured 9-15% slower (the other thread's pool is
    still winding down), which would flatter the ratio."""
    trainers = [
        MetaTrainer(ExperimentConfig(meta_batch=b, val_every=0, device=device, compile=compile)) for b in (small, large)
    ]
    runs = [(trainers[0], THREADS), (trainers[1], THREADS)]
    policy = recommended_threads(large, trainers[1].theta.numel())
    if device == "cpu" and policy != THREADS:
        runs.append((trainers[1], policy))
    times: list[list[tuple[float, float]]] = [[] for _ in runs]
    try:
        for _ in range(reps):
            for (trainer, n), out in zip(runs, times, strict=True):
                torch.set_num_threads(n)
                trainer.step()  # settles the thread pool after the switch; not timed
                out.append(_timed(trainer.step, device))
    finally:
        torch.set_num_threads(THREADS)
    (s_wall, s_cpu), (l_wall, l_cpu), *rest = ([statistics.median(t[i] for t in ts) for i in (0, 1)] for ts in times)
    p_wall, p_cpu = rest[0] if rest else (l_wall, l_cpu)
    return {
        "small": small,
        "large": large,
        "ratio": l_wall / s_wall,
        "ratio_cpu": l_cpu / s_cpu,
        "small_seconds": s_wall,
        "large_seconds": l_wall,
        "policy_threads": policy if rest else THREADS,
        "policy_ratio": p_wall / s_wall,
        "policy_ratio_cpu": p_cpu / s_cpu,
        "policy_seconds": p_wall,
        "repeats": reps,
    }


def plot(rows: list[dict], path: Path, where: str) -> None:
    fig, (t_ax, s_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    b = [r["meta_batch"] for r in rows]
    t_ax.loglog(b, [r["engine_seconds"] for r in rows], "o-", label="engine (batched)")
    t_ax.loglog(b, [r["loop_seconds"] for r in rows], "s-", label="reference per-task loop")
    t_ax.set(xlabel="meta-batch", ylabel="seconds per meta-iteration (median)", title="Time per meta-iteration")
    s_ax.semilogx(b, [r["speedup"] for r in rows], "o-", label="wall-clock")
    s_ax.semilogx(b, [r["speedup_cpu"] for r in rows], "s--", label="CPU time")
    s_ax.axhline(SPEEDUP_TARGET, color="grey", ls="--", lw=1, label=f"{SPEEDUP_TARGET:g}× (target at B=25)")
    s_ax.set(xlabel="meta-batch", ylabel="loop / engine", title="Speed-up of the batched engine")
    for ax in (t_ax, s_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"iMAML-GD, 10 inner steps, 5 CG steps, 10 shots, {where}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def summary(rows: list[dict], where: str, paired: dict[str, float] | None = None) -> str:
    out = [
        f"## Batching: engine vs the reference per-task loop ({where})",
        "",
        "Default config (iMAML-GD, λ 20, 10 inner steps, 5 CG steps, 10 shots); the loop is `bench.reference_loop`'s "
        "careful loop (the fastest per-task loop, see the next table); medians, engine and loop "
        "timed alternately in the same run. Wall-clock milliseconds; the (CPU time) columns use the process's "
        "CPU time instead, which background load disturbs less (under load a long loop iteration is "
        'preempted more often than a short engine step, which inflates the wall-clock speed-up). "engine ms" '
        'is a step that follows another engine step, as in training; "right after the loop" is the step '
        "that follows a loop iteration, whose allocations have evicted the engine's working set from the caches.",
        "",
    ]
    table = [
        [
            r["meta_batch"],
            r["engine_seconds"] * 1e3,
            r["loop_seconds"] * 1e3,
            r["speedup"],
            r["speedup_cpu"],
            r["engine_cold_seconds"] * 1e3,
            r["speedup_cold"],
            r["engine_vs_batch25"],
            f"{r['engine_repeats']} / {r['loop_repeats']}",
        ]
        for r in rows
    ]
    out += [
        markdown_table(
            [
                "meta-batch",
                "engine ms",
                "loop ms",
                "speed-up",
                "(CPU time)",
                "engine ms right after the loop",
                "speed-up (that step)",
                "engine / engine@25",
                "runs",
            ],
            table,
        )
    ]
    by_b = {r["meta_batch"]: r for r in rows}
    out.append("")
    if 25 in by_b:
        r = by_b[25]
        wall, cpu = r["speedup"], r["speedup_cpu"]
        out.append(
            f"- Speed-up at meta-batch 25 (target ≥ {SPEEDUP_TARGET:g}×): {wall:.1f}× wall-clock "
            f"({_verdict(wall >= SPEEDUP_TARGET)}), {cpu:.1f}× CPU time ({_verdict(cpu >= SPEEDUP_TARGET)}); "
            f"timing instead the engine step right after a loop iteration: {r['speedup_cold']:.1f}×"
        )
    if 400 in by_b and 25 in by_b:
        out.append(
            f"- Engine time at meta-batch 400 / 25, from the rows above (measured minutes apart): "
            f"{by_b[400]['engine_vs_batch25']:.2f}× wall-clock"
        )
    if paired:
        p = paired
        ms = f"{p['small_seconds'] * 1e3:.3g} ms at {p['small']}"
        out.append(
            f"- Engine time at meta-batch {p['large']} / {p['small']}, timed alternately in one loop ({p['repeats']} "
            f"rounds, each timed step after an untimed one; target ≤ {SCALING_TARGET:g}×): one thread each "
            f"{p['ratio']:.2f}× wall-clock ({_verdict(p['ratio'] <= SCALING_TARGET)}; {p['large_seconds'] * 1e3:.3g} "
            f"ms / {ms}), {p['ratio_cpu']:.2f}× CPU time"
        )
        if p["policy_threads"] != THREADS:
            out.append(
                f"- The same rounds with meta-batch {p['large']} on the {p['policy_threads']} threads `imaml train` "
                f"picks for it (imaml_core/engine/threads.py; {THREADS} at {p['small']}): "
                f"{p['policy_ratio']:.2f}× wall-clock "
                f"({_verdict(p['policy_ratio'] <= SCALING_TARGET)}; {p['policy_seconds'] * 1e3:.3g} ms / {ms}), "
                f"at {p['policy_ratio_cpu']:.2f}× the CPU time (both cores busy: not a measure of the target)"
            )
    return "\n".join(out)


def _options(parser: argparse.ArgumentParser) -> None:
    add_device_option(parser)
    parser.add_argument(
        "--batches",
        type=lambda t: [int(v) for v in t.split(",")],
        default=None,
        help="comma-separated meta-batch sizes (default 1,5,25,100,400)",
    )
    parser.add_argument("--compile", action="store_true", help="engine with torch.compile (write to another --out)")


def loop_repeats(batch: int) -> int:
    """Fewer runs of the slow per-task loop at large meta-batches (each run there lasts seconds)."""
    if batch <= 25:
        return 21
    return 5 if batch <= 100 else 2 if batch <= 400 else 1


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    setup_timing()
    if args.quick:
        batches, engine_reps, loop_reps = args.batches or [1, 5, 25], 5, {b: 2 for b in args.batches or [1, 5, 25]}
    else:
        batches, engine_reps = args.batches or [1, 5, 25, 100, 400], 21
        loop_reps = {b: loop_repeats(b) for b in batches}
    rows = measure(batches, engine_reps, loop_reps, args.device, args.compile)
    paired = None
    if 25 in batches and 400 in batches:
        paired = paired_scaling(25, 400, 5 if args.quick else 21, args.device, args.compile)
        write_csv(args.out / "batching_paired.csv", [paired])
    where = device_name(args.device) + (", engine compiled" if args.compile else "")
    write_csv(args.out / "batching.csv", rows)
    plot(rows, args.out / "batching.png", where)
    text = summary(rows, where, paired)
    write_markdown(args.out, "batching", text)
    return text


if __name__ == "__main__":
    main()
