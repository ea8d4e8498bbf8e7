"""Hostile run folders: links, devices, FIFOs and damaged records are refused with one line, never followed,
never waited on, and never break the listing of the other runs; nothing outside a run folder changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imaml_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--meta-batch", "2", "--inner-steps", "2", "--iterations", "3", "--save-every", "0"]
OUTSIDE = b"precious bytes\n"  # what a file outside every run folder holds, and must go on holding


def train(*args: str) -> int:
    return main(["train", *TINY, *args, "--quiet", "--no-tensorboard"])


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside.txt"
    target.write_bytes(OUTSIDE)
    return target


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A runs folder with two good runs, ``a`` and ``b``."""
    folder = tmp_path / "runs"
    for name in ("a", "b"):
        assert train("--out", str(folder / name)) == 0
    return folder


def listing(root: Path, timeout: float = 120) -> tuple[int, list[dict], str]:
    """``imaml runs list --json`` in a subprocess (a hang fails the test instead of freezing the suite)."""
    done = subprocess.run(
        [sys.executable, "-m", "imaml_core", "runs", "list", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return done.returncode, json.loads(done.stdout or "[]"), done.stderr


def unreadable(rows: list[dict]) -> set[str]:
    """The folder names of the unreadable rows."""
    return {Path(r["path"]).name for r in rows if r["status"] == "unreadable"}


def readable(rows: list[dict]) -> set[str]:
    return {Path(r["path"]).name for r in rows if r["status"] != "unreadable"}


def test_the_write_probe_of_train_out_never_follows_a_link(tmp_path, outside):
    out = tmp_path / "o"
    out.mkdir()
    (out / ".imaml-write-test").symlink_to(outside)
    assert train("--out", str(out)) == 0
    assert outside.read_bytes() == OUTSIDE


def test_resume_refuses_a_metrics_file_that_links_outside_the_run(root, outside, capsys):
    run = root / "a"
    (run / "metrics.csv").unlink()
    (run / "metrics.csv").symlink_to(outside)
    assert main(["train", "--resume", str(run), "--iterations", "6", "--quiet", "--no-tensorboard"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "symbolic link" in err[0]
    assert outside.read_bytes() == OUTSIDE


def test_tensorboard_scalars_never_go_through_a_linked_tb_folder(tmp_path):
    pytest.importorskip("tensorboard")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "o"
    out.mkdir()
    (out / "tb").symlink_to(elsewhere, target_is_directory=True)
    with pytest.warns(RuntimeWarning, match="symbolic link"):
        assert main(["train", *TINY, "--out", str(out), "--quiet"]) == 0
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("member", ["run.json", "config.toml", "metrics.csv", "meta_params.safetensors"])
def test_a_member_linked_to_a_device_is_an_unreadable_row_and_the_others_still_list(root, member):
    (root / "a" / member).unlink()
    (root / "a" / member).symlink_to("/dev/zero")
    rc, rows, err = listing(root)
    assert rc == 0 and readable(rows) == {"b"} and unreadable(rows) == {"a"}
    assert "symbolic link" in err and member in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("member", ["run.json", "config.toml", "metrics.csv", "meta_params.safetensors"])
def test_a_fifo_in_a_run_never_hangs_the_listing(root, member):
    (root / "a" / member).unlink()
    os.mkfifo(root / "a" / member)
    rc, rows, err = listing(root)
    assert rc == 0 and unreadable(rows) == {"a"} and "FIFO" in err


def test_load_model_refuses_a_fifo_at_once(tmp_path):
    from imaml_core import CheckpointError, load_model

    fifo = tmp_path / "theta.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="FIFO"):
        load_model(fifo)


@pytest.mark.parametrize(
    ("member", "content"),
    [
        ("run.json", "[" * 5000 + "]" * 5000),
        ("run.json", '{"format": "imaml-studio-run", "format_version": ' + "9" * 5000 + "}"),
        ("config.toml", "a = " + "[" * 5000 + "]" * 5000 + "\n"),
    ],
    ids=["json nested 5000 deep", "json integer of 5000 digits", "toml nested 5000 deep"],
)
def test_a_damaged_record_is_one_unreadable_row_naming_its_file(root, member, content):
    (root / "a" / member).write_text(content)
    rc, rows, err = listing(root)
    assert rc == 0 and unreadable(rows) == {"a"}
    assert member in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("iteration", ["1e999", "9" * 400])
def test_a_metrics_row_with_an_absurd_iteration_is_one_unreadable_row(root, iteration):
    with open(root / "a" / "metrics.csv", "a") as fh:
        header = (root / "a" / "metrics.csv").read_text().splitlines()[0].split(",")
        fh.write(",".join(iteration if c == "iteration" else "1" for c in header) + "\n")
    rc, rows, err = listing(root)
    assert rc == 0 and "Traceback" not in err
    assert unreadable(rows) == {"a"} and readable(rows) == {"b"} and "iteration" in err


def test_names_from_files_are_printed_with_their_control_characters_escaped(root, capsys):
    info = json.loads((root / "a" / "run.json").read_text())
    info["name"] = "evil\x1b[2J\x1b]0;owned\x07\nerror: forged"
    (root / "a" / "run.json").write_text(json.dumps(info))
    assert main(["runs", "list", str(root)]) == 0
    listed = capsys.readouterr().out
    assert main(["runs", "show", str(root / "a")]) == 0
    shown = capsys.readouterr().out
    for out in (listed, shown):
        assert "\x1b" not in out and "\x07" not in out and "\\x1b[2J" in out
        assert not any(line.startswith("error: forged") for line in out.splitlines())


@pytest.mark.parametrize("version", [True, -7, "1", 2, 0, 1.0])
def test_run_json_format_version_must_be_an_integer_this_engine_knows(root, version):
    info = json.loads((root / "a" / "run.json").read_text())
    info["format_version"] = version
    (root / "a" / "run.json").write_text(json.dumps(info))
    rc, rows, err = listing(root)
    assert rc == 0 and unreadable(rows) == {"a"} and "format_version" in err


@pytest.mark.parametrize("version", ["¹", "1\nerror: forged", "", "01x"])
def test_a_checkpoint_whose_format_version_is_not_ascii_digits_is_one_line(tmp_path, version, capsys):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    assert train("--out", str(tmp_path / "r")) == 0
    path = tmp_path / "r" / "meta_params.safetensors"
    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata())
    save_file(load_file(str(path)), str(path), metadata={**metadata, "format_version": version})
    assert main(["eval", str(path), "--tasks", "2", "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "format_version" in err[0]


def test_train_out_into_a_runs_folder_is_refused_and_hides_nothing(root, capsys):
    assert train("--out", str(root)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs folder" in err[0] and "2 run folders" in err[0]
    rc, rows, _ = listing(root)
    assert rc == 0 and readable(rows) == {"a", "b"}


def test_continuing_a_run_cleans_what_a_killed_writer_left(root):
    run = root / "a"
    leftovers = [run / ".metrics.csv.0123456789ab.tmp", run / ".run.lock.0123456789abcdef.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (run / "run.lock").write_text(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout), "started": 1.0}))
    keep = run / ".notes.tmp"  # not a temporary of ours: left alone
    keep.write_bytes(b"mine")
    assert main(["train", "--resume", str(run), "--iterations", "5", "--quiet", "--no-tensorboard"]) == 0
    assert not any(p.exists() for p in leftovers) and keep.read_bytes() == b"mine"
    assert not (run / "run.lock").exists()


def test_a_resume_that_fails_after_taking_the_lock_leaves_no_lock(root, capsys):
    run = root / "a"
    (run / "metrics.csv").unlink()
    (run / "metrics.csv").mkdir()  # the rows cannot be trimmed: the resume fails after the lock is taken
    assert main(["train", "--resume", str(run), "--iterations", "5", "--quiet", "--no-tensorboard"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (run / "run.lock").exists()


@pytest.mark.parametrize("lam", [1e-40, 3e38])
def test_a_checkpoint_whose_learned_lambda_leaves_its_bounds_is_refused(tmp_path, lam):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from imaml_core import CheckpointError, load_checkpoint
    from imaml_core.engine.checkpoint import tensor_digest

    out = tmp_path / "r"
    assert train("--out", str(out), "--learn-lam") == 0
    path = out / "meta_params.safetensors"
    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata())
    tensors = load_file(str(path))
    tensors["lam"] = torch.tensor(lam, dtype=tensors["lam"].dtype)
    save_file(tensors, str(path), metadata={**metadata, "sha256": tensor_digest(tensors)})
    with pytest.raises(CheckpointError, match="outside"):
        load_checkpoint(path)


def test_a_run_being_created_is_not_listed_as_unreadable(root):
    from imaml_core.experiments.runs import RunLock

    making = root / "c"
    making.mkdir()
    lock = RunLock(making)
    lock.acquire()  # what Run.create does first; run.json comes last
    try:
        rc, rows, _ = listing(root)
        assert rc == 0 and readable(rows) == {"a", "b"} and unreadable(rows) == set()
    finally:
        lock.release()
    rc, rows, _ = listing(root)
    assert unreadable(rows) == {"c"}  # with nobody making it, an empty folder is unreadable
