"""The reaper of a sweep's local Ray: a small process that outlives the sweep only to clean up after it.

A sweep that starts Ray on this machine gives it a private session folder (``ray_temp_dir``). If the sweep
is killed (SIGKILL, a crash, the machine's OOM killer), no code of its own runs again, and Ray's server,
raylet, agents and workers would live on for minutes. The reaper watches the sweep's process and notes its
descendants as they appear (Ray's agents rename themselves, ``ray::DashboardAgent``, so a command line does
not find them once orphaned); once the sweep is gone it stops those still alive and every process whose
command line names the session folder, then removes the folder. A sweep that ends normally shuts Ray down
itself and stops the reaper first.

    python -m imaml_core.experiments.sweep._reaper PID FOLDER
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import psutil

POLL_S = 0.2
GRACE_S = 3.0  # after SIGTERM, what Ray's processes get before SIGKILL


def session_processes(folder: str) -> list[psutil.Process]:
    """Processes whose command line names ``folder`` (Ray's, started with ``--temp-dir``/session paths)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid != os.getpid() and any(folder in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def reap(folder: str, known: dict[int, float] | None = None) -> None:
    """Stop the session's processes (SIGTERM, then SIGKILL after ``GRACE_S``) and remove its folder.
    ``known``: pid -> start time of the sweep's descendants seen while it lived (a pid reused since is
    left alone)."""
    procs = session_processes(folder)
    for pid, started in (known or {}).items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == started and proc.pid not in {p.pid for p in procs}:
                procs.append(proc)
        except psutil.Error:
            continue
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=GRACE_S)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=GRACE_S)
    shutil.rmtree(folder, ignore_errors=True)


def descendants(pid: int) -> dict[int, float]:
    """The process ``pid``'s descendants but this one: pid -> start time."""
    found = {}
    try:
        for child in psutil.Process(pid).children(recursive=True):
            if child.pid != os.getpid():
                found[child.pid] = child.create_time()
    except psutil.Error:
        pass
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def main(argv: list[str]) -> int:
    pid, folder = int(argv[0]), argv[1]
    known: dict[int, float] = {}
    while alive(pid):
        known.update(descendants(pid))
        time.sleep(POLL_S)
    reap(folder, known)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
