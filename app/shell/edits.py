"""The window's answer to every edit of a control: accepted, or refused in the banner with the reason.

One rule for every field (app/model/typed.py): text is read in the field's type, the config judges the
value, and a refusal names the field's label, the value as typed, why and the range the config allows,
under the banner topic ``field:<name>``; the control then shows the value in force. A later accepted edit of
that field clears its message, and so does any new config in which the field changed (a preset, an
import). A live setting the trainer refuses later (a meta-batch that cannot fit in memory, see
``imaml_core.engine.footprint``) gets the same answer when the worker's failure arrives: the failure names
the fields at fault, so an edit of another field sent meanwhile is kept.
"""

from __future__ import annotations

from collections.abc import Callable

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

    def __init__(
        self,
        state: SessionState,
        banner: Banner,
        worker: Worker,
        adopt: Callable[[ExperimentConfig], object],
        parent: QObject | None = None,
    ) -> None:
        """``worker``'s ``reported`` (a report that used a setting: it was accepted) and the failures the window
        hands to ``settle`` (the trainer refused a live setting) settle the live edits sent; ``adopt`` makes a
        config the run's and sends it to the trainer (the window's ``adopt_config``)."""
        super().__init__(parent)
        self.setObjectName("field_edits")
        self._state, self._banner, self._adopt = state, banner, adopt
        self._sent: dict[str, tuple[object, object, object]] = {}  # field -> (as entered, value, value before)
        self._refused: dict[str, object] = {}  # field -> the value in force when its refusal was shown
        worker.reported.connect(self._on_report)
        state.config_changed.connect(self._on_config)

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
            self._sent[name] = (value, parsed, before)
        return proposal

    def refuse(self, name: str, value: object, reason: str, kept: object) -> None:
        """Say in the banner why ``value`` of ``name`` was refused, and show the value in force again."""
        self._refused[name] = kept
        self._banner.show_message("error", refusal_text(name, value, reason, kept), topic(name))
        self._state.reshow()

    def _on_report(self, report: StepReport) -> None:
        for name, (_value, parsed, _before) in list(self._sent.items()):
            if getattr(report.config, name) == parsed:
                del self._sent[name]  # the trainer used it

    def settle(self, failure: Failure) -> bool:
        """Whether ``failure`` was a refusal of live settings sent from the controls, now answered: each
        field at fault that still holds the value sent goes back to the value before it, with that field's
        refusal. A failure about values already replaced (a later edit, or an earlier refusal of the same
        value) is answered by changing nothing."""
        if failure.job is not Job.CONFIG or not self._sent:
            return False
        config = self._state.config
        at_fault = [n for n in failure.fields or tuple(self._sent) if n in self._sent]
        at_fault = [n for n in at_fault if getattr(config, n) == self._sent[n][1]]
        if not at_fault:
            return bool(set(failure.fields) & set(self._refused))
        refused = {n: self._sent.pop(n) for n in at_fault}
        self._adopt(config.replace(**{n: before for n, (_v, _p, before) in refused.items()}))  # and sent again
        for name, (value, _parsed, before) in refused.items():
            self.refuse(name, value, failure.message, before)
        return True

    def _on_config(self, config: ExperimentConfig) -> None:
        """A message about a refused value stops being true when the field's value in force changes."""
        for name, kept in list(self._refused.items()):
            if getattr(config, name) != kept:
                del self._refused[name]
                self._banner.clear(topic(name))
