"""Reading a run's metrics.csv: its header, its tail (for listings) and its whole history (for curves).

The file's writer (_metrics.py) appends whole lines in one write, so the file is a valid CSV at every
moment except, after a crash, for a last line without its newline; every reader here ignores such a line.
Listings read only the header and the file's tail (``tail_summary``), so hundreds of runs with long
histories list quickly. This module needs only numpy: a reader process (_reader.py) imports it without
PyTorch.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imaml_core.common.columns import CSV_FIELDS, TEXT_COLUMNS
from imaml_core.common.files import open_regular
from imaml_core.experiments.runs._info import RunError

METRICS_FILE = "metrics.csv"
_MAX_HEADER_BYTES = 64 * 1024
_TAIL_START = 16 * 1024  # bytes read from the end first; doubled while no validated row is found
_TAIL_LIMIT = 1 << 20  # the last validation MSE is looked for in the file's last MiB only

_PARSE_CHUNK_ROWS = 1000  # rows per numpy parse: a few ms each
Metrics = dict[str, np.ndarray]  # column name -> values, one per row (float64; text columns as str)


def read_header(path: Path) -> list[str]:
    """The column names of ``path``; a missing or headless file is a :class:`RunError`."""
    try:
        with open_regular(path, "rb") as fh:
            line = fh.readline(_MAX_HEADER_BYTES)
    except FileNotFoundError:
        raise RunError(f"{path.parent}: no {METRICS_FILE}") from None
    except OSError as exc:
        raise RunError(f"{path.parent}: cannot read {METRICS_FILE} ({exc.strerror or exc})") from None
    return parse_header(path, line)


def parse_header(path: Path, line: bytes) -> list[str]:
    """The column names in a header ``line`` of ``path``; one without iteration and val_loss is a
    :class:`RunError`."""
    try:
        names = line.decode("utf-8").rstrip("\r\n").split(",")
    except UnicodeDecodeError:
        names = []
    if not line.endswith(b"\n") or "iteration" not in names or "val_loss" not in names:
        raise RunError(f"{path.parent}: {METRICS_FILE} has no valid header (iteration, val_loss, ...)")
    return names


def tail_summary(path: Path) -> tuple[int, float, float]:
    """(iterations, last validation loss, its accuracy) from the header and the tail of ``path``: the last
    complete row's ``iteration`` (0 without rows) and the last finite ``val_loss`` within the last MiB (NaN if
    none), with that row's ``val_accuracy`` (NaN for regression, or a file without the column)."""
    try:
        with open_regular(path, "rb") as fh:
            columns = parse_header(path, fh.readline(_MAX_HEADER_BYTES))
            body_start = fh.tell()
            size = fh.seek(0, os.SEEK_END)
            it_at, val_at = columns.index("iteration"), columns.index("val_loss")
            acc_at = columns.index("val_accuracy") if "val_accuracy" in columns else None
            span = _TAIL_START
            iterations: int | None = None
            while True:
                start = max(body_start, size - span)
                fh.seek(start)
                chunk = fh.read(size - start)
                lines = chunk.split(b"\n")[:-1]  # the last piece is "" or an unfinished line
                if start > body_start:
                    lines = lines[1:]  # the first piece may be the end of a longer line
                rows = [line.decode("utf-8", "replace").split(",") for line in lines if line]
                rows = [r for r in rows if len(r) == len(columns)]
                if iterations is None and rows:
                    iterations = int(float(rows[-1][it_at]))
                for row in reversed(rows):
                    val = _float(row[val_at])
                    if math.isfinite(val):
                        return iterations or 0, val, _float(row[acc_at]) if acc_at is not None else math.nan
                if start == body_start or span >= _TAIL_LIMIT:
                    return iterations or 0, math.nan, math.nan
                span *= 2
    except FileNotFoundError:
        raise RunError(f"{path.parent}: no {METRICS_FILE}") from None
    except OSError as exc:
        raise RunError(f"{path.parent}: cannot read {METRICS_FILE} ({exc.strerror or exc})") from None
    except (ValueError, OverflowError):  # "abc", or "1e999" (an infinite float has no int)
        raise RunError(f"{path.parent}: {METRICS_FILE} has a row whose iteration is not a number") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def read_metrics(path: Path, max_points: int | None = None, columns: Sequence[str] | None = None) -> Metrics:
    """Every complete row of ``path`` as columns (all, or only ``columns``, which is faster: parsing is
    most of the cost); with ``max_points``, at most that many points, each the mean of a run of
    consecutive rows (NaN entries ignored, so sparse validation rows survive)."""
    names = read_header(path)
    wanted = list(names) if columns is None else [c for c in columns if c in names]
    with open_regular(path, "rb") as fh:
        text = fh.read().decode("utf-8", "replace")  # a damaged byte damages its cell (NaN), not the read
    body = text[text.find("\n") + 1 : text.rfind("\n") + 1]  # an unfinished last line is not a row yet
    try:
        data = _parse_fast(body, names, wanted) if body else _parse_slow(body, names, wanted)
    except ValueError:  # a damaged row, an empty field, a text column of a newer engine
        data = _parse_slow(body, names, wanted)
    if max_points is not None and len(next(iter(data.values()), ())) > max_points:
        data = downsample(data, max_points)
    return data


