"""Parameter importance of a sweep (fANOVA, or PED-ANOVA, on the recorded trials): the field that decides the metric
outranks a field that is noise, too few trials say why, and the CLI prints it (``--json``'s ``importance``,
the summary's line, ``--show`` on a folder without running anything, and at the end of a real sweep)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from imaml_core import ExperimentConfig
from imaml_core.cli import main
from imaml_core.experiments.sweep import (
    SearchSpace,
    SweepSettings,
    TrialSummary,
    param_importance,
    parse_search,
    read_sweep,
    sweep_available,
)
from imaml_core.experiments.sweep._sweep_file import SweepFile
from imaml_core.experiments.sweep.importance import Importance, min_trials

pytestmark = pytest.mark.skipif(not sweep_available(), reason='needs the sweep extra: pip install ".[sweep]"')

SPACE = ("lam=loguniform:0.5:100", "cg_steps=int:1:10", "hidden=choice:[8,8],[16,16]")


def written_sweep(
    folder: Path, trials: list[TrialSummary], mode_metric: str = "val_mse", search: tuple[str, ...] = SPACE
) -> Path:
    """A sweep folder as a driver leaves it: sweep.json with these trials, and no runs (none are read)."""
    folder.mkdir(parents=True)
    space = SearchSpace.combine([parse_search(text) for text in search])
    settings = SweepSettings(metric=mode_metric, trials=max(len(trials), 1), iterations=4)
    record = SweepFile.create(folder, settings, space, ExperimentConfig())
    for trial in trials:
        record.put_trial(trial)
    record.set_status("finished")
    record.close()
    return folder


def lam_decides(n: int, seed: int = 0, sign: float = 1.0) -> list[TrialSummary]:
    """``n`` finished trials whose metric is a function of λ alone (best at λ = 10); CG iterations and the
    layer widths are drawn independently of it, so they explain nothing."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        lam = float(10 ** rng.uniform(math.log10(0.5), 2.0))
        cg = int(rng.integers(1, 11))
        hidden = [[8, 8], [16, 16]][int(rng.integers(0, 2))]
        metric = sign * (0.1 + (math.log10(lam) - 1.0) ** 2)
        config = {"lam": lam, "cg_steps": cg, "hidden": hidden}
        out.append(TrialSummary(f"t{i}", i, config, "finished", metric, metric, 4, 0.1))
    return out


@pytest.mark.parametrize("evaluator", ["fANOVA", "PedANOVA"])
def test_the_field_that_decides_the_metric_gets_the_largest_share(tmp_path, evaluator):
    summary = read_sweep(written_sweep(tmp_path / "s", lam_decides(60)))
    importance = param_importance(summary, evaluator)
    assert importance.evaluator == evaluator and not importance.reason and importance.trials == 60
    assert list(importance.fields)[0] == "lam"  # largest first
    assert set(importance.fields) == {"lam", "cg_steps", "hidden"}
    assert importance.fields["lam"] > max(importance.fields["cg_steps"], importance.fields["hidden"])
    shares = list(importance.fields.values())
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0, abs=1e-9)  # normalised by Optuna: a sum of three floats
    assert param_importance(summary, evaluator) == importance  # fANOVA's forests are seeded; PED-ANOVA is exact


def test_fanova_is_the_default_where_scikit_learn_installs(tmp_path):
    """The sweep extra installs scikit-learn, so ``make test`` runs fANOVA; the evaluator is named."""
    pytest.importorskip("sklearn")
    summary = read_sweep(written_sweep(tmp_path / "s", lam_decides(20)))
    assert param_importance(summary).evaluator == "fANOVA"
    with pytest.raises(ValueError, match="evaluator must be one of"):
        param_importance(summary, "SHAP")


def test_a_maximised_metric_ranks_the_same_field_first(tmp_path):
    """Accuracy-like: higher is better, so the study maximises; λ still decides."""
    trials = lam_decides(60, seed=1, sign=-1.0)
    summary = read_sweep(written_sweep(tmp_path / "s", trials, "val_accuracy"))
    assert summary.mode == "max"
    assert list(param_importance(summary).fields)[0] == "lam"
    assert list(param_importance(summary, "PedANOVA").fields)[0] == "lam"


def test_too_few_completed_trials_say_why(tmp_path):
    trials = lam_decides(3)
    trials = [trials[0], trials[1].replace(status="pruned"), trials[2].replace(status="failed", metric=None)]
    importance = param_importance(read_sweep(written_sweep(tmp_path / "s", trials)))
    assert importance.fields == {}
    assert importance.reason == "importance needs at least 4 completed trials (1 so far)"  # 3 searched fields
    assert importance.to_json() == {"evaluator": importance.evaluator, "reason": importance.reason}
    nan = [t.replace(metric=math.nan) for t in lam_decides(4)]  # a diverged metric is not a completed value
    reason = param_importance(read_sweep(written_sweep(tmp_path / "n", nan))).reason
    assert reason == "importance needs at least 4 completed trials (0 so far)"


