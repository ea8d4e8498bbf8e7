"""The writer of a sweep's record (sweep.json): it holds the sweep's lock while the sweep runs and writes the
file atomically, progress throttled and every start, end and status change at once. The record's types and
its reader are in ``_record.py``."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.files import atomic_write_text
from imaml_core.experiments.runs import RunLock, RunLockedError, lock_holder, read_record, utc_now
from imaml_core.experiments.sweep._metrics import metric_mode
from imaml_core.experiments.sweep._record import (
    SWEEP_FILE,
    SWEEP_FORMAT,
    SWEEP_FORMAT_VERSION,
    SWEEP_LOCK,
    SWEEP_RECORD,
    SweepSettings,
    TrialSummary,
    read_sweep,
)
from imaml_core.experiments.sweep._space import SearchSpace, SweepError


class SweepFile:
    """The writer of sweep.json, holding the sweep's lock from :meth:`create` or :meth:`reopen` to
    :meth:`close`. Progress writes are throttled to one per ``min_interval`` seconds of ``clock``;
    starts, ends and status changes are written at once."""

    def __init__(
        self,
        folder: Path,
        data: dict[str, Any],
        lock: RunLock,
        min_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self.data = data
        self.lock = lock
        self.min_interval = min_interval
        self.clock = clock
        self._dirty = False
        self._written_at = -math.inf

    @classmethod
    def create(cls, folder: Path, settings: SweepSettings, space: SearchSpace, base: ExperimentConfig) -> SweepFile:
        """A new record in ``folder`` (which must exist), with no trials yet."""
        now = utc_now()
        data = {
            "format": SWEEP_FORMAT,
            "format_version": SWEEP_FORMAT_VERSION,
            "created": now,
            "updated": now,
            "status": "running",
            "message": "",
            "settings": settings.to_dict(),
            "mode": metric_mode(settings.metric),
            "space": space.to_list(),
            "base": base.to_dict(),
            "trials": [],
        }
        record = cls(folder, data, _take_lock(folder))
        record.flush(force=True)
        return record

    @classmethod
    def reopen(cls, folder: Path) -> SweepFile:
        """The record of an existing sweep, to continue it; a sweep another driver runs is refused."""
        lock = _take_lock(folder)
        try:
            data = read_record(folder, SWEEP_RECORD)
            read_sweep(folder)  # every field checked before anything is written
        except BaseException:
            lock.release()
            raise
        data["status"], data["message"] = "running", ""
        data.setdefault("mode", metric_mode(SweepSettings.from_dict(data["settings"]).metric))
        record = cls(folder, data, lock)
        record.flush(force=True)
        return record

    @property
    def settings(self) -> SweepSettings:
        return SweepSettings.from_dict(self.data["settings"])

    @property
    def space(self) -> SearchSpace:
        return SearchSpace.from_list(self.data["space"])

    @property
    def base(self) -> ExperimentConfig:
        return ExperimentConfig.from_dict(self.data["base"])

    def trials(self) -> dict[str, TrialSummary]:
        return {t["id"]: TrialSummary.from_dict(t) for t in self.data["trials"]}

    def trial(self, trial_id: str) -> TrialSummary | None:
        return self.trials().get(trial_id)

    def put_trial(self, trial: TrialSummary, urgent: bool = True) -> None:
        """Add or replace a trial; ``urgent`` writes now, otherwise within ``min_interval``."""
        rows = self.data["trials"]
        for i, row in enumerate(rows):
            if row["id"] == trial.id:
                rows[i] = trial.to_dict()
                break
        else:
            rows.append(trial.to_dict())
        self._dirty = True
        self.flush(force=urgent)

    def set_status(self, status: str, message: str = "") -> None:
        self.data["status"], self.data["message"] = status, message
        if status != "running":
            for row in self.data["trials"]:
                if row["status"] == "running":
                    row["status"] = "paused"
        self._dirty = True
        self.flush(force=True)

    def flush(self, force: bool = False) -> None:
        """Write the record if it changed (or ``force``), unless the last write is too recent."""
        now = self.clock()
        if not force and (not self._dirty or now - self._written_at < self.min_interval):
            return
        self.data["updated"] = utc_now()
        try:
            atomic_write_text(self.folder / SWEEP_FILE, json.dumps(self.data, indent=1, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise SweepError(f"cannot write {self.folder / SWEEP_FILE}: {exc.strerror or exc}") from None
        self._dirty, self._written_at = False, now

    def close(self) -> None:
        if self._dirty:
            self.flush(force=True)
        self.lock.release()


def _take_lock(folder: Path) -> RunLock:
    lock = RunLock(folder, SWEEP_LOCK)
    try:
        lock.acquire()
    except RunLockedError:
        holder = lock_holder(folder, SWEEP_LOCK) or {}
        raise SweepError(
            f"{folder}: the sweep is being run by process {holder.get('pid')} on {holder.get('host')}"
        ) from None
    return lock
