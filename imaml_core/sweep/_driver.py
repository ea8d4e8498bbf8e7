"""The sweep driver: Ray Tune runs the trials, Optuna's TPE picks them, ASHA stops weak ones early.

Nothing here schedules, queues or talks to workers itself: the driver starts or joins Ray, hands Ray Tune
a trainable (_trial.py), an ``OptunaSearch`` and an ``ASHAScheduler``, and records what Ray Tune reports
in sweep.json through a Tune callback. Resuming is Ray Tune's ``Tuner.restore`` on the experiment state
kept in ``DIR/.tune``; trials that ended are not run again, and trials that were cut off continue from
their run folders' last saved state.

This module imports Ray and Optuna; ``imaml_core.sweep`` loads it only when a sweep runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from ..config import ExperimentConfig
from ..errors import ImamlError
from ..runs._info import RunError, read_info, write_info
from ..runs._lock import LOCK_FILE, lock_holder
from ..threads import available_cores
from ._address import probe_address
from ._record import TUNE_FOLDER, SweepFile, SweepSettings, SweepSummary, TrialSummary, read_sweep
from ._space import Dimension, SearchSpace, SweepError
from ._trial import SweepTrial, run_folder_name

MAX_FAILURES = 2  # times Ray Tune restarts a trial whose worker or node was lost before it is failed
REDUCTION_FACTOR = 3  # ASHA keeps the best third at each rung
LOG_FILE = "sweep.log"  # Ray Tune's own messages, in the sweep folder
STATE_EVERY_S = 2  # seconds between saves of Ray Tune's experiment state
# Sweep events a caller may follow (``on_event(kind, trial)``): a trial started, ended or was retried.
Event = Callable[[str, TrialSummary], None]


# -- Ray Tune pieces -----------------------------------------------------------------------------------
class _OptunaSearch(OptunaSearch):
    """Ray Tune's Optuna searcher, telling Optuna how a trial really ended: a trial ASHA stopped early is
    PRUNED (TPE ranks it by its last intermediate value) and a trial that failed is FAIL, where the
    stock searcher reports both as COMPLETE with their last value."""

    def __init__(self, *args: Any, iterations: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._iterations = iterations

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if "failed" not in result:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if result and "failed" in result:
            result, error = None, True
        elif result and result.get("iteration", 0) < self._iterations:
            result = {k: v for k, v in result.items() if k != self.metric}  # Optuna: PRUNED
        super().on_trial_complete(trial_id, result, error)


def _domain(d: Dimension) -> Any:
    """The Ray Tune domain of a dimension (integer ranges include HI; Tune's exclude it)."""
    if d.dist == "loguniform":
        return tune.loguniform(d.low, d.high)
    if d.dist == "uniform":
        return tune.uniform(d.low, d.high)
    if d.dist == "int":
        return tune.randint(int(d.low), int(d.high) + 1)
    if d.dist == "intlog":
        return tune.lograndint(int(d.low), int(d.high) + 1)
    return tune.choice(d.search_choices())


# The record of the sweep this process runs, with the caller's event hook. Ray Tune pickles its callbacks
# with the experiment (a restored sweep gets those copies back, possibly from a moved folder), so the
# callback holds nothing and finds the record, and its lock, here. Ray Tune runs one experiment at a time.
@dataclass
class _Active:
    record: SweepFile
    on_event: Event | None
    reconciled: bool = False  # trials Ray Tune lost track of are marked (see _Recorder.on_step_begin)
    complete: bool = False  # Ray Tune ended every trial of the sweep


_ACTIVE: list[_Active] = []


class _Recorder(tune.Callback):
    """Writes what Ray Tune reports into sweep.json, and marks the runs of trials Tune ended from outside."""

    @property
    def _file(self) -> SweepFile:
        return _ACTIVE[-1].record

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._file
        known = record.trial(trial.trial_id)
        settings = record.settings
        if known is None:
            number = len(record.data["trials"]) + 1
            runs = tuple(run_folder_name(trial.trial_id, k, settings.seeds) for k in range(settings.seeds))
            values = record.space.config_values(trial.config)
            known = TrialSummary(trial.trial_id, number, values, runs=runs)
        known = known.replace(status="running")
        record.put_trial(known)
        self._emit("started", known)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        known = self._file.trial(trial.trial_id)
        if known is None or "failed" in result:
            return
        moved = known.node != result.get("node", "")
        known = known.replace(
            metric=float(result["objective"]),
            val_mse=float(result["val_mse"]),
            iterations=int(result["iteration"]),
            seconds=float(result["seconds"]),
            node=str(result.get("node", "")),
        )
        self._file.put_trial(known, urgent=moved)  # where a trial runs is news; its progress can wait

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        known = self._file.trial(trial.trial_id)
        if known is None:
            return
        result = trial.last_result or {}
        if "failed" in result:
            known = known.replace(status="failed", reason=str(result["failed"]), iterations=int(result["iteration"]))
        elif known.iterations >= self._file.settings.iterations:
            known = known.replace(status="finished")
        else:
            known = known.replace(status="pruned")
            self._mark_runs(known, "pruned", "")
        self._file.put_trial(known)
        self._emit(known.status, known)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        known = self._file.trial(trial.trial_id)
        if known is not None:
            known = known.replace(reason=f"restarted after: {_error_line(trial)}")
            self._file.put_trial(known)
            self._emit("restarted", known)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        known = self._file.trial(trial.trial_id)
        if known is None:
            settings = self._file.settings
            runs = tuple(run_folder_name(trial.trial_id, k, settings.seeds) for k in range(settings.seeds))
            values = self._file.space.config_values(trial.config)
            known = TrialSummary(trial.trial_id, len(self._file.data["trials"]) + 1, values, runs=runs)
        reason = _error_line(trial)
        known = known.replace(status="failed", reason=reason)
        self._mark_runs(known, "failed", reason)
        self._file.put_trial(known)
        self._emit("failed", known)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        """At the first step, Ray Tune holds the trials it restored. A trial the record holds as still going
        that Ray Tune does not know started after Ray Tune's last saved state (a sweep killed with SIGKILL,
        or a lost head node): Ray Tune draws its place again, so the record marks it failed and says why."""
        active = _ACTIVE[-1]
        if active.reconciled:
            return
        active.reconciled = True
        known = {t.trial_id for t in trials}
        for trial in self._file.trials().values():
            if trial.id not in known and trial.status not in ("finished", "pruned", "failed"):
                reason = "the sweep stopped before Ray Tune saved this trial; a new trial takes its place"
                trial = trial.replace(status="failed", reason=reason)
                self._mark_runs(trial, "failed", reason)
                self._file.put_trial(trial)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._file.flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        ended = [t for t in trials if t.status in (t.TERMINATED, t.ERROR)]
        _ACTIVE[-1].complete = len(ended) == len(trials) >= self._file.settings.trials
        self._file.flush(force=True)

    def _mark_runs(self, trial: TrialSummary, status: str, reason: str) -> None:
        """Set the status of a trial's runs after Ray Tune ended the trial from outside.

        The trial's own writer writes run.json only when its runs start and when they end by themselves,
        neither of which can follow a pruning or an error, and Ray Tune runs no further attempt of an
        ended trial: so this write cannot cross one of the writer's. A lock left by the ended attempt on
        another host (a lost node) is removed: that attempt no longer writes."""
        for name in trial.runs:
            folder = self._file.folder / name
            try:
                info = read_info(folder)
            except RunError:
                continue  # the trial ended before its run existed
            notes = f"{info.notes}; {status}: {reason}" if reason else info.notes
            write_info(folder, info.replace(status=status, notes=notes))
            holder = lock_holder(folder)
            if holder is not None and holder.get("host") != socket.gethostname():
                (folder / LOCK_FILE).unlink(missing_ok=True)

    def _emit(self, kind: str, trial: TrialSummary) -> None:
        on_event = _ACTIVE[-1].on_event
        if on_event is not None:
            on_event(kind, trial)


def _error_line(trial: Any) -> str:
    """The last meaningful line of the trial's error (Ray's text ends with the exception itself)."""
    text = ""
    with contextlib.suppress(Exception):
        text = Path(trial.error_file).read_text(encoding="utf-8", errors="replace") if trial.error_file else ""
    if not text:
        with contextlib.suppress(Exception):
            text = str(trial.get_error() or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Failure #")]
    for line in reversed(lines):
        if not line.startswith(("File ", "^", "~", "Traceback")):
            return line[:500]
    return "the trial's worker failed"


# -- Ray -----------------------------------------------------------------------------------------------
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
                raise SweepError(f"cannot join the Ray cluster at {address}: {_first_line(exc)}") from None
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
                raise SweepError(f"cannot start Ray on this machine: {_first_line(exc)}") from None
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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# -- running and resuming ------------------------------------------------------------------------------
def _trainable(record: SweepFile) -> Any:
    settings = record.settings
    job = {
        "out": str(record.folder.resolve()),
        "base": record.data["base"],
        "space": record.data["space"],
        "iterations": settings.iterations,
        "report_every": min(settings.report_every, settings.iterations),
        "seeds": settings.seeds,
        "metric": settings.metric,
        "cpus": settings.cpus_per_trial,
    }
    return tune.with_resources(tune.with_parameters(SweepTrial, job=job), {"cpu": settings.cpus_per_trial})


def _tuner(record: SweepFile, concurrent: int, recorder: _Recorder) -> tune.Tuner:
    settings, space = record.settings, record.space
    base = record.base
    every = min(settings.report_every, settings.iterations)
    searcher = _OptunaSearch(metric="objective", mode="min", seed=base.seed, iterations=settings.iterations)
    scheduler = ASHAScheduler(
        time_attr="iteration",
        metric="val_mse",
        mode="min",
        max_t=settings.iterations,
        grace_period=every,
        reduction_factor=REDUCTION_FACTOR,
    )
    return tune.Tuner(
        _trainable(record),
        param_space={d.field: _domain(d) for d in space.dimensions},
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=settings.trials,
            max_concurrent_trials=concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=TUNE_FOLDER,
            storage_path=str(record.folder.resolve()),
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            callbacks=[recorder],
            verbose=0,
            log_to_file=False,
        ),
    )


def _quiet_tune() -> None:
    """Tune's own CSV/JSON/TensorBoard loggers duplicate the run folders, its progress table and Optuna's
    log lines the CLI's own progress. Ray Tune saves its state every ``STATE_EVERY_S`` (rather than every
    10 s or more), so a sweep killed outright loses track of few trials (see ``_Recorder.on_step_begin``)."""
    import optuna

    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(STATE_EVERY_S))
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextlib.contextmanager
def _ray_log_to(path: Path) -> Iterator[None]:
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


