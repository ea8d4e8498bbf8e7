"""Sweeps of a classification family: a real small sweep of synthetic glyphs on Ray started locally that
maximises the validation accuracy (best, order and record follow the metric's mode, every trial's run
folder holds the classification config), the final accuracy on the evaluation tasks, and the metrics a
family does not have refused before Ray starts.

Sweeps run as ``python -m imaml_core sweep`` subprocesses (Ray lives and dies with them), as in
tests/test_sweep.py; the refusals run in this process and start nothing."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest

from imaml_core import ExperimentConfig
from imaml_core.cli import main
from imaml_core.experiments.sweep import (
    METRIC_TABLE,
    SearchSpace,
    SweepError,
    SweepSettings,
    TrialSummary,
    default_metric,
    parse_search,
    read_sweep,
    sweep_available,
)
from imaml_core.experiments.sweep._sweep_file import SweepFile
from tests.test_sweep import run_imaml

pytestmark = pytest.mark.skipif(not sweep_available(), reason='needs the sweep extra: pip install ".[sweep]"')

# 4-way 1-shot glyphs on a 4-filter net: a meta-iteration takes milliseconds, so Ray's start dominates.
# 40 glyph classes leave 4 in the validation split, enough for 4 ways.
TINY_GLYPHS = (
    'task = "glyphs"\nglyph_classes = 40\nways = 4\nfilters = 4\nmeta_batch = 2\ninner_steps = 2\n'
    "shots = 1\nquery = 1\nval_tasks = 20\nval_every = 5\n"
)


def glyphs_config(tmp_path: Path) -> Path:
    path = tmp_path / "glyphs.toml"
    path.write_text(TINY_GLYPHS, encoding="utf-8")
    return path


def last_value(run: Path, column: str) -> float:
    with open(run / "metrics.csv", encoding="utf-8", newline="") as fh:
        values = [float(row[column]) for row in csv.DictReader(fh)]
    return next(v for v in reversed(values) if math.isfinite(v))


# -- real sweeps ------------------------------------------------------------------------------------------------
def test_a_val_accuracy_sweep_of_glyphs_maximises_and_every_trial_is_a_classification_run(tmp_path):
    out = tmp_path / "sweep"
    done = run_imaml(
        "sweep", "--out", str(out), "--config", str(glyphs_config(tmp_path)),
        "--search", "meta_lr=loguniform:1e-4:3e-2", "--metric", "val_accuracy",
        "--trials", "3", "--iterations", "10", "--report-every", "5", "--cpus-per-trial", "1", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert record["mode"] == "max" and record["settings"]["metric"] == "val_accuracy"
    summary = read_sweep(out)
    assert summary.status == "finished" and summary.mode == "max" and len(summary.trials) == 3
    for t in summary.trials:
        run = Path(t.run)
        config = ExperimentConfig.load(run / "config.toml")
        assert (config.task, config.ways, config.filters, config.glyph_classes) == ("glyphs", 4, 4, 40)
        assert config.meta_lr == t.config["meta_lr"]
        # The metric is the run's own last validation accuracy (one seed; the same theta and validation
        # tasks in the same process, so equal up to rounding of the mean over tasks).
        assert t.metric == pytest.approx(last_value(run, "val_accuracy"), abs=1e-9)
        assert t.val_accuracy == t.metric and 0 <= t.metric <= 1
        assert t.val_mse is None and t.val_loss == pytest.approx(last_value(run, "val_loss"), rel=1e-6)
    finished = [t for t in summary.trials if t.status == "finished"]
    assert finished  # ASHA never stops the first trial to reach a rung
    highest = max(t.metric for t in finished)
    best = summary.best
    assert best is not None and best.metric == highest
    assert best.number == min(t.number for t in finished if t.metric == highest)  # the earlier of equals
    # The printed table: finished trials first, each group by descending accuracy; then the best line and
    # the parameter importance (here its reason: too few completed trials).
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("importance (")
    lines = lines[:-1]
    assert lines[0].split()[:4] == ["#", "status", "iterations", "val_accuracy"]
    rows = [line.split() for line in lines[1:-1]]
    assert len(rows) == 3
    by_number = {t.number: t for t in summary.trials}
    listed = [by_number[int(r[0])] for r in rows]
    keys = [(t.status != "finished", -t.metric) for t in listed]
    assert keys == sorted(keys), rows
    assert lines[-1] == f"best: trial {best.number}, val_accuracy {best.metric:.4g} (highest), run {best.run}"


def test_eval_accuracy_is_the_final_accuracy_on_600_evaluation_tasks_with_the_trials_inner_steps(tmp_path):
    from imaml_core.experiments.runs import Run

    out = tmp_path / "sweep"
    done = run_imaml(
        "sweep", "--out", str(out), "--config", str(glyphs_config(tmp_path)),
        "--search", "inner_steps=int:1:3", "--metric", "eval_accuracy",
        "--trials", "2", "--iterations", "5", "--report-every", "5", "--json", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["mode"] == "max"
    finished = [t for t in result["trials"] if t["status"] == "finished"]
    assert len(finished) == 2  # one rung at the last iteration: ASHA stops nothing
    for t in finished:
        evaluated = Run.open(t["run"]).trainer().evaluate(tasks=600, steps=t["config"]["inner_steps"])
        # Same device, dtype and tasks; only a near-tie of two logits could round to another class.
        assert t["metric"] == pytest.approx(evaluated.accuracy, abs=1e-3)
    assert result["best"]["metric"] == max(t["metric"] for t in finished)


# -- refusals and records (no Ray) ------------------------------------------------------------------------------
def ray_stays_out(run) -> object:
    """``run()``'s result, checking that it did not import Ray where Ray was not loaded before."""
    before = "ray" in sys.modules
    result = run()
    assert before or "ray" not in sys.modules
    return result


