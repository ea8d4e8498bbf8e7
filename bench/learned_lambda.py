"""Is a learned λ worth it? iMAML with fixed and meta-learned λ against second-order MAML, at equal meta-iterations.

Every variant meta-trains from its seed's θ on its seed's task stream for the same number of
meta-iterations, with the default config otherwise (λ 20, 5 CG steps, 10 inner GD steps of 0.01,
meta-batch 25, Adam 1e-3; learned λ: Adam 1e-2 on log λ, starting at 20):

- fixed λ at the default (20), and at each value of a small grid; the grid's best value is chosen by
  the mean post-adaptation MSE on the fixed validation set (``MetaTrainer.validation_loss``, a task stream
  of its own), never on the evaluation tasks;
- learned λ: one scalar, one per parameter tensor, one per coordinate;
- second-order MAML.

After training, ``MetaTrainer.evaluate`` measures the query MSE of 600 fresh tasks after 10 adaptation
steps from 10 shots (the same evaluation tasks for every variant and seed; iMAML adapts with its own,
possibly learned, λ). Seconds per iteration are medians of the training steps' own timings (one thread).
The variants of a seed run one after the other, seed by seed, so that drifting background load is
shared.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from imaml_core import ExperimentConfig, MetaTrainer  # noqa: E402

from .common import markdown_table, parse_args, setup_timing, write_csv, write_markdown  # noqa: E402

EVAL_SEED = 12345
EVAL_TASKS, SHOTS, STEPS = 600, 10, 10
GRID = (2.0, 5.0, 10.0)  # fixed λ values tried besides the default
TRACE_EVERY = 10  # iterations between the λ samples drawn in the figure
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # Student t quantiles for the across-seed interval


def variants(default_lam: float, grid: Sequence[float]) -> dict[str, dict]:
    """Label -> config changes from the default config, in table order."""
    out: dict[str, dict] = {f"iMAML, fixed λ = {default_lam:g} (default)": {}}
    out |= {f"iMAML, fixed λ = {v:g}": {"lam": v} for v in grid}
    out |= {
        "iMAML, learned scalar λ": {"learn_lam": True},
        "iMAML, learned λ per layer": {"learn_lam": True, "lam_shape": "layer"},
        "iMAML, learned λ per parameter": {"learn_lam": True, "lam_shape": "parameter"},
        "MAML (second order)": {"method": "maml"},
    }
    return out


def train_one(
    label: str, changes: dict, seed: int, iterations: int, eval_tasks: int, curve_every: int = 0
) -> tuple[dict, list, list]:
    """Meta-train one variant, then validate and evaluate it; returns its row, its λ trace and, with
    ``curve_every``, its evaluation MSE every ``curve_every`` iterations against training seconds."""
    trainer = MetaTrainer(ExperimentConfig(seed=seed, val_every=0, **changes))
    seconds: list[float] = []
    trace: list[tuple[int, dict[str, float]]] = []
    curve: list[dict] = []
    diverged = clipped = 0

    def point(train_seconds: float) -> dict:
        mse = trainer.evaluate(tasks=eval_tasks, shots=SHOTS, steps=STEPS, seed=EVAL_SEED).mse
        return {
            "variant": label,
            "seed": seed,
            "iteration": trainer.iteration,
            "train_seconds": train_seconds,
            "mse": mse,
        }

    if curve_every:
        curve.append(point(0.0))
    while trainer.iteration < iterations and diverged < iterations:
        report = trainer.step()
        seconds.append(report.seconds)
        diverged += report.diverged
        clipped += report.lam_clipped
        if trainer.lam_learned and (report.iteration % TRACE_EVERY == 0 or report.iteration == 1):
            trace.append((report.iteration, report.lam_by_layer))
        if curve_every and not report.diverged and trainer.iteration % curve_every == 0:
            curve.append(point(sum(seconds)))
    val = trainer.validation_loss()
    result = trainer.evaluate(tasks=eval_tasks, shots=SHOTS, steps=STEPS, seed=EVAL_SEED)
    lam = report.lam_by_layer
    row = {
        "variant": label,
        "seed": seed,
        "iterations": trainer.iteration,
        "seconds_per_iteration": statistics.median(seconds),
        "train_seconds": sum(seconds),
        "diverged_iterations": diverged,
        "lam_clipped_entries": clipped,
        "lam_geomean": math.exp(statistics.fmean(math.log(v) for v in lam.values())) if lam else math.nan,
        "lam_by_layer": json.dumps({k: round(v, 4) for k, v in lam.items()}, ensure_ascii=False),
        "val_mse": val,
        "mse": result.mse,
        "ci95": result.ci95,
    }
    print(
        f"  seed {seed} {label:32s} it={trainer.iteration} {row['seconds_per_iteration'] * 1e3:6.2f} ms/it "
        f"val={val:.3f} mse={result.mse:.3f}±{result.ci95:.3f} λ={row['lam_by_layer']}",
        flush=True,
    )
    return row, trace, curve


def at_seconds(curve: list[dict], seconds: float) -> float:
    """The MSE of an evaluation curve (which starts at 0 s) at ``seconds`` of training, interpolated
    linearly between its points (its last point beyond them)."""
    points = [(c["train_seconds"], c["mse"]) for c in curve]
    for (t0, m0), (t1, m1) in zip(points, points[1:], strict=False):
        if seconds <= t1:
            return m0 + (m1 - m0) * (seconds - t0) / (t1 - t0)
    return points[-1][1]


def seed_interval(values: list[float]) -> float:
    """95% half-width of the mean over seeds (Student t), NaN for one seed."""
    n = len(values)
    return T95.get(n - 1, 1.96) * statistics.stdev(values) / math.sqrt(n) if n > 1 else math.nan


def best_fixed(rows: list[dict], labels: list[str]) -> str:
    """The fixed-λ variant with the lowest mean validation MSE over seeds."""
    return min(labels, key=lambda lb: statistics.fmean(r["val_mse"] for r in rows if r["variant"] == lb))


def is_maml(label: str) -> bool:
    return label.startswith("MAML")


def summary(
    rows: list[dict],
    labels: list[str],
    best: str,
    curves: list[dict],
    iterations: int,
    seeds: Sequence[int],
    eval_tasks: int,
) -> str:
    table = []
    for label in labels:
        sel = [r for r in rows if r["variant"] == label]
        mses = [r["mse"] for r in sel]
        maml_then = [at_seconds([c for c in curves if c["seed"] == r["seed"]], r["train_seconds"]) for r in sel]
        name = f"{label} ← best of grid" if label == best else label
        table.append(
            [
                name,
                math.nan if is_maml(label) else statistics.fmean(r["lam_geomean"] for r in sel),
                statistics.fmean(r["val_mse"] for r in sel),
                f"{statistics.fmean(mses):.3f}" + (f" ± {seed_interval(mses):.3f}" if len(mses) > 1 else ""),
                " / ".join(f"{r['mse']:.3f}" for r in sel),
                statistics.fmean(r["ci95"] for r in sel),
                1e3 * statistics.median(r["seconds_per_iteration"] for r in sel),
                math.nan if is_maml(label) or not curves else statistics.fmean(maml_then),
                sum(r["diverged_iterations"] for r in sel),
            ]
        )
    headers = [
        "variant",
        "λ at the end (geo. mean)",
        "validation MSE",
        f"MSE, mean of {len(seeds)} seeds ± 95% (seeds)",
        "MSE per seed",
        "± 95% (tasks), per seed",
        "ms / iteration",
        "MAML's MSE after the same training seconds",
        "diverged its",
    ]
    lines = [
        "## Learned λ: fixed, learned scalar, per layer, per parameter, and MAML",
        "",
        f"`PYTHONPATH=. .venv/bin/python -m bench.learned_lambda`: {iterations:,} meta-iterations per variant, "
        f"seeds {', '.join(map(str, seeds))}, default config otherwise (λ starts at 20, Adam 1e-2 on log λ, "
        f"λ kept in [1e-3, 1e4]). MSE: query MSE of {eval_tasks} fixed tasks after {STEPS} adaptation steps from "
        f"{SHOTS} shots (iMAML adapts with its own λ). The grid's best fixed λ is chosen on the validation set. "
        "ms / iteration: median of the training steps, one thread. The MAML column reads MAML's own "
        f"evaluation curve (every {max(iterations // 20, 1)} iterations, same seed) at the training seconds this "
        "variant took for its iterations: the comparison at equal wall-clock time.",
        "",
        markdown_table(headers, table),
    ]
    return "\n".join(lines)


def plot(rows: list[dict], labels: list[str], traces: dict[str, list], path: Path, iterations: int) -> None:
    fig, (ax, ax_lam) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.15, 1]})
    short = [lb.replace("iMAML, ", "").replace(" (second order)", "") for lb in labels]
    for i, label in enumerate(labels):
        mses = [r["mse"] for r in rows if r["variant"] == label]
        mean = statistics.fmean(mses)
        colour = "tab:red" if is_maml(label) else "tab:blue"
        ax.bar(i, mean, color=colour, alpha=0.35)
        if len(mses) > 1:
            ax.errorbar(i, mean, yerr=seed_interval(mses), color="k", capsize=4, lw=1)
        ax.plot([i] * len(mses), mses, "o", color=colour, ms=4)
    ax.set_xticks(range(len(labels)), short, rotation=35, ha="right", fontsize=8)
    ax.set(ylabel=f"MSE after {STEPS} steps ({SHOTS} shots)", title=f"Post-adaptation MSE after {iterations:,} its")
    ax.grid(True, axis="y", alpha=0.3)
    for label, trace in traces.items():
        if not trace:
            continue
        its = [t[0] for t in trace]
        for key in trace[0][1]:
            style = "k--" if key == "λ" else "-"
            ax_lam.plot(its, [t[1][key] for t in trace], style, lw=1.2, label=f"{key} ({label})")
    ax_lam.set_yscale("log")
    ax_lam.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax_lam.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
    ax_lam.set(xlabel="meta-iteration", ylabel="λ", title="Learned λ (seed 0): per layer, and the scalar")
    ax_lam.grid(True, which="both", alpha=0.3)
    ax_lam.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=int, default=None, help="meta-iterations per variant (default 2000)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3)")


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    setup_timing()
    iterations = args.iterations or (40 if args.quick else 2000)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    eval_tasks = 100 if args.quick else EVAL_TASKS
    default_lam = ExperimentConfig().lam
    grid = (5.0,) if args.quick else GRID
    plan = variants(default_lam, grid)
    labels = list(plan)
    fixed = labels[: 1 + len(grid)]
    rows: list[dict] = []
    curves: list[dict] = []
    traces: dict[str, list] = {}
    for seed in seeds:
        for label, changes in plan.items():
            every = max(iterations // 20, 1) if is_maml(label) else 0
            row, trace, curve = train_one(label, changes, seed, iterations, eval_tasks, every)
            rows.append(row)
            curves += curve
            if seed == seeds[0] and trace and "parameter" not in label:
                traces["per layer" if "layer" in label else "scalar"] = trace
    best = best_fixed(rows, fixed)
    write_csv(args.out / "learned_lambda.csv", rows)
    write_csv(args.out / "learned_lambda_maml_curve.csv", curves)
    write_csv(
        args.out / "learned_lambda_trace.csv",
        [{"variant": k, "iteration": it, **lam} for k, trace in traces.items() for it, lam in trace],
    )
    plot(rows, labels, traces, args.out / "learned_lambda.png", iterations)
    text = summary(rows, labels, best, curves, iterations, seeds, eval_tasks)
    write_markdown(args.out, "learned_lambda", text)
    return text


if __name__ == "__main__":
    main()
