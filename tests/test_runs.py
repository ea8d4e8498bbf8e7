"""The run store: exact resume (API and CLI), run.json, listing with forks and corrupt folders, the
`imaml runs` commands, trash, locks, metrics tails and TensorBoard scalars."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
from concurrent.futures import CancelledError
from pathlib import Path

import numpy as np
import pytest
import torch

from imaml_core import ExperimentConfig, MetaTrainer, __version__, load_checkpoint
from imaml_core.cli import main
from imaml_core.common.errors import CheckpointError
from imaml_core.experiments.runs import (
    SUMMARY_KEYS,
    TRASH_FOLDER,
    HistoryReader,
    Run,
    RunError,
    RunLockedError,
    RunStore,
    _reader,
    _store,
    downsample,
)
from imaml_core.experiments.runs._history import _parse_fast, _parse_slow, read_metrics, tail_summary
from imaml_core.experiments.runs._metrics import trim_metrics
from imaml_core.experiments.runs._reader import MAX_CHILD_FAILURES

from .helpers import interrupted_training

TINY = {"meta_batch": 5, "inner_steps": 3, "val_tasks": 20, "hidden": [8, 8], "val_every": 7}
ROOT = Path(__file__).resolve().parents[1]
# Columns of metrics.csv that measure the machine (time, allocator), not the training.
MACHINE_COLUMNS = ("seconds", "memory_bytes")


def tiny(**changes) -> ExperimentConfig:
    return ExperimentConfig(**{**TINY, **changes})


def train(trainer: MetaTrainer, n: int) -> list:
    return [trainer.step() for _ in range(n)]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- exact resume through the trainer ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def straight_400():
    trainer = MetaTrainer(tiny())
    reports = train(trainer, 400)
    return trainer, reports


@pytest.mark.parametrize("cut", [200, 137])
def test_resume_state_continues_bitwise_like_straight_training(straight_400, cut):
    straight, reports = straight_400
    first = MetaTrainer(tiny())
    train(first, cut)
    second = MetaTrainer(tiny())  # a fresh trainer: a new theta, Adam and task stream, all replaced
    second.load_resume_state(first.resume_state())
    rest = train(second, 400 - cut)
    # Same device, dtype and thread count, same kernels in the same order: every bit agrees.
    assert torch.equal(second.theta, straight.theta)
    assert torch.equal(
        second.optimizer.state[second.theta]["exp_avg"], straight.optimizer.state[straight.theta]["exp_avg"]
    )
    # Validation keeps its cadence (every 7th iteration) and its values across the cut.
    np.testing.assert_array_equal([r.val_loss for r in rest], [r.val_loss for r in reports[cut:]])
    assert [r.iteration for r in rest] == list(range(cut + 1, 401))


def test_resume_state_of_a_learned_lambda_continues_bitwise():
    cfg = tiny(learn_lam=True, lam_shape="layer", lam_lr=0.05)
    straight = MetaTrainer(cfg)
    train(straight, 60)
    first = MetaTrainer(cfg)
    train(first, 25)
    second = MetaTrainer(cfg)
    second.load_resume_state(first.resume_state())
    train(second, 35)
    assert torch.equal(second.theta, straight.theta)
    lam_a, lam_b = second.current_lam(), straight.current_lam()
    assert all(torch.equal(lam_a[k], lam_b[k]) for k in lam_b)
    assert any(float(v) != cfg.lam for v in lam_b.values())  # lambda did move, so the test means something


def test_a_resume_state_that_does_not_fit_is_refused_and_changes_nothing():
    source = MetaTrainer(tiny())
    train(source, 3)
    state = source.resume_state()
    target = MetaTrainer(tiny())
    before = target.resume_state()
    bad_cases = {
        "shape": {**state, "params.0.weight": torch.zeros(3, 1)},
        "dtype": {**state, "params.0.bias": state["params.0.bias"].double()},
        "nan": {**state, "adam.theta.0.exp_avg": torch.full_like(state["adam.theta.0.exp_avg"], math.nan)},
        "adam shape": {**state, "adam.theta.0.exp_avg_sq": torch.zeros(5)},
        "rng": {**state, "tasks.rng": torch.zeros(7, dtype=torch.uint8)},
        "missing": {k: v for k, v in state.items() if k != "iteration"},
        "extra": {**state, "surprise": torch.zeros(1)},
        "learned lambda on a fixed one": {**state, "lam.log": torch.zeros(1)},
    }
    for case, bad in bad_cases.items():
        with pytest.raises(CheckpointError):
            target.load_resume_state(bad)
        after = target.resume_state()
        assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before), case


# -- exact resume through the CLI -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_toml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "small.toml"
    tiny().save(path)
    return path


def cli_train(*args: str) -> None:
    assert main(["train", *args, "--quiet", "--no-tensorboard"]) == 0


def metric_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k not in MACHINE_COLUMNS} for row in csv.DictReader(fh)]


def test_cli_resume_to_400_equals_400_straight(tmp_path, small_toml):
    cli_train(
        "--config", str(small_toml), "--iterations", "400", "--save-every", "100", "--out", str(tmp_path / "straight")
    )
    cut = tmp_path / "cut"
    cli_train("--config", str(small_toml), "--iterations", "200", "--save-every", "0", "--out", str(cut))
    assert json.loads((cut / "run.json").read_text())["status"] == "finished"
    cli_train("--resume", str(cut), "--iterations", "400", "--save-every", "150")
    a, b = (
        load_checkpoint(cut / "meta_params.safetensors"),
        load_checkpoint(tmp_path / "straight" / "meta_params.safetensors"),
    )
    assert a.iteration == b.iteration == 400
    assert all(torch.equal(a.params[k], b.params[k]) for k in b.params)
    assert metric_rows(cut) == metric_rows(tmp_path / "straight")  # rows 201..400 appended, bit for bit
    info = json.loads((cut / "run.json").read_text())
    assert info["status"] == "finished" and not (cut / "run.lock").exists()


# -- run.json and the files of a run ---------------------------------------------------------------------------
def test_run_json_has_the_documented_schema(tmp_path):
    with Run.create(tmp_path / "r", tiny(), name="first", notes="a note", tensorboard=False) as run:
        trainer = MetaTrainer(tiny())
        run.append_metrics(train(trainer, 3))
        run.save_checkpoint(trainer)
        run.set_status("paused")
    data = json.loads((tmp_path / "r" / "run.json").read_text())
    assert list(data) == [
        "format",
        "format_version",
        "id",
        "name",
        "notes",
        "created",
        "status",
        "parent",
        "fork_iteration",
        "engine_version",
    ]
    assert data["format"] == "imaml-studio-run" and data["format_version"] == 1
    assert data["name"] == "first" and data["notes"] == "a note" and data["status"] == "paused"
    assert data["parent"] is None and data["fork_iteration"] is None and data["engine_version"] == __version__
    assert data["created"].endswith("Z") and len(data["id"]) == len("20250101-120000-abcdef")
    assert Run.open(tmp_path / "r").info.id == data["id"]


def test_run_files_are_written_atomically_with_the_umask_mode(tmp_path, monkeypatch):
    folder = tmp_path / "r"
    old = os.umask(0o022)
    try:
        run = Run.create(folder, tiny(), tensorboard=False)
        trainer = MetaTrainer(tiny())
        run.append_metrics(train(trainer, 2))
        run.save_checkpoint(trainer)
    finally:
        os.umask(old)
    for name in ("run.json", "config.toml", "metrics.csv", "meta_params.safetensors", "resume.safetensors"):
        assert (folder / name).stat().st_mode & 0o777 == 0o644, name
    before = snapshot(folder)

    def broken_save(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", broken_save)  # the resume file, written first
    train(trainer, 2)
    with pytest.raises(OSError):
        run.save_checkpoint(trainer)
    run.close()
    assert snapshot(folder) == {k: v for k, v in before.items() if k != "run.lock"}  # no temporaries, nothing torn


def test_a_second_writer_is_refused_and_a_dead_writers_lock_is_taken_over(tmp_path):
    run = Run.create(tmp_path / "r", tiny(), tensorboard=False)
    other = Run.open(tmp_path / "r", tensorboard=False)
    with pytest.raises(RunLockedError, match="being written by this process"):
        other.set_status("paused")
    run.close()
    other.set_status("paused")  # the lock is free again
    other.close()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = json.loads(json.dumps({"host": os.uname().nodename, "pid": int(dead.stdout), "started": 0.0, "token": "x"}))
    (tmp_path / "r" / "run.lock").write_text(json.dumps(lock))
    with Run.open(tmp_path / "r", tensorboard=False) as again:
        again.set_status("finished")
    assert Run.open(tmp_path / "r").info.status == "finished"


# -- metrics.csv ---------------------------------------------------------------------------------------------
def test_metrics_tail_ignores_an_unfinished_line_and_trim_drops_rows_past_the_checkpoint(tmp_path):
    run = Run.create(tmp_path / "r", tiny(val_every=2), tensorboard=False)
    trainer = MetaTrainer(tiny(val_every=2))
    reports = train(trainer, 9)
    run.append_metrics(reports)
    run.close()
    path = tmp_path / "r" / "metrics.csv"
    with open(path, "a") as fh:
        fh.write("10,imaml,1.0")  # a crash in the middle of a line
    iterations, val, _ = tail_summary(path)
    assert iterations == 9 and val == pytest.approx(reports[7].val_loss, rel=1e-12)  # iteration 8 validated
    assert len(read_metrics(path)["iteration"]) == 9
    assert trim_metrics(path, 6)
    assert read_metrics(path)["iteration"].tolist() == [1, 2, 3, 4, 5, 6]
    assert not trim_metrics(path, 6)  # nothing more to trim: the file is left alone


def test_metrics_columns_read_by_numpy_equal_the_csv_modules(tmp_path):
    with Run.create(tmp_path / "r", tiny(), tensorboard=False) as run:
        assert run.metrics()["iteration"].tolist() == []  # a new run: the header only
        run.append_metrics(train(MetaTrainer(tiny()), 9))
    path = tmp_path / "r" / "metrics.csv"
    body = path.read_text().split("\n", 1)[1]
    names = path.read_text().split("\n", 1)[0].split(",")
    fast, slow = _parse_fast(body, names, names), _parse_slow(body, names, names)
    assert fast.keys() == slow.keys() and fast["method"].tolist() == ["imaml"] * 9
    for name in names:
        np.testing.assert_array_equal(fast[name], slow[name])  # both parse the same decimal text exactly
    picked = read_metrics(path, columns=["iteration", "val_loss", "no_such_column"])
    assert list(picked) == ["iteration", "val_loss"] and picked["iteration"].tolist() == list(range(1, 10))


def test_a_damaged_cell_is_nan_and_the_rest_of_its_column_stays_numbers(tmp_path):
    with Run.create(tmp_path / "r", tiny(), tensorboard=False) as run:
        run.append_metrics(train(MetaTrainer(tiny()), 6))
    path = tmp_path / "r" / "metrics.csv"
    clean = read_metrics(path)
    lines = path.read_text().splitlines(keepends=True)
    at = lines[0].split(",").index("meta_loss")
    cells = lines[3].split(",")
    cells[at] = "garbage"
    lines[3] = ",".join(cells)
    path.write_text("".join(lines))
    damaged = read_metrics(path)
    assert damaged["meta_loss"].dtype == np.float64 and np.isnan(damaged["meta_loss"][2])
    np.testing.assert_array_equal(np.delete(damaged["meta_loss"], 2), np.delete(clean["meta_loss"], 2))
    assert damaged["method"].tolist() == ["imaml"] * 6  # a text column stays text


def test_downsampling_averages_bins_and_keeps_sparse_validation():
    n = 20_000
    data = {"iteration": np.arange(1, n + 1, dtype=float), "val_loss": np.full(n, np.nan)}
    data["val_loss"][9::10] = 2.0
    out = downsample(data, 500)
    assert len(out["iteration"]) == 500 and np.isfinite(out["val_loss"]).all()
    assert out["iteration"][0] == pytest.approx(20.5)  # the mean of iterations 1..40


# -- histories read in a process of their own ---------------------------------------------------------------
@pytest.fixture
def one_run(tmp_path) -> Path:
    with Run.create(tmp_path / "r", tiny(val_every=2), tensorboard=False) as run:
        run.append_metrics(train(MetaTrainer(tiny(val_every=2)), 30))
    return tmp_path / "r"


def test_the_history_reader_reads_in_a_child_what_read_metrics_reads(one_run):
    columns = ["iteration", "meta_loss", "val_loss", "method"]
    expected = read_metrics(one_run / "metrics.csv", 7, columns)
    with HistoryReader() as reader:
        got = reader.read(one_run, max_points=7, columns=columns).result(timeout=120)
        assert reader.child_pid not in (None, os.getpid()) and not reader.in_process
        with pytest.raises(RunError, match="no metrics.csv"):  # the child's error, as a RunError, in one line
            reader.read(one_run.parent / "missing").result(timeout=120)
        whole = reader.read(one_run).result(timeout=120)  # the child goes on serving
        assert len(whole["iteration"]) == 30 and whole.keys() == read_metrics(one_run / "metrics.csv").keys()
    assert list(got) == columns and len(got["iteration"]) == 7
    for name in columns:
        np.testing.assert_array_equal(got[name], expected[name])  # binary .npz: no rounding on the way


def test_the_history_reader_replaces_a_dead_child_then_reads_here(one_run):
    reader = HistoryReader()
    first = reader.read(one_run).result(timeout=120)
    killed: list[int] = []
    for _ in range(MAX_CHILD_FAILURES):
        reader.read(one_run).result(timeout=120)
        assert reader.child_pid not in (None, *killed)  # a new child each time
        killed.append(reader.child_pid)
        os.kill(reader.child_pid, signal.SIGKILL)
        again = reader.read(one_run).result(timeout=120)  # the read that finds it dead is done here
        for name in first:
            np.testing.assert_array_equal(again[name], first[name])
    assert reader.in_process
    reader.read(one_run).result(timeout=120)
    assert reader.child_pid is None  # no more children: reads stay in this process
    reader.close()
    assert reader.read(one_run).cancelled()  # a closed reader takes no more reads


def test_closing_the_history_reader_cancels_what_is_queued_and_ends_the_child(one_run):
    reader = HistoryReader()
    reader.read(one_run).result(timeout=120)
    child = reader._child
    queued = [reader.read(one_run) for _ in range(20)]
    reader.close()
    assert child.wait(timeout=120) == 0  # its input closed, the child ended by itself
    for future in queued:
        assert future.cancelled() or isinstance(future.exception(timeout=120), (type(None), CancelledError))
    assert sum(f.cancelled() for f in queued) >= 18  # at most one was running, and one may have begun


def _reader_child_with(monkeypatch, code: str) -> None:
    """The history reader's child runs ``code`` (with ``_reader`` imported) before it serves."""
    start = _reader._BOOTSTRAP.split("from imaml_core.experiments.runs._reader import")[0]
    monkeypatch.setattr(_reader, "_BOOTSTRAP", start + "from imaml_core.experiments.runs import _reader\n" + code)


