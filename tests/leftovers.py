"""The check that every test leaves nothing behind (an autouse fixture, imported by conftest.py): no thread
it started, no child process, no worker QThread, no pending background work, no open window, and no Qt
object used from a thread it does not live in."""

import gc
import sys
import threading
import time

import psutil
import pytest

SETTLE_S = 10.0  # how long a test's leftovers (a thread finishing, a child exiting) may take to end
# Threads that live as long as the process by design: app.background's pool, tqdm's monitor.
LONG_LIVED_THREADS = ("MainThread", "imaml-background", "tqdm_monitor")
# Qt warnings that mean a timer, notifier or object was stopped or freed off its thread: the timer stays
# registered with its thread's event loop and fires later on freed memory (a segfault in a later test).
QT_THREAD_MISUSE = (
    "from another thread",
    "cannot be stopped from another",
    "Cannot create children for a parent that is in a different thread",
    "Destroyed while thread is still running",
    "Destroyed while process",
)


@pytest.fixture(autouse=True)
def nothing_left_behind(request):
    """After each test: no thread it started still runs (a TensorBoard writer, a history reader), no child
    process of it is left, no worker QThread runs, no background work is pending, and no top-level window
    stays open. Things a test closed are deleted here, in the GUI thread: otherwise the next nested event
    loop deletes them in the middle of a later test, or a garbage collection that runs in another thread
    (a worker, a pool thread) frees their Qt objects there, and a GUI-thread timer they own stays
    registered and later fires on freed memory."""
    threads_before = set(threading.enumerate())
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    qt_test = "qtbot" in request.fixturenames
    qtlog = request.getfixturevalue("qtlog") if qt_test else None
    yield
    problems = _qt_leftovers(collect=qt_test)
    if qtlog is not None:  # Qt's own word that an object was used from a thread it does not live in
        misuse = {r.message for r in qtlog.records if any(m in r.message for m in QT_THREAD_MISUSE)}
        if misuse:
            problems.append(f"Qt objects used from the wrong thread: {sorted(misuse)}")
    deadline = time.monotonic() + SETTLE_S
    while True:
        threads = [
            t
            for t in threading.enumerate()
            if t not in threads_before
            and t.is_alive()
            and not isinstance(t, threading._DummyThread)  # a Qt thread that ran Python: checked below
            and not t.name.startswith(LONG_LIVED_THREADS)
            and t not in _torch_compile_threads()
        ]
        children = [p for p in _children() if p.pid not in children_before]
        if not (threads or children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    writers = [t.name for t in threads if type(t).__name__ == "_AsyncWriterThread"]
    if writers:
        problems.append(f"TensorBoard writers not closed: {writers}")
    if threads:
        problems.append(f"threads still running: {sorted(t.name for t in threads)}")
    if children:
        problems.append(f"child processes still running: {[' '.join(p.cmdline()[:4]) for p in children]}")
    assert not problems, "the test left things behind: " + "; ".join(problems)


def _torch_compile_threads() -> set[threading.Thread]:
    """The threads of torch.compile's compile pool: made on a first compile, kept for the process."""
    async_compile = sys.modules.get("torch._inductor.async_compile")
    if async_compile is None or async_compile.AsyncCompile.pool.cache_info().currsize == 0:
        return set()
    return set(async_compile.AsyncCompile.pool()._threads)


def _children() -> list[psutil.Process]:
    alive = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def _qt_leftovers(collect: bool) -> list[str]:
    """Qt's share of the check (nothing when the test process has not loaded Qt)."""
    if "PySide6.QtWidgets" not in sys.modules:
        return []
    from PySide6.QtCore import QCoreApplication, QEvent, QThreadPool
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        return []
    problems = []
    wait_idle = getattr(sys.modules.get("app.toolkit.background"), "wait_idle", None)
    if wait_idle is not None and not wait_idle(SETTLE_S):
        problems.append("in_background work still running")
    if not QThreadPool.globalInstance().waitForDone(int(SETTLE_S * 1000)):
        problems.append("Qt's global thread pool is still busy")
    app.processEvents()  # results of finished work reach their (closed) owners now, not in a later test
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # what pytest-qt closed: deleted here
    if collect:
        gc.collect()  # cycles holding Qt objects are freed in this, the GUI, thread
    worker_thread = sys.modules.get("app.worker.thread")
    if worker_thread is not None and worker_thread.WorkerThread.running_threads():
        problems.append("a worker QThread still runs")
    shown = [f"{type(w).__name__}({w.objectName()})" for w in app.topLevelWidgets() if w.isVisible()]
    if shown:
        problems.append(f"top-level widgets still shown: {shown}")
    return problems
