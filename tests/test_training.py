"""The one train-and-record loop (imaml_core.experiments.training): what it records and when it stops."""

import numpy as np

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.experiments.runs import Run, RunRecorder
from imaml_core.experiments.training import DivergenceGuard, TrainingSession

HEALTHY = ExperimentConfig(hidden=[8], meta_batch=4, val_tasks=4, inner_steps=2, val_every=0)
# Unsafeguarded GD with a huge step diverges on every meta-iteration (see test_divergence.py).
DIVERGING = HEALTHY.replace(method="maml", inner_lr=50.0, inner_steps=5)


def test_the_guard_counts_divergence_in_a_row_and_names_the_limit():
    healthy, bad = MetaTrainer(HEALTHY).step(), MetaTrainer(DIVERGING).step()
    assert not healthy.diverged and bad.diverged
    guard = DivergenceGuard(limit=3)
    assert [guard.observe(r) for r in (bad, bad, healthy, bad, bad)] == [""] * 5  # a healthy one resets
    reason = guard.observe(bad)
    assert reason.startswith("training diverged 3 meta-iterations in a row: ") and bad.message in reason
    assert DivergenceGuard(limit=1).observe(bad) == bad.message  # the window's guard: the engine's own words


def test_diverging_training_stops_at_the_limit_with_every_row_on_disk(tmp_path):
    trainer = MetaTrainer(DIVERGING)
    run = Run.create(tmp_path / "run", DIVERGING, tensorboard=False)
    session = TrainingSession(trainer, RunRecorder(run, save_every=0), DivergenceGuard(limit=4))
    session.train(until=100)
    assert session.stop_reason.startswith("training diverged 4 meta-iterations in a row")
    assert trainer.iteration == 0  # no step was taken: θ and Adam untouched
    session.close("failed")
    metrics = Run.open(tmp_path / "run").metrics()
    assert len(metrics["iteration"]) == 4 and np.all(metrics["diverged"] == 1)
    assert Run.open(tmp_path / "run").info.status == "failed"


def test_a_session_without_a_run_trains_and_counts_its_seconds():
    session = TrainingSession(MetaTrainer(HEALTHY))
    reports = []
    session.train(until=4, on_report=reports.append)
    assert [r.iteration for r in reports] == [1, 2, 3, 4]
    assert session.seconds == sum(r.seconds for r in reports) > 0


def test_stop_ends_training_between_meta_iterations():
    trainer = MetaTrainer(HEALTHY)
    session = TrainingSession(trainer)
    session.train(until=50, stop=lambda: trainer.iteration >= 2)
    assert trainer.iteration == 2
