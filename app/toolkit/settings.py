"""What persists between launches (QSettings): window geometry, theme, the last config (as TOML) and the
runs folder.

Always the INI format under the user scope, so tests can point ``QSettings.setPath`` at a temp folder.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths
from PySide6.QtWidgets import QMainWindow

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import ImamlError

ORGANISATION = "imaml-studio"
APPLICATION = "iMAML Studio"


def store() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def last_config() -> ExperimentConfig | None:
    """The config of the previous launch, or None when absent or no longer valid."""
    text = store().value("config/toml", "")
    if not isinstance(text, str) or not text:
        return None
    try:
        return ExperimentConfig.from_toml(text)
    except ImamlError:
        return None


def save_session(config: ExperimentConfig, geometry: QByteArray, state: QByteArray, theme: str) -> None:
    s = store()
    s.setValue("config/toml", config.to_toml())
    s.setValue("window/geometry", geometry)
    s.setValue("window/state", state)
    s.setValue("window/theme", theme)
    s.sync()


def window_geometry() -> tuple[QByteArray | None, QByteArray | None]:
    s = store()
    geometry, state = s.value("window/geometry"), s.value("window/state")
    return (
        geometry if isinstance(geometry, QByteArray) else None,
        state if isinstance(state, QByteArray) else None,
    )


def restore_window(window: QMainWindow) -> bool:
    """Give ``window`` the last launch's geometry and toolbar/dock layout (the Runs dock's height with it);
    call it once its docks are added. False when there was no layout to restore."""
    geometry, state = window_geometry()
    if geometry is not None:
        window.restoreGeometry(geometry)
    return state is not None and window.restoreState(state)


def theme() -> str:
    value = store().value("window/theme", "dark")
    return value if isinstance(value, str) else "dark"


def runs_folder() -> str:
    """The runs folder the window records into: the last one opened, else ``runs`` in the platform's
    app-data location (QStandardPaths)."""
    value = store().value("runs/folder", "")
    if isinstance(value, str) and value:
        return value
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return str(Path(base or Path.home() / ".imaml-studio") / "runs")


def save_runs_folder(path: str) -> None:
    s = store()
    s.setValue("runs/folder", path)
    s.sync()
