"""Writing what the window shows: the metrics CSV (engine's columns, atomic) and the plots (PNG/SVG)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyqtgraph as pg
from pyqtgraph.exporters import ImageExporter, SVGExporter

from imaml_core.files import atomic_write_text
from imaml_core.report import CSV_FIELDS

from .history import History

PLOT_FORMATS = ("png", "svg")


def metrics_csv(history: History) -> str:
    """The run's rows in the same columns as ``imaml train``'s metrics.csv."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    writer.writeheader()
    for report in history.reports():
        writer.writerow(report.row())
    return out.getvalue()


def write_metrics_csv(path: str | Path, history: History) -> None:
    atomic_write_text(path, metrics_csv(history))


def export_plots(plots: list[pg.PlotWidget], folder: str | Path, fmt: str) -> list[Path]:
    """One file per plot, named after the plot (``meta_loss.png`` …); returns the paths written."""
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"plot format must be one of {', '.join(PLOT_FORMATS)}, got {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for plot in plots:
        name = plot.objectName().removeprefix("plot_") or "plot"
        path = folder / f"{name}.{fmt}"
        item = plot.getPlotItem()
        if fmt == "png":
            exporter = ImageExporter(item)
            exporter.parameters()["width"] = max(800, int(plot.width() * 2))
        else:
            exporter = SVGExporter(item)
        exporter.export(str(path))
        written.append(path)
    return written
