"""resume.safetensors: the trainer's whole mutable state, so a run continues exactly where it stopped.

The tensors are ``MetaTrainer.resume_state()`` as it returns them (theta, Adam's moments and step, the
training task stream's generator state as uint8, the iteration, a learned lambda and its Adam); the
metadata carries the scalars that describe the file: ``format`` ("imaml-studio-resume"),
``format_version``, ``iteration``, ``device`` (the device type the generator state belongs to),
``config`` (TOML at save time), ``sha256`` of the tensors, and the engine and torch versions.

theta is in this file as well as in meta_params.safetensors, so one atomic write holds everything a
continuation needs: a crash between the two files' writes never leaves a resume that mixes iterations.
Loading never unpickles; it checks the header size, format, version, checksum and iteration, and leaves
the rest (shapes against the config) to ``MetaTrainer.load_resume_state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import CheckpointError, ConfigError
from imaml_core.common.files import atomic_path
from imaml_core.common.safetensors_header import check_header
from imaml_core.common.text import parse_version_text
from imaml_core.experiments.runs._info import RunError

if TYPE_CHECKING:
    from torch import Tensor

RESUME_FILE = "resume.safetensors"
RESUME_FORMAT = "imaml-studio-resume"
RESUME_FORMAT_VERSION = 1


@dataclass
class ResumeFile:
    """What resume.safetensors holds: the trainer's state, the config it was saved with, and its metadata."""

    state: dict[str, Tensor]
    config: ExperimentConfig
    iteration: int
    device: str
    metadata: dict[str, str]


def save_resume(path: Path, state: dict[str, Tensor], config: ExperimentConfig, device: str) -> None:
    """Write ``state`` (a ``MetaTrainer.resume_state()``) to ``path`` atomically."""

    import torch
    from safetensors.torch import save_file

    from imaml_core.common.version import VERSION as __version__
    from imaml_core.engine.checkpoint import tensor_digest

    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    metadata = {
        "format": RESUME_FORMAT,
        "format_version": str(RESUME_FORMAT_VERSION),
        "iteration": str(int(tensors["iteration"])),
        "device": device,
        "config": config.to_toml(),
        "sha256": tensor_digest(tensors),
        "imaml_studio_version": __version__,
        "torch_version": torch.__version__,
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_resume(path: Path) -> ResumeFile:
    """Read and check ``path``; any problem is a :class:`RunError` with a one-line message naming it."""

    from safetensors import safe_open

    from imaml_core.engine.checkpoint import tensor_digest

    try:
        check_header(path, follow_links=False)
    except CheckpointError as exc:
        raise RunError(str(exc).replace("checkpoint", "resume file")) from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            ours = metadata.get("format") == RESUME_FORMAT
            names = list(fh.keys())
            state = {k: fh.get_tensor(k) for k in names} if ours else {}
    except Exception as exc:  # safetensors raises its own error types for a corrupt file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunError(f"{path} is corrupt or not a safetensors file ({first})") from None
    if not ours:
        raise RunError(f"{path} is not an iMAML Studio resume file (no '{RESUME_FORMAT}' format metadata)")
    version = metadata.get("format_version", "")
    if parse_version_text(version) != RESUME_FORMAT_VERSION:
        raise RunError(
            f"{path}: resume format version {version!r} is not supported (this reads {RESUME_FORMAT_VERSION})"
        )
    if metadata.get("sha256") != tensor_digest(state):
        raise RunError(f"{path}: tensor data does not match its checksum (the file is damaged)")
    try:
        config = ExperimentConfig.from_toml(metadata.get("config", ""))
    except ConfigError as exc:
        raise RunError(f"{path}: the embedded config is invalid: {exc}") from None
    iteration = metadata.get("iteration", "")
    held = state.get("iteration")
    known = parse_version_text(iteration)  # a count, held as ASCII digits like a version
    if known is None or held is None or held.numel() != 1 or int(held) != known:
        raise RunError(f"{path}: its iteration metadata and tensor disagree or are missing")
    return ResumeFile(state, config, known, metadata.get("device", ""), metadata)
