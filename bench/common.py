"""Shared glue of the benchmark scripts: the command line, output folder, CSV/Markdown writing, timing.

Every script takes ``--quick`` (tiny sizes, seconds, results under ``bench/results/quick/`` so the
committed full results are never overwritten) and ``--out`` to write elsewhere.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from imaml_core.engine.heap import keep_freed_memory

RESULTS = Path(__file__).resolve().parent / "results"
THREADS = 1  # one intra-op thread: stable timings on a shared 2-core machine

# Methods compared in compute_memory and learning_per_second: label -> (method, iMAML inner solver).
METHODS = {
    "iMAML-GD": ("imaml", "gd"),
    "iMAML-HF": ("imaml", "hf"),
    "MAML": ("maml", "gd"),
    "FOMAML": ("fomaml", "gd"),
    "Reptile": ("reptile", "gd"),
}


def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds), results under results/quick/")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default bench/results[/quick])")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = RESULTS / "quick" if args.quick else RESULTS
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where the engine runs")


def device_name(device: str) -> str:
    """The CPU model, or the CUDA card, for tables and plot titles."""
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{cpu_model()} CPU, {THREADS} thread"


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def setup_timing() -> None:
    """Single-threaded torch so that medians are stable while other work shares the CPU; freed tensor
    memory is reused rather than returned to the OS, as in ``imaml train`` (imaml_core/engine/heap.py)."""
    torch.set_num_threads(THREADS)
    keep_freed_memory()


def write_csv(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def fmt(value: Any) -> str:
    """Numbers for Markdown tables: 3 significant digits, scientific when tiny or huge."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "—"
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e6:
        return f"{value:.2e}"
    return f"{value:.3g}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_markdown(out: Path, name: str, text: str) -> None:
    """Print the section and keep a copy for ``bench/__main__`` to collect into RESULTS.md. The section ends
    with the load average at the script's start and end: a speed-up means little without it."""
    text = f"{text.rstrip()}\n\n_Load average (1/5/15 min): {_START_LOAD} at the start → {load_average()} at the end._"
    print(text)
    (out / f"{name}.md").write_text(text + "\n", encoding="utf-8")


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``fn`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


_START_LOAD = load_average()  # this module loads as a benchmark script starts


def environment() -> dict[str, str]:
    return {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
        "load_average": load_average(),
    }
