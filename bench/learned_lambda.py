"""Is a learned λ worth it? iMAML with fixed and meta-learned λ against second-order MAML, at equal meta-iterations.

Every variant meta-trains from its seed's θ on its seed's task stream for the same number of
meta-iterations, with the default config otherwise (λ 20, 5 CG steps, 10 inner steps, inner GD step
0.01, meta-batch 25, Adam 1e-3; a learned λ starts at 20 and moves by Adam 1e-2 on log λ):

- iMAML with its default inner solver (GD): fixed λ at the default and at each value of a small grid,
  whose best value is chosen by the mean post-adaptation MSE on the fixed validation set
  (``MetaTrainer.validation_loss``, a task stream of its own), never on the evaluation tasks; and learned
  λ: one scalar, one per parameter tensor, one per coordinate;
- iMAML with the Newton-CG inner solver (HF), which solves the proximal problem to the accuracy the
  implicit gradient assumes: fixed λ at the default, and the three learned shapes;
- second-order MAML.

After training, ``MetaTrainer.evaluate`` measures the query MSE of 600 fresh tasks after 10 adaptation
steps from 10 shots (the same evaluation tasks for every variant and seed; each method adapts its own
way, iMAML with its inner solver and its own, possibly learned, λ). Seconds per iteration are medians of
the training steps' own timings (one thread). MAML also records its evaluation MSE every 5% of the
iterations and trains on past them until it has used as much training time as the slowest variant of
its seed, so that every variant can be compared with MAML after the same training seconds. The variants
of a seed run one after the other, seed by seed, so that drifting background load is shared.
"""

from __future__ import annotations

import argparse
import csv
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
from imaml_core.common.stats import mean_ci95

from .common import markdown_table, parse_args, setup_timing, write_csv, write_markdown  # noqa: E402

EVAL_SEED = 12345
EVAL_TASKS, SHOTS, STEPS = 600, 10, 10
GRID = (5.0, 10.0, 50.0)  # fixed λ values tried besides the default (iMAML-GD)
TRACE_EVERY = 10  # iterations between the λ samples drawn in the figure
MAML_LIMIT = 10  # MAML's equal-time curve stops at this many times the variants' iterations
LEARNED = {"scalar": "learned scalar λ", "layer": "learned λ per layer", "parameter": "learned λ per parameter"}


def variants(default_lam: float, grid: Sequence[float], quick: bool) -> dict[str, dict]:
    """Label -> config changes from the default config, in table order (MAML last)."""
    out: dict[str, dict] = {f"iMAML-GD, fixed λ = {default_lam:g} (default)": {}}
    out |= {f"iMAML-GD, fixed λ = {v:g}": {"lam": v} for v in grid}
    out |= {f"iMAML-GD, {name}": {"learn_lam": True, "lam_shape": shape} for shape, name in LEARNED.items()}
    out[f"iMAML-HF, fixed λ = {default_lam:g}"] = {"inner_solver": "hf"}
    hf_shapes = ("layer",) if quick else tuple(LEARNED)
    out |= {f"iMAML-HF, {LEARNED[s]}": {"inner_solver": "hf", "learn_lam": True, "lam_shape": s} for s in hf_shapes}
    out["MAML (second order)"] = {"method": "maml"}
    return out


def is_maml(label: str) -> bool:
    return label.startswith("MAML")


def train_one(
    label: str,
    changes: dict,
    seed: int,
    iterations: int,
    eval_tasks: int,
    curve_every: int = 0,
    until_seconds: float = 0.0,
) -> tuple[dict, list, list]:
    """Meta-train one variant for ``iterations``, then validate and evaluate it.

    Returns its row, its λ trace and, with ``curve_every``, its evaluation MSE every ``curve_every``
    iterations against training seconds, training on past ``iterations`` until the curve has a point at or
    beyond ``until_seconds`` (at most ``MAML_LIMIT`` times the iterations)."""
    trainer = MetaTrainer(ExperimentConfig(seed=seed, val_every=0, **changes))
    seconds: list[float] = []
    trace: list[tuple[int, dict[str, float]]] = []
    curve: list[dict] = []
    row: dict = {}
    diverged = clipped = 0

    def point() -> dict:
        mse = trainer.evaluate(tasks=eval_tasks, shots=SHOTS, steps=STEPS, seed=EVAL_SEED).mse
        return {
            "variant": label,
            "seed": seed,
            "iteration": trainer.iteration,
            "train_seconds": sum(seconds),
            "mse": mse,
        }

    if curve_every:
        curve.append(point())
    while diverged < iterations:
        if trainer.iteration >= iterations and not row:
            row = _row(trainer, label, seed, seconds, diverged, clipped, eval_tasks)
        past = bool(curve) and curve[-1]["train_seconds"] >= until_seconds  # a curve point beyond every variant
        if row and (not curve_every or past or trainer.iteration >= MAML_LIMIT * iterations):
            break
        report = trainer.step()
        seconds.append(report.seconds)
        diverged += report.diverged
        clipped += report.lam_clipped
        if trainer.lam_learned and (report.iteration % TRACE_EVERY == 0 or report.iteration == 1):
            trace.append((report.iteration, report.lam_by_layer))
        if curve_every and not report.diverged and trainer.iteration % curve_every == 0:
            curve.append(point())
    return row or _row(trainer, label, seed, seconds, diverged, clipped, eval_tasks), trace, curve


