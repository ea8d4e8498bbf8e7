"""Soak: the GUI worker trains while a seeded random script drags every live slider, extremes included.

``make soak`` runs the long version (20,000 meta-iterations, marked ``slow``); ``make test`` runs a few
hundred. Both assert: no exception escapes (the worker never reports a failure), theta stays finite (the
exported checkpoint loads, and the loader refuses non-finite tensors) and process memory stays flat after
warm-up (the running median of the samples within +40 MB, any sample within +100 MB); the long one also
asserts that the GUI thread never stalls longer than 100 ms, apart from stalls during which the hypervisor
took the machine's CPUs for at least the excess (see ``CLOCK_TICKS`` below; all stalls are reported; the
long runs' figures are in bench/RESULTS.md). With SOAK_REPORT=path the measurements are written there as
JSON, and Python stacks of every stall to path.stalls.txt.
"""

from __future__ import annotations

import faulthandler
import json
import math
import os
import random
import statistics
import time

import psutil
import pytest

from imaml_core import ExperimentConfig, load_checkpoint

# objectName -> (low, high, integer?) of every live slider, as the window offers them
SLIDERS = {
    "slider_lam": (0.01, 100.0, False),
    "slider_cg_steps": (0, 50, True),
    "slider_cg_tol": (1e-8, 0.5, False),
    "slider_inner_steps": (1, 200, True),
    "slider_inner_lr": (1e-4, 1.0, False),
    "slider_meta_lr": (1e-5, 0.1, False),
    "slider_meta_batch": (1, 256, True),
}
STALL_LIMIT_S = 0.100
# A stall is the app's unless the hypervisor paused the machine through it: when the CPU time taken from the VM
# during the gap (steal, averaged over its CPUs) covers the excess over the limit, the GUI thread would
# have met the limit with the CPU it was given. A control run with no app at all (a bare Qt timer beside
# a busy process) had 11 gaps of 50-84 ms in 15 minutes, each with 60-150 ms of steal. Every stall, of
# either kind, is still recorded in the report.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CPUS = os.cpu_count() or 1
WARM_UP_SHARE = 0.2  # memory is compared to its level after this share of the run
MEMORY_BOUND_MB = 40.0  # growth of the trend: history columns + one config per slider move, allocator noise
TRANSIENT_BOUND_MB = 100.0  # any single sample: memory of an iteration still in flight when it is taken
TREND_WINDOW = 5  # samples per running median (5% of the run)


