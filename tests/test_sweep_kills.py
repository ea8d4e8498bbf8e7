"""A sweep stopped at awkward moments (a trial just ended, a trial being pruned, the last trial started)
by SIGKILL, SIGTERM or SIGINT, then resumed: no trial that ended runs again, no iteration is trained
twice, the sweep never holds more trials than ``--trials``, and every status says what happened.

Sweeps run as ``python -m imaml_core sweep`` subprocesses; waits poll the sweep folder with generous
timeouts, and no assertion depends on how long anything takes."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from imaml_core.experiments.runs import read_info
from imaml_core.experiments.sweep import read_sweep, sweep_available
from tests.test_sweep import (
    PROCESS_TIMEOUT_S,
    ROOT,
    base_config,
    ended,
    iterations_in,
    run_imaml,
    snapshot,
    sweep_command,
    sweep_record,
    wait_until,
)

pytestmark = pytest.mark.skipif(not sweep_available(), reason='needs the sweep extra: pip install ".[sweep]"')

TRIALS, ITERATIONS = 5, 60


def run_statuses(out: Path) -> dict[str, str]:
    """Each run folder's run.json status (folders whose run.json is not written yet are left out)."""
    statuses = {}
    for folder in out.glob("trial-*"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            statuses[folder.name] = json.loads((folder / "run.json").read_text(encoding="utf-8"))["status"]
    return statuses


def a_trial_ended(out: Path) -> bool:
    return bool((rec := sweep_record(out)) and ended(rec))


def a_run_pruned(out: Path) -> bool:
    return "pruned" in run_statuses(out).values()


def the_last_trial_started(out: Path) -> bool:
    return bool((rec := sweep_record(out)) and len(rec["trials"]) >= TRIALS)


MOMENTS = {"a trial ended": a_trial_ended, "a run pruned": a_run_pruned, "the last started": the_last_trial_started}


@pytest.mark.parametrize(
    ("how", "moment"),
    [
        (signal.SIGKILL, "a run pruned"),
        (signal.SIGKILL, "the last started"),
        (signal.SIGTERM, "a trial ended"),
        (signal.SIGINT, "the last started"),
    ],
    ids=["sigkill-pruned", "sigkill-last-started", "sigterm-trial-ended", "sigint-last-started"],
)
def test_a_stopped_sweep_resumes_without_rerunning_or_repeating_anything(tmp_path, how, moment):
    out = tmp_path / "sweep"
    cmd = sweep_command(
        "--out", str(out), "--config", str(base_config(tmp_path)), "--search", "lam=loguniform:0.5:50",
        "--trials", str(TRIALS), "--iterations", str(ITERATIONS), "--report-every", "20", "--quiet",
    )  # fmt: skip
    with open(tmp_path / "stderr", "w+") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr, text=True, cwd=ROOT)
        try:
            wait_until(proc, lambda: MOMENTS[moment](out), moment)
            proc.send_signal(how)
            proc.wait(timeout=PROCESS_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
        stderr.seek(0)
        err = stderr.read()

    stopped = read_sweep(out)
    assert stopped.status == "interrupted"
    if how != signal.SIGKILL:
        name = signal.Signals(how).name
        # One line of ours, the recorded reason in words, and no run left locked.
        assert proc.returncode == 130, err
        assert err.strip().splitlines() == [
            f"error: interrupted by {name}: {stopped.message.partition(': ')[2]}; "
            f"continue with imaml sweep --resume {stopped.path}"
        ], err
        assert stopped.message.startswith(f"interrupted by {name}: ")
        assert not list(out.glob("trial-*/run.lock"))
    assert len(stopped.trials) <= TRIALS
    # What ended before the resume: by the record, or by the runs themselves (the record may lag them).
    before = run_statuses(out)
    ended_runs = {name for name, status in before.items() if status in ("finished", "pruned", "failed")}
    # A killed writer's run.lock is not the run's content: the resume removes it (asserted below).
    files = {name: _content(out / name) for name in ended_runs}
    recorded = {t.id: t for t in stopped.trials if t.status in ("finished", "pruned", "failed")}

    resumed = run_imaml("sweep", "--resume", str(out), "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = read_sweep(out)
    assert summary.status == "finished"
    assert len(summary.trials) == TRIALS and sorted(t.number for t in summary.trials) == list(range(1, TRIALS + 1))
    assert len(list(out.glob("trial-*"))) == TRIALS
    assert not list(out.glob("trial-*/run.lock"))
    for name in ended_runs:  # a run that had ended is not written again
        assert _content(out / name) == files[name], name
    for t in summary.trials:
        if t.id in recorded:
            was = recorded[t.id]
            assert (t.status, t.iterations, t.metric) == (was.status, was.iterations, was.metric)
        run = Path(t.run)
        assert read_info(run).status == t.status  # the run and the record agree
        assert (t.status == "finished") == (t.iterations == ITERATIONS), t
        if t.status in ("finished", "pruned"):
            assert iterations_in(run) == list(range(1, t.iterations + 1))  # each iteration once, in order
        if run.name in ended_runs:
            assert t.status == before[run.name]


def _content(run: Path) -> dict[str, bytes]:
    """A run folder's files but its lock (which says who writes it, not what it holds)."""
    return {name: data for name, data in snapshot(run).items() if name != "run.lock"}


def _reaper_folder(sweep_pid: int) -> str | None:
    """The private Ray session folder of the sweep ``sweep_pid`` (its reaper's second argument)."""
    import psutil

    for proc in psutil.Process(sweep_pid).children():
        with contextlib.suppress(psutil.Error):
            cmd = proc.cmdline()
            if "imaml_core.experiments.sweep._reaper" in cmd:
                return cmd[-1]
    return None


def test_a_killed_sweep_leaves_no_ray_process_and_no_session_folder(tmp_path):
    """Ray's session lives in a private folder (mode 0700), not /tmp/ray; after SIGKILL the reaper stops
    every process started with that folder and removes it. The waits are bounds, not measurements."""
    import psutil

    from imaml_core.experiments.sweep._reaper import session_processes

    out = tmp_path / "sweep"
    cmd = sweep_command(
        "--out", str(out), "--config", str(base_config(tmp_path)), "--search", "lam=loguniform:0.5:50",
        "--trials", "3", "--iterations", "400", "--report-every", "20", "--quiet",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_until(proc, lambda: bool((rec := sweep_record(out)) and rec["trials"]), "a trial started")
        folder = _reaper_folder(proc.pid)
        assert folder is not None and Path(folder).is_dir()
        assert (Path(folder).stat().st_mode & 0o777) == 0o700 and not folder.startswith("/tmp/ray")
        assert session_processes(folder)  # Ray's processes name their session folder
        ray_procs = [
            p for p in psutil.Process(proc.pid).children(recursive=True) if "_reaper" not in " ".join(p.cmdline())
        ]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=PROCESS_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    start = time.monotonic()
    while (session_processes(folder) or Path(folder).exists()) and time.monotonic() - start < PROCESS_TIMEOUT_S:
        time.sleep(0.5)
    assert not session_processes(folder), [p.info["cmdline"][:2] for p in session_processes(folder)]
    assert not Path(folder).exists()
    _, alive = psutil.wait_procs(ray_procs, timeout=PROCESS_TIMEOUT_S)  # agents rename themselves (ray::…)
    assert not alive, [p.name() for p in alive]
