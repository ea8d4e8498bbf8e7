"""The `imaml` command line: the happy paths, and every bad input ends in one `error:` line and exit 2."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from imaml_core import load_checkpoint
from imaml_core.cli import main

from .helpers import interrupted_training

SMALL = ["--meta-batch", "4", "--inner-steps", "2", "--shots", "5"]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imaml_core", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["train", *SMALL, "--iterations", "6", "--out", str(out), "--quiet"]) == 0
    return out


def test_train_writes_checkpoint_config_and_metrics(trained):
    assert load_checkpoint(trained / "meta_params.safetensors").iteration == 6
    assert "meta_batch = 4" in (trained / "config.toml").read_text()
    lines = (trained / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("iteration,method,meta_loss") and len(lines) == 7


def test_eval_json_has_the_documented_keys(trained, capsys):
    params = str(trained / "meta_params.safetensors")
    assert main(["eval", params, "--tasks", "20", "--shots", "5", "--steps", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tasks"] == 20 and len(out["mse_per_step"]) == 4
    assert out["mse"] == pytest.approx(out["mse_per_step"][-1]) and out["ci95"] > 0


def test_eval_of_a_checkpoint_matches_the_trainer_that_saved_it(tmp_path, capsys):
    from imaml_core import ExperimentConfig, MetaTrainer, save_checkpoint

    trainer = MetaTrainer(ExperimentConfig(meta_batch=4, val_every=0))
    for _ in range(3):
        trainer.step()
    save_checkpoint(tmp_path / "t.safetensors", trainer.params(), trainer.config, trainer.iteration)
    expected = trainer.evaluate(tasks=30, shots=10, steps=5, seed=2)
    argv = ["eval", str(tmp_path / "t.safetensors"), "--tasks", "30", "--steps", "5", "--seed", "2", "--json"]
    assert main([*argv, "--device", "cpu"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["mse_per_step"] == pytest.approx(expected.mse_per_step, rel=1e-6)


def test_profile_json_rows(capsys):
    argv = ["profile", "--method", "imaml,maml", "--inner-steps", "2,4", "--meta-batch", "3", "--iterations", "1"]
    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["method"], r["inner_steps"]) for r in rows] == [("imaml", 2), ("imaml", 4), ("maml", 2), ("maml", 4)]
    for r in rows:
        assert r["seconds_per_iteration"] > 0 and r["memory_bytes"] > 0


def _bad_cases(tmp: Path, trained: Path) -> dict[str, list[str]]:
    (tmp / "bad.toml").write_text("lam = [oops\n")
    (tmp / "unknown.toml").write_text("learning_rate = 3\n")
    (tmp / "corrupt.safetensors").write_bytes(b"\x00" * 64)
    (tmp / "a_file").write_text("x")
    ckpt = trained / "meta_params.safetensors"
    mismatched = tmp / "mismatch.safetensors"
    data = bytearray(ckpt.read_bytes())
    data[-3] ^= 0xFF
    mismatched.write_bytes(bytes(data))
    out = str(tmp / "o")
    return {
        "negative lam": ["train", "--lam", "-1", "--out", out],
        "nan lam": ["train", "--lam", "nan", "--out", out],
        "negative inner steps": ["train", "--inner-steps", "-3", "--out", out],
        "negative cg steps": ["train", "--cg-steps", "-1", "--out", out],
        "negative iterations": ["train", "--iterations", "-1", "--out", out],
        "text for a number": ["train", "--meta-batch", "many", "--out", out],
        "unknown method": ["train", "--method", "sgd", "--out", out],
        "invalid toml": ["train", "--config", str(tmp / "bad.toml"), "--out", out],
        "unknown toml key": ["train", "--config", str(tmp / "unknown.toml"), "--out", out],
        "missing config": ["train", "--config", str(tmp / "none.toml"), "--out", out],
        "unwritable out": ["train", "--out", str(tmp / "a_file" / "sub")],
        "missing checkpoint": ["eval", str(tmp / "none.safetensors")],
        "corrupt checkpoint": ["eval", str(tmp / "corrupt.safetensors")],
        "mismatched checkpoint": ["eval", str(mismatched)],
        "negative tasks": ["eval", str(ckpt), "--tasks", "-1"],
        "unknown profile method": ["profile", "--method", "imaml,foo"],
        "negative profile steps": ["profile", "--inner-steps", "5,-2"],
        "no subcommand": [],
    }


def test_every_bad_input_exits_2_with_one_error_line(trained, tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in trained.rglob("*") if p.is_file()}
    for case, argv in _bad_cases(tmp_path, trained).items():
        assert main(argv) == 2, case
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, (case, err)
    assert {p.name: p.read_bytes() for p in trained.rglob("*") if p.is_file()} == before


def test_bad_input_in_a_subprocess_has_no_traceback(trained):
    result = run_cli("train", "--lam", "-2", "--out", str(trained))
    assert result.returncode == 2 and result.stderr.startswith("error: lam must be > 0")
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_train_into_existing_run_with_bad_settings_keeps_files(trained):
    before = (trained / "meta_params.safetensors").read_bytes()
    assert main(["train", "--meta-batch", "0", "--out", str(trained)]) == 2
    assert (trained / "meta_params.safetensors").read_bytes() == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_valid_checkpoint_of_the_last_finished_iteration(tmp_path, sig):
    out = tmp_path / "run"
    args = [*SMALL, "--iterations", "100000", "--out", str(out), "--save-every", "0", "--quiet"]
    interrupted_training(args, out / "config.toml", sig)
    ckpt = load_checkpoint(out / "meta_params.safetensors")
    rows = (out / "metrics.csv").read_text().splitlines()
    assert ckpt.iteration >= 0 and len(rows) - 1 == ckpt.iteration
