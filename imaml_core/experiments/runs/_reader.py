"""Run histories read in a process of their own, for a front end whose own threads must stay responsive.

Parsing a 20,000-row metrics.csv is tens of milliseconds of numpy work that holds the GIL. Done in a
thread of the window's process, twenty of them keep the GUI thread waiting for the GIL each time Qt
calls back into Python, and it stalls for hundreds of milliseconds. A :class:`HistoryReader` parses in a
child process instead (one read at a time, leaving the other cores to the GUI and the trainer); only the
binned columns, a few thousand numbers, come back.

The child is a plain subprocess of this interpreter (``multiprocessing`` would re-import the parent's main
script in it), started isolated (``-I``) with this process's ``sys.path``, so it imports the same copy
of imaml_core whatever folder the app was started from; it imports only numpy and :mod:`._history`, not
PyTorch, so it starts in a fraction of a second. The exchange on its pipes: one JSON request per line in;
per request one JSON line out, ``{"id": n, "ok": true, "columns": [...], "bytes": N}`` then N bytes of
``.npz`` (arrays in column order, no pickle), or ``{"id": n, "ok": false, "error": "..."}``. The child
keeps its protocol on a private copy of its stdout and points stdout itself at stderr, so a stray print
cannot corrupt it; a reply that does not parse, or answers another request, stops the child.

A child that dies or misbehaves is replaced at the next read; after ``MAX_CHILD_FAILURES`` reads happen in
this process's reader thread instead: worse for the GUI, never lost.
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
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import numpy as np

from imaml_core.experiments.runs._history import METRICS_FILE, Metrics, read_metrics
from imaml_core.experiments.runs._info import RunError

MAX_CHILD_FAILURES = 3
CLOSE_TIMEOUT_S = 5.0  # close() lets a read in progress finish this long before it kills the child
_PATH_VARIABLE = "IMAML_STUDIO_READER_PATH"  # the parent's sys.path, for the isolated child
_BOOTSTRAP = (
    "import json, os, sys; sys.path[:] = json.loads(os.environ['" + _PATH_VARIABLE + "']); "
    "from imaml_core.experiments.runs._reader import child_main; child_main()"
)


def read_history(folder: str, max_points: int | None, columns: Sequence[str] | None) -> Metrics:
    """A run folder's history; a missing or damaged file is a :class:`RunError`."""
    return read_metrics(Path(folder) / METRICS_FILE, max_points, columns)


class HistoryReader:
    """Reads run folders' histories off this process: ``read(folder, max_points, columns)`` returns a
    Future of what :meth:`Run.metrics` would, or of the :class:`RunError` that says why the history
    cannot be read. Reads run one after another.

    ``close()`` (or leaving a ``with`` block) cancels the reads not yet done, stops the child and joins the
    reading thread, so neither outlives the reader; a read asked for after that is cancelled at once."""

    def __init__(self) -> None:
        # One thread sends the requests and waits on the child (waiting releases the GIL).
        self._queue = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-reader")
        self._lock = threading.Lock()  # guards the fields below against close() from another thread
        self._child: subprocess.Popen[bytes] | None = None
        self._pending: set[Future[Metrics]] = set()
        self._closed = False
        self._next_id = 0
        self._failures = 0

    @property
    def in_process(self) -> bool:
        """Whether reads happen in this process (the child failed ``MAX_CHILD_FAILURES`` times)."""
        return self._failures >= MAX_CHILD_FAILURES

    @property
    def child_pid(self) -> int | None:
        """The reading process's id while it runs (None before the first read, after close or a failure)."""
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def read(
        self, folder: str | Path, max_points: int | None = None, columns: Sequence[str] | None = None
    ) -> Future[Metrics]:
        request = {
            "folder": os.path.abspath(folder),  # the child's working folder need not be this one's
            "max_points": max_points,
            "columns": None if columns is None else list(columns),
        }
        with self._lock:
            if self._closed:
                future: Future[Metrics] = Future()
                future.cancel()
                return future
            future = self._queue.submit(self._read, request)
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future: Future[Metrics]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _read(self, request: dict[str, Any]) -> Metrics:
        if not self.in_process:
            try:
                return self._ask_child(request)
            except (RunError, CancelledError):  # the history's own error, or the reader was closed
                raise
            except Exception:  # noqa: BLE001 - a dead, stopped or garbled child: replace it next time
                self._stop_child()
                with self._lock:
                    if self._closed:
                        raise CancelledError from None
                    self._failures += 1
        return read_history(**request)

    def _ask_child(self, request: dict[str, Any]) -> Metrics:
        with self._lock:
            if self._closed:
                raise CancelledError
            if self._child is None:
                self._child = _start_child()
            child = self._child
            self._next_id += 1
            number = self._next_id
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps({**request, "id": number}).encode("utf-8") + b"\n")
        child.stdin.flush()
        head = json.loads(child.stdout.readline() or b'{"id": null}')
        if not isinstance(head, dict) or head.get("id") != number:
            raise _ChildGone(f"the reader process answered {str(head)[:80]!r} to request {number}")
        if not head["ok"]:
            raise RunError(str(head["error"]))
        payload = _read_exactly(child.stdout, int(head["bytes"]))
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            return {name: npz[f"arr_{i}"] for i, name in enumerate(head["columns"])}

    def _stop_child(self, timeout: float = 5.0) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            if child.stdin is not None:
                with contextlib.suppress(OSError, ValueError):  # a dead child's pipe is broken
                    child.stdin.close()  # the child exits at the end of its input
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Cancel the reads not started, stop the child (killed if a read keeps it busy past ``timeout``
        seconds) and join the reading thread, which then fails its read with ``CancelledError``."""
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        # Cancelled outside every lock: a cancelled future's callbacks run right here.
        for future in pending:
            future.cancel()
        self._queue.shutdown(wait=False, cancel_futures=True)
        self._stop_child(timeout)  # the reading thread's wait on the child's reply ends with it
        self._queue.shutdown(wait=True)

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_child() -> subprocess.Popen[bytes]:
    """This interpreter, isolated from the working folder and PYTHON* variables, on this ``sys.path``."""
    paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
    return subprocess.Popen(
        [sys.executable, "-I", "-c", _BOOTSTRAP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, _PATH_VARIABLE: json.dumps(paths)},
    )


class _ChildGone(Exception):
    """The child closed its output, or answered something other than the request's reply."""


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise _ChildGone("the reader process stopped in the middle of a reply")
    return data


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The child's loop: a history per request line until the input ends."""
    for line in requests:
        request = json.loads(line)
        number = request.pop("id")
        try:
            data = read_history(**request)
            buffer = io.BytesIO()
            np.savez(buffer, *data.values())
            head = {"id": number, "ok": True, "columns": list(data), "bytes": buffer.tell()}
            reply = json.dumps(head).encode("utf-8") + b"\n" + buffer.getvalue()
        except Exception as exc:  # noqa: BLE001 - every failure goes back as the read's one-line error
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reply = json.dumps({"id": number, "ok": False, "error": text}).encode("utf-8") + b"\n"
        answers.write(reply)
        answers.flush()


def child_main() -> None:
    """The child: the protocol on a private copy of stdout; stdout itself goes to stderr."""
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)