def _parse_fast(body: str, names: list[str], wanted: list[str]) -> Metrics:
    """numpy's C parser for the numeric columns; the text columns split off each line."""
    numeric = [c for c in wanted if c not in TEXT_COLUMNS]
    data: Metrics = {}
    if numeric:
        usecols = [names.index(c) for c in numeric]
        lines = body.splitlines(keepends=True)
        # numpy's parser keeps the GIL while it runs: in chunks, a reader in a pool thread lets the GUI
        # thread in between them instead of stalling it for a whole long history.
        chunks = [
            np.loadtxt(
                io.StringIO("".join(lines[i : i + _PARSE_CHUNK_ROWS])),
                delimiter=",",
                usecols=usecols,
                dtype=np.float64,
                ndmin=2,
            )
            for i in range(0, len(lines), _PARSE_CHUNK_ROWS)
        ]
        table = np.concatenate(chunks) if chunks else np.zeros((0, len(numeric)))
        if table.shape[1] != len(numeric):
            raise ValueError("column count")
        data.update({c: table[:, i].copy() for i, c in enumerate(numeric)})
    for c in wanted:
        if c in TEXT_COLUMNS:
            at = names.index(c)
            data[c] = np.array([line.split(",", at + 1)[at] for line in body.splitlines()], dtype=str)
    return {c: data[c] for c in wanted}


def _parse_slow(body: str, names: list[str], wanted: list[str]) -> Metrics:
    """The csv module, row by row: rows with the wrong number of fields are skipped, and a damaged cell
    of a numeric column is NaN. A column is text when it is one of ``TEXT_COLUMNS``, or when it is not
    one of this engine's columns and none of its cells is a number (a text column of a newer engine)."""
    rows = [r for r in csv.reader(io.StringIO(body)) if len(r) == len(names)]
    data: Metrics = {}
    for name in wanted:
        i = names.index(name)
        values = [r[i] for r in rows]
        text = name in TEXT_COLUMNS or (name not in CSV_FIELDS and all(_is_text(v) for v in values if v))
        data[name] = np.array(values, dtype=str) if text else np.array([_float(v) for v in values], dtype=np.float64)
    return data


def _is_text(cell: str) -> bool:
    """A non-empty cell that is not a number ("nan" is one: unvalidated rows write it)."""
    return bool(cell) and math.isnan(_float(cell)) and cell.strip().lower() != "nan"


def downsample(data: Metrics, points: int) -> Metrics:
    """``points`` consecutive bins of nearly equal size: numeric columns averaged over their finite
    entries (NaN where a bin has none), text columns take the bin's last entry."""
    if points < 1:
        raise ValueError("points must be >= 1")
    n = len(next(iter(data.values()), ()))
    if n <= points:
        return data
    starts = np.linspace(0, n, points + 1).astype(np.int64)[:-1]
    ends = np.append(starts[1:], n) - 1
    out: Metrics = {}
    for name, values in data.items():
        if values.dtype.kind != "f":
            out[name] = values[ends]
            continue
        finite = np.isfinite(values)
        sums = np.add.reduceat(np.where(finite, values, 0.0), starts)
        counts = np.add.reduceat(finite.astype(np.int64), starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out
