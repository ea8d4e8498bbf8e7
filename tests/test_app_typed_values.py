"""Every typed value gets an answer: in every field that takes text, a value the config accepts is taken
exactly (also beyond a slider's handle range), and any other is refused in the banner naming the field's
label, the text as typed and the range the config allows, while the field shows the value in force. The
cases are generated from the field table, so a new field is covered without a new test."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from app.model.fields import ADVANCED, GROUPS, Spec
from app.panels.sliders import LabeledSlider
from imaml_core import ExperimentConfig, MetaTrainer, StepCancelled
from imaml_core.engine import footprint

from .app_helpers import small_config

TIMEOUT_MS = 60_000
TYPED_KINDS = ("log", "ilog", "int", "spin", "list", "path")
SPECS = [s for _title, specs in GROUPS for s in specs] + list(ADVANCED)
TYPED = [s for s in SPECS if s.kind in TYPED_KINDS]
HOSTILE = ("-5", "0", "nan", "inf", "abc", "1e9", "100000", "-1", "1.5", "", "  ", "1e400", "\x1b[31m" + "9" * 80)
# whole numbers past a float's 53 bits: the config's largest seed, one a float would round, one too large
HOSTILE += (str(2**63 - 1), "9007199254740993", str(2**63), "9" * 400)
HOSTILE_LISTS = ("40, banana", "0", "-1", "1.5", "", "5000", ", ".join(["8"] * 17), "nan")
DOC = Path(__file__).resolve().parents[1] / "docs" / "GUI.md"


def _meant(spec: Spec, text: str) -> object:
    """What ``text`` denotes in the field's type, read the way a person means it; None for no such value."""
    kind = str(ExperimentConfig.__dataclass_fields__[spec.name].type)
    if kind == "list[int]":
        try:
            numbers = [float(t) for t in text.replace(",", " ").split()]
        except ValueError:
            return None
        ok = numbers and all(math.isfinite(v) and v == int(v) for v in numbers)
        return [int(v) for v in numbers] if ok else None
    try:
        return int(text) if kind == "int" else float(int(text))  # digits mean exactly that whole number
    except OverflowError:
        return None  # more digits than a float holds
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if kind == "int":
        return int(number) if number == int(number) else None
    return number


def _accepts(config: ExperimentConfig, name: str, value: object) -> bool:
    if value is None:
        return False
    try:
        config.replace(**{name: value})
    except Exception:  # noqa: BLE001 (any refusal)
        return False
    return True


def _edit(window, name: str) -> QLineEdit:
    widget = window.controls.editor(name)
    return widget.lineEdit() if isinstance(widget, LabeledSlider) else widget


def _type(window, name: str, text: str) -> None:
    """Enter ``text`` into the field as a person does (the text, then Enter or leaving the field)."""
    edit = _edit(window, name)
    edit.setText(text)
    edit.editingFinished.emit()


def _shows(window, name: str, value: object) -> bool:
    """The field shows ``value``: its ``value()`` is it, and its text reads back as it, exactly."""
    text = _edit(window, name).text()
    if window.controls.value(name) != value:
        return False
    if isinstance(value, list):
        return [int(t) for t in text.replace(",", " ").split()] == value
    if isinstance(value, str):
        return text == value
    if isinstance(value, int):
        return int(text) == value  # exactly, past a float's 53 bits
    return float(text) == value


def _valid_other(config: ExperimentConfig, spec: Spec) -> str:
    """A value the config accepts for the field, different from the one in force, as text."""
    current = getattr(config, spec.name)
    if isinstance(current, list):
        return "8" if current != [8] else "9"
    if isinstance(current, str):
        return "elsewhere" if current != "elsewhere" else "here"
    for candidate in (spec.lo, spec.hi, (spec.lo + spec.hi) / 2, 1, 2):
        if isinstance(current, int):
            candidate = int(candidate)
        if candidate != current and _accepts(config, spec.name, candidate):
            return str(candidate)
    raise AssertionError(f"no other valid value for {spec.name}")


