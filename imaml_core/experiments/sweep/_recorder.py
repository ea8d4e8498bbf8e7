"""The Ray Tune callback that keeps sweep.json: what Ray Tune reports about each trial, as it happens.

It runs in the sweep's driver, inside Ray Tune's loop, and writes nothing but the record and (for trials
Ray Tune ends from outside: pruned, or failed in Ray) the status of their runs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from imaml_core.experiments.runs import RunError, read_info, release_ended, write_info
from imaml_core.experiments.sweep._record import TrialSummary
from imaml_core.experiments.sweep._sweep_file import SweepFile
from imaml_core.experiments.sweep._trial import ENDED, TRIAL_KEY, run_folder_name

# Sweep events a caller may follow (``on_event(kind, trial)``): a trial started, ended or was restarted.
Event = Callable[[str, TrialSummary], None]


# The record of the sweep this process runs, with the caller's event hook. Ray Tune pickles its callbacks
# with the experiment (a restored sweep gets those copies back, possibly from a moved folder), so the
# callback holds nothing and finds the record, and its lock, here. Ray Tune runs one experiment at a time.
@dataclass
class Active:
    record: SweepFile
    on_event: Event | None


ACTIVE: list[Active] = []


class Recorder(tune.Callback):
    """Writes what Ray Tune reports into sweep.json, and marks the runs of trials Tune ended from outside."""

    @property
    def _file(self) -> SweepFile:
        return ACTIVE[-1].record

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._file
        known = record.trial(sweep_id(trial))
        if known is not None and known.status in ENDED:
            return  # the record keeps how a trial ended
        known = (known or self._new_trial(trial)).replace(status="running")
        record.put_trial(known)
        self._emit("started", known)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        known = self._file.trial(sweep_id(trial))
        if known is None or known.status in ENDED or "failed" in result:
            return
        moved = known.node != result.get("node", "")
        val_loss, val_accuracy = float(result["val_loss"]), float(result["val_accuracy"])
        known = known.replace(
            metric=float(result["objective"]),
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            val_mse=None if math.isfinite(val_accuracy) else val_loss,  # regression's loss is the MSE
            iterations=int(result["iteration"]),
            seconds=float(result["seconds"]),
            node=str(result.get("node", "")),
        )
        self._file.put_trial(known, urgent=moved)  # where a trial runs is news; its progress can wait

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        known = self._file.trial(sweep_id(trial))
        if known is None or known.status in ENDED:
            return
        result = trial.last_result or {}
        if "failed" in result:
            reason = str(result["failed"])
            known = known.replace(
                status="failed", reason=reason, iterations=int(result["iteration"]) or known.iterations
            )
            self._mark_runs(known, "failed", reason)
        elif known.iterations >= self._file.settings.iterations:
            known = known.replace(status="finished")
        else:
            known = known.replace(status="pruned")
            self._mark_runs(known, "pruned", "")
        self._file.put_trial(known)
        self._emit(known.status, known)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        known = self._file.trial(sweep_id(trial))
        if known is not None:
            known = known.replace(reason=f"restarted after: {error_line(trial)}")
            self._file.put_trial(known)
            self._emit("restarted", known)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        known = self._file.trial(sweep_id(trial)) or self._new_trial(trial)
        if known.status in ENDED:
            return
        reason = error_line(trial)
        known = known.replace(status="failed", reason=reason)
        self._mark_runs(known, "failed", reason)
        self._file.put_trial(known)
        self._emit("failed", known)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._file.flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._file.flush(force=True)

    def _new_trial(self, trial: Any) -> TrialSummary:
        """The record of a trial Ray Tune drew, numbered after the recorded ones."""
        settings = self._file.settings
        tid = sweep_id(trial)
        runs = tuple(run_folder_name(tid, k, settings.seeds) for k in range(settings.seeds))
        values = self._file.space.config_values(trial.config)
        return TrialSummary(tid, len(self._file.data["trials"]) + 1, values, runs=runs)

    def _mark_runs(self, trial: TrialSummary, status: str, reason: str) -> None:
        """Set the status of a trial's runs after Ray Tune ended the trial from outside.

        The trial's own writer writes run.json only when its runs start and when they end by themselves,
        neither of which can follow a pruning or an error, and Ray Tune runs no further attempt of an
        ended trial: so this write cannot cross one of the writer's. A lock left by the ended attempt on
        another host (a lost node) is removed: that attempt no longer writes. A run that says so already
        is left as it is."""
        for name in trial.runs:
            folder = self._file.folder / name
            try:
                info = read_info(folder)
            except RunError:
                continue  # the trial ended before its run existed
            if info.status == status:
                continue
            notes = f"{info.notes}; {status}: {reason}" if reason else info.notes
            write_info(folder, info.replace(status=status, notes=notes))
            release_ended(folder)

    def _emit(self, kind: str, trial: TrialSummary) -> None:
        on_event = ACTIVE[-1].on_event
        if on_event is not None:
            on_event(kind, trial)


def sweep_id(trial: Any) -> str:
    """The id the sweep's record knows Ray Tune's ``trial`` by (see ``_trial.TRIAL_KEY``)."""
    return str(trial.config.get(TRIAL_KEY) or trial.trial_id)


def error_line(trial: Any) -> str:
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
