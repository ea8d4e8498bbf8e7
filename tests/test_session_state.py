"""The window's run state without a window: restart checks, marker merging, what a new trainer resets, and
the clocks of the mechanisms that pace the GUI (heap-trim throttle, redraw scheduler), driven by fake clocks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app.model.messages import TrainerChange, TrainerInfo
from app.model.session import MARKER_MERGE_SECONDS, SessionState
from app.model.throttle import Throttle
from imaml_core import ExperimentConfig, StepReport

BASE = ExperimentConfig(meta_batch=5, inner_steps=3, val_tasks=20)


def report(iteration: int, config: ExperimentConfig, diverged: bool = False) -> StepReport:
    nan = float("nan")
    return StepReport(iteration, config, 1.0, 2.0, nan, nan, 0.0, 0, nan, 0, 0.01, 1.0, diverged=diverged)


class Recorder:
    def __init__(self, state: SessionState) -> None:
        self.events: list[tuple] = []
        state.config_changed.connect(lambda c: self.events.append(("config", c)))
        state.marker_added.connect(lambda i, text: self.events.append(("marker", i, text)))
        state.marker_relabelled.connect(lambda text: self.events.append(("relabel", text)))
        state.cleared.connect(lambda: self.events.append(("cleared",)))

    def of(self, kind: str) -> list[tuple]:
        return [e for e in self.events if e[0] == kind]


def test_session_state_never_imports_qt():
    code = (
        "import sys, app.model.session, app.model.throttle, app.model.fields, app.model.history\n"
        "sys.exit(any(m.startswith('PySide6') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_restart_field_discards_progress_only_once_theta_has_trained():
    state = SessionState(BASE)
    fresh = state.propose(BASE.replace(method="maml", lam=3.0))
    assert fresh.restart == ("method",) and set(fresh.changed) == {"method", "lam"}
    assert not fresh.discards_progress  # nothing trained yet: no question to ask
    state.take_report(report(1, BASE))
    assert state.propose(BASE.replace(method="maml")).discards_progress
    assert not state.propose(BASE.replace(lam=3.0)).discards_progress  # live
    assert state.propose(BASE).changed == ()


def test_an_invalid_edit_raises_and_leaves_the_desired_config():
    state = SessionState(BASE)
    with pytest.raises(Exception, match="lam"):
        state.propose_edit("lam", -1.0)
    assert state.config == BASE


def test_reports_advance_the_applied_config_iteration_and_history():
    state = SessionState(BASE)
    changed = BASE.replace(lam=3.0)
    state.adopt(changed)
    assert state.applied == BASE and state.config == changed  # adopted, not yet used by an iteration
    state.take_report(report(1, changed))
    assert state.applied == changed and state.iteration == 1 and len(state.history) == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_changes_within_the_merge_window_share_one_marker_from_first_old_to_last_new_value():
    clock = FakeClock()
    state = SessionState(BASE, clock=clock)
    rec = Recorder(state)
    state.take_report(report(1, BASE))
    lam3 = BASE.replace(lam=3.0)
    state.take_report(report(2, lam3))
    state.take_report(report(3, lam3.replace(lam=5.0)))
    assert rec.of("marker") == [("marker", 2, "λ 20→3")]
    assert rec.of("relabel") == [("relabel", "λ 20→5")]
    # back to the first value within the window: nothing differs from the first base, the label stays
    state.take_report(report(4, BASE))
    assert len(rec.of("relabel")) == 1
    clock.now += MARKER_MERGE_SECONDS + 0.5
    state.take_report(report(5, BASE.replace(inner_steps=4)))
    assert rec.of("marker")[-1] == ("marker", 5, "inner steps 3→4")


def test_a_diverged_report_draws_no_marker():
    state = SessionState(BASE)
    rec = Recorder(state)
    state.take_report(report(1, BASE))
    state.take_report(report(1, BASE.replace(lam=3.0), diverged=True))
    assert rec.of("marker") == []


def test_a_reset_trainer_keeps_live_edits_and_an_imported_one_brings_its_whole_config():
    state = SessionState(BASE)
    rec = Recorder(state)
    state.take_report(report(1, BASE))
    state.adopt(BASE.replace(method="maml", lam=7.0))
    built = BASE.replace(method="maml")  # the worker built it before the λ edit arrived
    state.take_trainer(TrainerInfo(built, 0, "cpu", TrainerChange.RESET))
    assert state.config == BASE.replace(method="maml", lam=7.0) and state.applied == built
    assert state.iteration == 0 and len(state.history) == 0 and ("cleared",) in rec.events
    imported = BASE.replace(lam=0.5, seed=3)
    state.take_trainer(TrainerInfo(imported, 40, "cpu", TrainerChange.IMPORT))
    assert state.config == imported and state.iteration == 40
    assert rec.events[-1] == ("config", imported)


def test_a_failed_reset_takes_the_running_trainers_restart_fields_back():
    state = SessionState(BASE)
    state.adopt(BASE.replace(hidden=[4096] * 16, lam=2.0))
    state.keep_applied_restart_fields()
    assert state.config == BASE.replace(lam=2.0)


def test_throttle_lets_one_call_through_per_interval_of_its_clock():
    now = [100.0]
    throttle = Throttle(0.25, clock=lambda: now[0])
    assert throttle.ready()  # the first call always passes
    seen = []
    for _ in range(10):  # 10 reports 0.1 s apart: passes at 0.3, 0.6, 0.9 s
        now[0] += 0.1
        seen.append(throttle.ready())
    assert seen == [False, False, True, False, False, True, False, False, True, False]


def test_redraw_scheduler_draws_one_stale_card_per_tick_and_each_at_most_every_interval(qtbot):
    from app.model.history import History
    from app.plots.redraw import CARD_MIN_INTERVAL_S, RedrawScheduler

    class Card:
        def __init__(self) -> None:
            self.drawn: list[int] = []

        def refresh(self, history: History) -> None:
            self.drawn.append(history.version)

    now = [0.0]
    history = History()
    cards = [Card(), Card(), Card()]
    scheduler = RedrawScheduler(cards, history, clock=lambda: now[0])
    scheduler.tick()
    assert [c.drawn for c in cards] == [[0], [], []]  # one card per tick
    scheduler.tick()
    scheduler.tick()
    scheduler.tick()  # every card shows version 0: nothing to do
    assert [c.drawn for c in cards] == [[0], [0], [0]]
    history.append(report(1, BASE))
    for _ in range(5):  # new data, but no card is CARD_MIN_INTERVAL_S old yet
        scheduler.tick()
    assert [len(c.drawn) for c in cards] == [1, 1, 1]
    now[0] += CARD_MIN_INTERVAL_S
    for _ in range(3):
        scheduler.tick()
    assert [c.drawn for c in cards] == [[0, 1], [0, 1], [0, 1]]
    scheduler.invalidate()  # a cleared history: every card redraws once it may
    now[0] += CARD_MIN_INTERVAL_S
    scheduler.tick()
    assert cards[0].drawn[-1] == 1 and len(cards[0].drawn) == 3
    assert np.isfinite(history.column("meta_loss")).all()


def test_a_hold_merges_into_the_marker_its_own_changes_opened_and_not_into_an_older_one():
    clock = FakeClock()
    held = [False]
    state = SessionState(BASE, clock=clock, gesture_active=lambda: held[0])
    rec = Recorder(state)
    state.take_report(report(1, BASE))
    state.adopt(BASE.replace(lam=3.0))  # typed, then a slider is taken hold of before the iteration ends
    clock.now += 3.0
    held[0] = True
    state.begin_gesture()
    state.adopt(state.config.replace(meta_lr=0.002))
    state.take_report(report(2, state.config))
    clock.now += 5.0  # the hold rests, then goes on
    state.adopt(state.config.replace(meta_lr=0.003))
    state.take_report(report(3, state.config))
    assert rec.of("marker") == [("marker", 2, "λ 20→3, meta step size 0.001→0.002")]
    assert rec.of("relabel") == [("relabel", "λ 20→3, meta step size 0.001→0.003")]
    held[0] = False
    clock.now += 10.0
    state.begin_gesture()  # released, and taken hold of again ten seconds later
    held[0] = True
    state.adopt(state.config.replace(lam=4.0))
    state.take_report(report(4, state.config))
    assert rec.of("marker")[-1] == ("marker", 4, "λ 3→4")
