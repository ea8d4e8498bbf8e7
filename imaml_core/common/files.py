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
from typing import IO, Any

_NEW_FILE_MODE = 0o666  # before the umask, as open(..., "w") creates files


def _create_temporary(target: Path) -> tuple[Path, int]:
    """A new, empty file next to ``target`` with a name no other writer uses (O_EXCL), and its mode."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = create_exclusive(tmp)
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


class FileRefused(OSError):
    """A file the project will not read or write: a link where a run folder's member must be a file, a
    device, a FIFO, or more bytes than its reader accepts. ``str()`` is one line naming the file."""


_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}
_NON_BLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of waiting for a writer


def _open_regular(path: Path, flags: int, follow_links: bool) -> int:
    """A descriptor of ``path`` opened with ``flags``, refused unless it is a regular file (and, without
    ``follow_links``, not a symbolic link). Never blocks on a FIFO."""
    extra = _NON_BLOCK | (0 if follow_links else _NO_FOLLOW) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | extra)
    except OSError as exc:
        if not follow_links and os.path.islink(path):
            raise FileRefused(f"{path} is a symbolic link (refused: a run's files are never followed)") from None
        raise exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
            raise FileRefused(f"{path} is {kind} (refused: only regular files are read)")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bounded(path: str | os.PathLike[str], limit: int, follow_links: bool = False) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them: the limit holds for what is read,
    whatever ``stat`` says (a device reports size 0). A longer file, a link (unless ``follow_links``), a
    FIFO or a device is :class:`FileRefused`."""
    path = Path(path)
    fd = _open_regular(path, os.O_RDONLY, follow_links)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"{path} is larger than {limit} bytes (refused)")
    return data


def open_regular(path: str | os.PathLike[str], mode: str = "rb", follow_links: bool = False) -> IO[Any]:
    """``open(path, mode)`` for reading ("rb", "r") or appending ("ab", "a"), refusing a link (unless
    ``follow_links``), a FIFO or a device; a file to append to must exist."""
    flags = os.O_RDONLY if mode.startswith("r") else os.O_WRONLY | os.O_APPEND
    fd = _open_regular(Path(path), flags, follow_links)
    text = "b" not in mode
    return os.fdopen(fd, mode, encoding="utf-8" if text else None, newline="" if text else None)


def create_exclusive(path: str | os.PathLike[str]) -> int:
    """A new file at ``path`` (umask mode), never through a link and never over an existing name."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, _NEW_FILE_MODE)