def test_a_stray_print_in_the_reader_process_does_not_garble_its_replies(one_run, monkeypatch):
    _reader_child_with(
        monkeypatch,
        "real = _reader.read_history\n"
        "def noisy(*args, **kwargs):\n"
        '    print(\'{"id": 1, "ok": true}\', flush=True); print(1, flush=True)\n'
        "    return real(*args, **kwargs)\n"
        "_reader.read_history = noisy\n"
        "_reader.child_main()\n",
    )
    with HistoryReader() as reader:
        for _ in range(2):
            got = reader.read(one_run, max_points=5, columns=["iteration"]).result(timeout=120)
            assert len(got["iteration"]) == 5
        assert reader._failures == 0 and reader.child_pid is not None  # both answered by the child


def test_a_reply_to_another_request_stops_the_child_and_the_read_is_done_here(one_run, monkeypatch):
    _reader_child_with(
        monkeypatch,
        "import sys\n"
        "for line in sys.stdin.buffer:\n"
        '    sys.stdout.buffer.write(b\'{"id": 0, "ok": false, "error": "not this one"}\\n\')\n'
        "    sys.stdout.buffer.flush()\n",
    )
    with HistoryReader() as reader:
        got = reader.read(one_run, max_points=5, columns=["iteration"]).result(timeout=120)
        assert len(got["iteration"]) == 5 and reader._failures == 1 and reader.child_pid is None


