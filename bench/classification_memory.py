"""The classification benchmark's memory half: bytes and seconds per meta-iteration against inner steps, by
method, and the table that reads them (iMAML flat, MAML growing per unrolled step)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imaml_core import ExperimentConfig
from imaml_core.engine.profiling import profile_rows

from .common import METHODS, markdown_table

MEMORY_METHODS = ("MAML", "iMAML-GD", "iMAML-HF", "FOMAML")
FLAT_LIMIT = 1.1  # an implicit method's memory may grow at most this much from the fewest to the most inner steps


# -- memory --------------------------------------------------------------------------------------------------
def measure_memory(cfg: ExperimentConfig, steps: Sequence[int], meta_batch: int, iterations: int) -> list[dict]:
    """Memory and seconds per meta-iteration by method and inner steps (a fresh trainer per row, same tasks)."""
    rows: list[dict] = []
    for n in steps:
        for label in MEMORY_METHODS:
            method, solver = METHODS[label]
            base = cfg.replace(method=method, inner_solver=solver, meta_batch=meta_batch)
            (row,) = profile_rows(base, [method], [n], iterations=iterations, auto_threads=False)
            rows.append({"method": label, **{k: v for k, v in row.items() if k != "method"}})
            print(f"memory: {label} {n} steps {row['memory_bytes'] / 2**20:.1f} MiB", flush=True)
    return rows


def _linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and R² of a least-squares line (how linear MAML's growth is)."""
    slope, intercept = np.polyfit(x, y, 1)
    total = float(((y - y.mean()) ** 2).sum())
    return float(slope), 1.0 - float(((y - slope * x - intercept) ** 2).sum()) / total if total > 0 else 1.0


def memory_section(cfg: ExperimentConfig, rows: list[dict], steps: Sequence[int], meta_batch: int, where: str) -> str:
    label = "peak allocated above the start (CUDA)" if cfg.device == "cuda" else "peak bytes held for backward"

    def series(method: str, key: str) -> list[float]:
        return [float(r[key]) for r in rows if r["method"] == method]

    headers = ["method", *[f"{s} steps" for s in steps]]
    mib = [[m, *(v / 2**20 for v in series(m, "memory_bytes"))] for m in MEMORY_METHODS]
    ms = [[m, *(v * 1e3 for v in series(m, "seconds_per_iteration"))] for m in MEMORY_METHODS]
    checks = []
    for m in MEMORY_METHODS:
        mem = series(m, "memory_bytes")
        ratio = mem[-1] / mem[0]
        line = f"- {m}: memory at {steps[-1]} steps ÷ at {steps[0]} = {ratio:.3g}×"
        if m.startswith("iMAML"):
            line += f" ({'PASS' if ratio <= FLAT_LIMIT else 'FAIL'}: ≤ {FLAT_LIMIT}×)"
        if m == "MAML" and len(steps) > 2:
            slope, r2 = _linear_fit(np.array(steps, float), np.array(mem))
            line += f"; linear fit {slope / 2**20:.2f} MiB per inner step, R² = {r2:.4f}"
        checks.append(line)
    return "\n".join(
        [
            f"### Memory against inner steps (meta-batch {meta_batch}, {where})",
            "",
            f"Same tasks and settings as above (iMAML-HF: {cfg.hf_cg_steps} CG steps per Newton step; MAML and "
            f"FOMAML: plain GD of {cfg.inner_lr:g}). MiB per meta-iteration, {label}:",
            "",
            markdown_table(headers, mib),
            "",
            "Milliseconds per meta-iteration (median of the timed iterations of each row):",
            "",
            markdown_table(headers, ms),
            "",
            *checks,
        ]
    )
