"""The window writes nothing on stderr and logs no Qt warning while every dialog and view opens and closes:
each menu action that asks something (file dialogs, the sweep launcher, the tour and about boxes), the
operations behind them (presets, θ export and import, the Omniglot download against a closed port), the
confirm-reset and confirm-delete questions, and the Sweep view. Modal dialogs stay up for one timer tick
(shown and painted: Qt calls into every Python override, ``metric()`` among them) and are then rejected.

A static check guards the cause of such noise: no QObject subclass under app/ may assign an instance
attribute that hides a member of its Qt base (``self.metric = QComboBox()`` hides ``QPaintDevice.metric``,
which Qt calls on every paint)."""

from __future__ import annotations

import ast
import functools
import importlib
import socket
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, qInstallMessageHandler
from PySide6.QtWidgets import QApplication, QDialog, QWidget

import app

from .app_helpers import train
from .test_app_sweep import recorded_sweep

TIMEOUT_MS = 60_000
# The offscreen platform plugin's own notice each time a window is shown: about the test platform, not the app.
PLATFORM_NOTICES = ("This plugin does not support propagateSizeHints()",)
DIALOG_ACTIONS = (  # menu actions that open a modal dialog
    "import",
    "export",
    "runs_folder",
    "open_sweep",
    "omniglot_folder",
    "export_csv",
    "export_png",
    "export_svg",
    "load_preset",
    "save_preset",
    "sweep",
    "tour",
    "about",
)


@contextmanager
def qt_messages():
    """Every Qt message logged meanwhile (but the platform's notices), as "level: text"."""
    messages: list[str] = []

    def handler(mode, _context, message: str) -> None:
        if message not in PLATFORM_NOTICES:
            messages.append(f"{mode.name}: {message}")

    previous = qInstallMessageHandler(handler)
    try:
        yield messages
    finally:
        qInstallMessageHandler(previous)


class DialogCloser(QObject):
    """Rejects each modal dialog one tick after it is first seen (it has been shown and painted by then);
    ``closed`` lists their classes."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: list[str] = []
        self._seen: QDialog | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(20)
        self._timer.timeout.connect(self._close_modal)

    def __enter__(self) -> DialogCloser:
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.stop()

    def _close_modal(self) -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QDialog) or not dialog.isVisible():
            return
        if dialog is not self._seen:
            self._seen = dialog
            return
        self._seen = None
        self.closed.append(type(dialog).__name__)
        dialog.reject()


def closed_port() -> int:
    """A local port nothing listens on (a connection there is refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_dialog_and_view_opens_and_closes_with_nothing_on_stderr(
    qtbot, make_window, tmp_path, capfd, monkeypatch
):
    sweep = tmp_path / "sweep"
    recorded_sweep(sweep, tmp_path)
    from imaml_core.tasks import omniglot_download

    offline = functools.partial(omniglot_download.download_omniglot, base_url=f"http://127.0.0.1:{closed_port()}/")
    monkeypatch.setattr(omniglot_download, "download_omniglot", offline)
    capfd.readouterr()  # what the set-up printed is not the window's

    with qt_messages() as messages, DialogCloser() as closer:
        window = make_window()
        train(qtbot, window, 2)
        for name in DIALOG_ACTIONS:
            window.menu_actions[name].trigger()
        assert len(closer.closed) == len(DIALOG_ACTIONS), closer.closed

        assert window.save_preset(tmp_path / "preset.toml") and window.load_preset(tmp_path / "preset.toml")
        assert window.export_meta_parameters(tmp_path / "theta.safetensors")
        with qtbot.waitSignal(window.trainer_ready, timeout=TIMEOUT_MS):
            assert window.import_meta_parameters(tmp_path / "theta.safetensors")
        for theme in ("light", "dark"):
            window.menu_actions[f"theme_{theme}"].trigger()

        window.confirm_restarts = True  # the questions a person answers; the closer declines them
        asked = len(closer.closed)
        assert not window.adopt_config(window.config().replace(hidden=(20, 20)))
        assert not window.runs_controller.confirm_delete("some-run")
        assert closer.closed[asked:] == ["QMessageBox", "QMessageBox"]

        view = window.open_sweep(sweep)
        qtbot.waitUntil(lambda: view.summary is not None, timeout=TIMEOUT_MS)
        view.close()

        window.menu_actions["download_omniglot"].trigger()
        qtbot.waitUntil(lambda: "Download stopped" in window.banner.message(), timeout=TIMEOUT_MS)
        window.close()
        qtbot.waitUntil(lambda: window.worker_thread.closed, timeout=TIMEOUT_MS)

    assert capfd.readouterr().err == ""
    assert messages == []


# -- the static check ------------------------------------------------------------------------------
def qobject_classes() -> list[tuple[type, ast.ClassDef]]:
    """Every QObject subclass defined at the top of a module under app/, with its syntax tree."""
    root = Path(app.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        module = importlib.import_module(".".join(path.relative_to(root.parent).with_suffix("").parts))
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            cls = getattr(module, node.name, None) if isinstance(node, ast.ClassDef) else None
            if isinstance(cls, type) and issubclass(cls, QObject):
                found.append((cls, node))
    return found


def self_attributes(node: ast.ClassDef) -> set[str]:
    """The names a class's methods bind as ``self.<name> = ...`` (tuple targets included; ``self.x[k] = ...``
    changes an item, not the attribute)."""
    names = set()

    def bound(target: ast.expr) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                bound(element)
        elif isinstance(target, ast.Starred):
            bound(target.value)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            names.add(target.attr)

    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign):
            for target in sub.targets:
                bound(target)
        elif isinstance(sub, (ast.AnnAssign, ast.AugAssign)):
            bound(sub.target)
    return names


def qt_members(cls: type) -> set[str]:
    """The public members of ``cls``'s Qt base classes (methods, signals, properties)."""
    return {
        name
        for base in cls.__mro__
        if base.__module__.startswith("PySide6.")
        for name in vars(base)
        if not name.startswith("_")
    }


def test_no_qobject_under_app_hides_a_member_of_its_qt_base_with_an_instance_attribute():
    classes = qobject_classes()
    assert len(classes) > 20  # the walk found the window, panels, plots and workers
    hidden = sorted(
        f"{cls.__module__}.{cls.__name__}.{name}"
        for cls, node in classes
        for name in self_attributes(node) & qt_members(cls)
    )
    assert hidden == []


def test_the_static_check_catches_a_hidden_metric():
    tree = ast.parse("class D(QDialog):\n    def __init__(self):\n        self.metric = QComboBox()\n")
    node = tree.body[0]
    assert isinstance(node, ast.ClassDef)
    assert self_attributes(node) & qt_members(QDialog) == {"metric"}
    assert "size" in qt_members(QWidget) and "update" in qt_members(QWidget)