def _row(
    trainer: MetaTrainer, label: str, seed: int, seconds: list[float], diverged: int, clipped: int, eval_tasks: int
) -> dict:
    """Validation and evaluation of ``trainer`` as it is now, with its training statistics."""
    val = trainer.validation_loss()
    result = trainer.evaluate(tasks=eval_tasks, shots=SHOTS, steps=STEPS, seed=EVAL_SEED)
    lam = trainer.current_lam()
    by_layer = {"λ": lam} if isinstance(lam, float) else {k: float(v.log().mean().exp()) for k, v in lam.items()}
    maml = is_maml(label)
    row = {
        "variant": label,
        "seed": seed,
        "iterations": trainer.iteration,
        "seconds_per_iteration": statistics.median(seconds),
        "train_seconds": sum(seconds),
        "diverged_iterations": diverged,
        "lam_clipped_entries": clipped,
        "lam_geomean": math.nan if maml else math.exp(statistics.fmean(math.log(v) for v in by_layer.values())),
        "lam_by_layer": "" if maml else json.dumps({k: round(v, 4) for k, v in by_layer.items()}, ensure_ascii=False),
        "val_mse": val,
        "mse": result.mse,
        "ci95": result.ci95,
        "mse_before_adaptation": result.mse_per_step[0],
    }
    print(
        f"  seed {seed} {label:36s} it={trainer.iteration} {row['seconds_per_iteration'] * 1e3:6.2f} ms/it "
        f"val={val:.3f} mse={result.mse:.3f}±{result.ci95:.3f} λ={row['lam_by_layer']}",
        flush=True,
    )
    return row


def at_seconds(curve: list[dict], seconds: float) -> tuple[float, bool]:
    """The MSE of an evaluation curve (which starts at 0 s) at ``seconds`` of training, interpolated
    linearly between its points, and whether ``seconds`` lies beyond its end (then: its last point)."""
    points = [(c["train_seconds"], c["mse"]) for c in curve]
    for (t0, m0), (t1, m1) in zip(points, points[1:], strict=False):
        if seconds <= t1:
            return m0 + (m1 - m0) * (seconds - t0) / (t1 - t0), False
    return points[-1][1], True


def seed_interval(values: list[float]) -> float:
    """95% half-width of the mean over seeds (Student t), NaN for one seed."""
    return mean_ci95(values)[1]