@pytest.mark.parametrize("evaluator", ["fANOVA", "PedANOVA"])
def test_importance_needs_one_more_completed_trial_than_searched_fields_and_at_least_three(tmp_path, evaluator):
    """With 2 trials where λ alone decides, fANOVA ranks another field first: too few to mean anything."""
    assert [min_trials(n) for n in (1, 2, 3, 5)] == [3, 3, 4, 6]
    three = param_importance(read_sweep(written_sweep(tmp_path / "three", lam_decides(3))), evaluator)
    assert three.evaluator == evaluator and three.fields == {}
    assert three.reason == "importance needs at least 4 completed trials (3 so far)"
    four = param_importance(read_sweep(written_sweep(tmp_path / "four", lam_decides(4))), evaluator)
    assert four.evaluator == evaluator and not four.reason and four.trials == 4
    assert set(four.fields) == {"lam", "cg_steps", "hidden"}
    lam_only = ("lam=loguniform:0.5:100",)
    two = read_sweep(written_sweep(tmp_path / "two", lam_decides(2), search=lam_only))
    assert param_importance(two, evaluator).reason == "importance needs at least 3 completed trials (2 so far)"
    three_lam = param_importance(read_sweep(written_sweep(tmp_path / "t", lam_decides(3), search=lam_only)), evaluator)
    assert three_lam.fields == {"lam": pytest.approx(1.0)} and three_lam.trials == 3


def test_importance_reads_back_from_its_json():
    shares = Importance("fANOVA", {"lam": 0.75, "cg_steps": 0.25}, trials=12)
    why = Importance("PedANOVA", reason="importance needs at least 4 completed trials (1 so far)")
    for importance in (shares, why):
        assert Importance.from_json(json.loads(json.dumps(importance.to_json()))) == importance
    garbled = [
        None,
        [],
        {"fields": {"lam": 1.0}, "trials": 3},  # no evaluator
        {"evaluator": "fANOVA", "fields": {"lam": "big"}, "trials": 3},
        {"evaluator": "fANOVA", "fields": {"lam": 1.0}},  # no count
        {"evaluator": "fANOVA", "reason": ""},
    ]
    for data in garbled:
        with pytest.raises(ValueError):
            Importance.from_json(data)


def test_a_metric_that_never_changes_explains_nothing(tmp_path):
    trials = [t.replace(metric=0.5) for t in lam_decides(5)]
    importance = param_importance(read_sweep(written_sweep(tmp_path / "s", trials)))
    assert importance.reason == "val_mse is the same in every completed trial"


def test_show_prints_a_folders_summary_with_importance_and_runs_nothing(tmp_path, capsys):
    folder = written_sweep(tmp_path / "s", lam_decides(30))
    before = sorted(p.name for p in folder.iterdir())
    assert main(["sweep", "--show", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["importance"]["evaluator"] == "fANOVA"
    fields = result["importance"]["fields"]
    assert list(fields)[0] == "lam" and sum(fields.values()) == pytest.approx(1.0, abs=1e-9)
    assert result["importance"]["trials"] == 30  # how many completed trials the shares rest on
    assert len(result["trials"]) == 30 and result["best"] is not None
    assert main(["sweep", "--show", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("importance (fANOVA, 30 completed trials): lam 0.")
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written, no Ray folder
    assert main(["sweep", "--show", str(folder), "--trials", "3"]) == 2
    assert "--trials does not apply" in capsys.readouterr().err
    assert main(["sweep", "--show", str(tmp_path)]) == 2  # not a sweep folder: one error line
    assert capsys.readouterr().err.startswith("error: ")


def test_a_cli_sweep_prints_the_importance_in_its_json(tmp_path):
    """A real tiny sweep on Ray started inside the command: ``importance`` is computed from its record (3
    trials: the fewest whose shares two searched fields' importance reports)."""
    from .test_sweep import base_config, run_imaml

    out = tmp_path / "sweep"
    done = run_imaml(
        "sweep", "--out", str(out), "--config", str(base_config(tmp_path)),
        "--search", "lam=loguniform:0.5:100", "--search", "cg_steps=int:1:5",
        "--trials", "3", "--iterations", "10", "--report-every", "10", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    importance = result["importance"]
    assert importance["evaluator"] == "fANOVA"
    # One report per trial, at its last iteration: ASHA has no earlier rung to stop a trial at.
    assert all(t["status"] == "finished" for t in result["trials"])
    assert set(importance["fields"]) == {"lam", "cg_steps"}
    assert sum(importance["fields"].values()) == pytest.approx(1.0, abs=1e-9)
    assert importance == param_importance(read_sweep(out)).to_json()
