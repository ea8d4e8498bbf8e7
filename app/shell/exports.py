"""Writing what the window shows: the metrics CSV (engine's columns, atomic) and the plots (PNG/SVG)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter
from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QPainter
from PySide6.QtSvg import QSvgGenerator

from app.model.history import History
from imaml_core.common import report

PLOT_FORMATS = ("png", "svg")


def write_metrics_csv(path: str | Path, history: History) -> None:
    """The window's run as a metrics CSV, written by the engine's writer (the columns of ``imaml train``)."""
    report.write_metrics_csv(path, history.reports())


def export_plots(plots: list[pg.PlotWidget], folder: str | Path, fmt: str) -> list[Path]:
    """One file per plot, named after the plot (``meta_loss.png`` …), each with a legend; returns the paths."""
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"plot format must be one of {', '.join(PLOT_FORMATS)}, got {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for plot in plots:
        name = plot.objectName().removeprefix("plot_") or "plot"
        path = folder / f"{name}.{fmt}"
        with _legend(plot.getPlotItem()):
            if fmt == "png":
                exporter = ImageExporter(plot.getPlotItem())
                exporter.parameters()["width"] = max(800, int(plot.width() * 2))
                exporter.export(str(path))
            else:
                _render_svg(plot, path)
        written.append(path)
    return written


def _render_svg(plot: pg.PlotWidget, path: Path) -> None:
    """Paint the plot into Qt's SVG generator (vector paths and text). pyqtgraph's own SVGExporter fails
    to parse the path syntax of current Qt SVG output, so it is not used."""
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(plot.width(), plot.height()))
    generator.setViewBox(QRect(0, 0, plot.width(), plot.height()))
    generator.setTitle(plot.objectName())
    painter = QPainter(generator)
    try:
        plot.render(painter)
    finally:
        painter.end()
    if not path.exists():
        raise OSError(f"could not write {path}")


@contextlib.contextmanager
def _legend(item: pg.PlotItem) -> Iterator[None]:
    """In the window the keys sit above each plot; an exported image carries its own legend."""
    named = [d for d in item.listDataItems() if d.name()]
    if item.legend is not None or not named:
        yield
        return
    fill = pg.mkColor(pg.getConfigOption("background"))
    fill.setAlpha(210)
    legend = pg.LegendItem(
        offset=(-10, 10), labelTextSize="8pt", brush=pg.mkBrush(fill), labelTextColor=pg.getConfigOption("foreground")
    )
    legend.setParentItem(item.vb)
    for data in named:
        legend.addItem(data, data.name())
    try:
        yield
    finally:
        if legend.scene() is not None:
            legend.scene().removeItem(legend)
