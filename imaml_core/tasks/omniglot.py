"""Omniglot (Lake et al., 2015) from its official zips or their unpacked folders, as 28×28 arrays.

A source is a zip or a folder laid out as ``ALPHABET/CHARACTER/NAME_NN.png`` (an official zip has one top
folder above that, ``images_background/``), with exactly 20 drawings per character, ``NN`` = 01…20.
Zips are read in memory and checked before anything is decoded: no entry may leave its folder or be a link,
and their count and sizes are bounded; the four known zip names must have their published md5. Each
source's resized images are cached as an ``.npz`` keyed by the sha256 of its bytes, so a second load reads
one small file instead of decoding thousands of PNGs. Splits are in omniglot_splits.py (re-exported here).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import struct
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import platformdirs
from PIL import Image

from imaml_core.common.files import FileRefused, atomic_write_bytes, read_bounded
from imaml_core.tasks.omniglot_splits import DRAWERS, SIZE, SPLITS, CharacterSet, DataError, omniglot_splits

__all__ = [
    "KNOWN_MD5",
    "SPLITS",
    "CharacterSet",
    "DataError",
    "default_cache_dir",
    "default_data_dir",
    "find_omniglot",
    "load_omniglot",
    "omniglot_splits",
]

KNOWN_MD5 = {  # published in brendenlake/omniglot, python/
    "images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811",
    "images_background_small1.zip": "e704a628b5459e08445c13499850abc4",
    "images_background_small2.zip": "b75a71a51d3b13f821f212756fe481fd",
}
MAX_ENTRIES = 50_000  # the full background zip has about 20,300
MAX_ENTRY_BYTES = 1 << 20  # an Omniglot PNG is under 1 kB
MAX_ZIP_BYTES = 512 << 20  # the full background zip is 9.5 MB
MAX_PIXELS_SIDE = 1024  # the drawings are 105 × 105
CACHE_VERSION = 1  # changes whenever the cached arrays would come out differently
_MAX_CACHE_BYTES = 1 << 30
_PNG = re.compile(r"^[^/]*_(\d\d)\.png$")
_IGNORED = ("__MACOSX",)  # with names starting with ".": what archivers and Finder add
_HOW_TO_GET = "run `imaml data omniglot` to download it, or pass --data PATH"


def default_data_dir() -> Path:
    """Where ``imaml data omniglot`` puts the zips: ``$IMAML_DATA_DIR/omniglot``, else the user data folder."""
    base = os.environ.get("IMAML_DATA_DIR") or platformdirs.user_data_dir("imaml-studio")
    return Path(base) / "omniglot"


def default_cache_dir() -> Path:
    """Where resized arrays are cached: ``$IMAML_CACHE_DIR/omniglot``, else the user cache folder."""
    base = os.environ.get("IMAML_CACHE_DIR") or platformdirs.user_cache_dir("imaml-studio")
    return Path(base) / "omniglot"


@dataclass(frozen=True)
class _Source:
    name: str  # "background", "evaluation", "background_small1", ... : the file name less "images_"
    path: Path
    is_zip: bool


def _source_name(path: Path) -> str:
    stem = path.name[: -len(".zip")] if path.name.endswith(".zip") else path.name
    return stem.removeprefix("images_") or stem


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED


def _discover(root: Path) -> list[_Source]:
    """The sources at ``root``: a zip, a folder of ``images_*.zip`` files and ``images_*/`` folders (a zip
    wins over a folder of the same name: that is usually the zip unpacked), or one unpacked folder."""
    if root.is_file():
        return [_Source(_source_name(root), root, True)]
    if not root.is_dir():
        return []
    found: dict[str, _Source] = {}
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith("images_"):
            continue
        if entry.name.endswith(".zip") and entry.is_file():
            found[_source_name(entry)] = _Source(_source_name(entry), entry, True)
        elif entry.is_dir():
            found.setdefault(_source_name(entry), _Source(_source_name(entry), entry, False))
    if found:
        return [found[k] for k in sorted(found)]
    if any(e.is_dir() and not _ignored(e.name) for e in root.iterdir()):
        return [_Source(_source_name(root), root, False)]
    return []


def find_omniglot(path: str | os.PathLike[str] | None = None) -> Path:
    """The Omniglot data at ``path`` (a zip, an unpacked folder, or a folder holding either), by default
    :func:`default_data_dir`. Only finds the sources; :func:`load_omniglot` checks their contents."""
    root = Path(path).expanduser() if path is not None else default_data_dir()
    try:
        sources = _discover(root)
    except OSError as exc:
        raise DataError(f"cannot read the Omniglot data at {root}: {exc.strerror or exc}") from None
    if not sources:
        what = "does not exist" if not root.exists() else "holds no Omniglot zips or folders"
        raise DataError(f"{root} {what}: {_HOW_TO_GET}")
    return root


def load_omniglot(
    path: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> dict[str, CharacterSet]:
    """Every source found at ``path`` (see :func:`find_omniglot`) by name — ``background``, ``evaluation``,
    ``background_small1``, ``background_small2``, or a custom set's file name less ``images_`` — with its
    characters sorted by name. Cached in ``cache_dir`` (default: :func:`default_cache_dir`)."""
    root = find_omniglot(path)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return {source.name: _load_source(source, cache) for source in _discover(root)}


def _load_source(source: _Source, cache: Path) -> CharacterSet:
    try:
        if source.is_zip:
            data = read_bounded(source.path, MAX_ZIP_BYTES, follow_links=True)
            _check_md5(source.path, data)
            key, read = hashlib.sha256(data).hexdigest(), lambda: _read_zip(source.path, data)
        else:
            files = _walk(source.path)
            key, read = _folder_hash(files), lambda: _decode_all(source.path, files)
    except FileRefused as exc:
        raise DataError(str(exc)) from None
    cache_file = cache / f"omniglot-v{CACHE_VERSION}-{key}.npz"
    charset = _read_cache(cache_file)
    if charset is None:
        charset = read()
        _write_cache(cache_file, charset)
    return charset


def _check_md5(path: Path, data: bytes) -> None:
    expected = KNOWN_MD5.get(path.name)
    if expected is not None and (actual := hashlib.md5(data).hexdigest()) != expected:
        raise DataError(
            f"{path} has md5 {actual}, expected {expected}: the file is damaged or not the official one; "
            f"delete it and {_HOW_TO_GET}"
        )


def _layout(entries: Iterable[tuple[PurePosixPath, bool]], where: str) -> dict[str, list[str]]:
    """The PNG entries of each character ("Alphabet/characterNN", sorted), by drawer number; any entry
    outside the layout, a character without exactly 20 drawings or an empty alphabet is a :class:`DataError`
    naming it."""
    chars: dict[tuple[str, str], dict[int, str]] = {}
    alphabets: dict[str, int] = {}
    expected = "ALPHABET/CHARACTER/NAME_NN.png"
    for rel, is_dir in sorted(entries):
        parts = rel.parts
        if any(_ignored(p) for p in parts):
            continue
        if is_dir and len(parts) in (1, 2):
            alphabets.setdefault(parts[0], 0)
            if len(parts) == 2:
                chars.setdefault((parts[0], parts[1]), {})
            continue
        match = _PNG.match(parts[-1]) if not is_dir and len(parts) == 3 else None
        if match is None or not 1 <= int(match[1]) <= DRAWERS:
            raise DataError(f"{where}: unexpected entry {rel} (expected {expected}, NN from 01 to {DRAWERS})")
        drawings = chars.setdefault((parts[0], parts[1]), {})
        if int(match[1]) in drawings:
            raise DataError(f"{where}: {rel} repeats drawing {match[1]} of {parts[0]}/{parts[1]}")
        drawings[int(match[1])] = str(rel)
        alphabets[parts[0]] = alphabets.get(parts[0], 0) + 1
    for (alphabet, char), drawings in sorted(chars.items()):
        if len(drawings) != DRAWERS:
            raise DataError(f"{where}: {alphabet}/{char} has {len(drawings)} drawings, expected {DRAWERS}")
    for alphabet, count in sorted(alphabets.items()):
        if not count:
            raise DataError(f"{where}: alphabet {alphabet} has no characters")
    if not chars:
        raise DataError(f"{where} holds no Omniglot characters (expected {expected})")
    named = {f"{a}/{c}": drawings for (a, c), drawings in chars.items()}
    return {name: [v[n] for n in sorted(v)] for name, v in sorted(named.items())}


def _read_zip(path: Path, data: bytes) -> CharacterSet:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # BadZipFile, and what a crafted directory makes zipfile raise
        raise DataError(f"{path} is not a readable zip ({type(exc).__name__}: {exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise DataError(f"{path} has {len(infos)} entries, more than {MAX_ENTRIES} (refused)")
        by_name = {}
        for info in infos:
            _check_entry(path, info)
            by_name[info.filename.rstrip("/")] = info
        files = sorted(n for n, i in by_name.items() if not i.is_dir() and not any(map(_ignored, n.split("/"))))
        # One top folder (as in the official zips) when every file is under it and most are 4 levels deep.
        tops = {n.split("/")[0] for n in files}
        depth = Counter(n.count("/") for n in files).most_common(1)[0][0] if files else 0
        top = tops.pop() if len(tops) == 1 and depth == 3 else ""
        entries = []
        for name, info in by_name.items():
            parts = PurePosixPath(name).parts
            if top and parts[0] != top and not _ignored(parts[0]):
                raise DataError(f"{path}: entry {name} is outside the top folder {top}/")
            if top and parts[0] == top:
                parts = parts[1:]
            if parts:
                entries.append((PurePosixPath(*parts), info.is_dir()))
        layout = _layout(entries, str(path))

        def read(rel: str) -> bytes:
            try:
                with archive.open(by_name[f"{top}/{rel}" if top else rel]) as fh:
                    return fh.read(MAX_ENTRY_BYTES + 1)
            except Exception as exc:  # a bad CRC, an encrypted entry, an unknown compression method…
                raise DataError(f"{path}: entry {rel} cannot be read ({type(exc).__name__}: {exc})") from None

        return _decode_layout(layout, read, str(path))


def _check_entry(path: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = name.rstrip("/").split("/")
    if name.startswith(("/", "\\")) or "\\" in name or ":" in parts[0] or {"", ".", ".."} & set(parts):
        raise DataError(f"{path}: entry {name!r} leaves its folder (refused)")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DataError(f"{path}: entry {name!r} is a symbolic link (refused)")
    if info.file_size > MAX_ENTRY_BYTES:
        raise DataError(f"{path}: entry {name!r} unpacks to {info.file_size} bytes, more than {MAX_ENTRY_BYTES}")


def _walk(root: Path) -> dict[str, bytes | None]:
    """Relative path → bytes of each file (None for a folder) under an unpacked source, two folder levels
    deep; a link, a FIFO or a device anywhere is refused."""
    found: dict[str, bytes | None] = {}
    pending = [(root, PurePosixPath())]
    while pending:
        folder, rel = pending.pop()
        with os.scandir(folder) as it:
            for entry in it:
                sub = rel / entry.name
                if entry.is_symlink():
                    raise DataError(f"{root}: {sub} is a symbolic link (refused)")
                if len(found) >= MAX_ENTRIES:
                    raise DataError(f"{root} has more than {MAX_ENTRIES} entries (refused)")
                if entry.is_dir(follow_symlinks=False):
                    found[str(sub)] = None
                    if len(sub.parts) < 3 and not _ignored(entry.name):
                        pending.append((Path(entry.path), sub))
                elif _ignored(entry.name):
                    continue
                elif entry.is_file(follow_symlinks=False):
                    try:
                        found[str(sub)] = read_bounded(entry.path, MAX_ENTRY_BYTES)
                    except FileRefused as exc:
                        raise DataError(f"{root}: {sub}: {exc}") from None
                else:
                    raise DataError(f"{root}: {sub} is not a regular file (refused)")
    return found


def _folder_hash(files: dict[str, bytes | None]) -> str:
    """sha256 over the sorted relative paths and the bytes of each file, each length-prefixed."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        data = files[rel]
        name = rel.encode("utf-8", "surrogateescape")
        digest.update(struct.pack("<Q", len(name)) + name)
        digest.update(b"D" if data is None else b"F" + struct.pack("<Q", len(data)) + data)
    return digest.hexdigest()


