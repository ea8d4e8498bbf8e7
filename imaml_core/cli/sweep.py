"""``imaml sweep``: search config fields with Optuna, run the trials on Ray Tune, every trial a run folder.

The base config is ``--config`` (or the defaults) with the task-family flags of ``imaml train`` applied
(``--task``, ``--ways``, ``--queries``, ...; a family picked without ``--config`` brings its suggested
settings). Bad input (an unknown field or distribution, an empty or inverted range, a log range touching 0,
an empty choice list, a metric the base's task family does not have, an unreachable ``--address``) is one
line ``error: ...``, exit status 2, and nothing written.
An interrupted sweep (Ctrl-C, SIGTERM) records where it stopped and why, prints one line ``error: interrupted
...`` and exits 130; ``--resume DIR`` continues it. ``--show DIR`` prints a sweep folder's summary as it
stands (trials, best, parameter importance), reading sweep.json only: no Ray, nothing written.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from pathlib import Path
from typing import Any

from imaml_core.cli.tasks import TASK_FLAGS, add_task_arguments, config_for_task
from imaml_core.common.config import ExperimentConfig
from imaml_core.common.text import printable
from imaml_core.experiments.sweep import (
    METRIC_TABLE,
    METRICS,
    SearchSpace,
    SweepError,
    SweepSettings,
    SweepSummary,
    TrialSummary,
    default_metric,
    load_spec,
    param_importance,
    parse_search,
    read_sweep,
    resume_sweep,
    run_sweep,
)

EXIT_INTERRUPTED = 130
_DEFAULTS = SweepSettings()
# Flags that describe a new sweep; --resume takes the recorded ones.
_NEW_SWEEP_FLAGS = (
    "config",
    "search",
    "spec",
    "trials",
    "iterations",
    "metric",
    "seeds",
    "report_every",
    "cpus_per_trial",
    *TASK_FLAGS,
)


def add_sweep_parser(sub: Any) -> None:
    """Register ``imaml sweep`` under the ``imaml`` parser's subcommands."""
    sweep = sub.add_parser(
        "sweep",
        help="search config fields (Optuna TPE, ASHA early stopping) on Ray Tune; every trial a run folder",
        description=(
            "SPEC: loguniform:LO:HI, uniform:LO:HI, int:LO:HI, intlog:LO:HI (ranges include both ends) or "
            f"choice:A,B,... Metrics (mean over seeds): {_metrics_help()}. The MSE metrics are for regression, "
            "the accuracies for classification; ASHA stops trials by their validation loss."
        ),
    )
    sweep.add_argument("--out", type=Path, help="folder of a new sweep (its trials' run folders go inside)")
    sweep.add_argument("--resume", type=Path, help="sweep folder to continue without repeating ended trials")
    sweep.add_argument(
        "--show", type=Path, help="print a sweep folder's trials, best and parameter importance; runs nothing"
    )
    sweep.add_argument("--config", type=Path, help="base TOML config (searched fields vary around it)")
    add_task_arguments(sweep)
    sweep.add_argument("--search", action="append", metavar="FIELD=SPEC", help="a searched field (repeatable)")
    sweep.add_argument("--spec", type=Path, help='TOML file with a [search] table of FIELD = "SPEC"')
    sweep.add_argument("--trials", type=int, help=f"trials in all (default {_DEFAULTS.trials})")
    sweep.add_argument("--iterations", type=int, help=f"meta-iterations per trial (default {_DEFAULTS.iterations})")
    sweep.add_argument(
        "--metric",
        choices=METRICS,
        help=f"what to optimise, mean over seeds: {_metrics_by_mode()} (default val_mse, or val_accuracy for "
        "a classification task)",
    )
    sweep.add_argument("--seeds", type=int, help="runs per trial with seeds seed, seed+1, ... (default 1)")
    sweep.add_argument(
        "--report-every",
        type=int,
        help=f"meta-iterations between reports, where ASHA may stop a trial (default {_DEFAULTS.report_every})",
    )
    sweep.add_argument("--address", help="Ray cluster to run on (default: Ray inside this process)")
    sweep.add_argument("--cpus-per-trial", type=int, help="CPUs (and torch threads) per trial (default 1)")
    sweep.add_argument(
        "--json", action="store_true", help="print the best trial, every trial and the importance as JSON"
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


_MODE_WORDS = {"min": "minimised", "max": "maximised"}


def _metrics_help() -> str:
    """Each metric, its direction and what it measures."""
    return "; ".join(f"{m.name} ({_MODE_WORDS[m.mode]}), {m.doc}" for m in METRIC_TABLE.values())


def _metrics_by_mode() -> str:
    """``a, b (minimised); c, d (maximised)``."""
    groups = {mode: [m.name for m in METRIC_TABLE.values() if m.mode == mode] for mode in _MODE_WORDS}
    return "; ".join(f"{', '.join(names)} ({_MODE_WORDS[mode]})" for mode, names in groups.items() if names)


def _settings(args: argparse.Namespace, base: ExperimentConfig) -> SweepSettings:
    values = {
        name: getattr(args, name)
        for name in ("metric", "trials", "iterations", "seeds", "report_every", "cpus_per_trial", "address")
        if getattr(args, name) is not None
    }
    values.setdefault("metric", default_metric(base))
    return SweepSettings(**{**_DEFAULTS.to_dict(), **values}).validate()


def _base(args: argparse.Namespace) -> ExperimentConfig:
    """The base config: ``--config`` (or the defaults) with the task-family flags, as ``imaml train`` takes them."""
    from_file = args.config is not None
    base = ExperimentConfig.load(args.config) if from_file else ExperimentConfig()
    return config_for_task(args, base, TASK_FLAGS, from_file)


def _space(args: argparse.Namespace) -> SearchSpace:
    dimensions = load_spec(args.spec) if args.spec else []
    dimensions += [parse_search(text) for text in args.search or []]
    return SearchSpace.combine(dimensions)


def cmd_sweep(args: argparse.Namespace) -> int:
    if sum(folder is not None for folder in (args.out, args.resume, args.show)) != 1:
        raise SweepError(
            "sweep needs either --out DIR (a new sweep), --resume DIR (continue one) or --show DIR (print one)"
        )
    if args.out is None:
        flags = _NEW_SWEEP_FLAGS if args.resume is not None else (*_NEW_SWEEP_FLAGS, "address")
        given = [k for k in flags if getattr(args, k) is not None]
        if given:
            flag = "queries" if given[0] == "query" else given[0].replace("_", "-")
            how = "--resume continues with" if args.resume is not None else "--show prints"
            raise SweepError(f"{how} the sweep's own settings; --{flag} does not apply")
    if args.show is not None:
        _print_result(read_sweep(args.show), args.json)
        return 0
    progress = None if args.quiet else _Progress()
    folder = args.resume if args.resume is not None else args.out
    previous = signal.signal(signal.SIGTERM, _as_interrupt)  # the sweep's driver handles it while Ray Tune runs
    try:
        if args.resume is not None:
            read_sweep(args.resume)  # a one-line error for a folder that is not a sweep, before Ray starts
            summary = resume_sweep(args.resume, args.address, progress)
        else:
            base = _base(args)
            space = _space(args)
            summary = run_sweep(args.out, base, space, _settings(args, base), progress)
    except KeyboardInterrupt:
        return _interrupted(folder)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_result(summary, args.json)
    if summary.status != "finished":
        return _interrupted(folder)
    return 0


def _as_interrupt(_signum: int, _frame: Any) -> None:
    """SIGTERM stops the command as Ctrl-C does."""
    raise KeyboardInterrupt


def _interrupted(folder: Path) -> int:
    """One line: how the sweep stopped (as recorded), and how to continue it."""
    try:
        summary = read_sweep(folder)
    except SweepError:
        print("error: interrupted", file=sys.stderr)  # before the sweep had a record
        return EXIT_INTERRUPTED
    how = summary.message or "interrupted"
    how = how if how.startswith("interrupted") else f"interrupted: {how}"
    print(printable(f"error: {how}; continue with imaml sweep --resume {summary.path}"), file=sys.stderr)
    return EXIT_INTERRUPTED


class _Progress:
    """One stderr line per trial event."""

    def __call__(self, kind: str, trial: TrialSummary) -> None:
        values = " ".join(f"{k}={_value(v)}" for k, v in trial.config.items())
        if kind == "started":
            line = f"trial {trial.number} ({trial.id}) started: {values}"
        elif kind in ("finished", "pruned"):
            metric = _num(trial.metric)
            line = f"trial {trial.number} ({trial.id}) {kind} at {trial.iterations} iterations: metric {metric}"
        elif kind == "restarted":
            line = f"trial {trial.number} ({trial.id}) {trial.reason}"
        else:
            line = f"trial {trial.number} ({trial.id}) {kind}: {trial.reason}"
        print(printable(line), file=sys.stderr, flush=True)


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _num(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _print_result(summary: SweepSummary, as_json: bool) -> None:
    """The summary as JSON (with ``importance``) or as a table, the best trial and one importance line."""
    importance = param_importance(summary)
    if as_json:
        print(json.dumps({**summary.to_json(), "importance": importance.to_json()}, ensure_ascii=False))
    else:
        _print_summary(summary)
        print(printable(importance.line()))


def _print_summary(summary: SweepSummary) -> None:
    fields = list(summary.space.fields)
    head = ["#", "status", "iterations", summary.metric, *fields]
    rows = [head] + [
        [str(t.number), t.status, str(t.iterations), _num(t.metric), *(_value(t.config.get(f)) for f in fields)]
        for t in summary.ranked()  # best first by the metric's mode
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print(printable("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()))
    best = summary.best
    if summary.status != "finished":
        return  # the best so far is not the sweep's best
    if best is None:
        print("no trial finished", file=sys.stderr)
    else:
        highest = "highest" if summary.mode == "max" else "lowest"
        print(f"best: trial {best.number}, {summary.metric} {_num(best.metric)} ({highest}), run {best.run}")
