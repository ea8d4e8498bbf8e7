"""The sweep driver: Ray Tune runs the trials, Optuna's TPE picks them, ASHA stops weak ones early.

Nothing here schedules, queues or talks to workers itself: the driver starts or joins Ray, hands Ray Tune
a trainable (_trial.py), an ``OptunaSearch`` and an ``ASHAScheduler``, and records what Ray Tune reports
in sweep.json through a Tune callback.

sweep.json is the truth a resumed sweep starts from (Ray Tune saves its own state only every few
seconds, so after SIGKILL that state lags behind the record and the runs): trials that ended are told to
Optuna and never run again, trials that were cut off continue from their run folders' last saved state
under their own ids (see ``_trial.TRIAL_KEY``), and only the trials still missing from ``--trials`` are
drawn anew. ASHA starts its rungs afresh.

This module imports Ray and Optuna; ``imaml_core.experiments.sweep`` loads it only when a sweep runs.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.experiments.runs import LOCK_FILE, lock_holder, release_ended
from imaml_core.experiments.sweep._metrics import metric_mode
from imaml_core.experiments.sweep._ray import (
    LOG_FILE,
    Interruption,
    first_line,
    quiet_tune,
    ray_log_to,
    ray_session,
)
from imaml_core.experiments.sweep._record import (
    TUNE_FOLDER,
    SweepSettings,
    SweepSummary,
    TrialSummary,
    check_base,
    read_sweep,
)
from imaml_core.experiments.sweep._recorder import ACTIVE, Active, Event, Recorder
from imaml_core.experiments.sweep._space import Dimension, SearchSpace, SweepError
from imaml_core.experiments.sweep._sweep_file import SweepFile
from imaml_core.experiments.sweep._trial import ENDED, TRIAL_KEY, SweepTrial

MAX_FAILURES = 2  # times Ray Tune restarts a trial whose worker or node was lost before it is failed
REDUCTION_FACTOR = 3  # ASHA keeps the best third at each rung


# -- Ray Tune pieces -----------------------------------------------------------------------------------
class _OptunaSearch(OptunaSearch):
    """Ray Tune's Optuna searcher, telling Optuna how a trial really ended: a trial ASHA stopped early is
    PRUNED (TPE ranks it by its last intermediate value) and a trial that failed is FAIL, where the
    stock searcher reports both as COMPLETE with their last value.

    A resumed sweep's searcher also knows the recorded trials: ``history`` (trials that ended) is told to
    Optuna before the first draw, and the first suggestions are ``continued`` (cut-off trials), each with
    its recorded values and its id under ``TRIAL_KEY``."""

    def __init__(
        self,
        *args: Any,
        iterations: int,
        history: Sequence[TrialSummary] = (),
        continued: Sequence[TrialSummary] = (),
        space: SearchSpace,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._iterations = iterations
        self._history = [(t.status, space.search_values(t.config), t.metric, t.iterations) for t in history]
        self._continued = [(t.id, space.search_values(t.config)) for t in continued]

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        if not super().set_search_properties(metric, mode, config, **spec):
            return False
        for status, params, metric_value, iterations in self._history:
            self._tell_recorded(status, params, metric_value, iterations)
        self._history = []
        return True

    def _tell_recorded(self, status: str, params: dict[str, Any], value: float | None, iterations: int) -> None:
        """Add a recorded trial to the study as it ended (one outside the space is left out)."""
        known = value is not None and math.isfinite(value)
        if status == "finished" and known:
            state, intermediate = optuna.trial.TrialState.COMPLETE, None
        elif status == "pruned" and known:
            state, intermediate = optuna.trial.TrialState.PRUNED, {iterations: value}
        else:
            state, value, intermediate = optuna.trial.TrialState.FAIL, None, None
        try:
            trial = optuna.trial.create_trial(
                state=state,
                value=value if state == optuna.trial.TrialState.COMPLETE else None,
                params=params,
                distributions=self._space,
                intermediate_values=intermediate,
            )
        except ValueError:
            return
        self._ot_study.add_trial(trial)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if not self._continued or trial_id in self._ot_trials:
            return super().suggest(trial_id)
        recorded_id, params = self._continued.pop(0)
        self._ot_study.enqueue_trial(params)
        suggestion = super().suggest(trial_id)
        return None if suggestion is None else {**suggestion, TRIAL_KEY: recorded_id}

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


def _tuner(
    record: SweepFile,
    concurrent: int,
    recorder: Recorder,
    samples: int,
    history: Sequence[TrialSummary] = (),
    continued: Sequence[TrialSummary] = (),
) -> tune.Tuner:
    """Ray Tune for ``samples`` trials: the ``continued`` ones first, then new draws. Optuna optimises the
    sweep's metric in its mode (min or max); ASHA compares the mean validation loss, lower is better, for
    every metric and family (see the package docstring)."""
    settings, space = record.settings, record.space
    base = record.base
    every = min(settings.report_every, settings.iterations)
    searcher = _OptunaSearch(
        metric="objective",
        mode=metric_mode(settings.metric),
        seed=base.seed,
        iterations=settings.iterations,
        history=history,
        continued=continued,
        space=space,
    )
    scheduler = ASHAScheduler(
        time_attr="iteration",
        metric="val_loss",
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
            num_samples=samples,
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


def _fit(record: SweepFile, tuner_for: Callable[[Recorder], tune.Tuner], on_event: Event | None) -> SweepSummary:
    """Run Ray Tune to the end (or to an interruption) and record how the sweep ended: finished only when
    every trial of ``--trials`` is recorded as ended and no signal stopped it."""
    active = Active(record, on_event)
    interruption = Interruption()
    ACTIVE.append(active)
    try:
        with ray_log_to(record.folder / LOG_FILE), interruption.catching():
            tuner_for(Recorder()).fit()
        _finish(record, interruption.signal)
    except ImamlError as exc:
        record.set_status("failed", str(exc))
        raise
    except Exception as exc:  # Ray's own errors end as one line too, and the record says how it stopped
        record.set_status("failed", first_line(exc))
        raise SweepError(f"the sweep stopped: {first_line(exc)}") from exc
    except BaseException as exc:
        how = interruption.signal or (type(exc).__name__ if isinstance(exc, KeyboardInterrupt) else first_line(exc))
        record.set_status("interrupted", f"interrupted by {how}: {_ended_count(record)}")
        raise
    finally:
        ACTIVE.pop()
        _release_stale_locks(record)
        record.close()
    return read_sweep(record.folder)


def _ended_count(record: SweepFile) -> str:
    ended = sum(1 for t in record.trials().values() if t.status in ENDED)
    return f"{ended} of {record.settings.trials} trials ended"


def _finish(record: SweepFile, stopped_by: str) -> None:
    trials = record.trials().values()
    complete = len(trials) >= record.settings.trials and all(t.status in ENDED for t in trials)
    if stopped_by:
        record.set_status("interrupted", f"interrupted by {stopped_by}: {_ended_count(record)}")
    elif complete:
        record.set_status("finished")
    else:
        record.set_status("interrupted", f"Ray Tune stopped early: {_ended_count(record)}")


def _release_stale_locks(record: SweepFile) -> None:
    """Remove the run locks whose writers are gone (a trial's worker killed with Ray): a run's lock names
    a live writer or none."""
    for trial in record.trials().values():
        for name in trial.runs:
            folder = record.folder / name
            if (folder / LOCK_FILE).exists() and lock_holder(folder) is None:
                (folder / LOCK_FILE).unlink(missing_ok=True)
            elif trial.status in ENDED:
                release_ended(folder)


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
    quiet_tune()
    with ray_session(settings.address, settings.cpus_per_trial) as concurrent:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SweepError(f"cannot create --out {folder}: {exc.strerror or exc}") from None
        record = SweepFile.create(folder, settings, space, base)
        return _fit(record, lambda recorder: _tuner(record, concurrent, recorder, settings.trials), on_event)


def resume_sweep(out: str | Path, address: str | None = None, on_event: Event | None = None) -> SweepSummary:
    """Continue the sweep in ``out`` from its record: trials that ended stay as they are, cut-off ones
    continue from their runs' last saved state, and only the trials still missing are drawn, so the sweep
    never holds more than ``--trials``. ``address`` overrides the recorded one."""
    folder = Path(out)
    summary = read_sweep(folder)  # checks the record before Ray starts
    check_base(summary)  # checked by the caller too; a folder may change in between
    settings = summary.settings
    if address is not None:
        settings = SweepSettings(**{**settings.to_dict(), "address": address})
    quiet_tune()
    with ray_session(settings.address, settings.cpus_per_trial) as concurrent:
        record = SweepFile.reopen(folder)
        if address is not None:
            record.data["settings"]["address"] = address
        trials = sorted(record.trials().values(), key=lambda t: t.number)
        ended = [t for t in trials if t.status in ENDED]
        continued = [t for t in trials if t.status not in ENDED]
        samples = len(continued) + max(0, settings.trials - len(trials))
        if samples == 0:
            _release_stale_locks(record)
            record.set_status("finished")
            record.close()
            return read_sweep(folder)
        # Ray Tune's state of an earlier attempt is not resumed from; its trial folders would only pile up.
        shutil.rmtree(folder / TUNE_FOLDER, ignore_errors=True)

        def tuner_for(recorder: Recorder) -> tune.Tuner:
            return _tuner(record, concurrent, recorder, samples, history=ended, continued=continued)

        return _fit(record, tuner_for, on_event)
