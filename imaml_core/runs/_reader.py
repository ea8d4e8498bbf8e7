"""Run histories read in a process of their own, for a front end whose own threads must stay responsive.

Parsing a 20,000-row metrics.csv is tens of milliseconds of numpy work that holds the GIL. Done in a
thread of the window's process, twenty of them keep the GUI thread waiting for the GIL each time Qt
calls back into Python, and it stalls for hundreds of milliseconds. A :class:`HistoryReader` parses in a
child process instead (``python -m imaml_core.runs._reader``, one read at a time, leaving the other cores
to the GUI and the trainer); only the binned columns, a few thousand numbers, come back.

The child imports only numpy and :mod:`._history`, not PyTorch, so it starts in a fraction of a second.
It is a plain subprocess rather than a ``multiprocessing`` one, which would re-import the parent's main
script in the child. The exchange on its pipes: one JSON request per line in; per request, one JSON
line out (``{"ok": true, "bytes": N}`` then N bytes of ``.npz``, or ``{"ok": false, "error": "..."}``).
No pickle crosses the pipe. If the child cannot start or dies, reads happen in this process's reader
thread instead: worse for the GUI, never lost.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import numpy as np

from ._history import METRICS_FILE, Metrics, read_metrics
from ._info import RunError


def read_history(folder: str, max_points: int | None, columns: Sequence[str] | None) -> Metrics:
    """A run folder's history; a missing or damaged file is a :class:`RunError`."""
    return read_metrics(Path(folder) / METRICS_FILE, max_points, columns)


class HistoryReader:
    """Reads run folders' histories off this process: ``read(folder, max_points, columns)`` returns a
    Future of what :meth:`Run.metrics` would, or of the :class:`RunError` that says why the history
    cannot be read. Reads run one after another.

    ``close()`` (or leaving a ``with`` block) stops the child; reads still queued are cancelled."""

    def __init__(self) -> None:
        # One thread sends the requests and waits on the child (waiting releases the GIL).
        self._queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-reader")
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # guards _child and _closed against close() from another thread
        self._closed = False
        self.in_process = False  # True once the child failed: reads happen in the reader thread

    @property
    def child_pid(self) -> int | None:
        """The reading process's id while it runs (None before the first read, after close or a failure)."""
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def read(
        self, folder: str | Path, max_points: int | None = None, columns: Sequence[str] | None = None
    ) -> Future[Metrics]:
        request = {
            "folder": str(folder),
            "max_points": max_points,
            "columns": None if columns is None else list(columns),
        }
        return self._queue.submit(self._read, request)

    def _read(self, request: dict[str, Any]) -> Metrics:
        if not self.in_process:
            try:
                return self._ask_child(request)
            except (OSError, ValueError, _ChildGone):
                self._stop_child()
                self.in_process = True
        return read_history(**request)

    def _ask_child(self, request: dict[str, Any]) -> Metrics:
        with self._lock:
            if self._closed:
                raise _ChildGone
            if self._child is None:
                self._child = _start_child()
            child = self._child
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
        child.stdin.flush()
        answer = child.stdout.readline()
        if not answer:
            raise _ChildGone
        head = json.loads(answer)
        if not head["ok"]:
            raise RunError(head["error"])
        payload = _read_exactly(child.stdout, head["bytes"])
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}

    def _stop_child(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            if child.stdin is not None:
                with contextlib.suppress(OSError):  # a dead child's pipe is broken
                    child.stdin.close()  # the child exits at the end of its input
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._queue.shutdown(wait=False, cancel_futures=True)
        threading.Thread(target=self._stop_child, name="history-reader-stop", daemon=True).start()

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_child() -> subprocess.Popen[bytes]:
    """``python -m imaml_core.runs._reader`` with this process's interpreter, able to import this copy of
    imaml_core wherever it was imported from; the same working folder, so relative run paths agree."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", __name__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


class _ChildGone(Exception):
    """The child closed its output: it died or was stopped."""


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise _ChildGone
    return data


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The child's loop: a history per request line until the input ends."""
    for line in requests:
        request = json.loads(line)
        try:
            data = read_history(**request)
        except Exception as exc:  # noqa: BLE001 - every failure goes back as the read's one-line error
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            answers.write(json.dumps({"ok": False, "error": text}).encode("utf-8") + b"\n")
        else:
            buffer = io.BytesIO()
            np.savez(buffer, **data)
            payload = buffer.getvalue()
            answers.write(json.dumps({"ok": True, "bytes": len(payload)}).encode("utf-8") + b"\n" + payload)
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
