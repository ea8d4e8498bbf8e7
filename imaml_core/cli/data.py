"""``imaml data omniglot``: put the Omniglot zips in the data folder (downloaded, or copied with ``--from``)
and build their cache once, so training starts without waiting on thousands of PNG decodes.

Progress goes to stderr; stdout says where the data and cache are and what they hold (``--json``: one
object). Every failure is one ``error:`` line and exit status 2, and a broken-off download resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from imaml_core.common.text import printable


def add_data_parser(sub: Any) -> None:
    """Register ``data omniglot`` under the ``imaml`` parser's subcommands."""
    data = sub.add_parser("data", help="get real data sets (Omniglot)")
    sets = data.add_subparsers(dest="data_command", required=True, parser_class=type(data))
    omniglot = sets.add_parser(
        "omniglot",
        help="download (or copy) the Omniglot zips and build their cache",
        description="Download images_background.zip and images_evaluation.zip (md5-checked, resumable), or "
        "copy them (or the small subsets) with --from, then load them once to build the cache.",
    )
    omniglot.add_argument(
        "--to", type=Path, metavar="DIR", help="data folder (default: $IMAML_DATA_DIR/omniglot, else the user's)"
    )
    origin = omniglot.add_mutually_exclusive_group()
    origin.add_argument(
        "--from", dest="source", type=Path, metavar="PATH", help="a folder holding the zips, or one zip"
    )
    origin.add_argument("--url", help="the folder URL the zips are in (default: brendenlake/omniglot on GitHub)")
    omniglot.add_argument("--json", action="store_true", help="one JSON object on stdout")


def cmd_data(args: argparse.Namespace) -> int:
    # The loader (numpy, Pillow) loads here, so the other commands start without it.
    from imaml_core.tasks.omniglot import default_cache_dir, default_data_dir, load_omniglot, omniglot_splits
    from imaml_core.tasks.omniglot_download import BASE_URL, download_omniglot, import_omniglot

    dest = args.to if args.to is not None else default_data_dir()
    if args.source is not None:
        import_omniglot(args.source, dest)
    else:
        with _Bars() as bars:
            download_omniglot(dest, args.url or BASE_URL, progress=bars.update)
    print("loading the zips once to build the cache…", file=sys.stderr)
    sets = load_omniglot(dest)
    split = "lake" if "background" in sets and "evaluation" in sets else "alphabet"
    parts = omniglot_splits(sets, split) if split == "lake" or len(_alphabets(sets)) >= 3 else None
    report = {
        "data": str(dest),
        "cache": str(default_cache_dir()),
        "sets": {name: {"characters": len(s), "alphabets": len(set(s.alphabets))} for name, s in sets.items()},
        "split": split if parts is not None else None,
        "parts": {name: len(part) for name, part in parts.items()} if parts is not None else None,
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(printable(f"data:  {report['data']}"))
    print(printable(f"cache: {report['cache']}"))
    for name, counts in report["sets"].items():
        print(printable(f"  {name}: {counts['characters']} characters in {counts['alphabets']} alphabets"))
    if parts is not None:
        sizes = ", ".join(f"{len(part)} {name}" for name, part in parts.items())
        print(f"default split ({split}): {sizes} characters")
    return 0


def _alphabets(sets: dict[str, Any]) -> set[str]:
    return {a for s in sets.values() for a in s.alphabets}


class _Bars:
    """One tqdm bar on stderr per file downloaded (none when stderr is not a terminal)."""

    def __init__(self) -> None:
        self._bar: Any = None  # a tqdm bar
        self._name = ""

    def update(self, name: str, done: int, total: int | None) -> None:
        from tqdm import tqdm

        if name != self._name:
            self.close()
            self._name = name
            self._bar = tqdm(
                total=total, initial=done, desc=name, unit="B", unit_scale=True, file=sys.stderr, disable=None
            )
        elif self._bar is not None:
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
