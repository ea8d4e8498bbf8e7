"""The header of a safetensors file (its metadata and tensor table), read without PyTorch.

A safetensors file starts with the header's length (8 bytes, little-endian) and the header itself (JSON).
Listings check a run's files through here, so ``imaml runs list`` never loads torch; the engine's loaders
check the same header before handing the file to ``safetensors``. Reading is bounded: a header longer than
``MAX_HEADER_BYTES`` or the file is refused before it is parsed.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

from imaml_core.common.errors import CheckpointError
from imaml_core.common.files import FileRefused, open_regular

CHECKPOINT_FORMAT = "imaml-studio"  # the format tag of meta_params.safetensors (a checkpoint of theta)
LAM_KEY = "lam"  # a checkpoint's λ tensors: "lam" (one number) or "lam.<parameter name>"
MAX_HEADER_BYTES = 1 << 20  # a theta header is a few hundred bytes; refuse to parse megabytes of JSON


def check_header(path: Path, follow_links: bool = True) -> int:
    """Check that ``path`` is a regular file (not a FIFO or device; not a link either, without
    ``follow_links``: a run's own files) that can hold a safetensors header of sane size; returns the
    header's length. Any problem is a :class:`CheckpointError` naming the file."""
    try:
        with open_regular(path, "rb", follow_links) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint path is a directory: {path}") from None
    except FileRefused as exc:
        raise CheckpointError(str(exc)) from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    if size < 10 or len(head) < 8:
        raise CheckpointError(f"{path} is not a safetensors checkpoint (file is {size} bytes)")
    (header_len,) = struct.unpack("<Q", head)
    if header_len > min(size - 8, MAX_HEADER_BYTES):
        raise CheckpointError(f"{path} is not a valid safetensors checkpoint (corrupt or oversized header)")
    return header_len


def read_metadata(path: Path, follow_links: bool = True) -> dict[str, str]:
    """The file's ``__metadata__`` (string keys and values); a :class:`CheckpointError` for a file whose
    header is not a safetensors header (or that ``check_header`` refuses)."""
    length = check_header(path, follow_links)
    try:
        with open_regular(path, "rb", follow_links) as fh:
            fh.seek(8)
            header: Any = json.loads(fh.read(length).decode("utf-8"))
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path} is corrupt (its safetensors header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is corrupt (its safetensors header is not a JSON object)")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path} is corrupt (its safetensors metadata is not text)")
    return metadata
