"""The window on a big runs folder: how long the Runs panel takes to list it, and the GUI thread's longest
stall while 20 runs are overlaid.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=. .venv/bin/python -m bench.runs_window [--quick] [--runs N] [--rows N]

Builds the folder as ``bench.runs_store`` does (300 runs of 20,000 rows by default), opens a window on it,
and measures: the time from opening the folder until the panel shows every run; then, with a 10 ms timer in
the GUI thread, the longest gap between its ticks from ticking 20 runs until all 20 are drawn, first with
the live run paused, then while it trains (the default config, whose worker thread also wants the GIL).
Each figure is the worst of 3 repeats.
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


def _longest_gap(qapp: object, action: object, done: object) -> float:
    """The GUI thread's longest gap between the ticks of a 10 ms timer, from ``action()`` until ``done()``."""
    from PySide6.QtCore import QTimer

    gaps = [0.0]
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    last[0] = time.perf_counter()
    action()  # type: ignore[operator]
    _spin_until(qapp, done)
    timer.stop()
    return max(gaps)


def _overlay_stalls(qapp: object, window: object) -> tuple[float, float]:
    """The longest gaps while the first 20 runs are ticked until all are drawn, then unticked until none is."""
    ids = [r.id for r in window.runs_controller.panel.model.rows[:OVERLAID]]  # type: ignore[attr-defined]
    on = _longest_gap(
        qapp,
        lambda: window.overlay(ids),  # type: ignore[attr-defined]
        lambda: sorted(window.overlaid()) == sorted(ids),  # type: ignore[attr-defined]
    )
    curves = window.runs_controller.overlays  # type: ignore[attr-defined]
    off = _longest_gap(
        qapp,
        lambda: window.overlay([]),  # type: ignore[attr-defined]
        lambda: not window.overlaid() and not curves.busy(),  # type: ignore[attr-defined]
    )
    return on, off


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from app.shell.main_window import MainWindow
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
        _spin_until(qapp, lambda: window.runs_controller.live is not None)
        listing: list[float] = []
        stalls: dict[str, list[tuple[float, float]]] = {"paused": [], "training": []}
        for _ in range(REPEATS):
            window.open_runs_folder(Path(tmp) / "live")
            _spin_until(qapp, lambda: len(window.runs_controller.panel.model.rows) < runs)
            began = time.perf_counter()
            window.open_runs_folder(root)
            _spin_until(qapp, lambda: len(window.runs_controller.panel.model.rows) >= runs)
            listing.append(time.perf_counter() - began)
            stalls["paused"].append(_overlay_stalls(qapp, window))
        window.start()
        warm = time.perf_counter()
        _spin_until(qapp, lambda: time.perf_counter() - warm > 3)  # past the first meta-iterations' set-up
        baseline = []
        for _ in range(REPEATS):
            began = time.perf_counter()
            baseline.append(_longest_gap(qapp, lambda: None, lambda began=began: time.perf_counter() - began > 2))
            stalls["training"].append(_overlay_stalls(qapp, window))
        window.pause()
        window.close()
    table = [["runs listed in the panel", runs, rows_per_run, max(listing) * 1e3]]
    for condition in ("paused", "training"):
        for i, what in enumerate(("overlaid (ticked until drawn)", "taken off (unticked until removed)")):
            table.append(
                [
                    f"longest GUI-thread gap while {OVERLAID} runs are {what}, live run {condition}",
                    OVERLAID,
                    rows_per_run,
                    max(pair[i] for pair in stalls[condition]) * 1e3,
                ]
            )
    scale = "for scale: longest GUI-thread gap in 2 s with nothing overlaid, live run training"
    table.append([scale, 0, 0, max(baseline) * 1e3])
    headers = ["what", "runs", "rows per run", "worst of 3 (ms)"]
    write_csv(args.out / "runs_window.csv", [dict(zip(headers, row, strict=True)) for row in table])
    env = environment()
    write_markdown(
        args.out,
        "runs_window",
        "## Runs panel: listing a big folder, overlaying 20 runs\n\n"
        + markdown_table(headers, table)
        + f"\n\n{env['cpu']}, torch {env['torch']}; files in the page cache; GUI-thread gaps from a 10 ms timer."
        + " Goal: no gap over 100 ms while runs are overlaid. The window parses histories in its"
        + " `HistoryReader`'s child process, so the parsing never holds the GIL that Qt's calls into Python"
        + " wait for."
        + " The last row is the same timer with nothing overlaid while the live run trains: the worker"
        + " thread's own share of the GIL.",
    )


if __name__ == "__main__":
    main()
