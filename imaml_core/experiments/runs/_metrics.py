"""Writing a run's metrics.csv: appended by its one writer, a row per meta-iteration.

The writer appends whole lines in one write and syncs them, so the file is a valid CSV at every moment
except, after a crash, for a last line without its newline; a writer that continues the run cuts it off
(``trim_metrics``). The header is the file's own: a writer appends rows in the columns the file already
has, so a run written by an engine with other columns stays one consistent table. Reading is in
_history.py.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

from imaml_core.common.files import atomic_write_text, open_regular
from imaml_core.common.report import StepReport, metrics_csv
from imaml_core.experiments.runs._history import parse_header, read_header


def start_metrics(path: Path) -> None:
    """A new metrics.csv holding only the header (written atomically)."""
    atomic_write_text(path, metrics_csv([]))


def append_metrics(path: Path, reports: Iterable[StepReport]) -> int:
    """Append one row per report in the file's own columns, in one write, synced; returns the rows written."""
    columns = read_header(path)
    reports = list(reports)
    if reports:
        with open_regular(path, "ab") as fh:  # never through a link: the run's own file or nothing
            fh.write(metrics_csv(reports, header=False, columns=columns).encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
    return len(reports)


def trim_metrics(path: Path, iteration: int) -> bool:
    """Drop an unfinished last line and every row past ``iteration`` (rows a crash left beyond the last
    checkpoint), so a continued run does not repeat iterations. Returns whether the file changed."""
    with open_regular(path, "rb") as fh:
        data = fh.read()
    header_end = data.find(b"\n") + 1
    columns = parse_header(path, data[:header_end])
    body = data[header_end:]
    complete = body[: body.rfind(b"\n") + 1]
    at = columns.index("iteration")
    kept = [line for line in complete.splitlines(keepends=True) if _iteration(line, at) <= iteration]
    new = data[:header_end] + b"".join(kept)
    if new == data:
        return False
    atomic_write_text(path, new.decode("utf-8"))
    return True


def _iteration(line: bytes, at: int) -> float:
    fields = line.decode("utf-8", "replace").rstrip("\r\n").split(",")
    try:
        return float(fields[at])
    except (IndexError, ValueError):
        return math.inf  # an unreadable row is dropped with the rows past the checkpoint
