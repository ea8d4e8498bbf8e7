"""Errors that reach the edges (CLI, dialogs). Inside the engine, divergence is data, not an exception."""


class ImamlError(Exception):
    """Base class: a problem a person can act on, with a one-line message."""


class ConfigError(ImamlError, ValueError):
    """An invalid setting; the message names the key. ``fields``: the settings at fault, where a caller that
    changed several at once needs to know which (a combination that would not fit in memory)."""

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


class CheckpointError(ImamlError):
    """A checkpoint that is missing, corrupt, of an unknown version or does not match its config."""


class StepCancelled(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside ``MetaTrainer.step`` when its ``should_stop`` says so; theta is untouched."""
