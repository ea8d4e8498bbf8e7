"""Which task family the session trains on, and what switching family does to the settings (Qt-free).

A family comes with its suggested settings (the paper's, for Omniglot: 1 shot, meta-batch 32, 16 inner steps
of 0.1, λ = 2); switching back to sinusoids restores the defaults of those fields. Settings the caller names
always win.
"""

from __future__ import annotations

from collections.abc import Mapping

from imaml_core.common.config import ExperimentConfig
from imaml_core.tasks import with_family_defaults

# (shown text, config value) of the families the window offers; the CLI's names
TASK_CHOICES = (("Sinusoid", "sinusoid"), ("Omniglot", "omniglot"), ("Synthetic glyphs", "glyphs"))
TASK_NAMES = dict((value, text) for text, value in TASK_CHOICES)
# Fields a family's suggested settings may set (see ImageClassification.defaults) and queries (Q = K)
SUGGESTED_FIELDS = ("shots", "query", "meta_batch", "inner_steps", "inner_lr", "lam", "cg_steps", "val_tasks")


def switched_config(
    config: ExperimentConfig, name: str, settings: Mapping[str, object] | None = None
) -> ExperimentConfig:
    """``config`` on the family ``name`` with ``settings`` (config field names); a change of family also
    takes the new family's suggested settings for the fields ``settings`` leaves out. Raises ``ImamlError``
    naming a bad value."""
    given = dict(settings or {})
    if name == config.task:
        return config.replace(**given)
    moved = config.replace(task=name, **given)
    if name == "sinusoid":
        defaults = ExperimentConfig()
        return moved.replace(**{k: getattr(defaults, k) for k in SUGGESTED_FIELDS if k not in given})
    return with_family_defaults(moved, given)


def classifies(config: ExperimentConfig) -> bool:
    """Whether the config's family is one of the window's classification families."""
    return config.task in ("omniglot", "glyphs")


def family_name(config: ExperimentConfig) -> str:
    """The family as the window names it ("Synthetic glyphs"), or its ``package.module:name``."""
    return TASK_NAMES.get(config.task, config.task)
