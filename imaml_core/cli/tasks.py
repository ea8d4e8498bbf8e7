"""The task-family flags of ``imaml train``, ``eval`` and ``profile``: which family, its data and its sizes.

``--task sinusoid`` is the default and changes nothing. Picking a classification family without a
``--config`` takes the paper's settings for it (``with_family_defaults``) for every field not given.
"""

from __future__ import annotations

import argparse
from typing import Any

from imaml_core.common.config import DATA_SPLITS, ExperimentConfig

# Command-line flag -> config field of the family's settings (``--queries`` sets ``query``).
TASK_FLAGS = {"task": str, "data": str, "split": str, "ways": int, "query": int, "filters": int, "glyph_classes": int}


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    """``--task``, ``--data``, ``--split``, ``--ways``, ``--queries``, ``--filters`` and ``--glyph-classes``."""
    parser.add_argument(
        "--task",
        metavar="FAMILY",
        help="sinusoid (default), omniglot, glyphs (synthetic, no download), or package.module:name",
    )
    parser.add_argument("--data", metavar="PATH", help=ExperimentConfig.doc("data"))
    parser.add_argument("--split", choices=DATA_SPLITS, help=ExperimentConfig.doc("split"))
    parser.add_argument("--ways", type=int, help=ExperimentConfig.doc("ways"))
    parser.add_argument(
        "--queries", dest="query", type=int, help="query examples per class (default: as many as --shots)"
    )
    parser.add_argument("--filters", type=int, help=ExperimentConfig.doc("filters"))
    parser.add_argument("--glyph-classes", type=int, help=ExperimentConfig.doc("glyph_classes"))


def given_fields(args: argparse.Namespace, fields: Any) -> set[str]:
    """The config fields among ``fields`` that the command line sets."""
    return {k for k in fields if getattr(args, k, None) is not None}


def config_for_task(args: argparse.Namespace, base: ExperimentConfig, flags: Any, from_file: bool) -> ExperimentConfig:
    """``base`` with the command line's ``flags`` applied; a new family's suggested settings fill the rest
    unless a config file gave them."""
    from imaml_core.tasks import with_family_defaults

    given = given_fields(args, flags)
    config = base.replace(**{k: getattr(args, k) for k in given})
    if from_file or config.task == "sinusoid":
        return config
    return with_family_defaults(config, given)
