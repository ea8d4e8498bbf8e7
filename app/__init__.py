"""iMAML Studio's Qt application: a live laboratory around ``imaml_core``'s ``MetaTrainer``.

Modules: ``main_window`` (the window), ``worker`` / ``session`` (the training thread and its GUI side),
``controls`` / ``sliders`` (hyperparameter panel), ``plots`` / ``adaptation`` (the four plot cards),
``history`` (what the plots draw from), ``menus``, ``exports``, ``settings``, ``theme``, ``status``, ``banner``.
Nothing here does numerics; the engine never imports this package.
"""

import os

# The GUI thread shares the CPU with the engine's OpenMP threads. With OpenMP's default "active" waiting,
# idle workers spin between parallel regions and starve both the GUI thread and each other (measured on a
# busy 2-core machine: 0.02 s -> 1.1 s per small meta-iteration). Passive waiting costs nothing here. It
# only takes effect when set before torch is first imported, which importing ``app`` first guarantees.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["MainWindow", "main"]


def __getattr__(name: str) -> object:
    # lazy, so `import app` stays cheap and Qt loads only when the window is wanted
    if name == "MainWindow":
        from .main_window import MainWindow

        return MainWindow
    if name == "main":
        from .__main__ import main

        return main
    raise AttributeError(name)
