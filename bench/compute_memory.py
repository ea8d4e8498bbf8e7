"""Seconds and memory per meta-iteration against inner steps, by method (the paper's Figure 2b).

Rows come from ``imaml_core.engine.profiling.profile_rows`` (fresh trainer per row, same seed and tasks, one
warm-up iteration, median of the rest). Memory is the engine's probe: on CPU the peak bytes held for
backward during the meta-iteration, the quantity that grows with MAML's unrolled steps. The claims to
check: iMAML's memory is flat in inner steps (<= 1.1x from 5 to 200) and MAML's grows linearly.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from imaml_core import ExperimentConfig  # noqa: E402
from imaml_core.engine.profiling import profile_rows  # noqa: E402

from .common import (
    METHODS,
    add_device_option,
    device_name,
    markdown_table,
    parse_args,
    setup_timing,
    write_csv,
    write_markdown,
)  # noqa: E402

FLAT_LIMIT = 1.1  # iMAML's memory may grow at most this much from the fewest to the most inner steps


def measure(steps: Sequence[int], meta_batch: int, shots: int, iterations: int, device: str = "cpu") -> list[dict]:
    """One row per (method, inner steps); the methods take turns at each inner-steps setting, so that
    background load drifting during the run does not favour the methods measured first."""
    rows: list[dict] = []
    for n in steps:
        for label, (method, solver) in METHODS.items():
            base = ExperimentConfig(
                method=method, inner_solver=solver, meta_batch=meta_batch, shots=shots, val_every=0, device=device
            )
            for row in profile_rows(base, [method], [n], iterations=iterations, auto_threads=False):
                rows.append({"method": label, **{k: v for k, v in row.items() if k != "method"}})
    return sorted(rows, key=lambda r: (list(METHODS).index(r["method"]), r["inner_steps"]))


def series(rows: list[dict], label: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    sel = [r for r in rows if r["method"] == label]
    return np.array([r["inner_steps"] for r in sel], float), np.array([r[key] for r in sel], float)


def linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Slope, intercept and R^2 of a least-squares line (how linear MAML's growth is)."""
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    total = float(((y - y.mean()) ** 2).sum())
    return float(slope), float(intercept), 1.0 - float((resid**2).sum()) / total if total > 0 else 1.0


def plot(rows: list[dict], path: Path, meta_batch: int, where: str, memory_label: str) -> None:
    fig, (mem_ax, time_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label in METHODS:
        x, mem = series(rows, label, "memory_bytes")
        _, sec = series(rows, label, "seconds_per_iteration")
        mem_ax.plot(x, mem / 2**20, "o-", label=label)
        time_ax.plot(x, sec * 1e3, "o-", label=label)
    mem_ax.set(xlabel="inner steps", ylabel=f"MiB {memory_label}", title="Memory per meta-iteration")
    time_ax.set(xlabel="inner steps", ylabel="ms per meta-iteration (median)", title="Compute per meta-iteration")
    time_ax.set_yscale("log")
    for ax in (mem_ax, time_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Sinusoid 1-40-40-1, meta-batch {meta_batch}, {where}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(
    rows: list[dict], steps: Sequence[int], meta_batch: int, shots: int, iterations: int, where: str, memory_label: str
) -> str:
    out = [
        f"## Compute and memory vs inner steps (paper Fig. 2b, {where})",
        "",
        f"Meta-batch {meta_batch}, {shots} shots, default config otherwise (λ 20, 5 CG, HF: 10 CG per Newton "
        f"step); median of {iterations} meta-iterations after one warm-up. Memory: {memory_label}.",
        "",
    ]
    headers = ["method", *[f"{s} steps" for s in steps]]
    ms = [[label, *(series(rows, label, "seconds_per_iteration")[1] * 1e3)] for label in METHODS]
    kib = [[label, *(series(rows, label, "memory_bytes")[1] / 1024)] for label in METHODS]
    out += ["Milliseconds per meta-iteration:", "", markdown_table(headers, ms), ""]
    out += [f"KiB {memory_label}:", "", markdown_table(headers, kib), ""]
    checks = []
    for label in ("iMAML-GD", "iMAML-HF", "FOMAML", "Reptile", "MAML"):
        x, mem = series(rows, label, "memory_bytes")
        ratio = mem[-1] / mem[0] if mem[0] else float("nan")
        line = f"- {label}: memory {int(x[-1])} vs {int(x[0])} steps = {ratio:.3g}×"
        if label.startswith("iMAML"):
            line += f" ({'PASS' if ratio <= FLAT_LIMIT else 'FAIL'}: ≤ {FLAT_LIMIT}×)"
        if label == "MAML":
            slope, _, r2 = linear_fit(x, mem)
            line += f"; linear fit {slope / 1024:.1f} KiB per step, R² = {r2:.4f}"
        _, sec = series(rows, label, "seconds_per_iteration")
        line += f"; time {sec[-1] / sec[0]:.3g}×"
        checks.append(line)
    out += ["Checks (last vs first inner-steps setting):", "", *checks]
    return "\n".join(out)


def _options(parser: argparse.ArgumentParser) -> None:
    add_device_option(parser)
    parser.add_argument("--meta-batch", type=int, default=25)


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(__doc__.splitlines()[0], argv, _options)
    setup_timing()
    steps, iterations = ([5, 10, 25], 2) if args.quick else ([5, 10, 25, 50, 100, 200], 5)
    meta_batch, shots = args.meta_batch, 10
    rows = measure(steps, meta_batch, shots, iterations, args.device)
    where = device_name(args.device)
    memory_label = "peak allocated above the start (CUDA)" if args.device == "cuda" else "peak held for backward"
    write_csv(args.out / "compute_memory.csv", rows)
    plot(rows, args.out / "compute_memory.png", meta_batch, where, memory_label)
    text = summary(rows, steps, meta_batch, shots, iterations, where, memory_label)
    write_markdown(args.out, "compute_memory", text)
    return text


if __name__ == "__main__":
    main()
