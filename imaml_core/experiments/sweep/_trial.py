"""One trial of a sweep, as Ray Tune runs it: K seeded runs of one config, trained side by side.

The trial is a class trainable: Ray Tune calls ``step()`` for every ``report_every`` meta-iterations and reads
back the mean validation loss over the seeds (``val_loss``, what ASHA compares), their mean validation
accuracy (NaN for regression) and the sweep's metric (``objective``, what Optuna learns from). Each seed is a
run folder in the run store's format, written by this trial alone: metrics are appended and theta and the
resume state saved at every report, so a trial that Ray restarts (a lost node, a resumed sweep) continues its
runs from their last report instead of starting over, and a trial whose runs already ended (their run.json
says finished, pruned or failed) reports that end at once, training nothing.

A resumed sweep's trial that continues a recorded one carries the recorded trial's id in its config
(``TRIAL_KEY``): Ray Tune gives every trial a new id, and the run folders keep the first.

The trial writes run.json only when its runs start and when they end by themselves (finished, or failed
with the reason); the driver marks runs that Ray Tune ends from outside (pruned, or failed in Ray).

This module imports Ray: only the sweep driver and Ray's workers load it.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError
from imaml_core.engine.trainer import MetaTrainer
from imaml_core.experiments.runs import (
    RESUME_FILE,
    Run,
    RunError,
    RunLockedError,
    RunRecorder,
    read_info,
    release_ended,
)
from imaml_core.experiments.sweep._metrics import METRIC_TABLE, worst_value
from imaml_core.experiments.sweep._space import SearchSpace
from imaml_core.experiments.training import TrainingSession

EVAL_TASKS = 600  # tasks of the eval_* metrics (the evaluation stream is the same for every trial)
LOCK_WAIT_S = 30.0  # how long a restarted trial waits for its previous attempt's process to let go
TRIAL_KEY = "sweep_trial"  # config key: the recorded trial a resumed sweep's trial continues
ENDED = ("finished", "pruned", "failed")  # a trial's (and a run's) statuses that are final


def run_folder_name(trial_id: str, seed_index: int, seeds: int) -> str:
    """The folder of one seed of a trial, inside the sweep folder."""
    return f"trial-{trial_id}" if seeds == 1 else f"trial-{trial_id}-seed{seed_index}"


def describe(values: dict[str, Any]) -> str:
    """Searched values as a short run name: ``lam=3.2 cg_steps=7``."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


class _Seed:
    """One seed's run, trained through the one train-and-record loop, and what the trial tracks about it."""

    def __init__(self, run: Run, trainer: MetaTrainer, seconds: float, ended: bool = False) -> None:
        self.run = run
        self.trainer = trainer
        # the run's writer; saves come at each report boundary, never in between
        self.session = TrainingSession(trainer, RunRecorder(run, 0, saved_iteration=trainer.iteration))
        self.seconds = seconds  # wall-clock seconds of its meta-iterations (metrics.csv's), every attempt
        self.ended = ended  # ended before this attempt: only read, never written