def _decode_all(root: Path, files: dict[str, bytes | None]) -> CharacterSet:
    layout = _layout(((PurePosixPath(rel), data is None) for rel, data in files.items()), str(root))
    return _decode_layout(layout, lambda rel: files[rel] or b"", str(root))


def _decode_layout(layout: dict[str, list[str]], read: Callable[[str], bytes], where: str) -> CharacterSet:
    images = np.empty((len(layout), DRAWERS, SIZE, SIZE), dtype=np.uint8)
    for c, drawings in enumerate(layout.values()):
        for d, rel in enumerate(drawings):
            images[c, d] = _decode(read(rel), f"{where}: {rel}")
    return CharacterSet(images, tuple(name.split("/")[0] for name in layout), tuple(layout))


def _decode(data: bytes, where: str) -> np.ndarray:
    """One drawing resized to 28×28 with Lanczos after ``convert("L")`` (as the MAML and iMAML code does),
    inverted so ink is 255."""
    if len(data) > MAX_ENTRY_BYTES:
        raise DataError(f"{where} is larger than {MAX_ENTRY_BYTES} bytes (refused)")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            if max(im.size) > MAX_PIXELS_SIDE:
                raise DataError(f"{where} is {im.size[0]}×{im.size[1]} pixels, more than {MAX_PIXELS_SIDE} a side")
            small = im.convert("L").resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    except DataError:
        raise
    except Exception as exc:  # Pillow raises many kinds on a damaged file (OSError, SyntaxError, struct.error…)
        raise DataError(f"{where} is not a readable PNG ({type(exc).__name__}: {exc})") from None
    return 255 - np.asarray(small, dtype=np.uint8)


