"""Atomic file writes: a temporary file in the target's folder, fsync, then rename over the target.

A crash or a failed write at any point leaves the previous file intact. The file gets the permissions the
user's umask gives a new file (0644 under the usual 022), as any other program's output would: the
temporary is created with mode 0666 and the kernel applies the umask, so no process-wide umask is read
or changed (``tempfile.mkstemp`` would make every file 0600). A writer that recreates the temporary
itself (safetensors writes 0600 files) gets that mode back before the rename.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

_NEW_FILE_MODE = 0o666  # before the umask, as open(..., "w") creates files


def _create_temporary(target: Path) -> tuple[Path, int]:
    """A new, empty file next to ``target`` with a name no other writer uses (O_EXCL), and its mode."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE)
        except FileExistsError:
            continue
        try:
            return tmp, stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is removed."""
    target = Path(path)
    tmp, mode = _create_temporary(target)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            if stat.S_IMODE(os.fstat(fh.fileno()).st_mode) != mode:
                os.chmod(tmp, mode)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