class SweepTrial(tune.Trainable):
    """A sweep's trainable. ``job`` (given through ``tune.with_parameters``) holds the sweep's fixed
    settings: ``out``, ``base``, ``space``, ``iterations``, ``report_every``, ``seeds``, ``metric``, ``cpus``."""

    def setup(self, config: dict[str, Any], job: dict[str, Any]) -> None:
        """Only remember the trial: with actor reuse, Ray Tune may set up a trial in an actor and then run
        it in another one, so the run folders are opened at the first ``step()``, by the actor that trains."""
        self._job = job
        self._seeds: list[_Seed] = []
        self._opened = False
        self._recorded_id = str(config.get(TRIAL_KEY) or "")
        self._ended = ""  # how the trial ended before this attempt ("" while it goes on)
        torch.set_num_threads(int(job["cpus"]))  # one thread per CPU Ray gave the trial
        self._values = SearchSpace.from_list(job["space"]).config_values(config)

    @property
    def sweep_trial_id(self) -> str:
        """The trial's id in the sweep's record and its run folders' names."""
        return self._recorded_id or self.trial_id

    def _folders(self) -> list[Path]:
        out, seeds = Path(self._job["out"]), int(self._job["seeds"])
        return [out / run_folder_name(self.sweep_trial_id, k, seeds) for k in range(seeds)]

    def _open_runs(self) -> None:
        config = ExperimentConfig.from_dict(self._job["base"]).replace(**self._values)
        folders = self._folders()
        self._opened = True
        self._ended = _ended_as(folders)
        if self._ended == "failed":
            return  # nothing to open: the trial reports its recorded failure
        try:
            for k, folder in enumerate(folders):
                self._seeds.append(self._open(folder, config.replace(seed=config.seed + k), k))
        except BaseException:
            self.cleanup()
            raise

    def _open(self, folder: Path, config: ExperimentConfig, k: int) -> _Seed:
        """The seed's run: continued from its last saved state when an earlier attempt left one, and only
        read when the run ended before (Ray Tune may not have heard of the end before it stopped)."""
        if (folder / RESUME_FILE).exists():
            run = Run.open(folder)
            trainer = run.trainer()
            finished = run.info.status == "finished" and trainer.iteration >= int(self._job["iterations"])
            if finished or self._ended:
                return _Seed(run, trainer, _seconds(run), ended=True)
            _take_over_lock(folder, lambda: run.continue_from_checkpoint(trainer.iteration))
            return _Seed(run, trainer, _seconds(run))  # rows past the checkpoint are trimmed by now
        if self._ended:
            raise RunError(f"{folder}: the run ended {self._ended} without a saved state")
        seed_note = f" seed {k}" if int(self._job["seeds"]) > 1 else ""
        name = f"trial {self.sweep_trial_id}{seed_note}: {describe(self._values)}"
        notes = f"sweep {Path(self._job['out']).name}, trial {self.sweep_trial_id}{seed_note}"
        trainer = MetaTrainer(config)
        run = _take_over_lock(folder, lambda: Run.create(folder, config, name=name, notes=notes))
        try:
            run.save_checkpoint(trainer)  # resumable from iteration 0
        except BaseException:
            run.close()
            raise
        return _Seed(run, trainer, 0.0)

    def step(self) -> dict[str, Any]:
        if not self._opened:
            self._open_runs()
        node = ray.get_runtime_context().get_node_id()
        if self._ended == "failed":
            reason = _recorded_failure(self._folders())
            self.cleanup()
            return {**self._failed_result(0, reason), "node": node, "done": True}
        total, every = int(self._job["iterations"]), int(self._job["report_every"])
        failure = ""
        for seed in self._seeds:
            if seed.ended:
                continue
            target = min(total, (seed.trainer.iteration // every + 1) * every)
            failure = self._train(seed, target)
            if failure:
                break
        validations = [s.trainer.validation() for s in self._seeds] if not failure else []
        vals, accs = [v for v, _ in validations], [a for _, a in validations]
        if not failure and not all(math.isfinite(v) for v in vals):
            failure = "the validation loss is not finite"
        done_iterations = min(s.trainer.iteration for s in self._seeds)
        if failure:
            self._end("failed", failure)
            return {**self._failed_result(done_iterations, failure), "node": node, "done": True}
        done = done_iterations >= total
        result = {
            "val_loss": sum(vals) / len(vals),
            "val_accuracy": sum(accs) / len(accs),  # NaN for regression
            "objective": self._objective(vals, accs, done),
            "iteration": done_iterations,
            "seconds": sum(s.seconds for s in self._seeds) / len(self._seeds),
            "node": node,
            "done": done or self._ended == "pruned",  # a pruned trial ends where it was pruned
        }
        if result["done"]:
            self._end("finished")
        return result

    def _end(self, status: str, reason: str = "") -> None:
        """The runs' last write (status, and the reason in the notes), all before Ray Tune hears the end."""
        for seed in self._seeds:
            if seed.ended:
                continue
            if reason:
                seed.run.rename(seed.run.info.name, f"{seed.run.info.notes}; {status}: {reason}")
            seed.run.set_status(status)
        self.cleanup()

    def _train(self, seed: _Seed, target: int) -> str:
        """Meta-iterations up to ``target``, then the rows and a checkpoint; a failure's reason or ""."""
        if seed.trainer.iteration >= target:
            return ""
        before = seed.session.seconds
        seed.session.train(target)
        seed.seconds += seed.session.seconds - before
        seed.session.save()
        return seed.session.stop_reason or seed.session.record_error

    def _objective(self, vals: list[float], accs: list[float], done: bool) -> float:
        """The sweep's metric (see ``METRIC_TABLE``), mean over seeds. Before the end it is an estimate of the
        final value: an evaluation metric's is its validation counterpart, mse_per_second's projects the
        seconds to all iterations."""
        metric, total = METRIC_TABLE[self._job["metric"]], int(self._job["iterations"])
        if metric.stage == "eval" and done:
            results = [s.trainer.evaluate(tasks=EVAL_TASKS, steps=s.trainer.config.inner_steps) for s in self._seeds]
            per_seed = [r.mse if metric.quantity == "loss" else _number(r.accuracy) for r in results]
        else:
            per_seed = list(vals if metric.quantity == "loss" else accs)
        if metric.per_second:
            per_seed = [
                v * s.seconds * total / max(s.trainer.iteration, 1) for v, s in zip(per_seed, self._seeds, strict=True)
            ]
        return sum(per_seed) / len(per_seed)

    def _failed_result(self, iteration: int, reason: str) -> dict[str, Any]:
        """A failed trial's result. ASHA and Optuna need their keys in every result: the loss's infinity
        and the metric's worst value (by its mode) rank a failed trial last in both."""
        worst = worst_value(METRIC_TABLE[self._job["metric"]].mode)
        return {
            "val_loss": math.inf,
            "val_accuracy": math.nan,
            "objective": worst,
            "iteration": iteration,
            "seconds": 0.0,
            "failed": reason,
        }

    def cleanup(self) -> None:
        """Let go of the runs (their locks); a run stopped from outside keeps its last saved state."""
        for seed in getattr(self, "_seeds", []):
            seed.run.close()
        self._seeds = []

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Reuse this actor for the next trial (saves starting a process and importing torch)."""
        self.cleanup()
        self.setup(new_config)  # tune.with_parameters' setup passes the job again
        return True

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        """Nothing for Ray to keep: the run folders hold each seed's exact state."""
        return {}

    def load_checkpoint(self, checkpoint: Any) -> None:
        pass


def _ended_as(folders: list[Path]) -> str:
    """How a trial whose runs are ``folders`` ended before ("" while it goes on): failed or pruned when a
    run says so (the runs of a trial end together, but a stop may fall between two of them), finished when
    every run finished."""
    statuses = set()
    for folder in folders:
        try:
            statuses.add(read_info(folder).status)
        except RunError:
            statuses.add("")  # not created yet
    for status in ("failed", "pruned"):
        if status in statuses:
            return status
    return "finished" if statuses == {"finished"} else ""


def _recorded_failure(folders: list[Path]) -> str:
    """The reason a failed run's notes give (``...; failed: REASON``)."""
    for folder in folders:
        with contextlib.suppress(RunError):
            info = read_info(folder)
            if info.status == "failed" and "; failed: " in info.notes:
                return info.notes.rpartition("; failed: ")[2]
    return "the trial failed before the sweep stopped"


def _seconds(run: Run) -> float:
    """Seconds the run's recorded meta-iterations took (metrics.csv's ``seconds`` column)."""
    return float(np.nansum(run.metrics(columns=["seconds"]).get("seconds", np.zeros(0))))


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _take_over_lock(folder: Path, write: Any) -> Any:
    """Run ``write`` (which takes the run's lock). Ray Tune runs one attempt of a trial at a time, so a
    lock left by an earlier attempt on another host (a lost node) is taken over; one on this host is
    waited for while that attempt's process exits."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return write()
        except RunLockedError:
            if release_ended(folder):
                continue
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
        except ImamlError as exc:
            raise RunError(str(exc)) from None
