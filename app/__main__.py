"""``python -m app`` / ``imaml-studio`` / ``make run``: open the iMAML Studio window."""

from __future__ import annotations

import signal
import sys


def main(argv: list[str] | None = None) -> int:
    """Start the Qt application with the main window; returns the exit code."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.shell.main_window import MainWindow
    from app.toolkit.settings import APPLICATION, ORGANISATION

    app = QApplication.instance() or QApplication(sys.argv if argv is None else [sys.argv[0], *argv])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    window = MainWindow()
    window.show()
    # Ctrl+C in the terminal closes the window the normal way (worker stopped and joined, settings saved);
    # the idle timer lets Python run its signal handler while Qt's event loop waits.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
