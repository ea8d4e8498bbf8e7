"""Dark and light themes: the Qt stylesheet from ``resources/`` plus the matching pyqtgraph colours.

Series colours are shared by both themes (chosen to read on dark and white backgrounds); only the plot
background, axes and text follow the theme.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtWidgets import QApplication

THEMES = ("dark", "light")

# one colour per quantity, the same in every plot that shows it
SERIES = {
    "train": "#4c9be8",
    "pre": "#8b949e",
    "val": "#f0883e",
    "truth": "#9aa4ae",
    "before": "#d29922",
    "after": "#3fb950",
    "support": "#f85149",
    "residual": "#4c9be8",
    "stationarity": "#bc8cff",
    "cg_iterations": "#f0883e",
    "memory": "#3fb950",
    "lam": "#39c5cf",
    "marker": "#d29922",
    "imaml": "#4c9be8",
    "maml": "#f85149",
    "fomaml": "#d29922",
    "reptile": "#3fb950",
}


@dataclass(frozen=True)
class Palette:
    """The colours a plot needs from the theme."""

    background: str
    foreground: str
    grid_alpha: float
    legend_fill: str


PALETTES = {
    "dark": Palette("#161a1f", "#c5ccd3", 0.16, "#202630e0"),
    "light": Palette("#ffffff", "#2b3137", 0.22, "#f4f6f8e0"),
}


def resources_dir() -> Path:
    """The shipped ``resources/`` folder (themes, presets), installed or in a checkout.

    ``resources`` is installed beside ``app`` (both top-level in pyproject.toml), so it is found next to
    this package first: importing it by name could pick up any ``resources/`` folder in the current
    directory (a namespace package without a ``__file__``)."""
    beside = Path(__file__).resolve().parent.parent / "resources"
    if (beside / "presets").is_dir():
        return beside
    import resources  # pragma: no cover - an unusual install layout

    return Path(next(iter(resources.__path__))).resolve()


def stylesheet(name: str) -> str:
    """The QSS text of theme ``name`` ("" when the file is missing, so the app still runs)."""
    path = resources_dir() / f"{name}.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def apply_theme(app: QApplication, name: str) -> Palette:
    """Style the whole application; returns the plot palette for widgets to restyle themselves."""
    if name not in THEMES:
        name = THEMES[0]
    app.setStyle("Fusion")  # the QSS is written against Fusion's metrics on every platform
    app.setStyleSheet(stylesheet(name))
    palette = PALETTES[name]
    pg.setConfigOptions(background=palette.background, foreground=palette.foreground, antialias=False)
    return palette
