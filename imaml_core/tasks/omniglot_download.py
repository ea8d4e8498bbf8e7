"""Getting the official Omniglot zips into the data folder: downloaded (resumable, md5-checked) or copied
from a local folder or zip.

A download streams into ``NAME.part`` beside its target and becomes ``NAME`` by an atomic rename only once
its md5 matches, so the data folder never holds a partial or damaged zip under an official name. An
interrupted download (a lost connection, a cancel, Ctrl-C) leaves the ``.part`` and the next attempt asks
the server for the rest. Files are created with the user's umask and never through a link.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from imaml_core.common.errors import ImamlError
from imaml_core.common.files import FileRefused, atomic_write_bytes, create_exclusive, open_regular, read_bounded
from imaml_core.tasks.omniglot import KNOWN_MD5, MAX_ZIP_BYTES, DataError, default_data_dir

OFFICIAL = {name: KNOWN_MD5[name] for name in ("images_background.zip", "images_evaluation.zip")}  # name → md5
BASE_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"
TIMEOUT_S = 30.0  # per socket operation: a stalled server ends the download instead of hanging it
CHUNK = 64 * 1024
MAX_DOWNLOAD_BYTES = 200 << 20  # the official zips are 9.5 and 6.5 MB; a server that sends more is wrong

Progress = Callable[[str, int, int | None], None]  # name, bytes so far, total if known


class DownloadCancelled(ImamlError):
    """``should_stop`` asked for the download to end; the ``.part`` file stays for the next attempt."""


def download_omniglot(
    dest: Path | None = None,
    base_url: str = BASE_URL,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Download the official zips (:data:`OFFICIAL`) from ``base_url`` into ``dest`` (default: the default
    data folder) and return ``dest``. A zip already there with the right md5 is kept. ``progress(name,
    bytes_done, bytes_total_or_None)`` follows each file; ``should_stop`` is asked between chunks."""
    if not base_url.startswith(("http://", "https://")):
        raise DataError(f"the download URL must start with http:// or https://, got {base_url!r}")
    dest = Path(dest) if dest is not None else default_data_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for name, md5 in OFFICIAL.items():
        target = dest / name
        if _md5_of(target) == md5:
            if progress is not None:
                size = target.stat().st_size
                progress(name, size, size)
            continue
        _download(base_url.rstrip("/") + "/" + name, target, md5, progress, should_stop)
    return dest


def _md5_of(path: Path) -> str | None:
    """The md5 of the regular file ``path``, or None when it is missing, a link or unreadable."""
    try:
        with open_regular(path) as fh:
            return _hash_stream(fh, hashlib.md5()).hexdigest()
    except OSError:
        return None


def _hash_stream(fh: IO[bytes], digest: hashlib._Hash) -> hashlib._Hash:
    while chunk := fh.read(1 << 20):
        digest.update(chunk)
    return digest


def _download(
    url: str, target: Path, md5: str, progress: Progress | None, should_stop: Callable[[], bool] | None
) -> None:
    part = target.with_name(target.name + ".part")
    offset = 0
    digest = hashlib.md5()
    try:
        with open_regular(part) as fh:  # a link is refused: the .part is ours to write
            _hash_stream(fh, digest)
            offset = fh.tell()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DataError(f"cannot resume from {part}: {exc}") from None
    if not offset:
        part.unlink(missing_ok=True)
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the .part is already whole (or longer than the file): start over
            exc.close()
            part.unlink()
            return _download(url, target, md5, progress, should_stop)
        exc.close()
        raise DataError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"cannot download {url}: {reason}; fetch the zips by hand and run `imaml data omniglot --from PATH`"
        ) from None
    with response:
        if offset and response.status != 206:  # the server ignored the range: the whole file comes again
            offset, digest = 0, hashlib.md5()
            part.unlink()
        elif offset and not response.headers.get("Content-Range", "").startswith(f"bytes {offset}-"):
            part.unlink()
            raise DataError(f"{url} answered the resume with another range; the partial file is deleted, run again")
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        with os.fdopen(create_exclusive(part), "wb") if not offset else open_regular(part, "ab") as out:
            done = offset
            if progress is not None:
                progress(target.name, done, total)
            while True:
                if should_stop is not None and should_stop():
                    raise DownloadCancelled(f"download of {target.name} cancelled; {part} kept for resuming")
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise DataError(f"download of {url} broke off ({exc}); run again to resume") from None
                if not chunk:
                    break
                done += len(chunk)
                if done > MAX_DOWNLOAD_BYTES:
                    raise DataError(f"{url} sends more than {MAX_DOWNLOAD_BYTES} bytes: not an Omniglot zip")
                out.write(chunk)
                digest.update(chunk)
                if progress is not None:
                    progress(target.name, done, total)
            out.flush()
            os.fsync(out.fileno())
    if total is not None and done != total:
        raise DataError(f"download of {url} ended after {done} of {total} bytes; run again to resume")
    if (actual := digest.hexdigest()) != md5:
        part.unlink()
        raise DataError(f"{target.name} from {url} has md5 {actual}, expected {md5}; the download was deleted")
    os.replace(part, target)


def import_omniglot(source: Path, dest: Path | None = None) -> Path:
    """Copy the Omniglot zips at ``source`` (a folder holding them, or one zip) into ``dest`` (default: the
    default data folder), each md5-checked and written atomically; return ``dest``. Only the official zips
    and the small subsets are copied: a custom set is used where it is, with ``--data PATH``."""
    source = Path(source).expanduser()
    if source.is_dir():
        found = [source / name for name in KNOWN_MD5 if (source / name).is_file()]
    elif source.is_file():
        if source.name not in KNOWN_MD5:
            raise DataError(
                f"{source} is not one of the Omniglot zips ({', '.join(KNOWN_MD5)}); "
                "to train on another set, pass it with --data PATH instead"
            )
        found = [source]
    else:
        raise DataError(f"{source} does not exist")
    if not found:
        raise DataError(f"{source} holds none of the Omniglot zips ({', '.join(KNOWN_MD5)})")
    dest = Path(dest).expanduser() if dest is not None else default_data_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for path in found:
        expected = KNOWN_MD5[path.name]
        if _md5_of(dest / path.name) == expected:
            continue
        try:
            data = read_bounded(path, MAX_ZIP_BYTES, follow_links=True)
        except FileRefused as exc:
            raise DataError(str(exc)) from None
        if (actual := hashlib.md5(data).hexdigest()) != expected:
            raise DataError(f"{path} has md5 {actual}, expected {expected}: damaged or not the official file")
        atomic_write_bytes(dest / path.name, data)
    return dest
