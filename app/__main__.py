"""``python -m app`` / ``imaml-studio`` / ``make run``: open the iMAML Studio window."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Start the Qt application with the main window; returns the exit code."""
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow
    from .settings import APPLICATION, ORGANISATION

    app = QApplication.instance() or QApplication(sys.argv if argv is None else [sys.argv[0], *argv])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    window = MainWindow()
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
