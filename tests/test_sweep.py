"""Sweeps on real Ray Tune and Optuna: the search space and its bad input, a CLI sweep end to end on Ray
started locally, a two-node cluster losing a node mid-sweep, and resuming after Ctrl-C.

Sweeps run as ``python -m imaml_core sweep`` subprocesses (Ray lives and dies with them); the cluster is
``ray.cluster_utils.Cluster`` on loopback, shut down by its fixture. Waits poll the sweep folder; no test
depends on how long anything takes."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from imaml_core import ExperimentConfig
from imaml_core.cli import main
from imaml_core.experiments.sweep import (
    SearchSpace,
    SweepError,
    SweepSettings,
    is_sweep,
    load_spec,
    make_dimension,
    parse_search,
    read_sweep,
    sweep_available,
)
from imaml_core.experiments.sweep._record import SWEEP_LOCK
from imaml_core.experiments.sweep._sweep_file import SweepFile

pytestmark = pytest.mark.skipif(not sweep_available(), reason='needs the sweep extra: pip install ".[sweep]"')

TINY = "meta_batch = 5\ninner_steps = 3\nval_tasks = 20\nhidden = [8, 8]\n"
ROOT = Path(__file__).resolve().parents[1]
PROCESS_TIMEOUT_S = 600  # a generous bound for a sweep subprocess on a loaded machine; never an assertion


def base_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "base.toml"
    path.write_text(TINY + extra, encoding="utf-8")
    return path


def sweep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "imaml_core", "sweep", *args]


def run_imaml(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imaml_core", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=PROCESS_TIMEOUT_S,
    )


def sweep_record(out: Path) -> dict | None:
    """sweep.json as it stands (None before the driver wrote it; the file is replaced atomically)."""
    try:
        return json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def wait_until(proc: subprocess.Popen, condition: Callable[[], object], what: str) -> object:
    """Poll ``condition`` until it returns something truthy; fail if the sweep ends first."""
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended (rc {proc.returncode}) before {what}")
        time.sleep(0.1)
    pytest.fail(f"gave up waiting for {what}")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def iterations_in(run: Path) -> list[int]:
    with open(run / "metrics.csv", encoding="utf-8", newline="") as fh:
        return [int(row["iteration"]) for row in csv.DictReader(fh)]


def ended(record: dict) -> list[dict]:
    return [t for t in record["trials"] if t["status"] in ("finished", "pruned", "failed")]


# -- the search space (no Ray) --------------------------------------------------------------------------------
def test_search_specs_parse_to_the_fields_types_and_scales():
    space = SearchSpace.combine(
        [
            parse_search("lam=loguniform:0.1:100"),
            parse_search("meta_lr=uniform:1e-4:1e-2"),
            parse_search("cg_steps=int:1:20"),
            parse_search("inner_steps=intlog:1:50"),
            parse_search("method=choice:imaml,fomaml"),
            parse_search("hidden=choice:[40,40],[80]"),
            parse_search("learn_lam=choice:true,false"),
        ]
    )
    assert space.log_fields == ("lam", "inner_steps")
    assert space["cg_steps"].low == 1 and space["cg_steps"].high == 20
    assert space["hidden"].choices == ([40, 40], [80])
    assert space["learn_lam"].choices == (True, False)
    # Lists travel through Optuna as JSON text and come back as the config's lists.
    drawn = dict(zip(space.fields, (1.0, 1e-3, 7, 3, "fomaml", "[80]", False), strict=True))
    values = space.config_values(drawn)
    assert values["hidden"] == [80] and values["cg_steps"] == 7 and isinstance(values["lam"], float)
    assert SearchSpace.from_list(space.to_list()) == space
    for name in ("lam", "cg_steps", "hidden", "learn_lam"):  # a SPEC reads back to its dimension
        assert parse_search(f"{name}={space[name].spec()}") == space[name]


def test_a_spec_file_gives_the_same_space_as_flags(tmp_path):
    spec = tmp_path / "space.toml"
    spec.write_text(
        '[search]\nlam = "loguniform:0.1:100"\ncg_steps = {int = [1, 20]}\nhidden = {choice = [[40, 40], [80]]}\n',
        encoding="utf-8",
    )
    dims = load_spec(spec)
    assert dims == [
        parse_search("lam=loguniform:0.1:100"),
        parse_search("cg_steps=int:1:20"),
        make_dimension("hidden", "choice", choices=[[40, 40], [80]]),
    ]


@pytest.mark.parametrize(
    ("search", "says"),
    [
        ("foo=uniform:1:2", "unknown config field 'foo'"),
        ("lam=uniform:2:2", "the range is empty"),
        ("cg_steps=int:5:5", "the range is empty"),
        ("lam=uniform:3:2", "LO > HI"),
        ("meta_lr=loguniform:0:1", "must stay above 0"),
        ("cg_steps=intlog:0:10", "must stay above 0"),
        ("lam=normal:1:2", "unknown distribution 'normal'"),
        ("method=choice:", "the choice list is empty"),
        ("method=choice:imaml,bogus", "method must be one of"),
        ("cg_steps=uniform:1:5", "use int:LO:HI"),
        ("lam=uniform:0:5", "lam must be > 0"),
        ("lam=uniform:1", "expected uniform:LO:HI"),
        ("lam", "expected FIELD=SPEC"),
    ],
)
def test_bad_search_input_is_one_error_line_exit_2_and_nothing_written(tmp_path, capsys, search, says):
    out = tmp_path / "sweep"
    rc = main(["sweep", "--out", str(out), "--search", search, "--trials", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    assert not out.exists()


def test_an_unreachable_address_is_one_error_line_exit_2_and_nothing_written(tmp_path, capsys):
    with socket.socket() as sock:  # a loopback port nothing listens on once this socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "sweep"
    rc = main(["sweep", "--out", str(out), "--search", "lam=uniform:1:2", "--address", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"error: cannot reach a Ray cluster at 127.0.0.1:{port}") and err.count("\n") == 1
    assert not out.exists()


def test_resume_refuses_other_settings_and_folders_that_are_not_sweeps(tmp_path, capsys):
    assert main(["sweep", "--resume", str(tmp_path)]) == 2
    assert "not a sweep folder" in capsys.readouterr().err
    assert main(["sweep", "--resume", str(tmp_path), "--trials", "3"]) == 2
    assert "--trials does not apply" in capsys.readouterr().err
    assert main(["sweep", "--search", "lam=uniform:1:2"]) == 2
    assert "either --out DIR" in capsys.readouterr().err


def test_resume_refuses_a_recorded_base_config_that_is_not_valid(tmp_path, capsys):
    space = SearchSpace.combine([parse_search("cg_steps=int:1:5")])
    SweepFile.create(tmp_path, SweepSettings(trials=2), space, ExperimentConfig()).close()
    record = json.loads((tmp_path / "sweep.json").read_text(encoding="utf-8"))
    record["base"]["lam"] = -5.0  # edited by hand: no trial could train from it
    (tmp_path / "sweep.json").write_text(json.dumps(record), encoding="utf-8")
    before = snapshot(tmp_path)
    assert main(["sweep", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "the recorded base config is invalid" in err, err
    assert "lam" in err
    assert snapshot(tmp_path) == before


def test_a_sweep_folder_has_one_driver_at_a_time(tmp_path):
    space = SearchSpace.combine([parse_search("lam=uniform:1:2")])
    first = SweepFile.create(tmp_path, SweepSettings(), space, ExperimentConfig())
    try:
        with pytest.raises(SweepError, match="the sweep is being run by process"):
            SweepFile.reopen(tmp_path)
        assert read_sweep(tmp_path).status == "running"
    finally:
        first.close()
    assert not (tmp_path / SWEEP_LOCK).exists()
    assert read_sweep(tmp_path).status == "interrupted"  # recorded running, but no driver holds it
    assert is_sweep(tmp_path)


def test_the_window_and_the_other_commands_start_without_ray_or_optuna():
    code = (
        "import sys, imaml_core.cli, imaml_core.experiments.sweep, app.shell.main_window\n"
        "bad = [m for m in ('ray', 'optuna') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr


# -- real sweeps ------------------------------------------------------------------------------------------------
def test_a_cli_sweep_on_local_ray_records_every_trial_as_a_run_and_survives_a_diverging_one(tmp_path):
    """Four trials of MAML, one of two inner step sizes diverging: the sweep goes on, the diverged trials
    are failed runs with the reason, and the best is the finished trial with the lowest metric."""
    out = tmp_path / "sweep"
    base = base_config(tmp_path, 'method = "maml"\n')
    done = run_imaml(
        "sweep", "--out", str(out), "--config", str(base),
        "--search", "meta_lr=loguniform:1e-4:1e-2", "--search", "inner_lr=choice:0.01,1000",
        "--trials", "4", "--iterations", "30", "--report-every", "10", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    trials = result["trials"]
    assert len(trials) == 4
    assert all(set(t["config"]) == {"meta_lr", "inner_lr"} for t in trials)
    by_status = {s: [t for t in trials if t["status"] == s] for s in ("finished", "pruned", "failed")}
    assert sum(map(len, by_status.values())) == 4
    # Optuna's sampler is seeded by the base config's seed, so both step sizes are drawn in four trials.
    assert by_status["failed"] and all(t["config"]["inner_lr"] == 1000 for t in by_status["failed"])
    assert all("diverged" in t["reason"] for t in by_status["failed"])
    assert by_status["finished"] and all(t["iterations"] == 30 for t in by_status["finished"])
    assert all(t["iterations"] < 30 for t in by_status["pruned"])
    best = min(by_status["finished"], key=lambda t: t["metric"])
    assert result["best"] == {"config": best["config"], "metric": best["metric"], "run": best["run"]}
    assert iterations_in(Path(best["run"])) == list(range(1, 31))
    # Every trial is a run folder that `imaml runs list` shows, pruned and failed ones marked so.
    listed = run_imaml("runs", "list", str(out), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["path"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {t["run"] for t in trials}
    assert all(rows[t["run"]]["status"] == t["status"] for t in trials)
    summary = read_sweep(out)
    assert summary.status == "finished" and summary.log_fields == ("meta_lr",)
    assert summary.best is not None and summary.best.run == best["run"]
    assert not (out / SWEEP_LOCK).exists()


def metrics_column(run: Path, name: str) -> list[float]:
    with open(run / "metrics.csv", encoding="utf-8", newline="") as fh:
        return [float(row[name]) for row in csv.DictReader(fh)]


def test_seeds_are_one_run_each_and_mse_per_second_is_their_mean_val_mse_times_seconds(tmp_path):
    out = tmp_path / "sweep"
    done = run_imaml(
        "sweep", "--out", str(out), "--config", str(base_config(tmp_path, "val_every = 10\nseed = 3\n")),
        "--search", "cg_steps=int:1:8", "--metric", "mse_per_second", "--seeds", "2",
        "--trials", "2", "--iterations", "20", "--report-every", "10", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trials = json.loads(done.stdout)["trials"]
    assert len(trials) == 2
    for t in trials:
        runs = [Path(r) for r in t["runs"]]
        assert [r.name for r in runs] == [f"trial-{t['id']}-seed0", f"trial-{t['id']}-seed1"]
        assert t["run"] == str(runs[0])
        assert [ExperimentConfig.load(r / "config.toml").seed for r in runs] == [3, 4]  # seed, seed + 1
    finished = [t for t in trials if t["status"] == "finished"]
    assert finished  # ASHA never stops the first trial to reach a rung
    for t in finished:
        per_seed = [
            metrics_column(Path(r), "val_loss")[-1] * sum(metrics_column(Path(r), "seconds")) for r in t["runs"]
        ]
        # The same floats summed in the same order: equal to rounding.
        assert t["metric"] == pytest.approx(sum(per_seed) / 2, rel=1e-9)


def test_eval_mse_is_the_final_evaluation_on_600_tasks_with_the_trials_inner_steps(tmp_path):
    from imaml_core.experiments.runs import Run

    out = tmp_path / "sweep"
    done = run_imaml(
        "sweep", "--out", str(out), "--config", str(base_config(tmp_path)),
        "--search", "inner_steps=int:2:4", "--metric", "eval_mse",
        "--trials", "2", "--iterations", "20", "--report-every", "10", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    finished = [t for t in json.loads(done.stdout)["trials"] if t["status"] == "finished"]
    assert finished
    for t in finished:
        trainer = Run.open(t["run"]).trainer()
        expected = trainer.evaluate(tasks=600, steps=t["config"]["inner_steps"]).mse
        # Same device, dtype and tasks; thread counts may differ, so reductions may round differently.
        assert t["metric"] == pytest.approx(expected, rel=1e-5)
        assert t["metric"] != t["val_mse"]


def test_a_sweep_interrupted_by_sigint_resumes_without_repeating_ended_trials(tmp_path):
    out = tmp_path / "sweep"
    args = [
        "--config", str(base_config(tmp_path)), "--search", "lam=loguniform:0.5:50",
        "--trials", "6", "--iterations", "150", "--report-every", "50", "--json",
    ]  # fmt: skip
    with open(tmp_path / "stderr", "w+") as stderr:
        proc = subprocess.Popen(sweep_command("--out", str(out), *args), stdout=subprocess.DEVNULL, stderr=stderr,
                                text=True, cwd=ROOT)  # fmt: skip
        try:
            wait_until(proc, lambda: (rec := sweep_record(out)) and len(ended(rec)) >= 2, "two trials ended")
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=PROCESS_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
        stderr.seek(0)
        err = stderr.read()
    assert proc.returncode == 130, err
    assert "imaml sweep --resume" in err
    interrupted = read_sweep(out)
    assert interrupted.status == "interrupted"
    before = {t.id: t for t in interrupted.trials if t.status in ("finished", "pruned", "failed")}
    assert len(before) >= 2
    files = {tid: snapshot(Path(t.run)) for tid, t in before.items()}

    resumed = run_imaml("sweep", "--resume", str(out), "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = read_sweep(out)
    assert summary.status == "finished"
    assert len(summary.trials) == 6 and sorted(t.number for t in summary.trials) == list(range(1, 7))
    assert all(t.status in ("finished", "pruned", "failed") for t in summary.trials)
    assert len([p for p in out.iterdir() if p.name.startswith("trial-")]) == 6
    for tid, t in before.items():  # ended trials are neither run again nor touched
        now = next(x for x in summary.trials if x.id == tid)
        assert (now.status, now.metric, now.iterations) == (t.status, t.metric, t.iterations)
        assert snapshot(Path(t.run)) == files[tid]
    for t in summary.trials:  # cut-off trials continued from their last report: no iteration twice
        its = iterations_in(Path(t.run))
        assert its == list(range(1, len(its) + 1)) and len(its) == t.iterations


def test_a_sweep_killed_outright_resumes_keeping_ended_trials_and_accounting_for_every_trial(tmp_path):
    """SIGKILL gives Ray Tune no chance to save: the resumed sweep starts from sweep.json and the runs.
    Trials that ended stay untouched, cut-off ones continue, and the sweep holds exactly --trials trials."""
    out = tmp_path / "sweep"
    args = [
        "--config", str(base_config(tmp_path)), "--search", "lam=loguniform:0.5:50",
        "--trials", "5", "--iterations", "100", "--report-every", "50", "--quiet",
    ]  # fmt: skip
    proc = subprocess.Popen(sweep_command("--out", str(out), *args), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=ROOT)  # fmt: skip
    try:
        wait_until(proc, lambda: (rec := sweep_record(out)) and len(ended(rec)) >= 2, "two trials ended")
        proc.kill()
        proc.wait(timeout=PROCESS_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = read_sweep(out)
    assert killed.status == "interrupted"  # recorded running, and its driver is gone
    before = {t.id: t for t in killed.trials if t.status in ("finished", "pruned", "failed")}
    files = {tid: snapshot(Path(t.run)) for tid, t in before.items() if t.status == "finished"}

    resumed = run_imaml("sweep", "--resume", str(out), "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = read_sweep(out)
    assert summary.status == "finished"
    assert all(t.status in ("finished", "pruned") or (t.status == "failed" and t.reason) for t in summary.trials)
    assert len(summary.trials) == 5
    for tid, t in before.items():
        now = next(x for x in summary.trials if x.id == tid)
        if t.status == "finished":
            assert now.status == "finished" and now.metric == t.metric
            assert snapshot(Path(t.run)) == files[tid]


@pytest.fixture
def two_node_cluster():
    """A Ray cluster of two one-CPU nodes on loopback, shut down whatever the test does. Its workers run at
    the test's own priority, as a local sweep's do: niced to Ray's default of 15, the trials all but stop
    while other work keeps the machine busy."""
    from ray.cluster_utils import Cluster

    head = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args={**head, "_system_config": {"worker_niceness": 0}})
    try:
        worker = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        yield cluster, worker
    finally:
        cluster.shutdown()


def written_from(node, run: Path) -> bool:
    """Whether ``run``'s writer (the process named in its run.lock) runs on Ray node ``node``."""
    import psutil

    try:
        pid = json.loads((run / "run.lock").read_text(encoding="utf-8"))["pid"]
        raylet = node.all_processes["raylet"][0].process.pid
        return any(parent.pid == raylet for parent in psutil.Process(pid).parents())
    except (OSError, ValueError, KeyError, psutil.Error):
        return False