@pytest.mark.parametrize("spec", TYPED, ids=[s.name for s in TYPED])
def test_every_typed_value_is_taken_exactly_or_refused_naming_the_field_the_text_and_the_range(make_window, spec):
    window = make_window(small_config(val_tasks=5))
    window.confirm_restarts = False
    label = spec.label
    for text in HOSTILE_LISTS if spec.kind == "list" else HOSTILE:
        before = window.config()
        value = _meant(spec, text) if spec.kind != "path" else text.strip()
        _type(window, spec.name, text)
        if _accepts(before, spec.name, value):
            assert getattr(window.config(), spec.name) == value, text
            assert window.banner.topic != f"field:{spec.name}", text
            assert _shows(window, spec.name, value), text
            continue
        assert window.config() == before, text  # nothing of a refused value reaches the config
        assert window.banner.topic == f"field:{spec.name}", text
        message = window.banner.message()
        assert message.startswith(f"{label}: "), message
        shown = text.replace("\x1b", "\\x1b")[:40]  # escaped and shortened, never raw control characters
        assert f"“{shown}" in message and "\x1b" not in message, message
        assert ExperimentConfig.allowed(spec.name, label) in message, message
        assert _shows(window, spec.name, getattr(before, spec.name)), text
        # a valid value of the same field answers the refusal: its message goes
        other = _valid_other(window.config(), spec)
        _type(window, spec.name, other)
        assert window.banner.topic != f"field:{spec.name}" and not window.banner.message(), other
        assert _shows(window, spec.name, getattr(window.config(), spec.name))


def test_a_refusal_of_another_field_replaces_the_first_and_the_first_fields_valid_edit_leaves_it(make_window):
    window = make_window()
    _type(window, "lam", "abc")
    _type(window, "cg_steps", "-1")
    assert window.banner.topic == "field:cg_steps" and "CG iterations" in window.banner.message()
    _type(window, "lam", "3")
    assert window.config().lam == 3.0
    assert window.banner.topic == "field:cg_steps"  # a message about another field stays


SLIDERS = [s for s in SPECS if s.kind in ("log", "ilog", "int")]


@pytest.mark.parametrize("spec", SLIDERS, ids=[s.name for s in SLIDERS])
def test_a_value_beyond_the_sliders_handle_range_but_allowed_by_the_config_is_taken_exactly(make_window, spec):
    window = make_window(small_config(val_tasks=5))
    config = window.config()
    integer = spec.kind != "log"
    candidates = [spec.hi * 2, spec.hi + 1, spec.lo / 2, spec.lo - 1]
    beyond = [int(c) if integer else c for c in candidates]
    beyond = [c for c in beyond if not spec.lo <= c <= spec.hi and _accepts(config, spec.name, c)]
    if not beyond:
        pytest.skip(f"the config allows nothing beyond {spec.name}'s handle range")
    _type(window, spec.name, str(beyond[0]))
    assert getattr(window.config(), spec.name) == beyond[0]
    assert _shows(window, spec.name, beyond[0]) and not window.banner.message()
    slider = window.controls.editor(spec.name)._slider
    assert slider.value() in (slider.minimum(), slider.maximum())  # the handle rests at its end


def test_typing_into_the_lambda_box_with_the_keyboard_applies_on_enter(qtbot, make_window):
    window = make_window()
    edit = _edit(window, "lam")
    edit.selectAll()
    qtbot.keyClicks(edit, "nan")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert "λ" in window.banner.message() and "“nan”" in window.banner.message()
    assert edit.text() == "20" or float(edit.text()) == window.config().lam
    edit.selectAll()
    qtbot.keyClicks(edit, "250")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert window.config().lam == 250.0 and not window.banner.message()


def test_a_meta_batch_that_cannot_fit_in_memory_is_refused_as_the_fields_message(qtbot, make_window, monkeypatch):
    window = make_window()
    monkeypatch.setattr(footprint, "free_bytes", lambda device: 10**9)  # a machine with 1 GB free
    in_force = window.config().meta_batch
    _type(window, "meta_batch", "100000")
    qtbot.waitUntil(lambda: window.banner.topic == "field:meta_batch", timeout=TIMEOUT_MS)
    message = window.banner.message()
    assert message.startswith("meta-batch: “100000”") and "GB" in message and "lower the meta-batch" in message
    assert window.config().meta_batch == in_force
    assert _shows(window, "meta_batch", in_force)
    _type(window, "meta_batch", str(in_force + 1))
    assert window.config().meta_batch == in_force + 1 and not window.banner.message()


