"""What a window run is called: its settings (``imaml λ=20``), or for a fork what differs from its parent
(``λ=5 ← imaml λ=20 @221``), so that two runs compared side by side never carry the same name.

A live run's name follows its settings until the user names it or its first meta-iteration is recorded
(the run's first save after it was made); from then on the name describes what the curves were made
with. Qt-free: the worker applies these rules and renames through its run keeper.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.model.fields import LABELS
from imaml_core.common.config import ExperimentConfig

SHOWN_CHANGES = 3  # a fork's name lists at most this many changed settings, then "…"


def shown_value(value: object) -> str:
    """A setting as a name shows it: ``5`` for 5.0, ``0.001``, ``40,40`` for a list."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ",".join(shown_value(v) for v in value)
    return str(value)


def setting(config: ExperimentConfig, field: str) -> str:
    """``λ=5``: a field by its control's label."""
    return f"{LABELS.get(field, field)}={shown_value(getattr(config, field))}"


def run_name(config: ExperimentConfig) -> str:
    """A new run's name: the method and the setting that matters most for it (λ for iMAML, the number
    of inner steps for the methods that unroll or step without λ)."""
    field = "lam" if config.method == "imaml" else "inner_steps"
    return family_prefix(config) + f"{config.method} {setting(config, field)}"


def family_prefix(config: ExperimentConfig) -> str:
    """What a run's name says of its tasks: nothing for sinusoids (the default), else the data and the task
    size, with synthetic glyphs called synthetic (``synthetic glyphs 5-way 1-shot · ``)."""
    if config.task == "sinusoid":
        return ""
    data = {"glyphs": "synthetic glyphs", "omniglot": "Omniglot"}.get(config.task, config.task)
    return f"{data} {config.ways}-way {config.shots}-shot · "


def changes_text(old: ExperimentConfig, new: ExperimentConfig) -> str:
    """The settings ``new`` changes from ``old`` (``λ=5, inner steps=10``); empty when none."""
    fields = new.changed(old)
    text = ", ".join(setting(new, f) for f in fields[:SHOWN_CHANGES])
    return text + (", …" if len(fields) > SHOWN_CHANGES else "")


def fork_name(parent_name: str, parent_config: ExperimentConfig, config: ExperimentConfig, iteration: int) -> str:
    """``λ=5 ← imaml λ=20 @221``: what the fork changes, its parent, where it forked (``fork ← …`` while
    it changes nothing)."""
    return f"{changes_text(parent_config, config) or 'fork'} ← {parent_name} @{iteration}"


@dataclass(frozen=True)
class Parent:
    """The run a fork started from, as its name is made from it."""

    name: str
    config: ExperimentConfig
    iteration: int


@dataclass(frozen=True)
class AutoName:
    """The live run whose name still follows its settings: made at ``start_iteration``, from ``parent``
    when it is a fork."""

    run_id: str
    start_iteration: int
    parent: Parent | None = None

    def name(self, config: ExperimentConfig) -> str:
        if self.parent is None:
            return run_name(config)
        return fork_name(self.parent.name, self.parent.config, config, self.parent.iteration)

    def follows(self, run_id: str, iteration: int) -> bool:
        """Whether run ``run_id`` at ``iteration`` is still named by its settings (nothing recorded yet)."""
        return run_id == self.run_id and iteration == self.start_iteration