def _steal_ticks() -> int:
    """CPU time the hypervisor gave to other guests, in clock ticks summed over CPUs (Linux; else 0).
    Recorded around every stall: on a shared VM a stall can be time this machine simply did not get."""
    try:
        with open("/proc/stat") as fh:
            return int(fh.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return 0


def _major_faults() -> int:
    """Page faults of this process (any thread) that had to read from disk (Linux; else 0): a stall during
    which the GUI thread waited on the disk shows here, among others. Reading it and /proc/stat costs tens
    of microseconds a tick, nothing against the 100 ms bound."""
    try:
        with open("/proc/self/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[9])
    except (OSError, IndexError, ValueError):
        return 0


def _running_median(values: list[float], window: int) -> list[float]:
    """Median of each run of ``window`` consecutive samples: the memory trend, without the odd sample taken
    while a heavy iteration's tensors were alive (the sampler runs while the worker computes)."""
    if len(values) < window:
        return [statistics.median(values)] if values else []
    return [statistics.median(values[i : i + window]) for i in range(len(values) - window + 1)]


def _random_value(rng: random.Random, low: float, high: float, integer: bool) -> float:
    """An extreme 20% of the time, otherwise log-uniform in the lower part of the range (so that the
    long run finishes: 200 inner steps on 256 tasks is ~100x the default cost)."""
    if rng.random() < 0.2:
        value = rng.choice((low, high))
    else:
        top = low * (high / low) ** 0.6 if low > 0 else high * 0.3
        value = math.exp(rng.uniform(math.log(max(low, 1e-12)), math.log(top))) if low > 0 else rng.uniform(0, top)
    return round(value) if integer else value


def _soak(
    qtbot, make_window, tmp_path, iterations: int, config: ExperimentConfig, move_every: int, strict_stalls: bool
) -> dict:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QWidget

    rng = random.Random(20261126)
    window = make_window(config)
    sliders = {name: window.findChild(QWidget, name) for name in SLIDERS}
    assert all(sliders.values()), [n for n, s in sliders.items() if s is None]
    failures: list[str] = []
    window.worker_thread.worker.failed.connect(lambda f: failures.append(f"{f.job.value}: {f.message}"))
    state = {"reports": 0, "diverged": 0, "last": time.perf_counter(), "worst_gap": 0.0}
    stalls: list[dict] = []  # every stall: its length, the iteration, and the steal time during it
    steal, faults = [_steal_ticks()], [_major_faults()]
    rss: list[tuple[int, float]] = []
    process = psutil.Process()

    def on_report(report) -> None:
        state["reports"] += 1
        state["diverged"] += int(report.diverged)
        n = state["reports"]
        if n % move_every == 0:
            name = rng.choice(list(SLIDERS))
            sliders[name].setValue(_random_value(rng, *SLIDERS[name]))
        if n % max(1, iterations // 200) == 0:
            cfg = report.config
            rss.append((n, process.memory_info().rss / 2**20, cfg.meta_batch, cfg.inner_steps, cfg.cg_steps))
        if report.diverged:  # the window paused and said why; the script "fixes" it by moving on
            QTimer.singleShot(0, window.start)

    window.report_received.connect(on_report)

    def tick() -> None:
        now = time.perf_counter()
        gap = now - state["last"]
        state["last"] = now
        state["worst_gap"] = max(state["worst_gap"], gap)
        now_steal, now_faults = _steal_ticks(), _major_faults()
        if gap > STALL_LIMIT_S + 0.010:  # the 10 ms timer's own period
            stolen_s = (now_steal - steal[0]) / CLOCK_TICKS / CPUS  # per CPU, on average
            stalls.append(
                {
                    "ms": round(1000 * gap, 1),
                    "iteration": state["reports"],
                    "steal_ticks": now_steal - steal[0],
                    "major_faults": now_faults - faults[0],
                    "machine_paused": stolen_s >= gap - STALL_LIMIT_S,
                }
            )
        steal[0], faults[0] = now_steal, now_faults

    # With SOAK_REPORT set, every thread's Python stack is dumped whenever the GUI thread has not ticked
    # for 100 ms (faulthandler's watchdog needs no GIL), so a stall names the code that caused it.
    stall_log = open(os.environ["SOAK_REPORT"] + ".stalls.txt", "w") if os.environ.get("SOAK_REPORT") else None  # noqa: SIM115

    def watched_tick() -> None:
        tick()
        if stall_log is not None:
            faulthandler.dump_traceback_later(STALL_LIMIT_S, repeat=False, file=stall_log)

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(watched_tick)
    window.start()
    state["last"] = time.perf_counter()
    timer.start()
    start = time.perf_counter()
    try:
        qtbot.waitUntil(lambda: state["reports"] >= iterations or bool(failures), timeout=int(6 * 3600 * 1000))
    finally:
        timer.stop()
        if stall_log is not None:
            faulthandler.cancel_dump_traceback_later()
            stall_log.close()
    window.pause()
    seconds = time.perf_counter() - start
    path = tmp_path / "soak.safetensors"
    assert window.export_meta_parameters(path)
    qtbot.waitUntil(path.exists, timeout=30_000)
    ckpt = load_checkpoint(path)  # refuses NaN/inf tensors
    warm = [mb for n, mb, *_ in rss if n >= WARM_UP_SHARE * iterations]
    trend = _running_median(warm, TREND_WINDOW)
    app_stalls = sum(not s["machine_paused"] for s in stalls)
    result = {
        "iterations": state["reports"],
        "diverged_iterations": state["diverged"],
        "seconds": round(seconds, 1),
        "iterations_per_second": round(state["reports"] / seconds, 1),
        "worst_gui_gap_ms": round(1000 * state["worst_gap"], 1),
        "gui_stalls_over_100ms": len(stalls),
        "gui_stalls_not_explained_by_steal": app_stalls,
        "stalls": stalls,
        "clock_ticks_per_second": CLOCK_TICKS,
        "rss_mb_after_warm_up": round(warm[0], 1) if warm else None,
        "rss_mb_max_after_warm_up": round(max(warm), 1) if warm else None,
        "rss_mb_end": round(rss[-1][1], 1) if rss else None,
        "rss_mb_trend_growth": round(max(trend) - trend[0], 1) if trend else None,
        "theta_iteration": ckpt.iteration,
        "failures": failures,
    }
    if os.environ.get("SOAK_REPORT"):
        with open(os.environ["SOAK_REPORT"], "w") as fh:
            json.dump({"rss_curve": rss, **result}, fh, indent=1)
    assert not failures, failures
    if strict_stalls:
        assert app_stalls == 0, result
    if warm:
        assert max(trend) - trend[0] <= MEMORY_BOUND_MB, result
        assert max(warm) - trend[0] <= TRANSIENT_BOUND_MB, result
    return result


def test_short_soak_with_random_extreme_sliders(qtbot, make_window, tmp_path):
    from .app_helpers import small_config

    # Stalls are recorded but not asserted here: how long the GUI thread waits depends on how busy the
    # machine is, and `make test` asserts behaviour only. The 100 ms bound is checked by the long soak
    # (`make soak`) and measured by `python -m bench.gui_stalls`.
    _soak(qtbot, make_window, tmp_path, iterations=300, config=small_config(), move_every=3, strict_stalls=False)


@pytest.mark.slow
def test_soak_20000_iterations_with_random_extreme_sliders(qtbot, make_window, tmp_path):
    iterations = int(os.environ.get("SOAK_ITERATIONS", "20000"))
    _soak(
        qtbot, make_window, tmp_path, iterations=iterations, config=ExperimentConfig(), move_every=5, strict_stalls=True
    )
