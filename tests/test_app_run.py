"""The window drives training from its worker thread: reports arrive, plots fill, live changes apply at
the next iteration, pause/step are exact, and closing cancels the current iteration and joins the thread.
(How long the GUI thread may stall while training is a measurement: ``python -m bench.gui_stalls`` and
``make soak``.)"""

from __future__ import annotations

import threading

from PySide6.QtCore import QCoreApplication, QTimer
from PySide6.QtWidgets import QWidget

from app.worker.thread import WorkerThread

from .app_helpers import plot_points, small_config

REQUIRED_PLOTS = ("plot_meta_loss", "plot_adaptation", "plot_memory", "plot_cg")
TIMEOUT_MS = 60_000
EVENT_LOOP_TURNS = 200  # far more than the one turn a running worker needs per iteration


def start_and_wait(qtbot, window, iterations: int) -> None:
    window.findChild(QWidget, "button_start").click()
    qtbot.waitUntil(lambda: window.iteration >= iterations, timeout=TIMEOUT_MS)


def test_start_delivers_reports_and_every_plot_gets_data(qtbot, make_window):
    window = make_window()
    assert window.button_start.text() == "Start"
    start_and_wait(qtbot, window, 6)  # val_every=5: at least one validation point too
    assert window.button_start.text() == "Pause"
    plots = {name: window.findChild(QWidget, name) for name in REQUIRED_PLOTS}
    assert all(type(p).__name__ == "PlotWidget" for p in plots.values())
    qtbot.waitUntil(lambda: all(plot_points(p) > 0 for p in plots.values()), timeout=TIMEOUT_MS)
    assert window.applied_config().meta_batch == 5
    assert len(window.history) >= 6


def test_the_worker_starts_an_iteration_only_after_the_window_took_in_the_last_report(qtbot, monkeypatch):
    """The worker alone, in this thread: after one report its loop timer stops until ``report_seen``; Step
    still steps while a report is outstanding; acknowledgements never restart a paused run. Event-loop turns,
    not wall-clock time, are what would let a wrongly running worker go on, so the test spins a fixed number
    of them."""
    from app.worker.worker import Worker

    monkeypatch.setattr("app.worker.worker.yield_cpu_to_gui", lambda: None)  # don't lower this test thread's priority
    worker = Worker(small_config())
    reports: list[int] = []
    worker.reported.connect(lambda r: reports.append(r.iteration))
    worker.initialise()

    def spin() -> None:
        for _ in range(EVENT_LOOP_TURNS):
            QCoreApplication.processEvents()

    try:
        worker.start()
        qtbot.waitUntil(lambda: len(reports) == 1, timeout=TIMEOUT_MS)
        spin()
        assert reports == [1] and not worker.loop_active
        worker.report_seen()
        assert worker.loop_active
        qtbot.waitUntil(lambda: len(reports) == 2, timeout=TIMEOUT_MS)
        spin()
        assert reports == [1, 2]
        worker.step_once()  # pauses, then one iteration although report 2 is outstanding
        assert reports == [1, 2, 3]
        worker.report_seen()
        worker.report_seen()
        spin()
        assert reports == [1, 2, 3] and not worker.loop_active  # paused
        worker.start()
        qtbot.waitUntil(lambda: len(reports) == 4, timeout=TIMEOUT_MS)
        worker.pause()
        worker.report_seen()
        spin()
        assert reports == [1, 2, 3, 4] and not worker.loop_active
    finally:
        worker.pause()


def test_changes_at_any_moment_apply_within_two_iterations_of_what_the_window_shows(qtbot, make_window):
    """Slider moves from a timer, i.e. between reports and while plots paint, as a user's drag arrives: each
    is in ``applied_config()`` by two iterations after the one the window showed when it was made."""
    window = make_window()
    slider = window.findChild(QWidget, "slider_lam")
    lags: list[int] = []
    pending: list[tuple[float, int]] = []  # (λ set, window.iteration when set)
    diverged: list[str] = []

    def on_report(report) -> None:
        if report.diverged:
            diverged.append(report.message)
        if pending and report.config.lam == pending[0][0]:
            lags.append(report.iteration - pending.pop()[1])

    def move() -> None:
        if not pending and window.iteration >= 2:
            lam = 0.5 + 0.25 * len(lags)
            pending.append((lam, window.iteration))
            slider.setValue(lam)

    window.report_received.connect(on_report)
    timer = QTimer()
    timer.timeout.connect(move)
    timer.start(7)  # not a multiple of anything the window or worker does
    start_and_wait(qtbot, window, 1)
    qtbot.waitUntil(lambda: len(lags) >= 12 or bool(diverged), timeout=TIMEOUT_MS)
    timer.stop()
    assert not diverged
    assert all(1 <= lag <= 2 for lag in lags), lags