def test_the_history_module_loads_without_torch():
    code = "import sys, imaml_core.experiments.runs._reader; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_listing_again_rereads_only_the_runs_whose_files_changed(tmp_path, monkeypatch):
    monkeypatch.setattr(_store, "_RACY_NS", 0)  # files written just now may be kept (see the end)
    store = RunStore(tmp_path)
    a = store.create(tiny(), tensorboard=False)
    b = store.create(tiny(), tensorboard=False)
    a.append_metrics(train(MetaTrainer(tiny()), 3))
    first = store.list()
    read = []
    summarize = _store._summarize
    monkeypatch.setattr(_store, "_summarize", lambda folder: read.append(folder.name) or summarize(folder))
    assert store.list() == first and read == []
    b.append_metrics(train(MetaTrainer(tiny()), 2))
    rows = {r.id: r for r in store.list()}
    assert read == [b.path.name] and rows[b.info.id].iterations == 2 and rows[a.info.id].iterations == 3
    a.close()
    b.close()
    (a.path / "config.toml").write_text("lam = [not toml")
    rows = {r.id: r for r in store.list()}
    assert rows[a.path.name].status == "unreadable" and "config.toml" in rows[a.path.name].reason
    assert rows[b.info.id].status == "paused"  # the row was kept, its writer's lock is checked each time
    good = b.path.joinpath("config.toml").read_text()
    (a.path / "config.toml").write_text(good)  # repaired: an unreadable row is never kept
    assert {r.id: r for r in store.list()}[a.info.id].status == "paused"
    monkeypatch.setattr(_store, "_RACY_NS", 10**12)  # every file counts as changed within the clock's tick
    read.clear()
    store.list()
    assert sorted(read) == sorted([a.path.name, b.path.name])  # such rows are read again each time


