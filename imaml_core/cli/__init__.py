"""The ``imaml`` command line: train, eval, profile, runs, sweep.

Every failure a user can cause (bad numbers, bad files, unwritable folders) ends as one line
``error: ...`` on stderr and exit status 2, with nothing already written damaged.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from imaml_core.cli.common import EXIT_USAGE, Parser, UsageError, positive
from imaml_core.cli.data import add_data_parser, cmd_data
from imaml_core.cli.runs import add_runs_parser, cmd_runs
from imaml_core.cli.sweep import add_sweep_parser, cmd_sweep
from imaml_core.cli.train import add_train_parsers, cmd_eval, cmd_profile, cmd_train
from imaml_core.common.errors import ImamlError
from imaml_core.common.text import printable
from imaml_core.engine.heap import keep_freed_memory

__all__ = ["EXIT_USAGE", "UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="imaml", description="iMAML Studio engine: meta-train, evaluate and profile.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    add_train_parsers(sub)
    add_runs_parser(sub)
    add_sweep_parser(sub)
    add_data_parser(sub)
    return parser


def _apply_threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None) is not None:
        positive("threads", args.threads)
        import torch

        torch.set_num_threads(args.threads)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imaml`` console script."""
    try:
        args = build_parser().parse_args(argv)
        _apply_threads(args)
        keep_freed_memory()  # a training process reuses its (B, P) temporaries (see heap.py)
        handler = {
            "train": cmd_train,
            "eval": cmd_eval,
            "profile": cmd_profile,
            "runs": cmd_runs,
            "sweep": cmd_sweep,
            "data": cmd_data,
        }[args.command]
        return handler(args)
    except ImamlError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(printable(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