def test_a_sweep_on_a_cluster_that_loses_a_node_finishes_and_keeps_what_finished(tmp_path, two_node_cluster):
    cluster, worker = two_node_cluster
    out = tmp_path / "sweep"
    cmd = sweep_command(
        "--out", str(out), "--config", str(base_config(tmp_path)), "--search", "lam=loguniform:0.5:50",
        "--trials", "5", "--iterations", "400", "--report-every", "200", "--address", cluster.address, "--json",
    )  # fmt: skip

    def trial_training_on_worker() -> dict | None:
        """A running trial set up on the worker node and before its first report: no ASHA decision is
        due for it, so nothing but the node's loss can stop it."""
        for t in (sweep_record(out) or {}).get("trials", []):
            run = out / t["runs"][0]
            ready = t["status"] == "running" and (run / "resume.safetensors").exists()
            if ready and written_from(worker, run) and not iterations_in(run):
                return t
        return None

    with open(tmp_path / "stdout", "w+") as stdout, open(tmp_path / "stderr", "w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=True, cwd=ROOT)
        try:
            lost = wait_until(proc, trial_training_on_worker, "a trial trained on the worker node")
            finished = [t for t in sweep_record(out)["trials"] if t["status"] == "finished"]
            kept = {t["id"]: snapshot(out / t["runs"][0]) for t in finished}
            cluster.remove_node(worker)
            proc.wait(timeout=PROCESS_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
        stdout.seek(0), stderr.seek(0)
        result, err = stdout.read(), stderr.read()
    assert proc.returncode == 0, err
    trials = {t["id"]: t for t in json.loads(result)["trials"]}
    assert len(trials) == 5
    for t in trials.values():
        assert t["status"] in ("finished", "pruned") or (t["status"] == "failed" and t["reason"]), t
    # The trial on the lost node was restarted elsewhere (continuing its run) or failed with the reason.
    after = trials[lost["id"]]
    assert "restarted after" in after["reason"] or after["status"] == "failed", after
    its = iterations_in(Path(after["run"]))
    assert its == list(range(1, len(its) + 1))
    for tid, files in kept.items():  # what had finished is still there, unchanged
        assert trials[tid]["status"] == "finished"
        assert snapshot(out / f"trial-{tid}") == files