@pytest.mark.parametrize(
    ("metric", "instead"),
    [
        ("val_mse", "val_loss or val_accuracy"),
        ("eval_mse", "eval_loss or eval_accuracy"),
        ("mse_per_second", "val_loss or val_accuracy"),
    ],
)
def test_an_mse_metric_of_a_classification_sweep_is_one_error_line_suggesting_loss_or_accuracy(
    tmp_path, capsys, metric, instead
):
    out = tmp_path / "sweep"
    args = ["sweep", "--out", str(out), "--config", str(glyphs_config(tmp_path)), "--search", "lam=uniform:1:2"]
    rc = ray_stays_out(lambda: main([*args, "--metric", metric]))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"error: --metric {metric} measures an MSE") and err.count("\n") == 1, err
    assert "cross-entropy" in err and err.rstrip().endswith(f"use {instead}"), err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--metric", "val_accuracy"], "sinusoid has no accuracy: use val_mse or val_loss"),
        (["--metric", "eval_accuracy"], "sinusoid has no accuracy: use eval_mse or eval_loss"),
        (["--task", "glyphs", "--search", "task=choice:sinusoid,glyphs"], "the searched task sinusoid"),
    ],
)
def test_an_accuracy_metric_of_a_regression_sweep_is_one_error_line(tmp_path, capsys, argv, says):
    out = tmp_path / "sweep"
    rc = ray_stays_out(lambda: main(["sweep", "--out", str(out), "--search", "lam=uniform:1:2", *argv]))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: --metric ") and err.count("\n") == 1 and says in err, err
    assert not out.exists()


def test_resume_refuses_the_task_flags(tmp_path, capsys):
    assert main(["sweep", "--resume", str(tmp_path), "--queries", "3"]) == 2
    assert "--queries does not apply" in capsys.readouterr().err


def test_every_metric_has_a_mode_and_classification_defaults_to_val_accuracy():
    assert {name: m.mode for name, m in METRIC_TABLE.items()} == {
        "val_mse": "min",
        "eval_mse": "min",
        "mse_per_second": "min",
        "val_loss": "min",
        "eval_loss": "min",
        "val_accuracy": "max",
        "eval_accuracy": "max",
    }
    assert default_metric(ExperimentConfig(task="glyphs")) == "val_accuracy"
    assert default_metric(ExperimentConfig()) == "val_mse"


def record_with(tmp_path: Path, metric: str, base: ExperimentConfig, trials: list[TrialSummary]) -> Path:
    space = SearchSpace.combine([parse_search("lam=uniform:1:2")])
    record = SweepFile.create(tmp_path, SweepSettings(metric=metric, trials=len(trials)), space, base)
    for t in trials:
        record.put_trial(t)
    record.set_status("finished")
    record.close()
    return tmp_path / "sweep.json"


def trial(number: int, metric: float, status: str = "finished") -> TrialSummary:
    return TrialSummary(f"t{number}", number, {"lam": 1.5}, status=status, metric=metric, iterations=10)


def test_best_and_order_follow_the_mode_and_an_older_record_takes_its_metrics_mode(tmp_path):
    trials = [trial(1, 0.4), trial(2, 0.7), trial(3, 0.9, "pruned"), trial(4, 0.7), trial(5, 0.2)]
    path = record_with(tmp_path, "val_accuracy", ExperimentConfig(task="glyphs"), trials)
    summary = read_sweep(tmp_path)
    assert summary.mode == "max" and summary.to_json()["mode"] == "max"
    assert summary.best is not None and summary.best.number == 2  # highest; the earlier of two equals
    assert [t.number for t in summary.ranked()] == [2, 4, 1, 5, 3]  # pruned ones after the finished
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["mode"]  # a record written before the mode was recorded
    for t in data["trials"]:
        del t["val_loss"], t["val_accuracy"]
    path.write_text(json.dumps(data), encoding="utf-8")
    assert read_sweep(tmp_path).mode == "max"
    data["settings"]["metric"] = "val_mse"
    path.write_text(json.dumps(data), encoding="utf-8")
    older = read_sweep(tmp_path)
    assert older.mode == "min" and older.best is not None and older.best.number == 5
    assert [t.number for t in older.ranked()] == [5, 1, 2, 4, 3]
    data["mode"] = "max"  # contradicts val_mse's mode: the record is damaged
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SweepError, match="damaged"):
        read_sweep(tmp_path)


def test_resume_refuses_a_record_whose_metric_its_base_family_lacks(tmp_path, capsys):
    record_with(tmp_path, "val_mse", ExperimentConfig(task="glyphs"), [trial(1, 0.5, "paused")])
    rc = ray_stays_out(lambda: main(["sweep", "--resume", str(tmp_path)]))
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--metric val_mse measures an MSE" in err, err
