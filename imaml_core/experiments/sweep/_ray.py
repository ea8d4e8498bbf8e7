"""Ray for one sweep: started inside the sweep's process on loopback, or joined at ``--address``; Ray
Tune and Optuna kept quiet, Ray's own log lines sent to a file in the sweep folder, and SIGINT and
SIGTERM turned into Ray Tune's orderly stop.

A local Ray keeps its session (sockets, logs, object spill) in a private folder of its own (``ray_temp_dir``:
mode 0700, in the user's cache folder, or the system's temporary folder where that path would be too long
for Ray's sockets), never the shared, world-writable ``/tmp/ray``; the folder is removed when the sweep
stops, and a reaper process (``_reaper.py``) stops Ray and removes it if the sweep is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import ray

from imaml_core.engine.threads import available_cores
from imaml_core.experiments.sweep._address import probe_address
from imaml_core.experiments.sweep._space import SweepError

LOG_FILE = "sweep.log"  # Ray Tune's own messages, in the sweep folder
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
MAX_TEMP_DIR = 40  # Ray appends ~65 characters of session and socket names; a Unix socket path holds 107


def ray_temp_dir() -> tuple[str, str]:
    """A new private folder (mode 0700) for one local Ray session, and the folder inside it Ray is given:
    Ray makes its own temporary folder world-writable, so the private one above it keeps others out."""
    import platformdirs

    base = Path(platformdirs.user_cache_dir("imaml-studio")) / "ray"
    if len(str(base)) + 11 <= MAX_TEMP_DIR:
        base.mkdir(parents=True, exist_ok=True)
        private = tempfile.mkdtemp(prefix="", dir=base)
    else:
        private = tempfile.mkdtemp(prefix="imaml-ray-")
    return private, os.path.join(private, "r")


def start_reaper(folder: str) -> subprocess.Popen:
    """The process that stops Ray and removes ``folder`` if this one dies without doing it."""
    return subprocess.Popen(
        [sys.executable, "-m", "imaml_core.experiments.sweep._reaper", str(os.getpid()), folder],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C at the terminal must not stop it before the sweep
    )


@contextlib.contextmanager
def ray_session(address: str | None, cpus_per_trial: int) -> Iterator[int]:
    """Ray for one sweep: joined at ``address``, or started in this process on loopback without a
    dashboard (and shut down at the end). Yields the number of trials that fit at once."""
    started = False
    reaper, private = None, ""
    handlers = {s: signal.getsignal(s) for s in STOP_SIGNALS} if _in_main_thread() else {}
    if not ray.is_initialized():
        if address:
            probe_address(address)
            try:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
                raise SweepError(f"cannot join the Ray cluster at {address}: {first_line(exc)}") from None
        else:
            private, temp_dir = ray_temp_dir()
            reaper = start_reaper(private)
            try:
                ray.init(
                    num_cpus=available_cores(),
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    _temp_dir=temp_dir,
                    # Ray nices its workers to 15 by default; the trials are the sweep's whole work, and
                    # niced they all but stop beside any busy process (a few % of a core each)
                    _system_config={"worker_niceness": 0},
                    logging_level=logging.ERROR,
                    log_to_driver=False,
                )
            except Exception as exc:
                _end_local(reaper, private)
                raise SweepError(f"cannot start Ray on this machine: {first_line(exc)}") from None
        started = True
        for sig, handler in handlers.items():  # ray.init makes SIGTERM exit at once, status 15
            signal.signal(sig, handler)
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        largest = max((int(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=0)
        if cpus_per_trial > largest:
            raise SweepError(f"--cpus-per-trial {cpus_per_trial} is more than any Ray node has ({largest} CPUs)")
        total = int(ray.cluster_resources().get("CPU", 0))
        yield max(1, total // cpus_per_trial)
    finally:
        if started:
            ray.shutdown()
            if reaper is not None:
                _end_local(reaper, private)


def _end_local(reaper: subprocess.Popen, private: str) -> None:
    """After a local Ray's normal shutdown: stop the reaper, remove the session's private folder."""
    reaper.terminate()
    reaper.wait()
    shutil.rmtree(private, ignore_errors=True)


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def quiet_tune() -> None:
    """Tune's own CSV/JSON/TensorBoard loggers duplicate the run folders, its progress table and Optuna's
    log lines and warnings the CLI's own progress. Ray Tune's SIGINT handler is left out: ``Interruption``
    handles SIGINT and SIGTERM alike."""
    import warnings

    import optuna

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", module=r"optuna(\.|$)")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Interruption:
    """SIGINT and SIGTERM while Ray Tune runs. The first asks Ray Tune to stop as Ctrl-C does in Ray
    Tune (its SIGUSR1 handler): running trials are stopped between two reports and let go of their runs,
    and ``fit()`` returns. A second one stops at once (``KeyboardInterrupt``). ``signal`` names the first
    ("" while none came)."""

    def __init__(self) -> None:
        self.signal = ""
        self._usr1_before: object = None  # SIGUSR1's handler before the block: not Ray Tune's stop

    @contextlib.contextmanager
    def catching(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM inside the block; must enclose Ray Tune's ``fit()`` (which installs
        its SIGUSR1 handler when it starts)."""
        if not _in_main_thread():
            yield
            return
        saved = {s: signal.getsignal(s) for s in (*STOP_SIGNALS, signal.SIGUSR1)}
        self._usr1_before = saved[signal.SIGUSR1]
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)
        try:
            yield
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        stop = signal.getsignal(signal.SIGUSR1)
        if (
            self.signal or stop is self._usr1_before or not callable(stop)
        ):  # a second signal, or Ray Tune is not running yet
            self.signal = self.signal or signal.Signals(signum).name
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name
        stop(signal.SIGUSR1, frame)


@contextlib.contextmanager
def ray_log_to(path: Path) -> Iterator[None]:
    """Ray's and Ray Tune's log messages (a failed trial's traceback, say) go to ``path``, not the
    terminal: the sweep reports each trial in one line, and the reasons are in sweep.json."""
    logger = logging.getLogger("ray")
    saved = logger.handlers[:], logger.propagate
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.handlers, logger.propagate = [handler], False
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved
        handler.close()
