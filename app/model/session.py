"""The live session's model, without Qt (the session: what the window trains now; a run is a folder on disk):
what the user asked for, what the engine ran, what it reported.

The window and the control panel subscribe to its events (psygnal, as napari's models do); the model never
sees a widget, so every rule here — which edits need a new θ, how change markers merge while a slider is
dragged, what a new trainer resets — is tested without a window.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psygnal import Signal

from app.model.fields import LABELS
from app.model.history import History
from app.model.messages import TrainerChange, TrainerInfo
from app.model.tasks import switched_config
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ConfigError
from imaml_core.common.report import StepReport

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MARKER_MERGE_SECONDS = 1.0  # live edits this close together in time are one gesture, with one marker


@dataclass(frozen=True)
class Proposal:
    """A candidate config and what adopting it means."""

    config: ExperimentConfig
    changed: tuple[str, ...]
    restart: tuple[str, ...]  # changed fields that need a new θ
    discards_progress: bool  # a restart field changes while θ has trained: ask first


class SessionState:
    """Desired and applied configs, the iteration, the history and the change markers of the live session
    (recorded into one run folder at a time)."""

    config_changed = Signal(object)  # ExperimentConfig: what the controls should show
    marker_added = Signal(int, str)  # (iteration, label)
    marker_relabelled = Signal(str)  # the newest marker's label, after a merged change
    cleared = Signal()  # a new θ: history and markers start over

    def __init__(
        self,
        config: ExperimentConfig,
        clock: Callable[[], float] = time.monotonic,
        gesture_active: Callable[[], bool] = lambda: False,
    ) -> None:
        self.clock = clock
        self.gesture_active = gesture_active  # True while the user holds a control (a slider is down)
        self._gesture_began: float | None = None  # clock time of the latest press on a control (begin_gesture)
        self.config = config  # what the controls show and the next meta-iteration will use
        self.applied = config  # what the last finished meta-iteration used
        self.iteration = 0
        self.history = History()
        self._marker_base: ExperimentConfig | None = None  # config of the previous report of this θ
        # the current marker: (time of its latest change, time of the change that opened it, config before it)
        self._last_change: tuple[float, float, ExperimentConfig] | None = None
        self._edited_at: float | None = None  # clock time of the latest live edit

    # -- edits -------------------------------------------------------------------------------------
    def propose(self, config: ExperimentConfig) -> Proposal:
        changed = tuple(config.changed(self.config))
        restart = tuple(k for k in changed if not ExperimentConfig.is_live(k))
        return Proposal(config, changed, restart, bool(restart) and self.iteration > 0)

    def propose_edit(self, name: str, value: Any) -> Proposal:
        """One field edited; raises ``ImamlError`` (naming the field) for an invalid value. A new task family
        brings its suggested settings (``switched_config``)."""
        if name == "task":
            return self.propose(switched_config(self.config, value))
        return self.propose(self.config.replace(**{name: value}))

    def adopt(self, config: ExperimentConfig) -> None:
        if any(ExperimentConfig.is_live(k) for k in config.changed(self.config)):
            self._edited_at = self.clock()
        self.config = config
        self.config_changed.emit(config)

    def begin_gesture(self) -> None:
        """The user pressed a control (a slider's handle): the changes made while it is held
        (``gesture_active``) belong to a gesture that began now."""
        self._gesture_began = self.clock()

    def reshow(self) -> None:
        """Show the desired config again (after an edit was refused, the control must snap back)."""
        self.config_changed.emit(self.config)

    def preset(self, path: str | os.PathLike[str]) -> ExperimentConfig:
        """A preset file as a config for this run: keys it leaves out take the defaults, and the device stays
        this run's unless the preset names one. Raises ``ImamlError`` naming the problem."""
        config = ExperimentConfig.load(path)
        try:
            named = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:  # ``load`` read it a moment ago
            raise ConfigError(f"cannot read preset {path}: {exc}") from None
        return config if "device" in named else config.replace(device=self.config.device)

    def keep_applied_restart_fields(self) -> None:
        """A reset failed: the desired config takes the running trainer's restart fields back."""
        restart = {k: getattr(self.applied, k) for k in ExperimentConfig.restart_fields()}
        self.adopt(self.config.replace(**restart))

    # -- what the worker reports -------------------------------------------------------------------
    def take_report(self, report: StepReport) -> None:
        base = self._marker_base
        if base is not None and not report.diverged and report.config.changed(base):
            self._mark_change(report, base)
        self._marker_base = report.config
        self.applied = report.config
        self.iteration = report.iteration
        self.history.append(report)

    def take_trainer(self, info: TrainerInfo) -> None:
        """A new trainer: an imported or continued one brings its whole config; a reset one its restart
        fields, so live edits made while it was built are kept."""
        if info.reason in (TrainerChange.IMPORT, TrainerChange.CONTINUE):
            config = info.config
        else:
            config = self.config.replace(**{k: getattr(info.config, k) for k in ExperimentConfig.restart_fields()})
        self.applied = info.config
        self._marker_base = info.config
        self._last_change = self._edited_at = None
        self.iteration = info.iteration
        self.history.clear()
        self.cleared.emit()
        self.adopt(config)

    def show_recorded(self, columns: dict[str, Any]) -> None:
        """A continued run's recorded history (columns of its metrics), drawn as the live run's so far."""
        self.history.load(columns, self.applied)

    def begin_segment(self) -> None:
        """The live trainer goes on in a new run (a fork): its history starts empty at this iteration."""
        self._last_change = self._edited_at = None
        self.history.clear()
        self.cleared.emit()

    def _mark_change(self, report: StepReport, base: ExperimentConfig) -> None:
        """A labelled marker where live settings changed, one per gesture. A change updates the current
        marker, from its first old values to the latest new ones, when it comes within
        ``MARKER_MERGE_SECONDS`` of the marker's latest change, or when a control is held
        (``gesture_active``) in a gesture that began (``begin_gesture``) at or before the change that opened
        the marker; a hold that began later is a gesture of its own. A change's time is that of the latest
        edit (``adopt``), or the report's when no edit came through ``adopt``."""
        at = self._edited_at if self._edited_at is not None else self.clock()
        last = self._last_change
        if last is not None and (self._held_since(last[1]) or at - last[0] <= MARKER_MERGE_SECONDS):
            opened, first_base = last[1], last[2]
            fields = report.config.changed(first_base)
            if fields:
                self.marker_relabelled.emit(change_label(first_base, report.config, fields))
            self._last_change = (at, opened, first_base)
            return
        self.marker_added.emit(report.iteration, change_label(base, report.config, report.config.changed(base)))
        self._last_change = (at, at, base)

    def _held_since(self, when: float) -> bool:
        """Whether a control is held in a gesture that began at or before clock time ``when``."""
        began = self._gesture_began
        return began is not None and began <= when and self.gesture_active()


def change_label(old: ExperimentConfig, new: ExperimentConfig, fields: list[str]) -> str:
    """``λ 20→3, inner steps 3→4`` for the first three changed fields."""
    parts = [
        f"{LABELS.get(name, name)} {_short(getattr(old, name))}→{_short(getattr(new, name))}" for name in fields[:3]
    ]
    return ", ".join(parts) + (" …" if len(fields) > 3 else "")


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