def test_live_slider_changes_reach_the_trainer_by_the_next_iteration_and_draw_a_marker(qtbot, make_window):
    window = make_window()
    changed_at: list[int] = []

    def change_once(report):
        if report.iteration >= 3 and not changed_at:
            changed_at.append(report.iteration)  # the GUI has just seen this iteration finish
            window.findChild(QWidget, "slider_lam").setValue(3.0)
            window.findChild(QWidget, "slider_inner_steps").setValue(4)

    window.report_received.connect(change_once)
    first_new: list[int] = []
    window.report_received.connect(
        lambda r: first_new.append(r.iteration) if r.config.lam == 3.0 and not first_new else None
    )
    start_and_wait(qtbot, window, 1)
    qtbot.waitUntil(lambda: bool(first_new), timeout=TIMEOUT_MS)
    # The worker waits for the window to take in a report before it starts the next iteration, so a change
    # made while the window handles report n is used by iteration n + 1.
    assert first_new[0] == changed_at[0] + 1
    qtbot.waitUntil(lambda: window.applied_config().inner_steps == 4, timeout=TIMEOUT_MS)
    assert window.applied_config().lam == 3.0
    assert window.findChild(QWidget, "slider_lam").value() == 3.0  # user units, not the handle position
    (iteration, label), *_ = window.meta_card.markers
    assert iteration == first_new[0]
    assert f"λ {small_config().lam:.3g}→3" in label and "inner steps 3→4" in label


def test_pause_stops_the_run_and_step_runs_exactly_one_iteration(qtbot, make_window):
    window = make_window()
    start_and_wait(qtbot, window, 3)
    with qtbot.waitSignal(window.worker_thread.worker.running_changed, check_params_cb=lambda running: not running):
        window.findChild(QWidget, "button_start").click()  # toggles to pause
    assert window.button_start.text() == "Start" and not window.running
    n = window.iteration  # every report sent before the pause has been received by now
    for expected in (n + 1, n + 2):  # consecutive numbers: nothing ran between the steps
        with qtbot.waitSignal(window.report_received, timeout=TIMEOUT_MS) as blocker:
            window.findChild(QWidget, "button_step").click()
        assert blocker.args[0].iteration == expected
    assert not window.running


def test_closing_during_training_joins_the_worker_without_thread_warnings(qtbot, make_window, qtlog):
    window = make_window()
    start_and_wait(qtbot, window, 2)
    assert window.worker_thread.qthread.isRunning()
    window.close()
    assert not window.worker_thread.qthread.isRunning()
    noisy = [r.message for r in qtlog.records if "thread" in r.message.lower() or "QObject" in r.message]
    assert noisy == []


def test_changes_in_quick_succession_share_one_marker_from_first_old_to_last_new_value(qtbot, make_window):
    window = make_window()
    now = [0.0]
    window.state.clock = lambda: now[0]  # edits 0.2 s apart, however slowly this machine steps
    lam = window.findChild(QWidget, "slider_lam")
    old = small_config().lam
    for value in (3.0, 4.0, 5.0):  # like a slider being dragged while iterations run
        now[0] += 0.2
        lam.setValue(value)
        assert window.config().lam == value  # live sliders are not throttled
        with qtbot.waitSignal(window.report_received, timeout=TIMEOUT_MS):
            window.step()
    assert [text for _, text in window.meta_card.markers] == [f"λ {old:.3g}→5"]
    assert window.meta_card.markers[0][0] == 1  # where the first of them applied


def test_closing_abandons_a_meta_iteration_in_progress(qtbot, make_window, monkeypatch):
    """A meta-iteration of 10,000 inner steps on 256 tasks runs for minutes; closing the window cancels it
    (the engine polls the cancel flag between inner steps) instead of waiting for it to finish."""
    from imaml_core import MetaTrainer, StepCancelled

    entered = threading.Event()
    outcomes: list[str] = []
    step = MetaTrainer.step

    def observed_step(self, should_stop=None):
        entered.set()
        try:
            report = step(self, should_stop)
        except StepCancelled:
            outcomes.append("cancelled")
            raise
        outcomes.append("finished")
        return report

    monkeypatch.setattr(MetaTrainer, "step", observed_step)
    window = make_window(small_config(meta_batch=256, inner_steps=10_000, cg_steps=50))
    window.start()
    qtbot.waitUntil(entered.is_set, timeout=TIMEOUT_MS)
    window.close()
    assert outcomes == ["cancelled"]
    assert window.iteration == 0
    assert WorkerThread.running_threads() == 0
