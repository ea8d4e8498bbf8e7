"""The window on a big runs folder: how long the Runs panel takes to list it, and the GUI thread's longest
stall while 20 runs are overlaid.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=. .venv/bin/python -m bench.runs_window [--quick] [--runs N] [--rows N]

Builds the folder as ``bench.runs_store`` does (300 runs of 20,000 rows by default), opens a window on it,
and measures: the time from opening the folder until the panel shows every run; then, with a 10 ms timer in
the GUI thread, the longest gap between its ticks from ticking 20 runs until all 20 are drawn. Each figure
is the worst of 3 repeats.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
import app  # noqa: E402,F401 - sets OpenMP's passive wait before torch loads

from .common import environment, markdown_table, parse_args, write_csv, write_markdown  # noqa: E402
from .runs_store import _options, build  # noqa: E402

OVERLAID = 20
REPEATS = 3


def _spin_until(qapp: object, done: object, on_tick: object = None, timeout_s: float = 120.0) -> float:
    start = time.perf_counter()
    while not done():  # type: ignore[operator]
        qapp.processEvents()  # type: ignore[attr-defined]
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError("the window did not finish in time")
        time.sleep(0.001)
    return time.perf_counter() - start


def main() -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from imaml_core import ExperimentConfig

    args = parse_args("the Runs panel on a big runs folder", extra=_options)
    runs = args.runs or (30 if args.quick else 300)
    rows_per_run = args.rows or (2000 if args.quick else 20000)
    qapp = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="imaml-runs-window-") as tmp:
        root = Path(tmp) / "runs"
        build(root, runs, rows_per_run)
        window = MainWindow(ExperimentConfig(), restore=False, runs_folder=str(Path(tmp) / "live"))
        window.confirm_restarts = False
        window.show()
        _spin_until(qapp, lambda: window.runs_dock.live is not None)
        listing, stalls = [], []
        for _ in range(REPEATS):
            window.open_runs_folder(Path(tmp) / "live")
            _spin_until(qapp, lambda: len(window.runs_dock.panel.model.rows) < runs)
            began = time.perf_counter()
            window.open_runs_folder(root)
            _spin_until(qapp, lambda: len(window.runs_dock.panel.model.rows) >= runs)
            listing.append(time.perf_counter() - began)

            ids = [r.id for r in window.runs_dock.panel.model.rows[:OVERLAID]]
            gaps = [0.0]
            last = [time.perf_counter()]

            def tick(gaps: list[float] = gaps, last: list[float] = last) -> None:
                now = time.perf_counter()
                gaps.append(now - last[0])
                last[0] = now

            timer = QTimer()
            timer.timeout.connect(tick)
            timer.start(10)
            last[0] = time.perf_counter()
            window.overlay(ids)
            _spin_until(qapp, lambda ids=ids: sorted(window.overlaid()) == sorted(ids))
            timer.stop()
            stalls.append(max(gaps))
            window.overlay([])
            _spin_until(qapp, lambda: not window.overlaid())
        window.close()
    table = [
        ["runs listed in the panel", runs, rows_per_run, max(listing) * 1e3],
        [f"longest GUI-thread gap while {OVERLAID} runs are overlaid", OVERLAID, rows_per_run, max(stalls) * 1e3],
    ]
    headers = ["what", "runs", "rows per run", "worst of 3 (ms)"]
    write_csv(args.out / "runs_window.csv", [dict(zip(headers, row, strict=True)) for row in table])
    env = environment()
    write_markdown(
        args.out,
        "runs_window",
        "## Runs panel: listing a big folder, overlaying 20 runs\n\n"
        + markdown_table(headers, table)
        + f"\n\n{env['cpu']}, torch {env['torch']}; files in the page cache; GUI-thread gaps from a 10 ms timer.",
    )


if __name__ == "__main__":
    main()
