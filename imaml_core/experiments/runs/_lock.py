"""run.lock: one process writes a run at a time, and the lock file says which.

The lock holds the writer's host, pid and process start time as JSON. It appears complete or not at all
(written to a temporary, then hard-linked to its name, which fails when the name exists). A lock whose
process is gone from this host (no such pid, or a pid reused by a later process) is stale and may be
taken over; a lock from another host is taken as live, since nothing here can tell otherwise, unless the
caller knows its writer ended (``release_ended``: a sweep whose Ray Tune ended that attempt on a lost node).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

import psutil

from imaml_core.common.files import create_exclusive, read_bounded
from imaml_core.experiments.runs._info import RunError

LOCK_FILE = "run.lock"
MAX_LOCK_BYTES = 4096  # host, pid, start time and a token


class RunLockedError(RunError):
    """The run is being written by another process (or another writer in this one)."""


def _me() -> dict[str, object]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def _alive(holder: dict[str, object]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        started = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    recorded = holder.get("started")
    return not isinstance(recorded, (int, float)) or abs(started - recorded) < 1.0


def lock_holder(folder: Path, name: str = LOCK_FILE) -> dict[str, object] | None:
    """The record of the live process that holds ``folder``'s lock (file ``name``), or None (no lock, or a
    stale one)."""
    try:
        holder = json.loads(read_bounded(folder / name, MAX_LOCK_BYTES))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        return None  # unreadable: no process can be named as its holder
    if not isinstance(holder, dict) or not _alive(holder):
        return None
    return holder


def release_ended(folder: Path, name: str = LOCK_FILE) -> bool:
    """Remove ``folder``'s lock when the caller knows that its writer has ended. The one rule for taking
    over a lock that ``lock_holder`` still calls live: only a holder on another host, whose liveness this
    host cannot see, is removed; a live writer on this host is never. Returns whether a lock was removed."""
    holder = lock_holder(folder, name)
    if holder is None or holder.get("host") == socket.gethostname():
        return False
    with contextlib.suppress(FileNotFoundError):
        (folder / name).unlink()
    return True


def _remove_temporaries(folder: Path) -> None:
    """Remove the temporaries (``.<name>.<random hex>.tmp``) that a killed writer left in ``folder``: the
    lock's new holder is the folder's one writer, so none of them belongs to a live one."""
    for tmp in folder.glob(".*.tmp"):
        stem = tmp.name[1:-4]
        if "." in stem and all(c in "0123456789abcdef" for c in stem.rsplit(".", 1)[1]):
            with contextlib.suppress(OSError):
                tmp.unlink()


class RunLock:
    """The write lock of one run folder, held from ``acquire()`` to ``release()``. ``name`` is the lock
    file's name (a sweep folder's driver takes ``sweep.lock`` the same way)."""

    def __init__(self, folder: Path, name: str = LOCK_FILE) -> None:
        self.folder = folder
        self.path = folder / name
        self._record: dict[str, object] | None = None

    @property
    def held(self) -> bool:
        return self._record is not None

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; a live holder is a :class:`RunLockedError`."""
        if self._record is not None:
            return
        record = {**_me(), "token": os.urandom(8).hex()}
        for _ in range(3):
            if self._create(record):
                self._record = record
                _remove_temporaries(self.folder)
                return
            holder = lock_holder(self.folder, self.path.name)
            if holder is not None:
                who = "this process" if holder.get("pid") == os.getpid() else f"process {holder.get('pid')}"
                raise RunLockedError(f"{self.folder}: the run is being written by {who} on {holder.get('host')}")
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # stale: its writer is gone
        raise RunLockedError(f"{self.folder}: cannot take the run's lock ({self.path})")

    def _create(self, record: dict[str, object]) -> bool:
        tmp = self.folder / f".{self.path.name}.{record['token']}.tmp"
        try:
            with os.fdopen(create_exclusive(tmp), "w", encoding="utf-8") as fh:
                fh.write(json.dumps(record))
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                return False
            except OSError:  # a file system without hard links: exclusive create (briefly empty)
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(json.dumps(record))
            return True
        except OSError as exc:
            raise RunError(f"{self.folder}: cannot write the run's lock ({exc.strerror or exc})") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def release(self) -> None:
        """Remove the lock if this object still holds it (a lock taken over by another writer stays)."""
        if self._record is None:
            return
        token, self._record = self._record["token"], None
        try:
            current = json.loads(read_bounded(self.path, MAX_LOCK_BYTES))
        except (OSError, ValueError):
            return
        if isinstance(current, dict) and current.get("token") == token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
