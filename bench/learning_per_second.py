"""Post-adaptation MSE on fixed tasks against wall-clock training seconds, every method on the same budget.

Each method meta-trains from the same theta on the same task stream (same seed, default config
otherwise) until its training time reaches the budget; the methods take turns of one second each, so
that background load, which drifts over minutes on a shared machine, is shared fairly. At checkpoints
the clock stops and ``MetaTrainer.evaluate`` measures the mean query MSE of 600 fixed tasks (same seed
for all methods and checkpoints, 10 shots, 10 adaptation steps, each method adapting its own way: iMAML
by its inner solver on the proximal problem, the others by plain GD). Evaluation time is excluded from
the budget.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from imaml_core import ExperimentConfig, MetaTrainer  # noqa: E402

from .common import METHODS, markdown_table, parse_args, setup_timing, write_csv, write_markdown  # noqa: E402

EVAL_SEED = 12345
SHOTS, STEPS = 10, 10
SLICE = 1.0  # seconds of training per method per turn


def checkpoints(budget: float) -> list[float]:
    """Denser early, where the curves move most: 0, budget/16, /8, /4, 3/8, /2, 3/4, 1 (times budget)."""
    return [budget * f for f in (0, 1 / 16, 1 / 8, 1 / 4, 3 / 8, 1 / 2, 3 / 4, 1)]


class Run:
    """One method's trainer and its training clock (evaluation never runs on this clock)."""

    def __init__(self, label: str) -> None:
        method, solver = METHODS[label]
        self.label = label
        self.trainer = MetaTrainer(ExperimentConfig(method=method, inner_solver=solver, val_every=0))
        self.train_s = self.train_cpu = 0.0
        self.diverged = 0

    def train_until(self, until: float) -> None:
        while self.train_s < until:
            wall, cpu = time.perf_counter(), time.process_time()
            self.diverged += self.trainer.step().diverged
            self.train_s += time.perf_counter() - wall
            self.train_cpu += time.process_time() - cpu

    def evaluate(self, eval_tasks: int) -> dict:
        start = time.perf_counter()
        result = self.trainer.evaluate(tasks=eval_tasks, shots=SHOTS, steps=STEPS, seed=EVAL_SEED)
        print(
            f"  {self.label:9s} t={self.train_s:6.1f}s it={self.trainer.iteration:6d} mse={result.mse:.3f}", flush=True
        )
        return {
            "method": self.label,
            "train_seconds": self.train_s,
            "train_cpu_seconds": self.train_cpu,
            "iterations": self.trainer.iteration,
            "diverged_iterations": self.diverged,
            "mse": result.mse,
            "ci95": result.ci95,
            "mse_before_adaptation": result.mse_per_step[0],
            "eval_seconds": time.perf_counter() - start,
        }


def train_all(budget: float, eval_tasks: int) -> list[dict]:
    """Train the methods in turns of ``SLICE`` seconds each, so that changes in background load over the
    minutes of the run hit every method alike; evaluate every method at each checkpoint."""
    runs = [Run(label) for label in METHODS]
    rows: list[dict] = []
    for mark in checkpoints(budget):
        while any(r.train_s < mark for r in runs):
            for r in runs:
                r.train_until(min(mark, r.train_s + SLICE))
        rows += [r.evaluate(eval_tasks) for r in runs]
    return rows


def plot(rows: list[dict], path: Path, budget: float, eval_tasks: int) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label in METHODS:
        sel = [r for r in rows if r["method"] == label]
        x = [r["train_seconds"] for r in sel]
        # No error bars: the 95% intervals (CSV, table) are over tasks, and every method and checkpoint
        # sees the same tasks, so the curves compare paired, much more tightly than the intervals suggest.
        ax.plot(x, [r["mse"] for r in sel], "o-", ms=4, label=label)
    ax.set(
        xlabel="training wall-clock seconds (evaluation excluded)",
        ylabel=f"MSE after {STEPS} steps ({eval_tasks} tasks, {SHOTS} shots)",
        title=f"Learning per second: same {budget:g} s budget, CPU (1 thread)",
    )
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(rows: list[dict], budget: float, eval_tasks: int) -> str:
    marks = checkpoints(budget)
    shown = [marks[2], marks[4], marks[-1]]
    out = [
        "## Learning per second",
        "",
        f"Post-adaptation MSE (± 95% CI) on {eval_tasks} fixed tasks ({SHOTS} shots, {STEPS} adaptation steps) "
        f"after the given training seconds; default config per method (λ 20, 5 CG, 10 inner steps, inner lr 0.01, "
        f"meta-batch 25, Adam 1e-3).",
        "",
    ]
    table = []
    for label in METHODS:
        sel = [r for r in rows if r["method"] == label]
        cells = []
        for mark in shown:
            r = next(r for r in sel if r["train_seconds"] >= mark)
            cells.append(f"{r['mse']:.3f} ± {r['ci95']:.3f}")
        last = sel[-1]
        table.append(
            [
                label,
                last["iterations"],
                last["iterations"] / last["train_seconds"],
                sel[0]["mse"],
                *cells,
                last["diverged_iterations"],
            ]
        )
    headers = ["method", "iterations", "it/s", "MSE at 0 s", *[f"MSE at {m:g} s" for m in shown], "diverged its"]
    out.append(markdown_table(headers, table))
    return "\n".join(out)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", type=float, default=None, help="training seconds per method (default 40)")


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    setup_timing()
    budget = args.budget or (3.0 if args.quick else 40.0)
    eval_tasks = 100 if args.quick else 600
    rows = train_all(budget, eval_tasks)
    write_csv(args.out / "learning_per_second.csv", rows)
    plot(rows, args.out / "learning_per_second.png", budget, eval_tasks)
    text = summary(rows, budget, eval_tasks)
    write_markdown(args.out, "learning_per_second", text)
    return text


if __name__ == "__main__":
    main()
