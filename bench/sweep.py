"""Sweep throughput: ``imaml sweep`` (Ray Tune + Optuna + ASHA) against the same trials one after another.

    PYTHONPATH=. .venv/bin/python -m bench.sweep [--quick]

Runs a sweep of 16 trials × 500 meta-iterations (quick: 4 × 50) of the default ``ExperimentConfig`` over
``lam=loguniform:0.5:100`` and ``cg_steps=int:1:10``, metric val_mse, one CPU per trial, Ray started in this
process on loopback without a dashboard (as ``imaml sweep`` does), in a temporary folder. The wall-clock
time covers the whole ``run_sweep`` call, Ray's start and stop included. Then the configs the sweep tried
(``read_sweep(out).trials``) train here one after another, each for all the iterations (no early stopping,
no parallelism), with one torch thread: the sequential baseline. A third row trains each config here for
the iterations it reached in the sweep: the same work, so its ratio shows what Ray's parallelism and
overhead give apart from ASHA's early stopping.

Overhead per trial = (sweep wall − Σ trial training seconds / parallel slots) / trials, where the training
seconds are the trials' ``TrialSummary.seconds`` (their meta-iterations only) and the slots are the
trials Ray runs at once (cores // CPUs per trial).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.engine.threads import available_cores
from imaml_core.experiments.sweep import SearchSpace, SweepSettings, parse_search, read_sweep, run_sweep

from .common import environment, markdown_table, parse_args, setup_timing, write_csv, write_markdown

SEARCH = ("lam=loguniform:0.5:100", "cg_steps=int:1:10")
GOAL = 0.6  # the sweep should take at most this fraction of the sequential time


def sweep(out: Path, base: ExperimentConfig, settings: SweepSettings) -> dict:
    """Run the sweep; its wall time, and when the first trial started / the last one ended."""
    events: list[tuple[float, str]] = []
    start = time.perf_counter()

    def on_event(kind: str, _trial) -> None:
        events.append((time.perf_counter() - start, kind))
        print(f"  {events[-1][0]:7.1f} s  trial {_trial.number} {kind}", flush=True)

    space = SearchSpace.combine([parse_search(text) for text in SEARCH])
    summary = run_sweep(out, base, space, settings, on_event)
    wall = time.perf_counter() - start
    starts = [t for t, kind in events if kind == "started"]
    ends = [t for t, kind in events if kind in ("finished", "pruned", "failed")]
    return {
        "summary": summary,
        "wall": wall,
        "first_start": min(starts) if starts else float("nan"),
        "after_last_end": wall - max(ends) if ends else float("nan"),
    }


def sequential(base: ExperimentConfig, configs: list[dict], iterations: list[int]) -> tuple[float, float]:
    """Each config trained for its ``iterations`` here, one after another: wall and training seconds."""
    start = time.perf_counter()
    training = 0.0
    for values, count in zip(configs, iterations, strict=True):
        trainer = MetaTrainer(base.replace(**values))
        for _ in range(count):
            training += trainer.step().seconds
        trainer.validation_loss()  # the sweep's metric, as the trial's last report computes it
    return time.perf_counter() - start, training


def main() -> None:
    args = parse_args("sweep throughput: Ray Tune + Optuna against one trial after another")
    setup_timing()
    trials, iterations = (4, 50) if args.quick else (16, 500)
    settings = SweepSettings(metric="val_mse", trials=trials, iterations=iterations, cpus_per_trial=1)
    base = ExperimentConfig()
    slots = max(1, available_cores() // settings.cpus_per_trial)
    before = environment()
    with tempfile.TemporaryDirectory() as tmp:
        result = sweep(Path(tmp) / "sweep", base, settings)
        tried = read_sweep(Path(tmp) / "sweep").trials
    counts = {s: sum(t.status == s for t in tried) for s in ("finished", "pruned", "failed")}
    sweep_training = sum(t.seconds for t in tried)
    sweep_iterations = sum(t.iterations for t in tried)
    print(f"sequential: {len(tried)} trials × {iterations} iterations", flush=True)
    seq_wall, seq_training = sequential(base, [t.config for t in tried], [iterations] * len(tried))
    print(f"sequential: the same {sweep_iterations} iterations as the sweep", flush=True)
    same_wall, same_training = sequential(base, [t.config for t in tried], [t.iterations for t in tried])
    after = environment()

    wall = result["wall"]
    overhead = (wall - sweep_training / slots) / len(tried)
    headers = [
        "mode",
        "trials",
        "finished / pruned / failed",
        "meta-iterations",
        "training s",
        "wall s",
        "trials per minute",
        "wall / sequential",
    ]
    table = [
        (
            f"sweep (Ray Tune + Optuna + ASHA, {slots} at once)",
            len(tried),
            f"{counts['finished']} / {counts['pruned']} / {counts['failed']}",
            sweep_iterations,
            sweep_training,
            wall,
            60 * len(tried) / wall,
            wall / seq_wall,
        ),
        (
            "one after another (this process, full length)",
            len(tried),
            f"{len(tried)} / 0 / 0",
            len(tried) * iterations,
            seq_training,
            seq_wall,
            60 * len(tried) / seq_wall,
            1.0,
        ),
        (
            "one after another, each to the iteration the sweep reached",
            len(tried),
            "-",
            sweep_iterations,
            same_training,
            same_wall,
            60 * len(tried) / same_wall,
            same_wall / seq_wall,
        ),
    ]
    rows = [dict(zip(headers, row, strict=True)) for row in table]
    rows[0].update(
        first_trial_started_s=result["first_start"],
        after_last_trial_s=result["after_last_end"],
        overhead_per_trial_s=overhead,
        slots=slots,
    )
    write_csv(args.out / "sweep.csv", rows)
    ratio = wall / seq_wall
    verdict = "met" if ratio <= GOAL else "not met"
    write_markdown(
        args.out,
        "sweep",
        "## Sweep: Ray Tune + Optuna against one trial after another\n\n"
        + markdown_table(headers, table)
        + f"\n\n{trials} trials × {iterations} meta-iterations of the default config, searching "
        + " and ".join(f"`{s}`" for s in SEARCH)
        + f", metric val_mse, 1 CPU (and torch thread) per trial, ASHA reports every {settings.report_every}"
        + " iterations; the baseline trains the configs the sweep tried, each to the end, one after another"
        + " with one torch thread. Sweep wall time is the whole `run_sweep` call: from the call (Ray starting)"
        + f" until the first trial started {result['first_start']:.1f} s, the last trial's end until Ray stopped"
        + f" {result['after_last_end']:.1f} s. Overhead per trial ≈ (sweep wall − Σ trial training seconds /"
        + f" {slots} slots) / trials = ({wall:.1f} − {sweep_training:.1f} / {slots}) / {len(tried)}"
        + f" = {overhead:.2f} s. Goal (sweep ≤ {GOAL}× sequential): {verdict} ({ratio:.2f}×). Against the"
        + f" same {sweep_iterations} meta-iterations one after another (ASHA's savings taken out), the sweep"
        + f" takes {wall / same_wall:.2f}× their time."
        + f" {before['cpu']} ({before['cores']} cores), torch {before['torch']}; load average"
        + f" {before['load_average']} → {after['load_average']}.",
    )


if __name__ == "__main__":
    main()