def test_a_refused_meta_batch_does_not_take_an_edit_sent_meanwhile_with_it(qtbot, make_window, monkeypatch):
    """λ typed while the trainer has yet to answer a meta-batch that cannot fit: the refusal names the
    meta-batch only, λ stays as typed, and the trainer runs with it (the window and the trainer agree)."""
    window = make_window(small_config(val_every=0))
    monkeypatch.setattr(footprint, "free_bytes", lambda device: 10**9)
    in_force = window.config().meta_batch
    _type(window, "meta_batch", "100000")
    _type(window, "lam", "7")  # before the worker's answer reaches the window: both edits are in flight
    qtbot.waitUntil(lambda: window.banner.topic == "field:meta_batch", timeout=TIMEOUT_MS)
    assert window.config().meta_batch == in_force and window.config().lam == 7.0
    with qtbot.waitSignal(window.report_received, timeout=TIMEOUT_MS) as blocker:
        window.step()
    assert blocker.args[0].config.lam == 7.0 and blocker.args[0].config.meta_batch == in_force
    assert window.banner.topic == "field:meta_batch" and "λ" not in window.banner.message().split("—")[0]


def test_a_fields_refusal_is_cleared_when_another_change_sets_that_field(qtbot, make_window, tmp_path):
    """ "λ stays 20" stops being true when a preset sets λ = 5: the message goes with it."""
    window = make_window()
    _type(window, "lam", "-5")
    assert window.banner.topic == "field:lam"
    preset = tmp_path / "preset.toml"
    window.config().replace(lam=5.0).save(preset)
    assert window.load_preset(preset)
    assert window.config().lam == 5.0 and window.banner.topic != "field:lam"


def endless_step(self, should_stop=None):
    """A meta-iteration that ends only when interrupted, polling as the engine does between its inner and
    CG steps: a pause always meets it in flight, however fast the machine."""
    while not (should_stop is not None and should_stop()):
        time.sleep(0.001)
    raise StepCancelled("meta-iteration cancelled")


def test_pause_during_a_long_iteration_says_it_finishes_the_step_and_abandons_the_iteration(
    qtbot, make_window, monkeypatch
):
    monkeypatch.setattr(MetaTrainer, "step", endless_step)
    window = make_window(small_config(val_every=0))
    worker = window.worker_thread.worker
    window.start()
    qtbot.waitUntil(lambda: worker.interrupt.in_step, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(worker.running_changed, timeout=TIMEOUT_MS) as blocker:
        window.pause()
        assert window.status.state.text() == "pausing: finishing the step in progress…"
    assert blocker.args == [False]
    qtbot.waitUntil(lambda: "finishing" not in window.status.state.text(), timeout=TIMEOUT_MS)
    assert window.iteration == 0 and len(window.history) == 0  # the iteration was abandoned, not finished
    assert not worker.interrupt.in_step and not worker.interrupt.is_set()


def test_closing_during_a_long_iteration_interrupts_it_and_joins_the_worker(qtbot, make_window, monkeypatch):
    monkeypatch.setattr(MetaTrainer, "step", endless_step)
    window = make_window(small_config(val_every=0))
    worker = window.worker_thread.worker
    window.start()
    qtbot.waitUntil(lambda: worker.interrupt.in_step, timeout=TIMEOUT_MS)
    window.close()
    assert worker.interrupt.is_set() and not window.worker_thread.qthread.isRunning()
    assert window.iteration == 0


def _accepts_table() -> str:
    """docs/GUI.md's table "What each control accepts", from the field table and the config's ranges."""
    rows = ["| Control | Applies | Allowed values | A value outside them |", "|---|---|---|---|"]
    for spec in SPECS:
        live = "live" if ExperimentConfig.is_live(spec.name) else "restart"
        if spec.kind in TYPED_KINDS:
            allowed, bad = ExperimentConfig.allowed(spec.name, spec.label), "refused in the banner; value kept"
        else:
            allowed, bad = ", ".join(t for t, _v in spec.choices) or "on or off", "cannot be chosen"
        if spec.name in ("meta_batch", "inner_steps"):  # footprint.check_fits, when the worker applies it
            bad += "; also when one meta-iteration would not fit in free memory"
        rows.append(f"| {spec.label} | {live} | {allowed} | {bad} |")
    return "\n".join(rows)


def test_the_guide_lists_what_every_control_accepts_as_the_config_says():
    text = DOC.read_text(encoding="utf-8")
    section = re.search(r"## What each control accepts\n(.*?)(?=\n## |\Z)", text, re.S)
    assert section is not None, "docs/GUI.md has no section 'What each control accepts'"
    expected = _accepts_table()
    assert expected in section.group(1), f"regenerate the table in docs/GUI.md:\n{expected}"
