"""Starting a sweep from the window: a dialog for the search space, then ``imaml sweep`` in its own process.

The sweep runs as a separate process (Ray starts there, or joins a cluster), so the window never waits on
Ray; the Sweep view follows it by polling the folder. Closing the window interrupts the sweep with SIGINT,
and ``imaml sweep --resume DIR`` continues it later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QProcess
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from imaml_core.common.config import ExperimentConfig
from imaml_core.experiments.sweep import METRICS, SearchSpace, SweepError, check_metric, default_metric, parse_search

DEFAULT_SEARCH = "lam=loguniform:0.5:100\ncg_steps=int:1:10\ninner_steps=intlog:2:20"


class SweepDialog(QDialog):
    """The sweep's folder, search space (one ``FIELD=SPEC`` a line) and budget; checked before it closes."""

    def __init__(self, out: str, parent: QWidget | None = None, base: ExperimentConfig | None = None) -> None:
        """``base``: the settings the sweep starts from; the metric box offers only the metrics its task
        family has (an accuracy for classification, an MSE for regression), its default first."""
        super().__init__(parent)
        self.setWindowTitle("Start a sweep from the current settings")
        self.setObjectName("sweep_dialog")
        self.out = QLineEdit(out)
        self.out.setObjectName("edit_sweep_out")
        self.search = QPlainTextEdit(DEFAULT_SEARCH)
        self.search.setObjectName("edit_sweep_search")
        self.search.setToolTip(
            "FIELD=SPEC per line; SPEC is loguniform:LO:HI, uniform:LO:HI, int:LO:HI, intlog:LO:HI or choice:A,B,..."
        )
        self.trials = _spin(1, 10_000, 16, "spin_sweep_trials")
        self.iterations = _spin(1, 10**7, 500, "spin_sweep_iterations")
        self.seeds = _spin(1, 100, 1, "spin_sweep_seeds")
        self.cpus = _spin(1, 1024, 1, "spin_sweep_cpus")
        self.metric_box = QComboBox()  # not ``metric``: that would hide QPaintDevice.metric(), which Qt calls
        self.metric_box.setObjectName("combo_sweep_metric")
        self.metric_box.addItems(_metrics_for(base))
        self.address = QLineEdit()
        self.address.setPlaceholderText("empty: Ray on this machine; or a cluster's HOST:PORT")
        self.error = QLabel()
        self.error.setObjectName("sweep_dialog_error")
        self.error.setWordWrap(True)
        form = QFormLayout(self)
        for label, widget in (
            ("folder", self.out),
            ("search space", self.search),
            ("trials", self.trials),
            ("iterations per trial", self.iterations),
            ("metric", self.metric_box),
            ("seeds per trial", self.seeds),
            ("CPUs per trial", self.cpus),
            ("Ray cluster", self.address),
        ):
            form.addRow(label, widget)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def arguments(self) -> list[str]:
        """``imaml sweep`` arguments but ``--config``; a bad search space is a :class:`SweepError`."""
        lines = [line.strip() for line in self.search.toPlainText().splitlines() if line.strip()]
        if not lines:
            raise SweepError("the search space is empty: give at least one FIELD=SPEC line")
        SearchSpace.combine([parse_search(line) for line in lines])  # names the bad line, or repeats
        if not self.out.text().strip():
            raise SweepError("choose a folder for the sweep")
        args = ["--out", self.out.text().strip()]
        for line in lines:
            args += ["--search", line]
        args += ["--trials", str(self.trials.value()), "--iterations", str(self.iterations.value())]
        args += ["--metric", self.metric_box.currentText(), "--seeds", str(self.seeds.value())]
        args += ["--cpus-per-trial", str(self.cpus.value())]
        if self.address.text().strip():
            args += ["--address", self.address.text().strip()]
        return args

    def accept(self) -> None:
        try:
            self.arguments()
        except SweepError as exc:
            self.error.setText(f"<span style='color:#f85149'>{exc}</span>")
            return
        super().accept()


class SweepProcess:
    """One ``imaml sweep`` child process: started with the window's config as its base."""

    def __init__(self, config: ExperimentConfig, arguments: list[str], parent: QObject | None = None) -> None:
        """``parent`` (the window) owns the QProcess, so it is deleted in the GUI thread, with the window,
        never by a garbage collection that happens to run in another thread."""
        fd, base = tempfile.mkstemp(prefix="imaml-sweep-base-", suffix=".toml")
        os.close(fd)
        config.save(base)
        self.base = Path(base)
        self.process = QProcess(parent)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.setStandardOutputFile(QProcess.nullDevice())
        self.process.finished.connect(lambda *_: self._cleanup())
        self.process.start(sys.executable, ["-m", "imaml_core", "sweep", "--config", base, "--quiet", *arguments])

    def running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def interrupt(self) -> None:
        """SIGINT, as Ctrl-C would: the sweep records what finished and can be resumed."""
        pid = self.process.processId()
        if self.running() and pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)

    def _cleanup(self) -> None:
        with contextlib.suppress(OSError):
            self.base.unlink()


def _spin(lo: int, hi: int, value: int, name: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    box.setObjectName(name)
    return box


def default_sweep_folder(runs_root: str | Path) -> str:
    """``sweeps/sweep-<time>`` beside the runs folder: a sweep folder is a runs folder of its own."""
    from datetime import datetime, timezone

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return str(Path(runs_root).resolve().parent / "sweeps" / f"sweep-{stamp}")


def _metrics_for(base: ExperimentConfig | None) -> list[str]:
    """The metrics a sweep from ``base`` may use, its default first (all of them without a base)."""
    if base is None:
        return list(METRICS)
    usable = []
    for name in METRICS:
        try:
            check_metric(name, base)
        except (SweepError, ValueError):
            continue
        usable.append(name)
    first = default_metric(base)
    return [first, *(m for m in usable if m != first)]
