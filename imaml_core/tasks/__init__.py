"""Task families behind one protocol (``TaskFamily``, protocol.py): the trainer takes a family and asks it
for batches of tasks, each task's loss and a task to preview. Sinusoid regression (sinusoid.py), and N-way
K-shot classification (classification.py) of Omniglot (omniglot.py) and synthetic glyphs (glyphs.py), ship
here; the registry (registry.py) builds the one a config names.

Names load on first use (``lazy_loader``), so the data modules (Omniglot's loader and download) import
without PyTorch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "classification": ["ImageClassification", "ImageTasks"],
        "protocol": ["PreviewTask", "TaskBatch", "TaskFamily"],
        "registry": [
            "DEFAULT_FAMILY",
            "FAMILIES",
            "GLYPHS_LABEL",
            "classifies",
            "describe",
            "eval_steps",
            "family",
            "family_for",
            "user_family",
            "with_family_defaults",
        ],
        "sinusoid": ["Sinusoid"],
    },
)
