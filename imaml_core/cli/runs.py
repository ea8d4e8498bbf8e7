"""``imaml runs``: list a runs folder, show one run, diff two.

RUN arguments name a run folder by path, or by folder name or run id within ``--root`` (default: the
current folder). ``runs list --group-seeds`` shows one row per group of runs that differ only by seed,
with the mean and 95% confidence interval of their final validation values. Listing shows unreadable
folders too, with status ``unreadable`` and a warning line on stderr saying why; it exits 0 unless the
folder holds entries and none of them is a readable run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from imaml_core.common.errors import ImamlError
from imaml_core.common.text import printable
from imaml_core.experiments.runs import (
    SUMMARY_KEYS,
    Interval,
    Run,
    RunStore,
    RunSummary,
    SeedGroup,
    seed_groups,
    summarize,
)

# Column headings of the ``runs list`` table, by summary key.
_HEADINGS = {
    "id": "id",
    "name": "name",
    "task": "task",
    "method": "method",
    "lam": "λ",  # the current one: see _lam_cell
    "cg_steps": "CG",
    "inner_steps": "inner",
    "iterations": "iterations",
    "val_mse": "val MSE",
    "val_loss": "val loss",
    "val_accuracy": "val acc",
    "status": "status",
    "parent": "parent",
    "fork_iteration": "fork at",
    "path": "path",
}


def add_runs_parser(sub: Any) -> None:
    """Register ``runs list``, ``runs show`` and ``runs diff`` under the ``imaml`` parser's subcommands."""
    runs = sub.add_parser("runs", help="list, show and compare run folders")
    verbs = runs.add_subparsers(dest="runs_command", required=True, parser_class=type(runs))
    ls = verbs.add_parser("list", help="one row per run of a runs folder")
    ls.add_argument("root", type=Path, help="runs folder (a folder of run folders)")
    ls.add_argument("--json", action="store_true", help="a JSON list of rows on stdout")
    ls.add_argument(
        "--group-seeds",
        action="store_true",
        help="one row per group of runs that differ only by seed: mean ± 95%% CI of the final validation values",
    )
    show = verbs.add_parser("show", help="one run's record, settings and progress")
    show.add_argument("run", help="run folder, or a folder name or run id within --root")
    show.add_argument("--root", type=Path, default=Path("."), help="runs folder for names and ids (default: .)")
    show.add_argument("--json", action="store_true")
    diff = verbs.add_parser("diff", help="the settings and lineage in which two runs differ")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.add_argument("--root", type=Path, default=Path("."), help="runs folder for names and ids (default: .)")
    diff.add_argument("--json", action="store_true")


def cmd_runs(args: argparse.Namespace) -> int:
    handler = {"list": _list, "show": _show, "diff": _diff}[args.runs_command]
    return handler(args)


class _NothingReadable(ImamlError):
    pass


def _list(args: argparse.Namespace) -> int:
    rows = RunStore(args.root).list()
    for row in rows:
        if not row.readable:
            print(f"warning: unreadable: {printable(row.reason)}", file=sys.stderr)
    if args.group_seeds:
        _print_groups(rows, args.json)
    elif args.json:
        print(json.dumps([row.row() for row in rows], ensure_ascii=False))
    else:
        _print_table(rows)
    if rows and not any(row.readable for row in rows):
        raise _NothingReadable(f"none of the {len(rows)} folders in {args.root} is a readable run")
    return 0


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in ("val_mse", "val_loss"):
        return f"{value:.4g}"
    if key == "task" and value == "glyphs":
        return "glyphs (synthetic)"
    if key == "val_accuracy":
        return f"{100 * value:.1f}%"
    if key == "lam":
        return f"{value:g}"

    return str(value)


def _lam_cell(row: RunSummary) -> str:
    """The λ a run has now: a learned one (geometric mean over its entries) is marked as learned."""
    if row.lam_learned and row.current_lam is not None:
        return f"{row.current_lam:.4g} learned"
    return _cell("lam", row.lam)


def _print_table(rows: list[RunSummary]) -> None:
    """A table of ``rows``; a list of regression runs only shows "val MSE", one with a classification run
    shows each run's task, validation loss and accuracy."""
    hidden = {"path", "current_lam", "lam_learned"}
    if any(r.task not in (None, "sinusoid") for r in rows):
        hidden.add("val_mse")
    else:
        hidden |= {"task", "val_loss", "val_accuracy"}
    keys = [k for k in SUMMARY_KEYS if k not in hidden]
    cells = [[_lam_cell(r) if k == "lam" else _cell(k, getattr(r, k)) for k in keys] for r in rows]
    table = [[_HEADINGS[k] for k in keys], *([printable(c) for c in line] for line in cells)]
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _group_metrics(rows: list[RunSummary]) -> tuple[str, ...]:
    """The final validation values a listing reports: the loss, and accuracy when a run classifies."""
    return ("val_loss", "val_accuracy") if any(r.val_accuracy is not None for r in rows) else ("val_loss",)


def _group_row(group: SeedGroup, metrics: tuple[str, ...]) -> dict[str, Any]:
    first = group.rows[0]
    row: dict[str, Any] = {
        "name": first.name,
        "task": first.task,
        "method": first.method,
        "lam": first.lam,
        "cg_steps": first.cg_steps,
        "inner_steps": first.inner_steps,
        "status": _group_status(group),
        "runs": list(group.ids),
        "seeds": list(group.seeds),
        "n": group.n,
    }
    for metric in metrics:
        interval = group.final(metric)
        row[f"{metric}_mean"], row[f"{metric}_ci95"] = interval.mean, interval.ci95
    return row


