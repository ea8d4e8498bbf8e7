"""Guard against Qt binding releases that corrupt reference counts on signal delivery.

PySide6 6.12.0 dropped a reference to True/False/None on every signal delivered to a Python callable; a
training window then aborted with "Fatal Python error: none_dealloc" after ~40 s (about 100,000
deliveries). This checks the installed binding directly.
"""

import sys

import pytest

DELIVERIES = 2000


@pytest.mark.parametrize("payload", [True, False, None])
def test_signal_delivery_keeps_reference_counts(qtbot, payload):
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        changed = Signal(object)
        toggled = Signal(bool)
        fired = Signal()

    emitter = Emitter()
    emitter.changed.connect(lambda value: None)
    emitter.fired.connect(lambda: None)
    if isinstance(payload, bool):
        emitter.toggled.connect(lambda value: None)
    before = sys.getrefcount(payload)
    for _ in range(DELIVERIES):
        emitter.changed.emit(payload)
        emitter.fired.emit()
        if isinstance(payload, bool):
            emitter.toggled.emit(payload)
    # The broken binding drops one reference per delivery: thousands here. Other threads of the test process
    # (a pool thread, a TensorBoard writer) may take or drop a few meanwhile, which is not the bug.
    assert abs(sys.getrefcount(payload) - before) < DELIVERIES // 20
