"""What the Runs panel's ticks overlay: one :class:`Overlay` per ticked run, or per seed group when seed
groups are on (two or more ticked runs of a group become one mean curve with its band).

The groups come from ``imaml_core.experiments.runs.seed_groups`` (runs whose settings differ only by
seed); this module only decides which ticked runs go together and what the legend calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from app.panels.overlays import Overlay
from imaml_core.experiments.runs import RunSummary, SeedGroup


@dataclass(frozen=True)
class OtherRun:
    """A run of another folder the panel knows of (a fork's parent in a sweep's folder): its name, and its
    folder when it can be overlaid."""

    name: str
    path: str = ""


def overlay_items(
    ticked: Sequence[str],
    rows: Mapping[str, RunSummary],
    others: Mapping[str, OtherRun],
    colour: Callable[[str], str],
    groups: Mapping[str, SeedGroup] | None,
) -> list[Overlay]:
    """The overlays for the ``ticked`` runs (the live one left out by the caller), in tick order; with
    ``groups`` (run id to its seed group) the ticked runs of one group are one item, named
    ``<group name> · <n> seeds`` and coloured as its first ticked run."""
    members: dict[tuple[str, ...], list[str]] = {}
    for run_id in ticked:
        group = groups.get(run_id) if groups is not None else None
        key = group.ids if group is not None and run_id in rows else (run_id,)
        members.setdefault(key, []).append(run_id)
    items = []
    for ids in members.values():
        if len(ids) > 1:
            group = groups[ids[0]] if groups is not None else None
            name = f"{group.name if group else rows[ids[0]].name} · {len(ids)} seeds"
            items.append(Overlay(tuple(ids), tuple(rows[r].path for r in ids), colour(ids[0]), name))
            continue
        run_id = ids[0]
        if run_id in rows:
            items.append(Overlay((run_id,), (rows[run_id].path,), colour(run_id), rows[run_id].name))
        elif others.get(run_id, OtherRun("")).path:
            other = others[run_id]
            items.append(Overlay((run_id,), (other.path,), colour(run_id), other.name or run_id))
    return items
