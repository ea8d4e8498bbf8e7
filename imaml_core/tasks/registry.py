"""The task families' registry: ``family_for(config)`` builds the family a config names, with its settings
(ways, data, split); ``package.module:name`` loads a family of the user's own."""

from __future__ import annotations

import importlib
from collections.abc import Collection

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ConfigError
from imaml_core.common.text import printable
from imaml_core.tasks.classification import ImageClassification
from imaml_core.tasks.glyphs import glyph_splits
from imaml_core.tasks.protocol import TaskFamily
from imaml_core.tasks.sinusoid import Sinusoid

FAMILIES = ("sinusoid", "omniglot", "glyphs")
DEFAULT_FAMILY = FAMILIES[0]
GLYPHS_LABEL = "synthetic glyphs"


def family(name: str = DEFAULT_FAMILY) -> TaskFamily:
    """The family called ``name`` with the default config's settings."""
    return family_for(ExperimentConfig(task=name))


def family_for(config: ExperimentConfig) -> TaskFamily:
    """The task family of ``config.task``, built with the config's settings; reads no data (a classification
    family loads its images at its first draw). An unknown or broken family is a :class:`ConfigError`."""
    name = config.task
    if name == "sinusoid":
        return Sinusoid()
    if name == "glyphs":
        classes = config.glyph_classes
        return ImageClassification("glyphs", config.ways, lambda: glyph_splits(classes), GLYPHS_LABEL, synthetic=True)
    if name == "omniglot":
        return omniglot_family(config.ways, config.data, config.split)
    return user_family(config)


def omniglot_family(ways: int, data: str = "", split: str = "auto") -> ImageClassification:
    """Omniglot from ``data`` (a folder or zip; '' = the default data folder), split by character. Its label
    names the split in force once the data is read ("auto" picks Lake's split when both full sets are there)."""

    def load() -> dict:
        from imaml_core.tasks.omniglot import find_omniglot, load_omniglot, omniglot_splits

        sets = load_omniglot(find_omniglot(data or None))
        used = split if split != "auto" else ("lake" if {"background", "evaluation"} <= set(sets) else "alphabet")
        tasks.label = f"Omniglot ({used} split)"
        return {k: v.images for k, v in omniglot_splits(sets, split).items()}

    tasks = ImageClassification("omniglot", ways, load, f"Omniglot ({split} split)")
    return tasks


def user_family(config: ExperimentConfig) -> TaskFamily:
    """``package.module:name`` from the user's code: ``name`` is a family, or a callable that takes the config
    and returns one (see docs/TASK_FAMILIES.md). Anything that keeps it from being a family the engine can
    train is a :class:`ConfigError` naming the problem."""
    module_name, _, attribute = config.task.partition(":")
    shown = printable(config.task)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may raise anything while it imports
        raise ConfigError(f"cannot import the task family {shown}: {type(exc).__name__}: {exc}") from None
    found = getattr(module, attribute, None)
    if found is None:
        raise ConfigError(f"the module {printable(module_name)} has no task family {printable(attribute)!r}")
    built = found
    if not _is_family(found) and callable(found):
        try:
            built = found(config)
        except Exception as exc:
            raise ConfigError(f"the task family {shown} failed to build: {type(exc).__name__}: {exc}") from None
    if isinstance(built, type):
        raise ConfigError(f"{shown} gives the class {printable(built.__name__)}, not a task family made from it")
    if not _is_family(built):
        missing = [a for a in _REQUIRED if not hasattr(built, a)]
        raise ConfigError(f"{shown} is not a task family (it lacks {', '.join(missing)})")
    if getattr(built, "metric_name", None) is not None and not hasattr(built, "metric_per_task"):
        raise ConfigError(f"the task family {shown} names a metric ({built.metric_name!r}) but lacks metric_per_task")
    if getattr(built, "name", None) != config.task:
        try:
            built.name = config.task  # a run records the family by the name that loads it again
        except (AttributeError, TypeError):  # a frozen or slotted family keeps the name it has
            if not hasattr(built, "name"):
                raise ConfigError(f"the task family {shown} has no name and cannot be given one") from None
    return built


_REQUIRED = ("loss_per_task", "loss_name", "sample", "preview_task", "input_shape", "n_outputs")


def _is_family(value: object) -> bool:
    return not isinstance(value, type) and all(hasattr(value, a) for a in _REQUIRED)


def classifies(tasks: TaskFamily) -> bool:
    """Whether a family is classification: its number to read is accuracy (which brings N-way sizes, queries
    per class and the paper's evaluation protocol with it)."""
    return getattr(tasks, "metric_name", None) == "accuracy"


def describe(tasks: TaskFamily) -> str:
    """What tables and run names call a family's data (the synthetic one says so)."""
    return str(getattr(tasks, "label", tasks.name))


def with_family_defaults(config: ExperimentConfig, given: Collection[str] = ()) -> ExperimentConfig:
    """``config`` with its family's suggested settings (``TaskFamily.defaults``) for every field not in
    ``given`` (the ones the user set). A classification family draws as many queries as shots per class
    unless told otherwise, as the official MAML and iMAML code do (2K images per class, K of them queries)."""
    tasks = family_for(config)
    changes = {k: v for k, v in getattr(tasks, "defaults", {}).items() if k not in given}
    if classifies(tasks) and "query" not in given:
        changes["query"] = changes.get("shots", config.shots) if "shots" not in given else config.shots
    return config.replace(**changes) if changes else config


def eval_steps(config: ExperimentConfig) -> int:
    """Adaptation steps of the evaluation protocol: the paper's 16 for up to 5-way classification and 25 beyond,
    else the run's own inner steps."""
    if classifies(family_for(config)):
        return 16 if config.ways <= 5 else 25
    return config.inner_steps