# -- the runs folder --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory, small_toml) -> Path:
    """Two CLI runs, a fork of the first with another lambda (through the API), and four bad folders."""
    root = tmp_path_factory.mktemp("runs")
    cli_train("--config", str(small_toml), "--iterations", "20", "--out", str(root / "alpha"))
    cli_train("--config", str(small_toml), "--iterations", "10", "--lam", "2", "--out", str(root / "beta"))
    store = RunStore(root)
    fork = store.fork("alpha", {"lam": 5.0}, name="alpha λ=5", tensorboard=False)
    trainer = fork.trainer()
    fork.continue_from_checkpoint(trainer.iteration)
    fork.append_metrics(train(trainer, 7))
    fork.save_checkpoint(trainer)
    fork.set_status("paused")
    fork.close()
    (root / "not_a_run").mkdir()
    (root / "not_a_run" / "notes.txt").write_text("hello")
    bad_json = root / "bad_json"
    cli_train("--config", str(small_toml), "--iterations", "2", "--out", str(bad_json))
    (bad_json / "run.json").write_text("{ not json")
    no_config = root / "no_config"
    cli_train("--config", str(small_toml), "--iterations", "2", "--out", str(no_config))
    (no_config / "config.toml").unlink()
    bad_ckpt = root / "bad_ckpt"
    cli_train("--config", str(small_toml), "--iterations", "2", "--out", str(bad_ckpt))
    (bad_ckpt / "meta_params.safetensors").write_bytes(b"\x00" * 64)
    return root


