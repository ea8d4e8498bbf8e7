"""Few-shot classification through the command line: train, exact resume, eval with accuracy, listing,
load_model, profile, and every bad input as one line and exit status 2 with nothing left behind.

Runs use synthetic glyphs (no download) and a tiny conv net, so the file takes seconds; the real Omniglot
subsets are used where the workspace has them.
"""

import json
from pathlib import Path

import pytest
import torch

from imaml_core import load_model
from imaml_core.cli import main
from imaml_core.engine.checkpoint import load_checkpoint

from .test_runs import metric_rows

TINY = ["--task", "glyphs", "--glyph-classes", "60", "--filters", "8", "--meta-batch", "4", "--inner-steps", "3"]
OMNIGLOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "omniglot"


def train(*args: str) -> None:
    assert main(["train", *TINY, *args, "--quiet", "--no-tensorboard"]) == 0


def resume(*args: str) -> None:
    assert main(["train", *args, "--quiet", "--no-tensorboard"]) == 0


def one_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_classification_run_resumes_exactly(tmp_path):
    train("--iterations", "10", "--save-every", "4", "--out", str(tmp_path / "straight"))
    cut = tmp_path / "cut"
    train("--iterations", "5", "--save-every", "0", "--out", str(cut))
    resume("--resume", str(cut), "--iterations", "10", "--save-every", "3")
    a, b = (load_checkpoint(p / "meta_params.safetensors") for p in (cut, tmp_path / "straight"))
    assert a.iteration == b.iteration == 10 and a.config.task == "glyphs"
    assert all(torch.equal(a.params[k], b.params[k]) for k in b.params)
    assert metric_rows(cut) == metric_rows(tmp_path / "straight")
    assert metric_rows(cut)[-1]["val_accuracy"] not in ("", "nan")  # validated at iteration 10


def test_eval_reports_accuracy_with_its_interval_and_which_lambda_adapted(tmp_path, capsys):
    train("--iterations", "2", "--out", str(tmp_path / "r"), "--ways", "3")
    capsys.readouterr()
    ckpt = str(tmp_path / "r" / "meta_params.safetensors")
    for adapt in ("trained", "zero"):
        assert main(["eval", ckpt, "--tasks", "30", "--json", "--adapt-lam", adapt]) == 0
        out = json.loads(capsys.readouterr().out)
        assert 0.0 <= out["accuracy"] <= 1.0 and out["accuracy_ci95"] > 0
        assert out["steps"] == 16 and out["tasks"] == 30  # the paper's 16 steps up to 5-way
        assert len(out["accuracy_per_step"]) == 17 and out["loss_name"] == "cross-entropy"
        assert out["adapt_lam"] == adapt and out["data"] == "synthetic glyphs" and "mse" not in out
    assert main(["eval", ckpt, "--tasks", "30"]) == 0
    text = capsys.readouterr().out
    assert "synthetic glyphs" in text and "accuracy:" in text and "trained lambda" in text


def test_training_beats_the_untrained_net_on_test_tasks(tmp_path, capsys):
    """Behaviour, not speed: the same evaluation tasks, before and after 40 meta-iterations."""
    train("--iterations", "0", "--out", str(tmp_path / "untrained"), "--ways", "3")
    train("--iterations", "40", "--out", str(tmp_path / "trained"), "--ways", "3", "--save-every", "0")
    capsys.readouterr()
    accuracy = {}
    for name in ("untrained", "trained"):
        assert main(["eval", str(tmp_path / name / "meta_params.safetensors"), "--tasks", "100", "--json"]) == 0
        accuracy[name] = json.loads(capsys.readouterr().out)["accuracy"]
    assert accuracy["trained"] > accuracy["untrained"] and accuracy["trained"] > 1 / 3


def test_runs_list_and_load_model_know_the_family(tmp_path, capsys):
    train("--iterations", "10", "--out", str(tmp_path / "runs" / "g"))
    capsys.readouterr()
    assert main(["runs", "list", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    assert "glyphs (synthetic)" in table and "val acc" in table and "(synthetic glyphs)" in table
    assert main(["runs", "list", str(tmp_path / "runs"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["task"] == "glyphs" and 0 <= row["val_accuracy"] <= 1 and row["val_mse"] is None
    model = load_model(tmp_path / "runs" / "g" / "meta_params.safetensors")
    assert model(torch.rand(7, 1, 28, 28)).shape == (7, 5)


def test_profile_times_the_family(capsys):
    argv = ["profile", *TINY[:6], "--ways", "3", "--meta-batch", "2", "--inner-steps", "1", "--method", "imaml"]
    assert main([*argv, "--iterations", "1", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["seconds_per_iteration"] > 0 and row["memory_bytes"] > 0


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--ways", "61"], "61-way tasks need 61 classes"),
        (["--shots", "15", "--queries", "10"], "need 25 images per class; it has 20"),
        (["--ways", "1"], "ways must be >= 2"),
        (["--task", "no_such_module_xyz:fam"], "cannot import the task family"),
        (["--task", "bad name"], "task must be one of"),
        (["--task", "omniglot", "--data", "/nonexistent/omniglot"], "imaml data omniglot"),
    ],
)
def test_bad_classification_settings_are_one_line_and_leave_no_folder(tmp_path, capsys, flags, words):
    line = one_error(capsys, ["train", *TINY, *flags, "--iterations", "1", "--out", str(tmp_path / "r")])
    assert words in line
    assert not (tmp_path / "r").exists()


def test_eval_takes_data_that_moved_and_refuses_data_that_is_gone(tmp_path, capsys):
    if not OMNIGLOT.is_dir():
        pytest.skip(f"the Omniglot subsets are not in this workspace ({OMNIGLOT})")
    omni = ["--task", "omniglot", "--data", str(OMNIGLOT), "--filters", "8", "--meta-batch", "2", "--inner-steps", "2"]
    assert main(["train", *omni, "--iterations", "2", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    ckpt = str(tmp_path / "o" / "meta_params.safetensors")
    line = one_error(capsys, ["eval", ckpt, "--tasks", "5", "--data", str(tmp_path / "gone")])
    assert "does not exist" in line
    assert main(["eval", ckpt, "--tasks", "20", "--json", "--data", str(OMNIGLOT)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["data"].startswith("Omniglot (alphabet split)") and 0 <= out["accuracy"] <= 1
