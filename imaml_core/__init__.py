"""iMAML Studio's Qt-free half: batched implicit meta-learning in PyTorch, and the experiments around it.

Packages by layer, each importing only the ones below it (``make lint`` checks it; docs/ARCHITECTURE.md
draws it):

- ``imaml_core.cli``: the ``imaml`` command line, a thin layer over the experiments;
- ``imaml_core.experiments``: the run store (``experiments.runs``), the one train-and-record loop
  (``experiments.training``) and sweeps (``experiments.sweep``, Ray Tune and Optuna imported lazily);
- ``imaml_core.engine``: solvers, derivatives, meta-gradient methods, λ, models, the trainer, checkpoints;
- ``imaml_core.tasks``: task families behind one protocol (``TaskFamily``); sinusoid regression;
- ``imaml_core.common``: what every layer shares and none computes: the config, errors, file writing,
  the report types.

The public API below is listed once, in ``__init__.pyi``, and loaded on first use (``lazy_loader``), so a
light submodule (the run store's listing, the history reader) imports without PyTorch.
"""

import lazy_loader

from imaml_core.common.version import VERSION as __version__

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
__all__ = [*__all__, "__version__"]
