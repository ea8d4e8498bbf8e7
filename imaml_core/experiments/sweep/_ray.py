"""Ray for one sweep: started inside the sweep's process on loopback, or joined at ``--address``; Ray
Tune and Optuna kept quiet, and Ray's own log lines sent to a file in the sweep folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import ray

from imaml_core.engine.threads import available_cores
from imaml_core.experiments.sweep._address import probe_address
from imaml_core.experiments.sweep._space import SweepError

LOG_FILE = "sweep.log"  # Ray Tune's own messages, in the sweep folder
STATE_EVERY_S = 2  # seconds between saves of Ray Tune's experiment state


@contextlib.contextmanager
def ray_session(address: str | None, cpus_per_trial: int) -> Iterator[int]:
    """Ray for one sweep: joined at ``address``, or started in this process on loopback without a
    dashboard (and shut down at the end). Yields the number of trials that fit at once."""
    started = False
    if not ray.is_initialized():
        if address:
            probe_address(address)
            try:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
                raise SweepError(f"cannot join the Ray cluster at {address}: {first_line(exc)}") from None
        else:
            try:
                ray.init(
                    num_cpus=available_cores(),
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    logging_level=logging.ERROR,
                    log_to_driver=False,
                )
            except Exception as exc:
                raise SweepError(f"cannot start Ray on this machine: {first_line(exc)}") from None
        started = True
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


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def quiet_tune() -> None:
    """Tune's own CSV/JSON/TensorBoard loggers duplicate the run folders, its progress table and Optuna's
    log lines the CLI's own progress. Ray Tune saves its state every ``STATE_EVERY_S`` (rather than every
    10 s or more), so a sweep killed outright loses track of few trials (see ``Recorder.on_step_begin``)."""
    import optuna

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(STATE_EVERY_S))
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


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
