"""iMAML Studio's Qt application: a live laboratory around ``imaml_core``'s ``MetaTrainer``.

- ``model`` (Qt-free): ``session`` (desired and applied configs, markers, history), ``history`` (what the
  plots draw from), ``fields`` (which control edits which config field), ``messages`` (what crosses
  threads), ``run_names`` (what a run and a fork are called), ``throttle``.
- ``toolkit``: ``theme``, ``background`` (work in pool threads), ``settings``.
- ``worker``: ``worker`` (owns the trainer in its thread), ``thread`` (the GUI thread's handle on it),
  ``recording`` (the runs it records, named), ``previews``, ``priority``.
- ``plots``: ``base`` / ``cards`` / ``adaptation`` (the four plot cards), ``redraw``, ``ranges``.
- ``panels``: ``controls`` / ``sliders`` (hyperparameter panel), ``runs_panel``, ``overlays``,
  ``sweep_launcher``, ``sweep_view``.
- ``shell``: ``main_window`` (the window, assembled from typed members), ``runs_controller`` (runs folder,
  Runs dock, overlays, forks, sweeps), ``file_actions``, ``menus``, ``layout``, ``dialogs``, ``banner``,
  ``status``, ``exports``.

Nothing here does numerics; the engine never imports this package.
"""

import os

import lazy_loader

# The GUI thread shares the CPU with the engine's OpenMP threads. With OpenMP's default "active" waiting,
# idle workers spin between parallel regions and starve both the GUI thread and each other (measured on a
# busy 2-core machine: 0.02 s -> 1.1 s per small meta-iteration). Passive waiting costs nothing here. It
# only takes effect when set before torch is first imported, which importing ``app`` first guarantees.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Qt loads only when the window is wanted: ``import app`` stays cheap.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__, submod_attrs={"shell.main_window": ["MainWindow"], "__main__": ["main"]}
)