UNREADABLE = {"not_a_run", "bad_json", "no_config", "bad_ckpt"}


def test_list_shows_runs_forks_and_unreadable_folders_without_touching_them(runs_folder):
    before = {name: snapshot(runs_folder / name) for name in UNREADABLE}
    rows = {Path(r.path).name: r for r in RunStore(runs_folder).list()}
    fork_name = next(n for n in rows if n not in UNREADABLE | {"alpha", "beta"})
    assert rows["alpha"].iterations == 20 and rows["alpha"].status == "finished"
    assert rows["beta"].lam == 2.0 and rows["beta"].iterations == 10
    fork = rows[fork_name]
    assert (fork.parent, fork.fork_iteration, fork.iterations, fork.lam) == (rows["alpha"].id, 20, 27, 5.0)
    for name in UNREADABLE:
        assert rows[name].status == "unreadable" and name in rows[name].reason and "\n" not in rows[name].reason
    assert "run.json" in rows["bad_json"].reason and "config.toml" in rows["no_config"].reason
    assert {name: snapshot(runs_folder / name) for name in UNREADABLE} == before


def test_fork_metrics_start_after_the_fork_iteration(runs_folder):
    store = RunStore(runs_folder)
    fork = next(r for r in store.list() if r.parent is not None)
    iterations = store.open(fork.id).metrics()["iteration"]
    assert iterations.tolist() == list(range(21, 28))


