"""Two runs' settings side by side, and a setting as the Runs table shows it."""

from __future__ import annotations

import math
from pathlib import Path

from app.model.fields import LABELS
from imaml_core.common.config import ExperimentConfig
from imaml_core.experiments.runs import RunSummary


def difference_text(a: RunSummary, b: RunSummary) -> str:
    """How two runs' settings differ, in the controls' words."""
    try:
        ca = ExperimentConfig.load(Path(a.path) / "config.toml")
        cb = ExperimentConfig.load(Path(b.path) / "config.toml")
    except Exception as exc:  # noqa: BLE001 - an unreadable run is said, not raised
        return f"Cannot compare: {exc}"
    fields = ca.changed(cb)
    if not fields:
        return f"<b>{a.name}</b> and <b>{b.name}</b> have the same settings."
    parts = [f"{LABELS.get(f, f)}: {shown_cell(getattr(ca, f))} vs {shown_cell(getattr(cb, f))}" for f in fields]
    return f"<b>{a.name}</b> vs <b>{b.name}</b>: " + "; ".join(parts)


def shown_cell(value: object) -> str:
    """A value as a table cell: empty for None and NaN, four significant digits, lists comma-separated."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
