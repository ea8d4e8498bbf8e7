"""The sweep driver: Ray Tune runs the trials, Optuna's TPE picks them, ASHA stops weak ones early.

Nothing here schedules, queues or talks to workers itself: the driver starts or joins Ray, hands Ray Tune
a trainable (_trial.py), an ``OptunaSearch`` and an ``ASHAScheduler``, and records what Ray Tune reports
in sweep.json through a Tune callback. Resuming is Ray Tune's ``Tuner.restore`` on the experiment state
kept in ``DIR/.tune``; trials that ended are not run again, and trials that were cut off continue from
their run folders' last saved state.

This module imports Ray and Optuna; ``imaml_core.experiments.sweep`` loads it only when a sweep runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.experiments.sweep._ray import LOG_FILE, first_line, quiet_tune, ray_log_to, ray_session
from imaml_core.experiments.sweep._record import TUNE_FOLDER, SweepFile, SweepSettings, SweepSummary, read_sweep
from imaml_core.experiments.sweep._recorder import ACTIVE, Active, Event, Recorder
from imaml_core.experiments.sweep._space import Dimension, SearchSpace, SweepError
from imaml_core.experiments.sweep._trial import SweepTrial

MAX_FAILURES = 2  # times Ray Tune restarts a trial whose worker or node was lost before it is failed
REDUCTION_FACTOR = 3  # ASHA keeps the best third at each rung


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


def _tuner(record: SweepFile, concurrent: int, recorder: Recorder) -> tune.Tuner:
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


def _fit(record: SweepFile, tuner_for: Callable[[Recorder], tune.Tuner], on_event: Event | None) -> SweepSummary:
    """Run Ray Tune to the end (or to an interruption) and record how the sweep ended."""
    active = Active(record, on_event)
    ACTIVE.append(active)
    try:
        with ray_log_to(record.folder / LOG_FILE):
            tuner_for(Recorder()).fit()
        if active.complete:
            record.set_status("finished")
        else:
            ended = sum(1 for t in record.trials().values() if t.status in ("finished", "pruned", "failed"))
            record.set_status("interrupted", f"{ended} trials ended")
    except ImamlError as exc:
        record.set_status("failed", str(exc))
        raise
    except Exception as exc:  # Ray's own errors end as one line too, and the record says how it stopped
        record.set_status("failed", first_line(exc))
        raise SweepError(f"the sweep stopped: {first_line(exc)}") from exc
    except BaseException as exc:
        record.set_status("interrupted", first_line(exc))
        raise
    finally:
        ACTIVE.pop()
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
    quiet_tune()
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
    quiet_tune()
    with ray_session(settings.address, settings.cpus_per_trial) as concurrent:
        record = SweepFile.reopen(folder)
        if address is not None:
            record.data["settings"]["address"] = address
        experiment = str((folder / TUNE_FOLDER).resolve())

        def tuner_for(recorder: Recorder) -> tune.Tuner:
            if not tune.Tuner.can_restore(experiment):
                return _tuner(record, concurrent, recorder)  # stopped before Ray Tune saved anything
            return tune.Tuner.restore(
                experiment, trainable=_trainable(record), resume_unfinished=True, resume_errored=False
            )

        return _fit(record, tuner_for, on_event)