def _group_status(group: SeedGroup) -> str:
    """The runs' status when they share one, else ``mixed``."""
    statuses = {r.status for r in group.rows}
    return statuses.pop() if len(statuses) == 1 else "mixed"


def _unreadable_row(row: RunSummary, metrics: tuple[str, ...]) -> dict[str, Any]:
    """An unreadable folder as a group listing reports it: in no group, with its status and reason."""
    data: dict[str, Any] = {"name": row.name, "status": row.status, "reason": row.reason}
    data |= {"runs": [row.id], "seeds": [], "n": 0}
    return data | {f"{m}_{part}": None for m in metrics for part in ("mean", "ci95")}


def _interval_cell(metric: str, interval: Interval) -> str:
    """``0.123 ± 0.045``; ``—`` for the interval of a single value."""
    if interval.mean is None:
        return "-"
    scale, unit = (100, "%") if metric == "val_accuracy" else (1, "")
    mean = f"{scale * interval.mean:.1f}{unit}" if unit else f"{interval.mean:.4g}"
    if interval.ci95 is None:
        return f"{mean} ± —"
    return f"{mean} ± " + (f"{scale * interval.ci95:.1f}{unit}" if unit else f"{interval.ci95:.2g}")


def _print_groups(rows: list[RunSummary], as_json: bool) -> None:
    """``runs list --group-seeds``: one row per seed group (a run without a seed partner is a group of one),
    then the unreadable folders, each on its own as ``runs list`` shows them."""
    groups = seed_groups(rows)
    grouped = {run_id for group in groups for run_id in group.ids}
    alone = [r for r in rows if r.id not in grouped]  # unreadable, or its config vanished since listing
    metrics = _group_metrics(rows)
    if as_json:
        data = [_group_row(g, metrics) for g in groups] + [_unreadable_row(r, metrics) for r in alone]
        print(json.dumps(data, ensure_ascii=False))
        return
    headings = {"val_loss": "val MSE" if metrics == ("val_loss",) else "val loss", "val_accuracy": "val acc"}
    table = [["name", "task", "method", "λ", "seeds", "n", *(headings[m] + " (95% CI)" for m in metrics), "status"]]
    for group in groups:
        first = group.rows[0]
        table.append(
            [
                first.name,
                _cell("task", first.task),
                _cell("method", first.method),
                _cell("lam", first.lam),  # the shared setting: a learned λ differs from seed to seed
                ",".join(str(s) for s in group.seeds),
                str(group.n),
                *(_interval_cell(m, group.final(m)) for m in metrics),
                _group_status(group),
            ]
        )
    for row in alone:
        table.append([row.name, "-", "-", "-", "-", "-", *("-" for _ in metrics), row.status])
    table = [[printable(cell) for cell in line] for line in table]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _open(ref: str, root: Path) -> Run:
    return RunStore(root).open(ref, tensorboard=False)


def _show(args: argparse.Namespace) -> int:
    run = _open(args.run, args.root)
    summary = summarize(run.path)
    data: dict[str, Any] = {
        **dataclasses.asdict(run.info),
        "iterations": summary.iterations,
        "val_mse": summary.val_mse,
        "val_loss": summary.val_loss,
        "val_accuracy": summary.val_accuracy,
        "listed_status": summary.status,
        "reason": summary.reason,
        "path": str(run.path),
        "config": run.config.to_dict(),
    }
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
        return 0
    lineage = f"{run.info.parent} at iteration {run.info.fork_iteration}" if run.info.parent else "-"
    val = "-" if summary.val_loss is None else f"{summary.val_loss:.4g}"
    if summary.val_accuracy is not None:
        val += f" (accuracy {100 * summary.val_accuracy:.1f}%)"
    status = run.info.status if summary.status == run.info.status else f"{summary.status} (recorded {run.info.status})"
    for label, value in (
        ("id", run.id),
        ("name", run.info.name),
        ("status", status),
        ("created", run.info.created),
        ("forked from", lineage),
        ("iterations", "-" if summary.iterations is None else summary.iterations),
        ("task", run.config.task),
        ("val MSE" if summary.val_accuracy is None else "val loss", val),
        ("engine", run.info.engine_version),
        ("path", run.path),
        ("notes", run.info.notes or "-"),
        *((("problem", summary.reason),) if summary.reason else ()),
    ):
        print(printable(f"{label + ':':13}{value}"))
    print("config:")
    for key, value in run.config.to_dict().items():
        print(printable(f"  {key} = {value!r}"))
    return 0


def _diff(args: argparse.Namespace) -> int:
    a, b = _open(args.run_a, args.root), _open(args.run_b, args.root)
    config = {k: [getattr(a.config, k), getattr(b.config, k)] for k in a.config.changed(b.config)}
    lineage = {
        k: [getattr(a.info, k), getattr(b.info, k)]
        for k in ("parent", "fork_iteration")
        if getattr(a.info, k) != getattr(b.info, k)
    }
    if args.json:
        print(json.dumps({"a": a.id, "b": b.id, "config": config, "run": lineage}, ensure_ascii=False))
        return 0
    print(printable(f"a: {a.id} ({a.info.name})  b: {b.id} ({b.info.name})"))
    if not config and not lineage:
        print("same settings, parent and fork iteration")
    for key, (va, vb) in {**config, **lineage}.items():
        print(printable(f"{key}: {va!r} -> {vb!r}"))
    return 0
