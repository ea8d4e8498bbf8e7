"""The window's answer to every edit of a control: accepted, or refused in the banner with the reason.

One rule for every field (app/model/typed.py): text is read in the field's type, the config judges the
value, and a refusal names the field's label, the value as typed, why and the range the config allows,
under the banner topic ``field:<name>``; the control then shows the value in force. A later accepted edit of
that field clears its message. A live setting the trainer refuses later (a meta-batch that cannot fit in
memory, see ``imaml_core.engine.footprint``) gets the same answer when the worker's failure arrives.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from app.model.messages import Failure, Job
from app.model.session import Proposal, SessionState
from app.model.typed import Typed, parse, reason_of, refusal_text
from app.shell.banner import Banner
from app.worker.worker import Worker
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ConfigError, ImamlError
from imaml_core.common.report import StepReport


def topic(name: str) -> str:
    """The banner topic of messages about field ``name``."""
    return f"field:{name}"


class FieldEdits(QObject):
    """Judges edits for the window (``propose``) and turns a live setting the worker refused into the
    field's refusal."""

    def __init__(self, state: SessionState, banner: Banner, worker: Worker, parent: QObject | None = None) -> None:
        """``worker``: its ``failed`` (``Job.CONFIG``: the trainer refused a live setting) and ``reported``
        (a report that used the setting: it was accepted) settle the last live edit."""
        super().__init__(parent)
        self.setObjectName("field_edits")
        self._state, self._banner = state, banner
        self._sent: tuple[str, object, object, object] | None = None  # (field, as entered, value, value before)
        worker.failed.connect(self._on_failed)
        worker.reported.connect(self._on_report)

    @classmethod
    def of(cls, window: QObject) -> FieldEdits:
        """The window's one instance (made on its first edit)."""
        found = window.findChild(FieldEdits, "field_edits")
        if found is None:
            state, banner = window.state, window.banner  # type: ignore[attr-defined]
            found = cls(state, banner, window.worker_thread.worker, window)  # type: ignore[attr-defined]
        return found

    def propose(self, name: str, value: object) -> Proposal | None:
        """The proposal an edit makes, or None when it is refused (the banner says why; the control shows
        the value in force)."""
        before = getattr(self._state.config, name)
        try:
            parsed = parse(name, value.text) if isinstance(value, Typed) else value
        except ConfigError as exc:
            self.refuse(name, value, str(exc), before)
            return None
        try:
            proposal = self._state.propose_edit(name, parsed)
        except ImamlError as exc:
            self.refuse(name, value, reason_of(name, parsed, exc), before)
            return None
        self._banner.clear(topic(name))
        if not proposal.changed:
            self._state.reshow()  # "1e1" for 10, or spaces around a path: the field shows the value as held
        if ExperimentConfig.is_live(name) and name in proposal.changed:
            self._sent = (name, value, parsed, before)
        return proposal

    def refuse(self, name: str, value: object, reason: str, kept: object) -> None:
        """Say in the banner why ``value`` of ``name`` was refused, and show the value in force again."""
        self._banner.show_message("error", refusal_text(name, value, reason, kept), topic(name))
        self._state.reshow()

    def _on_report(self, report: StepReport) -> None:
        if self._sent is not None and getattr(report.config, self._sent[0]) == self._sent[2]:
            self._sent = None  # the trainer used it

    def _on_failed(self, failure: Failure) -> None:
        sent, config = self._sent, self._state.config
        if failure.job is not Job.CONFIG or sent is None or getattr(config, sent[0]) != sent[2]:
            return
        self._sent = None
        name, value, _parsed, before = sent
        self._state.adopt(config.replace(**{name: before}))
        self.refuse(name, value, failure.message, before)