def best_fixed(rows: list[dict], labels: list[str]) -> str:
    """The fixed-λ variant with the lowest mean validation MSE over seeds."""
    return min(labels, key=lambda lb: statistics.fmean(r["val_mse"] for r in rows if r["variant"] == lb))


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
        then = [at_seconds([c for c in curves if c["seed"] == r["seed"]], r["train_seconds"]) for r in sel]
        maml_then = "—"
        if not is_maml(label) and curves:
            maml_then = f"{statistics.fmean(m for m, _ in then):.3f}" + (" (end)" if any(e for _, e in then) else "")
        table.append(
            [
                f"{label} ← best of grid" if label == best else label,
                statistics.fmean(r["lam_geomean"] for r in sel),
                statistics.fmean(r["val_mse"] for r in sel),
                f"{statistics.fmean(mses):.3g}" + (f" ± {seed_interval(mses):.2g}" if len(mses) > 1 else ""),
                " / ".join(f"{r['mse']:.3g}" for r in sel),
                statistics.fmean(r["ci95"] for r in sel),
                1e3 * statistics.median(r["seconds_per_iteration"] for r in sel),
                maml_then,
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
        f"{SHOTS} shots, each method adapting its own way (iMAML with its inner solver and its own λ). The grid's "
        "best fixed λ is chosen on the validation set. ms / iteration: median of the training steps, one thread. "
        "The MAML column reads MAML's own evaluation curve (same seed) at the training seconds this variant took "
        "for its iterations: the comparison at equal wall-clock time ('(end)': in some seed, past the end of "
        "MAML's curve, whose last point is used).",
        "",
        markdown_table(headers, table),
    ]
    return "\n".join(lines)


def plot(rows: list[dict], labels: list[str], traces: dict[str, list], path: Path, iterations: int) -> None:
    fig, (ax, ax_lam) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.2, 1]})
    means = [statistics.fmean(r["mse"] for r in rows if r["variant"] == label) for label in labels]
    top = 4 * statistics.median(means)  # a diverged variant is written above the axis, not drawn to scale
    for i, (label, mean) in enumerate(zip(labels, means, strict=True)):
        mses = [r["mse"] for r in rows if r["variant"] == label]
        colour = "tab:red" if is_maml(label) else ("tab:green" if "HF" in label else "tab:blue")
        if mean > top:
            ax.annotate(f"{mean:.2g}\n(off scale)", (i, top), ha="center", va="top", fontsize=7, color=colour)
            continue
        ax.bar(i, mean, color=colour, alpha=0.35)
        if len(mses) > 1:
            ax.errorbar(i, mean, yerr=seed_interval(mses), color="k", capsize=4, lw=1)
        ax.plot([i] * len(mses), mses, "o", color=colour, ms=4)
    ax.set_xticks(range(len(labels)), [lb.replace(" (second order)", "") for lb in labels], rotation=40, ha="right")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_yscale("log")
    ax.set_ylim(0.5 * min(r["mse"] for r in rows), top)
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.set(ylabel=f"MSE after {STEPS} steps ({SHOTS} shots)", title=f"Post-adaptation MSE after {iterations:,} its")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for label, trace in traces.items():
        style = "-" if "HF" in label else "--"
        for k, key in enumerate(trace[0][1]):
            colour = "k" if key == "λ" else colours[k % len(colours)]
            name = f"{label.split(',')[0]} {key}"
            ax_lam.plot([t[0] for t in trace], [t[1][key] for t in trace], style, color=colour, lw=1.1, label=name)
    ax_lam.set_yscale("log")
    ax_lam.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax_lam.set(
        xlabel="meta-iteration", ylabel="λ", title="Learned λ per layer and scalar (seed 0): HF solid, GD dashed"
    )
    ax_lam.grid(True, which="both", alpha=0.3)
    ax_lam.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=int, default=None, help="meta-iterations per variant (default 2000)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3)")
    parser.add_argument("--collect", action="store_true", help="train nothing: table and figure from the saved CSVs")


def _read_csv(path: Path) -> list[dict]:
    """Rows of a CSV this script wrote, with numbers as numbers."""

    def value(text: str) -> object:
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    with path.open(newline="", encoding="utf-8") as fh:
        return [
            {k: value(v) if k not in ("variant", "lam_by_layer") else v for k, v in r.items()}
            for r in csv.DictReader(fh)
        ]


def collect(out: Path) -> str:
    """The table and figure of the last run, from its CSVs in ``out``."""
    rows = _read_csv(out / "learned_lambda.csv")
    curves = _read_csv(out / "learned_lambda_maml_curve.csv")
    traces: dict[str, list] = {}
    for r in _read_csv(out / "learned_lambda_trace.csv"):
        lam = {k: v for k, v in r.items() if k not in ("variant", "iteration") and v != ""}
        traces.setdefault(r["variant"], []).append((r["iteration"], lam))
    labels = list(dict.fromkeys(r["variant"] for r in rows))
    fixed = [lb for lb in labels if lb.startswith("iMAML-GD, fixed")]
    iterations = rows[0]["iterations"]
    seeds = sorted({r["seed"] for r in rows})
    eval_tasks = 100 if out.name == "quick" else EVAL_TASKS
    plot(rows, labels, traces, out / "learned_lambda.png", iterations)
    text = summary(rows, labels, best_fixed(rows, fixed), curves, iterations, seeds, eval_tasks)
    write_markdown(out, "learned_lambda", text)
    return text


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    if args.collect:
        return collect(args.out)
    setup_timing()
    iterations = args.iterations or (30 if args.quick else 2000)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    eval_tasks = 100 if args.quick else EVAL_TASKS
    grid = (5.0,) if args.quick else GRID
    plan = variants(ExperimentConfig().lam, grid, args.quick)
    labels = list(plan)
    rows: list[dict] = []
    curves: list[dict] = []
    traces: dict[str, list] = {}
    for seed in seeds:
        for label, changes in plan.items():
            slowest = max((r["train_seconds"] for r in rows if r["seed"] == seed), default=0.0)
            every = max(iterations // 20, 1) if is_maml(label) else 0
            row, trace, curve = train_one(label, changes, seed, iterations, eval_tasks, every, slowest)
            rows.append(row)
            curves += curve
            if seed == seeds[0] and trace and "parameter" not in label:
                traces[label] = trace
    best = best_fixed(rows, labels[: 1 + len(grid)])
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
