"""How fast a big runs folder lists, and how fast histories load for overlays.

    PYTHONPATH=. .venv/bin/python -m bench.runs_store [--quick] [--runs N] [--rows N]

Builds a runs folder of ``--runs`` runs (default 300) whose metrics.csv hold ``--rows`` rows each (default
20,000, validated every 10th), copies of one real tiny run with their own run.json, then times:
``imaml runs list`` as a user runs it (a fresh process: interpreter start, imports, listing, printing), beside
the same with ``import torch`` first (what the listing cost while it loaded the engine), ``RunStore.list()`` on
a new store (what ``imaml runs list`` and the Runs panel do on open) and again on
the same store with nothing changed (the panel's refresh every few seconds, which re-reads only changed
runs), ``imaml runs list --json`` in-process, and reading 20 histories: every column, the overlay's five
columns binned to 2,000 points, and the same through a :class:`HistoryReader` (the window's way: parsed
in its child process, the result sent back as .npz).
Times are medians of 5 after one warm-up, with the files in the page cache.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.cli import main as imaml
from imaml_core.common.report import CSV_FIELDS
from imaml_core.experiments.runs import HistoryReader, Run, RunStore
from imaml_core.experiments.runs._info import new_run_id, read_info, write_info

from .common import environment, markdown_table, median_seconds, parse_args, write_csv, write_markdown

OVERLAY_RUNS = 20
REPEATS = 5  # timed calls per figure, after one warm-up
OVERLAY_POINTS = 2000
# What an overlay plots: the meta-loss (train and validation), memory and CG residual against iteration.
OVERLAY_COLUMNS = ("iteration", "meta_loss", "val_loss", "memory_bytes", "cg_residual")


def _options(parser) -> None:
    parser.add_argument("--runs", type=int, default=None, help="runs in the folder (default 300; quick 30)")
    parser.add_argument("--rows", type=int, default=None, help="metrics rows per run (default 20000; quick 2000)")


def _metrics_text(rows: int) -> str:
    lines = [",".join(CSV_FIELDS)]
    for i in range(1, rows + 1):
        loss = 4.0 / math.sqrt(i)
        val = f"{loss * 1.1:.17g}" if i % 10 == 0 else "nan"
        values = {
            "iteration": str(i),
            "method": "imaml",
            "meta_loss": f"{loss:.17g}",
            "pre_loss": f"{loss * 2:.17g}",
            "val_loss": val,
            "cg_residual": "1.234567e-05",
            "cg_iterations": "4.8",
            "cg_nonpositive": "0",
            "stationarity": "0.0123456789",
            "memory_bytes": "1234567",
            "seconds": "0.00345678",
            "diverged": "0",
            "lam": "20.0",
            "cg_steps": "5",
            "inner_steps": "10",
            "inner_lr": "0.01",
            "meta_lr": "0.001",
            "meta_batch": "25",
        }
        lines.append(",".join(values.get(k, "") for k in CSV_FIELDS))
    return "\n".join(lines) + "\n"


def build(root: Path, runs: int, rows: int) -> None:
    template = root / "template"
    cfg = ExperimentConfig(meta_batch=5, inner_steps=3, val_tasks=20, hidden=[40, 40])
    with Run.create(template, cfg, tensorboard=False) as run:
        trainer = MetaTrainer(cfg)
        trainer.step()
        run.save_checkpoint(trainer)
        run.set_status("finished")
    (template / "metrics.csv").write_text(_metrics_text(rows))
    info = read_info(template)
    for _ in range(runs):
        run_id = new_run_id()
        shutil.copytree(template, root / run_id)
        write_info(root / run_id, info.replace(id=run_id, name=f"run {run_id[-6:]}"))
    shutil.rmtree(template)


def main() -> None:
    args = parse_args("run store listing and history loading", extra=_options)
    runs = args.runs or (30 if args.quick else 300)
    rows = args.rows or (2000 if args.quick else 20_000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, runs, rows)
        store = RunStore(root)
        listed = store.list()
        assert len(listed) == runs and all(r.iterations == rows for r in listed)
        ids = [r.id for r in listed[:OVERLAY_RUNS]]

        def cli_list() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                imaml(["runs", "list", str(root), "--json"])

        def through_child() -> None:
            futures = [reader.read(store.find(i), OVERLAY_POINTS, OVERLAY_COLUMNS) for i in ids]
            for future in futures:
                future.result()

        def command(prelude: str) -> None:
            code = (
                f"{prelude}import sys; from imaml_core.cli import main; sys.exit(main(['runs', 'list', {str(root)!r}]))"
            )
            subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)

        reader = HistoryReader()
        reader.read(store.find(ids[0])).result()  # the child started
        results = [
            ("imaml runs list, a fresh process", runs, median_seconds(lambda: command(""), REPEATS)),
            (
                "the same with torch imported first (the engine's weight)",
                runs,
                median_seconds(lambda: command("import torch; "), REPEATS),
            ),
            (
                "RunStore.list(), a new store (every run read)",
                runs,
                median_seconds(lambda: RunStore(root).list(), REPEATS),
            ),
            (
                "RunStore.list() again, nothing changed (the window's refresh)",
                runs,
                median_seconds(store.list, REPEATS),
            ),
            ("imaml runs list --json (in-process)", runs, median_seconds(cli_list, REPEATS)),
            (
                "20 histories, full",
                OVERLAY_RUNS,
                median_seconds(lambda: [store.open(i).metrics() for i in ids], REPEATS),
            ),
            (
                f"20 histories, {len(OVERLAY_COLUMNS)} columns, binned to {OVERLAY_POINTS} points",
                OVERLAY_RUNS,
                median_seconds(lambda: [store.open(i).metrics(OVERLAY_POINTS, OVERLAY_COLUMNS) for i in ids], REPEATS),
            ),
            (
                "the same 20, through HistoryReader's child process",
                OVERLAY_RUNS,
                median_seconds(through_child, REPEATS),
            ),
        ]
        reader.close()
    table = [(name, n, rows, seconds, 1000 * seconds / n) for name, n, seconds in results]
    headers = ["operation", "runs", "rows per run", "seconds", "ms per run"]
    write_csv(args.out / "runs_store.csv", [dict(zip(headers, row, strict=True)) for row in table])
    env = environment()
    write_markdown(
        args.out,
        "runs_store",
        "## Run store: listing and loading histories\n\n"
        + markdown_table(headers, table)
        + f"\n\n{env['cpu']}, torch {env['torch']}; files in the page cache; medians of 5.",
    )


if __name__ == "__main__":
    main()
