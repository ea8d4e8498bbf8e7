"""Run names without a window: a new run is named by its settings, a fork by what it changes from its
parent, and a live run's name follows its settings only until its first meta-iteration is recorded."""

from __future__ import annotations

from app.model.run_names import AutoName, Parent, changes_text, fork_name, run_name
from imaml_core import ExperimentConfig

BASE = ExperimentConfig(lam=20.0)


def test_a_new_run_is_named_by_its_method_and_the_setting_that_matters_most_for_it():
    assert run_name(BASE) == "imaml λ=20"
    assert run_name(BASE.replace(lam=0.5)) == "imaml λ=0.5"
    assert run_name(BASE.replace(method="maml", inner_steps=5)) == "maml inner steps=5"  # MAML has no λ


def test_a_fork_is_named_by_what_it_changes_then_its_parent_and_the_fork_iteration():
    assert fork_name("imaml λ=20", BASE, BASE.replace(lam=5.0), 221) == "λ=5 ← imaml λ=20 @221"
    two = BASE.replace(lam=5.0, inner_steps=13)
    assert fork_name("imaml λ=20", BASE, two, 221) == "λ=5, inner steps=13 ← imaml λ=20 @221"
    assert fork_name("imaml λ=20", BASE, BASE, 221) == "fork ← imaml λ=20 @221"  # nothing changed yet


def test_a_fork_and_its_parent_never_share_a_name():
    forked = fork_name(run_name(BASE), BASE, BASE, 7)
    assert forked != run_name(BASE)
    assert fork_name(run_name(BASE), BASE, BASE.replace(lam=5.0), 7) != run_name(BASE.replace(lam=5.0))


def test_changes_beyond_three_are_elided():
    many = BASE.replace(lam=5.0, inner_steps=13, cg_steps=7, meta_lr=0.0123)
    assert changes_text(BASE, many).count("=") == 3 and changes_text(BASE, many).endswith(", …")


def test_a_live_name_follows_the_settings_only_before_the_first_recorded_iteration():
    auto = AutoName("run-1", 221, Parent("imaml λ=20", BASE, 221))
    assert auto.follows("run-1", 221) and auto.name(BASE.replace(lam=3.0)) == "λ=3 ← imaml λ=20 @221"
    assert not auto.follows("run-1", 222)  # a meta-iteration was recorded: the name describes it now
    assert not auto.follows("run-2", 221)  # another run is live
    assert AutoName("run-1", 0).name(BASE.replace(lam=3.0)) == "imaml λ=3"
