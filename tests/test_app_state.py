"""The window says what is true now: lifecycle messages in the banner (topic "run") are cleared once they
no longer apply, a failed step's message (topic "step") when the run goes on soundly, and the status bar
says what the app is doing (idle, paused, training, building θ…), never "starting…" while idle."""

from __future__ import annotations

from pathlib import Path

from app.model.messages import Failure, Job, TrainerChange

from .app_helpers import banner_state, small_config, status_state, train

TIMEOUT_MS = 60_000
GLYPHS = {"glyph_classes": 40, "filters": 4, "meta_batch": 2, "inner_steps": 2, "val_tasks": 6, "val_every": 2}


def recorded_run(qtbot, window, iterations: int = 3) -> Path:
    """Step the live run ``iterations`` times and return its folder; the window then resets into a new run."""
    for _ in range(iterations):
        with qtbot.waitSignal(window.report_received, timeout=TIMEOUT_MS):
            window.step()
    path = Path(window.runs_controller.live.path)
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
        window.reset()
    return path


def continue_run(qtbot, window, path: Path) -> None:
    reason = lambda info: info.reason is TrainerChange.CONTINUE  # noqa: E731
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS, check_params_cb=reason):
        window.continue_run(path)


def test_an_idle_window_says_idle_not_starting(qtbot, make_window):
    window = make_window()
    assert status_state(window) == "idle"
    assert banner_state(window) == ("", "")
    train(qtbot, window, 2)
    assert status_state(window) == "paused"


def test_a_step_from_an_idle_window_leaves_it_paused(qtbot, make_window):
    window = make_window()
    with qtbot.waitSignal(window.report_received, timeout=TIMEOUT_MS):
        window.step()
    assert window.iteration == 1 and status_state(window) == "paused"


def test_the_status_says_training_while_running_and_building_while_a_trainer_is_built(qtbot, make_window):
    window = make_window()
    window.start()
    assert status_state(window) == "training"
    qtbot.waitUntil(lambda: window.iteration >= 1, timeout=TIMEOUT_MS)
    assert status_state(window) == "training"
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
        window.reset()
        assert status_state(window) == "building θ…"
    assert status_state(window) == "idle" and not window.running


def test_continue_says_press_start_until_training_starts(qtbot, make_window):
    window = make_window()
    path = recorded_run(qtbot, window)
    continue_run(qtbot, window, path)
    text, topic = banner_state(window)
    assert text.startswith("Continued the run") and "Press Start" in text and topic == "run"
    assert status_state(window) == "paused"  # iteration 3, not running
    train(qtbot, window, 3)
    assert banner_state(window) == ("", "")  # training started: "Press Start" no longer applies
    assert status_state(window) == "paused"


def test_opening_another_run_replaces_the_message_about_the_first(qtbot, make_window):
    window = make_window()
    first = recorded_run(qtbot, window, 2)
    second = recorded_run(qtbot, window, 4)
    continue_run(qtbot, window, first)
    at_first = window.iteration
    assert f"iteration {at_first}" in banner_state(window)[0]
    continue_run(qtbot, window, second)
    text, topic = banner_state(window)
    assert (at_first, window.iteration) == (2, 4)
    assert f"iteration {window.iteration}" in text and f"iteration {at_first}" not in text and topic == "run"
    assert status_state(window) == "paused"
    qtbot.waitUntil(lambda: window.current_run_id() == second.name, timeout=TIMEOUT_MS)  # announced next
    train(qtbot, window, 2)
    assert banner_state(window) == ("", "")


def test_reset_clears_the_run_message_and_the_status_is_idle(qtbot, make_window):
    window = make_window()
    path = recorded_run(qtbot, window)
    continue_run(qtbot, window, path)
    assert banner_state(window)[1] == "run"
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
        window.reset()
    assert banner_state(window) == ("", "")
    assert status_state(window) == "idle" and window.iteration == 0
    train(qtbot, window, 2)
    assert banner_state(window) == ("", "") and status_state(window) == "paused"


def test_a_fork_clears_the_message_about_the_run_it_left(qtbot, make_window):
    window = make_window()
    path = recorded_run(qtbot, window)
    continue_run(qtbot, window, path)
    assert banner_state(window)[1] == "run"
    parent = window.current_run_id()
    child = window.fork()
    assert child != parent
    assert banner_state(window) == ("", "")
    assert status_state(window) == "paused"
    train(qtbot, window, 2)
    assert banner_state(window) == ("", "") and status_state(window) == "paused"


def test_a_family_switch_says_so_until_the_first_report(qtbot, make_window):
    window = make_window(small_config(**GLYPHS))
    window.set_task("glyphs", ways=3, shots=1, query=1, **GLYPHS)
    text, topic = banner_state(window)
    assert text.startswith("Switched to") and topic == "run"
    assert status_state(window) == "idle"
    train(qtbot, window, 1)
    assert banner_state(window) == ("", "")
    assert status_state(window) == "paused"


def test_a_step_failure_clears_when_the_run_goes_on_soundly(qtbot, make_window):
    window = make_window()
    window.worker_thread.worker.failed.emit(Failure(Job.STEP, "the meta-iteration failed: boom"))
    text, topic = banner_state(window)
    assert "boom" in text and topic == "step" and status_state(window) == "idle"
    train(qtbot, window, 2)
    assert banner_state(window) == ("", "")


def test_a_diverged_step_is_reported_and_cleared_by_the_next_sound_one(qtbot, make_window):
    window = make_window(small_config(method="maml", inner_lr=50.0, inner_steps=5, val_every=0))
    with qtbot.waitSignal(window.report_received, timeout=TIMEOUT_MS) as blocker:
        window.start()
    assert blocker.args[0].diverged
    qtbot.waitUntil(lambda: not window.running, timeout=TIMEOUT_MS)
    assert banner_state(window)[1] == "step" and status_state(window) == "idle"
    assert window.adopt_config(window.config().replace(inner_lr=0.001))
    train(qtbot, window, 2)
    assert banner_state(window) == ("", "") and status_state(window) == "paused"


def test_an_evaluation_stays_until_the_next_lifecycle_change(qtbot, make_window):
    window = make_window()
    with qtbot.waitSignal(window.worker_thread.worker.evaluated, timeout=TIMEOUT_MS):
        window.evaluate(10)
    qtbot.waitUntil(lambda: banner_state(window)[1] == "run", timeout=TIMEOUT_MS)
    train(qtbot, window, 2)
    assert banner_state(window)[0].startswith("θ at iteration 0")  # a result the user reads: kept
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
        window.reset()
    assert banner_state(window) == ("", "")


def test_import_says_press_start_until_training_starts(qtbot, make_window, tmp_path):
    window = make_window()
    train(qtbot, window, 2)
    assert window.export_meta_parameters(tmp_path / "theta.safetensors")
    with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
        assert window.import_meta_parameters(tmp_path / "theta.safetensors")
    text, topic = banner_state(window)
    assert text.startswith("Imported θ") and topic == "run" and status_state(window) == "paused"
    train(qtbot, window, 2)
    assert banner_state(window) == ("", "") and status_state(window) == "paused"


def test_a_failed_import_says_why_and_the_status_is_no_longer_building(qtbot, make_window, tmp_path):
    window = make_window()
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    assert not window.import_meta_parameters(tmp_path / "bad.safetensors")
    text, topic = banner_state(window)
    assert text.startswith("Import failed") and topic == "run"
    assert status_state(window) == "idle"