def test_runs_list_json_has_exactly_the_documented_keys(runs_folder, capsys):
    assert main(["runs", "list", str(runs_folder), "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert all(list(row) == list(SUMMARY_KEYS) for row in rows)
    assert list(SUMMARY_KEYS) == [
        "id",
        "name",
        "task",
        "method",
        "lam",
        "current_lam",
        "lam_learned",
        "cg_steps",
        "inner_steps",
        "iterations",
        "val_mse",
        "val_loss",
        "val_accuracy",
        "status",
        "parent",
        "fork_iteration",
        "path",
    ]
    assert sum(row["status"] == "unreadable" for row in rows) == len(UNREADABLE)
    warnings = captured.err.strip().splitlines()
    assert len(warnings) == len(UNREADABLE) and all(w.startswith("warning: unreadable: ") for w in warnings)
    assert main(["runs", "list", str(runs_folder)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["id", "name", "method", "λ"] and len(table) == 1 + len(rows)


def test_runs_list_exits_2_when_nothing_is_readable(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    assert main(["runs", "list", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: none of the 1 folders")
    assert main(["runs", "list", str(tmp_path / "missing")]) == 2


def test_runs_show_and_diff(runs_folder, capsys):
    assert main(["runs", "show", "alpha", "--root", str(runs_folder), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["iterations"] == 20 and shown["config"]["hidden"] == [8, 8] and shown["status"] == "finished"
    fork_id = next(r.id for r in RunStore(runs_folder).list() if r.parent is not None)
    assert main(["runs", "show", fork_id, "--root", str(runs_folder)]) == 0
    assert "at iteration 20" in capsys.readouterr().out
    assert main(["runs", "diff", str(runs_folder / "alpha"), fork_id, "--root", str(runs_folder), "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["config"] == {"lam": [20.0, 5.0]}
    assert diff["run"] == {"parent": [None, shown["id"]], "fork_iteration": [None, 20]}
    assert main(["runs", "diff", "alpha", "beta", "--root", str(runs_folder)]) == 0
    assert "lam: 20.0 -> 2.0" in capsys.readouterr().out
    assert main(["runs", "show", "bad_json", "--root", str(runs_folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_a_fork_without_changes_continues_exactly_like_its_parent(tmp_path):
    store = RunStore(tmp_path)
    parent = store.create(tiny(), tensorboard=False)
    trainer = MetaTrainer(tiny())
    parent.append_metrics(train(trainer, 30))
    parent.save_checkpoint(trainer)
    fork = store.fork(parent, name="same", tensorboard=False)
    continued = fork.trainer()
    train(trainer, 20)
    train(continued, 20)
    assert torch.equal(continued.theta, trainer.theta)
    with pytest.raises(RunError, match="hidden"):
        store.fork(parent, {"hidden": [4]})
    parent.close()
    fork.close()


def test_trash_moves_the_run_into_dot_trash(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny(), tensorboard=False)
    with pytest.raises(RunLockedError):
        store.trash(run.id)  # its writer is still at work
    run.close()
    moved = store.trash(run.id)
    assert moved == tmp_path / TRASH_FOLDER / run.id and (moved / "run.json").exists()
    assert store.list() == []


# -- bad input to --resume ------------------------------------------------------------------------------------
def test_resume_errors_exit_2_with_one_line_and_keep_files(tmp_path, small_toml, capsys):
    run = tmp_path / "run"
    cli_train("--config", str(small_toml), "--iterations", "5", "--out", str(run))
    corrupt = tmp_path / "corrupt"
    cli_train("--config", str(small_toml), "--iterations", "5", "--out", str(corrupt))
    data = bytearray((corrupt / "resume.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (corrupt / "resume.safetensors").write_bytes(bytes(data))
    other_shape = tmp_path / "other_shape"
    cli_train("--config", str(small_toml), "--iterations", "5", "--out", str(other_shape))
    tiny(hidden=[4]).save(other_shape / "config.toml")
    capsys.readouterr()
    cases = {
        "missing folder": ["--resume", str(tmp_path / "nowhere"), "--iterations", "10"],
        "corrupt resume file": ["--resume", str(corrupt), "--iterations", "10"],
        "config disagrees with the saved state": ["--resume", str(other_shape), "--iterations", "10"],
        "iterations not beyond the run's": ["--resume", str(run), "--iterations", "5"],
        "a setting with --resume": ["--resume", str(run), "--iterations", "10", "--lam", "3"],
        "neither --out nor --resume": ["--iterations", "10"],
    }
    before = {p.name: snapshot(p) for p in (run, corrupt, other_shape)}
    for case, argv in cases.items():
        assert main(["train", *argv, "--quiet"]) == 2, case
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (case, err)
    assert {p.name: snapshot(p) for p in (run, corrupt, other_shape)} == before


def test_ctrl_c_leaves_a_paused_run_that_resumes(tmp_path, small_toml):
    out = tmp_path / "run"
    args = ["--config", str(small_toml), "--iterations", "100000", "--out", str(out), "--save-every", "0"]
    interrupted_training([*args, "--quiet", "--no-tensorboard"], out / "run.json", signal.SIGINT)
    info = json.loads((out / "run.json").read_text())
    done = load_checkpoint(out / "meta_params.safetensors").iteration
    assert info["status"] == "paused" and not (out / "run.lock").exists()
    assert len(metric_rows(out)) == done
    cli_train("--resume", str(out), "--iterations", str(done + 3))
    assert len(metric_rows(out)) == done + 3 and json.loads((out / "run.json").read_text())["status"] == "finished"


# -- TensorBoard ------------------------------------------------------------------------------------------------
def test_tensorboard_scalars_are_written_when_installed(tmp_path, small_toml):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["train", "--config", str(small_toml), "--iterations", "14", "--out", str(out), "--quiet"]) == 0
    assert main(["train", "--resume", str(out), "--iterations", "20", "--quiet"]) == 0
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert {"loss/meta_train", "loss/validation", "lambda/λ"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss/meta_train")] == list(range(1, 21))
    assert [e.step for e in events.Scalars("loss/validation")] == [7, 14]
    rows = metric_rows(out)
    assert events.Scalars("loss/meta_train")[-1].value == pytest.approx(float(rows[-1]["meta_loss"]), rel=1e-6)


def test_a_failing_tensorboard_writer_warns_once_and_training_records_go_on(tmp_path, monkeypatch):
    def broken(_self):
        raise ImportError("protobuf is too old")

    monkeypatch.setattr("imaml_core.experiments.runs._tensorboard.ScalarWriter._open", broken)
    with Run.create(tmp_path / "r", tiny(), tensorboard=True) as run:
        trainer = MetaTrainer(tiny())
        with pytest.warns(RuntimeWarning, match="protobuf is too old"):
            run.append_metrics(train(trainer, 2))
        run.append_metrics(train(trainer, 2))  # no second warning, rows still written
    assert len(metric_rows(tmp_path / "r")) == 4


def test_cli_resume_of_a_learned_lambda_equals_straight_training(tmp_path, small_toml):
    flags = ["--config", str(small_toml), "--learn-lam", "--lam-shape", "layer", "--lam-lr", "0.05"]
    cli_train(*flags, "--iterations", "30", "--out", str(tmp_path / "straight"))
    cli_train(*flags, "--iterations", "12", "--out", str(tmp_path / "cut"))
    cli_train("--resume", str(tmp_path / "cut"), "--iterations", "30")
    a = load_checkpoint(tmp_path / "cut" / "meta_params.safetensors")
    b = load_checkpoint(tmp_path / "straight" / "meta_params.safetensors")
    assert all(torch.equal(a.params[k], b.params[k]) for k in b.params)
    assert all(torch.equal(a.current_lam[k], b.current_lam[k]) for k in b.current_lam)


def test_a_run_whose_writer_is_gone_lists_as_paused(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny(), tensorboard=False)
    assert [r.status for r in store.list()] == ["running"]
    run.close()  # as if its process had died: run.json still says running, but no live lock holds it
    assert [r.status for r in store.list()] == ["paused"]
    assert Run.open(run.path).info.status == "running"  # listing reads; it never rewrites run.json


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_resume_state_continues_bitwise_on_cuda():
    cfg = tiny(device="cuda")
    straight = MetaTrainer(cfg)
    train(straight, 40)
    first = MetaTrainer(cfg)
    train(first, 15)
    second = MetaTrainer(cfg)
    second.load_resume_state(first.resume_state())  # the CUDA generator's state (seed and offset) too
    train(second, 25)
    assert torch.equal(second.theta, straight.theta)


def test_a_run_that_learns_lambda_lists_its_current_lambda_as_the_geometric_mean_marked_learned(tmp_path, capsys):
    config = ExperimentConfig(hidden=[8], meta_batch=2, val_tasks=2, learn_lam=True, lam_shape="layer", lam_lr=0.5)
    trainer = MetaTrainer(config)
    for _ in range(3):
        trainer.step()
    with RunStore(tmp_path).create(config, tensorboard=False) as run:
        run.save_checkpoint(trainer)
    lam = trainer.current_lam()
    expected = float(np.exp(np.mean([np.log(float(v)) for v in lam.values()])))
    (row,) = RunStore(tmp_path).list()
    assert row.lam == config.lam and row.lam_learned
    assert row.current_lam == pytest.approx(expected, rel=1e-6) and row.current_lam != pytest.approx(config.lam)
    assert main(["runs", "list", str(tmp_path)]) == 0
    assert f"{expected:.4g} learned" in capsys.readouterr().out
