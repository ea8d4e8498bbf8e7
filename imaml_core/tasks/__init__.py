"""Task families behind one protocol (``TaskFamily``, family.py): the trainer takes a family and asks it
for batches of tasks, each task's loss and a task to preview. Sinusoid regression is one family.

``family(name)`` looks a family up by the name the config and the command line use."""

from imaml_core.common.errors import ConfigError
from imaml_core.tasks.family import PreviewTask, TaskBatch, TaskFamily
from imaml_core.tasks.sinusoid import Sinusoid

FAMILIES: dict[str, TaskFamily] = {f.name: f for f in (Sinusoid(),)}
DEFAULT_FAMILY = next(iter(FAMILIES))


def family(name: str = DEFAULT_FAMILY) -> TaskFamily:
    """The family called ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown task family {name!r} (choose from {', '.join(FAMILIES)})") from None


__all__ = ["DEFAULT_FAMILY", "FAMILIES", "PreviewTask", "Sinusoid", "TaskBatch", "TaskFamily", "family"]
