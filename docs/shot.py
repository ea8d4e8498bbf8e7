"""What the screenshot scripts in docs/ share: waiting on the window without blocking its event loop."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEventLoop, QTimer


def wait_until(predicate: Callable[[], object], timeout_s: float) -> None:
    """Run the event loop until ``predicate()`` is true or ``timeout_s`` has passed."""
    loop = QEventLoop()
    poll = QTimer(interval=50)
    poll.timeout.connect(lambda: predicate() and loop.quit())
    poll.start()
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    poll.stop()