def _read_cache(path: Path) -> CharacterSet | None:
    """The cached set, or None when the file is missing, a link, damaged or not what this version writes."""
    try:
        data = read_bounded(path, _MAX_CACHE_BYTES)
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            version, images = npz["version"], npz["images"]
            alphabets, characters = npz["alphabets"], npz["characters"]
    except Exception:  # missing, refused, truncated or not an npz: rebuilt, never an error
        return None
    n = len(images) if images.ndim == 4 else -1
    if (
        version.shape != () or int(version) != CACHE_VERSION or images.dtype != np.uint8
        or images.shape[1:] != (DRAWERS, SIZE, SIZE) or n < 1
        or alphabets.dtype.kind != "U" or alphabets.shape != (n,)
        or characters.dtype.kind != "U" or characters.shape != (n,)
    ):  # fmt: skip
        return None
    names = tuple(str(c) for c in characters)
    alphas = tuple(str(a) for a in alphabets)
    if names != tuple(sorted(set(names))) or any(not c.startswith(a + "/") for a, c in zip(alphas, names, strict=True)):
        return None
    return CharacterSet(images, alphas, names)


def _write_cache(path: Path, charset: CharacterSet) -> None:
    """Write the cache atomically; a folder that cannot be written costs speed only, so it is a warning."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        version=np.array(CACHE_VERSION),
        images=charset.images,
        alphabets=np.array(charset.alphabets, dtype=str),
        characters=np.array(charset.characters, dtype=str),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        warnings.warn(f"Omniglot cache not written to {path}: {exc.strerror or exc}", RuntimeWarning, stacklevel=3)
