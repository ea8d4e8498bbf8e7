"""run.json: who a run is (id, name, notes), where it came from (parent, fork iteration) and how it stands.

The file is small JSON, rewritten atomically whenever the status or the name changes. Readers accept
unknown keys (a newer engine may add some) but refuse a file without the required ones, with a one-line
reason naming the folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from imaml_core.common.errors import ImamlError
from imaml_core.common.files import FileRefused, atomic_write_text, read_bounded
from imaml_core.common.text import parse_version, printable

INFO_FILE = "run.json"
INFO_FORMAT = "imaml-studio-run"
INFO_FORMAT_VERSION = 1
# "pruned": a sweep stopped the run early because its validation loss lagged (see imaml_core/sweep).
STATUSES = ("running", "paused", "finished", "failed", "pruned")
UNREADABLE = "unreadable"  # what listings show for a folder that is not a readable run
MAX_INFO_BYTES = 1 << 20  # run.json is a few hundred bytes; refuse to parse megabytes


class RunError(ImamlError):
    """A run folder that is missing, unreadable or inconsistent, or a run that cannot be written."""


def new_run_id(now: datetime | None = None) -> str:
    """A short id that sorts by creation time: ``YYYYMMDD-HHMMSS-xxxxxx`` (UTC, then 24 random bits)."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` (seconds precision)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class RecordKind:
    """A versioned JSON record of ours (run.json, sweep.json): what a reader checks, and how it fails."""

    file: str  # the file's name in its folder
    format: str  # the "format" tag it must carry
    version: int  # the newest "format_version" this engine reads
    folder_kind: str  # "run", "sweep": a folder without the file is "not a <folder_kind> folder"
    max_bytes: int
    error: type[ImamlError]


def read_record(folder: Path, kind: RecordKind) -> dict[str, Any]:
    """The record in ``folder`` as a dict; a missing, oversized, unreadable, non-JSON, foreign or too new
    file is ``kind.error`` with a one-line message naming the file."""
    path = folder / kind.file
    where = f"{folder}: {kind.file}"
    try:
        text = read_bounded(path, kind.max_bytes).decode("utf-8")
    except FileNotFoundError:
        raise kind.error(f"{folder}: not a {kind.folder_kind} folder (no {kind.file})") from None
    except FileRefused as exc:
        raise kind.error(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise kind.error(f"{folder}: cannot read {kind.file} ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise kind.error(f"{where}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except (RecursionError, ValueError):  # nested too deeply; an integer of thousands of digits
        raise kind.error(f"{where}: not a record this engine reads (nested too deeply or a number too long)") from None
    if not isinstance(data, dict) or data.get("format") != kind.format:
        raise kind.error(f"{where}: not an iMAML Studio {kind.file} (no format '{kind.format}')")
    version = parse_version(data.get("format_version"))
    if version is None or not 1 <= version <= kind.version:
        shown = printable(repr(data.get("format_version")))[:40]
        raise kind.error(f"{where}: format_version {shown} is not one this iMAML Studio reads (1 to {kind.version})")
    return data


RUN_RECORD = RecordKind(INFO_FILE, INFO_FORMAT, INFO_FORMAT_VERSION, "run", MAX_INFO_BYTES, RunError)


@dataclass(frozen=True)
class RunInfo:
    """The contents of run.json. ``parent`` and ``fork_iteration`` are both None unless the run is a fork."""

    id: str
    name: str = ""
    notes: str = ""
    created: str = ""
    status: str = "running"
    parent: str | None = None
    fork_iteration: int | None = None
    engine_version: str = ""

    def replace(self, **changes: Any) -> RunInfo:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        data = {"format": INFO_FORMAT, "format_version": INFO_FORMAT_VERSION, **dataclasses.asdict(self)}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> RunInfo:
        """Check run.json's fields (read by :func:`read_record`); a bad one is a :class:`RunError`."""
        return cls(
            id=_text(data, "id", where, required=True),
            name=_text(data, "name", where),
            notes=_text(data, "notes", where),
            created=_text(data, "created", where),
            status=_status(data, where),
            parent=_optional_text(data, "parent", where),
            fork_iteration=_fork_iteration(data, where),
            engine_version=_text(data, "engine_version", where),
        )


def read_info(folder: Path) -> RunInfo:
    """The run.json of ``folder``; a missing or invalid file is a :class:`RunError` naming the folder."""
    return RunInfo.from_dict(read_record(folder, RUN_RECORD), f"{folder}: {INFO_FILE}")


def write_info(folder: str | os.PathLike[str], info: RunInfo) -> None:
    """Write run.json into ``folder`` atomically."""
    atomic_write_text(Path(folder) / INFO_FILE, info.to_json())


def _text(data: dict[str, Any], key: str, where: str, required: bool = False) -> str:
    value = data.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise RunError(f"{where}: '{key}' must be {'a non-empty' if required else 'a'} string, got {value!r}")
    return value


def _optional_text(data: dict[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise RunError(f"{where}: '{key}' must be a string or null, got {value!r}")
    return value


def _status(data: dict[str, Any], where: str) -> str:
    value = data.get("status")
    if value not in STATUSES:
        raise RunError(f"{where}: 'status' must be one of {', '.join(STATUSES)}, got {value!r}")
    return value


def _fork_iteration(data: dict[str, Any], where: str) -> int | None:
    value = data.get("fork_iteration")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise RunError(f"{where}: 'fork_iteration' must be a non-negative integer or null, got {value!r}")
    return value
