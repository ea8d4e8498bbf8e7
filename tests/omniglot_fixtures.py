"""Tiny Omniglot-shaped data sets, drawn with Pillow in a test's folder: the real layout
(``ALPHABET/characterNN/IIII_NN.png``), 20 drawers, 105×105 mode-"1" PNGs, black ink on white; a handful
of characters instead of hundreds, so building, loading and serving them takes milliseconds."""

from __future__ import annotations

import functools
import hashlib
import io
import stat
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

DRAWERS = 20


@functools.cache
def drawing(character: int, drawer: int) -> bytes:
    """One PNG: a stroke whose place depends on the character, its width on the drawer."""
    im = Image.new("1", (105, 105), 1)
    x = 8 + (character * 13) % 80
    ImageDraw.Draw(im).line((x, 8, 96 - x // 2, 96), fill=0, width=3 + drawer % 3)
    buffer = io.BytesIO()
    im.save(buffer, "PNG")
    return buffer.getvalue()


def characters(alphabets: dict[str, int], first: int = 1) -> dict[str, bytes]:
    """Relative path → PNG bytes for ``alphabets`` (name → number of characters); ``first`` numbers the
    first character across the set, as Omniglot's file names do."""
    files = {}
    number = first
    for alphabet, count in alphabets.items():
        for c in range(1, count + 1):
            for d in range(1, DRAWERS + 1):
                files[f"{alphabet}/character{c:02d}/{number:04d}_{d:02d}.png"] = drawing(number, d)
            number += 1
    return files


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def write_zip(path: Path, files: dict[str, bytes], top: str | None = None, links: dict[str, str] | None = None) -> Path:
    """A zip of ``files`` under the folder ``top`` (the official zips have one), folder entries included
    as the official zips list them; ``links`` adds symbolic-link entries (name → target)."""
    prefix = f"{top}/" if top else ""
    folders = sorted({prefix + "/".join(rel.split("/")[:n]) + "/" for rel in files for n in (1, 2)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        if top:
            archive.writestr(prefix, b"")
        for folder in folders:
            archive.writestr(folder, b"")
        for rel, data in files.items():
            archive.writestr(prefix + rel, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()