def _fit(record: SweepFile, tuner_for: Callable[[_Recorder], tune.Tuner], on_event: Event | None) -> SweepSummary:
    """Run Ray Tune to the end (or to an interruption) and record how the sweep ended."""
    active = _Active(record, on_event)
    _ACTIVE.append(active)
    try:
        with _ray_log_to(record.folder / LOG_FILE):
            tuner_for(_Recorder()).fit()
        if active.complete:
            record.set_status("finished")
        else:
            ended = sum(1 for t in record.trials().values() if t.status in ("finished", "pruned", "failed"))
            record.set_status("interrupted", f"{ended} trials ended")
    except ImamlError as exc:
        record.set_status("failed", str(exc))
        raise
    except Exception as exc:  # Ray's own errors end as one line too, and the record says how it stopped
        record.set_status("failed", _first_line(exc))
        raise SweepError(f"the sweep stopped: {_first_line(exc)}") from exc
    except BaseException as exc:
        record.set_status("interrupted", _first_line(exc))
        raise
    finally:
        _ACTIVE.pop()
        record.close()
    return read_sweep(record.folder)


def run_sweep(
    out: str | Path,
    base: ExperimentConfig,
    space: SearchSpace,
    settings: SweepSettings,
    on_event: Event | None = None,
) -> SweepSummary:
    """Run a new sweep into folder ``out`` (nothing is written there until Ray is up)."""
    settings = settings.validate()
    folder = Path(out)
    if (folder / "sweep.json").exists():
        raise SweepError(f"{folder} holds a sweep already; continue it with --resume {folder}, or choose a new --out")
    if folder.exists() and not folder.is_dir():
        raise SweepError(f"--out {folder} is not a folder")
    _quiet_tune()
    with ray_session(settings.address, settings.cpus_per_trial) as concurrent:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepError(f"cannot create --out {folder}: {exc.strerror or exc}") from None
        record = SweepFile.create(folder, settings, space, base)
        return _fit(record, lambda recorder: _tuner(record, concurrent, recorder), on_event)


def resume_sweep(out: str | Path, address: str | None = None, on_event: Event | None = None) -> SweepSummary:
    """Continue the sweep in ``out``: trials that ended stay as they are, cut-off ones continue from their
    runs' last saved state, and the rest of the trials are drawn. ``address`` overrides the recorded one."""
    folder = Path(out)
    summary = read_sweep(folder)  # checks the record before Ray starts
    settings = summary.settings
    if address is not None:
        settings = SweepSettings(**{**settings.to_dict(), "address": address})
    _quiet_tune()
    with ray_session(settings.address, settings.cpus_per_trial) as concurrent:
        record = SweepFile.reopen(folder)
        if address is not None:
            record.data["settings"]["address"] = address
        experiment = str((folder / TUNE_FOLDER).resolve())

        def tuner_for(recorder: _Recorder) -> tune.Tuner:
            if not tune.Tuner.can_restore(experiment):
                return _tuner(record, concurrent, recorder)  # stopped before Ray Tune saved anything
            return tune.Tuner.restore(
                experiment, trainable=_trainable(record), resume_unfinished=True, resume_errored=False
            )

        return _fit(record, tuner_for, on_event)
