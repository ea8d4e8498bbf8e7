"""Worst GUI-thread gap while the window trains, per block of meta-iterations (the window's 100 ms bound).

    QT_QPA_PLATFORM=offscreen PYTHONPATH=. .venv/bin/python -m bench.gui_stalls [ITERATIONS] [--gc-log]
        [--task glyphs|omniglot] [--data PATH]

A 10 ms QTimer in the GUI thread records the longest gap between its ticks; every 500 reports (every 10
for a classification family, whose conv-net iterations take about a second here) the worst gap and the
rate are printed. ``--task`` trains that family with its suggested settings (the paper's conv net).
``--gc-log`` prints every gen-2 or > 20 ms garbage collection, to tell GC pauses from other stalls.
"""

from __future__ import annotations

import gc
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
import app  # noqa: E402,F401 - sets OpenMP's passive wait before torch loads

BLOCK = 500
CLASSIFICATION_BLOCK = 10


def _flag(name: str) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv[:-1] else None


def main() -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.shell.main_window import MainWindow
    from imaml_core import ExperimentConfig
    from imaml_core.tasks import with_family_defaults

    task = _flag("--task") or "sinusoid"
    config = ExperimentConfig(task=task, **({"data": _flag("--data")} if _flag("--data") else {}))
    config = with_family_defaults(config, {"data"}) if task != "sinusoid" else config
    block = BLOCK if task == "sinusoid" else CLASSIFICATION_BLOCK
    iterations = int(next((a for a in sys.argv[1:] if a.isdigit()), "4000" if task == "sinusoid" else "40"))
    qa = QApplication([])
    state = {"last": time.perf_counter(), "worst": 0.0, "n": 0, "t0": time.perf_counter(), "gc": 0.0}
    if "--gc-log" in sys.argv:

        def on_gc(phase: str, info: dict) -> None:
            if phase == "start":
                state["gc"] = time.perf_counter()
            elif info["generation"] == 2 or time.perf_counter() - state["gc"] > 0.02:
                print(f"gc gen {info['generation']}: {1000 * (time.perf_counter() - state['gc']):.1f} ms", flush=True)

        gc.callbacks.append(on_gc)
    window = MainWindow(config, restore=False)
    window.confirm_restarts = False
    window.show()

    def tick() -> None:
        now = time.perf_counter()
        state["worst"] = max(state["worst"], now - state["last"])
        state["last"] = now

    def on_report(_report: object) -> None:
        state["n"] += 1
        if state["n"] % block == 0:
            rate = block / (time.perf_counter() - state["t0"])
            print(f"{state['n']:6d}  worst gap {1000 * state['worst']:6.1f} ms  {rate:6.2f} it/s", flush=True)
            state["worst"], state["t0"] = 0.0, time.perf_counter()
        if state["n"] >= iterations:
            qa.quit()

    window.report_received.connect(on_report)
    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)

    def start() -> None:  # gaps are measured from here: building the window is not "while training"
        state["last"] = state["t0"] = time.perf_counter()
        state["worst"] = 0.0
        window.start()

    QTimer.singleShot(1500, start)
    qa.exec()
    window.close()


if __name__ == "__main__":
    main()
