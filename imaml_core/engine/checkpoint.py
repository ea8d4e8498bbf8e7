"""Checkpoints: a safetensors file of theta whose metadata carries everything needed to rebuild the model.

Metadata keys: ``format`` ("imaml-studio"), ``format_version``, ``config`` (the run's TOML), ``method``,
``iteration``, ``sha256`` (of the tensor bytes, so a flipped bit is caught), ``imaml_studio_version``,
``torch_version``. Loading never unpickles anything; it checks the header size before parsing, the
format and version, the config, every tensor's name, shape, dtype and finiteness, and the checksum.
Writes are atomic.

lambda is stored next to theta whenever the config makes it more than the base value ``lam`` (a learned
lambda, or one per layer or per coordinate): as the tensor ``lam`` (scalar, 0-d), or one tensor
``lam.<parameter name>`` per parameter tensor (0-d per layer, the parameter's shape per coordinate).
These must be positive as well as finite.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from imaml_core.common.config import ExperimentConfig
from imaml_core.common.errors import CheckpointError, ConfigError
from imaml_core.common.files import atomic_path
from imaml_core.common.safetensors_header import CHECKPOINT_FORMAT, LAM_KEY, check_header
from imaml_core.common.text import parse_version_text
from imaml_core.engine.lam import Lam
from imaml_core.engine.lam_state import LAM_BOUNDS
from imaml_core.engine.model import model_for
from imaml_core.engine.params import Params
from imaml_core.tasks import family_for

FORMAT = CHECKPOINT_FORMAT
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """What a checkpoint holds: theta, the config that trained it, how far it got, and its lambda."""

    params: Params
    config: ExperimentConfig
    iteration: int
    metadata: dict[str, str]
    # in config.lam_shape's structure (see MetaTrainer.current_lam); a fixed scalar: config.lam
    current_lam: float | dict[str, Tensor]


def lam_tensor_names(config: ExperimentConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the lambda tensors a checkpoint of ``config`` holds (none for a fixed scalar)."""
    if config.lam_shape == "scalar":
        return {LAM_KEY: ()} if config.learn_lam else {}
    shapes = model_shapes(config)
    return {f"{LAM_KEY}.{n}": (() if config.lam_shape == "layer" else s) for n, s in shapes.items()}


def model_shapes(config: ExperimentConfig) -> dict[str, tuple[int, ...]]:
    """theta's tensors for ``config``: the built-in model of its task family (an MLP, or the conv net)."""
    return model_for(config, family_for(config)).shapes()


def _model_words(config: ExperimentConfig) -> str:
    if config.task == "sinusoid":
        return f"hidden layers {config.hidden}"
    return f"task {config.task} ({config.ways} ways, {config.filters} filters, hidden {config.hidden})"


def _lam_tensors(lam: Lam | None, config: ExperimentConfig) -> dict[str, Tensor]:
    """lambda as the tensors ``lam_tensor_names`` lists (``None``: the base value everywhere)."""
    names = lam_tensor_names(config)
    dtype = getattr(torch, config.dtype)
    value = config.lam if lam is None else lam
    out = {}
    for key, shape in names.items():
        entry = value[key.removeprefix(f"{LAM_KEY}.")] if isinstance(value, Mapping) else value
        t = torch.as_tensor(entry, dtype=dtype).detach().cpu()
        out[key] = (t.reshape(()) if not shape else t.expand(shape)).contiguous().clone()
    return out


def tensor_digest(params: Params) -> str:
    """SHA-256 of the tensors' names, shapes and bytes: a flipped bit in a file is caught on loading."""
    h = hashlib.sha256()
    for name in sorted(params):
        t = params[name].detach().contiguous().cpu()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-d too
    return h.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str],
    params: Params,
    config: ExperimentConfig,
    iteration: int,
    current_lam: Lam | None = None,
) -> None:
    """Write theta, lambda and their metadata to ``path`` atomically (the previous file survives any failure).

    ``current_lam`` is the trainer's lambda (``MetaTrainer.current_lam()``); without it a lambda the config stores is
    written as the base value ``config.lam`` everywhere."""
    from imaml_core.common.version import VERSION as __version__

    tensors = {k: v.detach().contiguous().cpu() for k, v in params.items()}
    tensors.update(_lam_tensors(current_lam, config))
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "config": config.to_toml(),
        "method": config.method,
        "iteration": str(int(iteration)),
        "sha256": tensor_digest(tensors),
        "imaml_studio_version": __version__,
        "torch_version": torch.__version__,
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_checkpoint(path: str | os.PathLike[str], follow_links: bool = True) -> Checkpoint:
    """Read and validate a checkpoint; any problem is a :class:`CheckpointError` with a one-line message.
    ``follow_links=False`` refuses a symbolic link (a run's own file)."""
    path = Path(path)
    check_header(path, follow_links)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = dict(fh.metadata() or {})
            names = list(fh.keys())
            meta_ok = metadata.get("format") == FORMAT
            tensors = {k: fh.get_tensor(k) for k in names} if meta_ok else {}
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors raises its own error types for a corrupt file
        raise CheckpointError(f"{path} is corrupt or not a safetensors checkpoint ({_first_line(exc)})") from None
    if not meta_ok:
        raise CheckpointError(f"{path} is not an iMAML Studio checkpoint (no '{FORMAT}' format metadata)")
    version = parse_version_text(metadata.get("format_version"))
    if version is None:
        raise CheckpointError(f"{path}: missing or invalid format_version {metadata.get('format_version')!r}")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is not supported (this iMAML Studio reads "
            f"version {FORMAT_VERSION}; newer files need a newer iMAML Studio)"
        )
    try:
        config = ExperimentConfig.from_toml(metadata.get("config", ""))
    except ConfigError as exc:
        raise CheckpointError(f"{path}: the embedded config is invalid: {exc}") from None
    _check_tensors(path, tensors, config)
    if metadata.get("sha256") != tensor_digest(tensors):
        raise CheckpointError(f"{path}: tensor data does not match its checksum (the file is damaged)")
    iteration = metadata.get("iteration", "0")
    lam_names = lam_tensor_names(config)
    params = {k: v for k, v in tensors.items() if k not in lam_names}
    lam: float | dict[str, Tensor] = config.lam
    if LAM_KEY in lam_names:
        lam = float(tensors[LAM_KEY])
    elif lam_names:
        lam = {k.removeprefix(f"{LAM_KEY}."): tensors[k] for k in lam_names}
    return Checkpoint(params, config, parse_version_text(iteration) or 0, metadata, lam)


def _check_tensors(path: Path, tensors: dict[str, Tensor], config: ExperimentConfig) -> None:
    lam_names = lam_tensor_names(config)
    expected = model_shapes(config) | lam_names
    dtype = getattr(torch, config.dtype)
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    for names, word in ((missing, "missing"), (extra, "unexpected")):
        if names and (names[0] in lam_names or names[0].startswith(LAM_KEY)):
            raise CheckpointError(
                f"{path}: {word} tensor '{names[0]}' for lam_shape {config.lam_shape} "
                f"with learn_lam {str(config.learn_lam).lower()}"
            )
    if missing:
        raise CheckpointError(f"{path}: missing tensor '{missing[0]}' for {_model_words(config)}")
    if extra:
        raise CheckpointError(f"{path}: unexpected tensor '{extra[0]}' for {_model_words(config)}")
    for name, shape in expected.items():
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise CheckpointError(f"{path}: tensor '{name}' has shape {tuple(t.shape)}, expected {shape}")
        if t.dtype != dtype:
            raise CheckpointError(f"{path}: tensor '{name}' is {t.dtype}, expected {dtype} (config dtype)")
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: tensor '{name}' holds NaN or infinite values")
        if name in lam_names and not bool((t > 0).all()):
            raise CheckpointError(f"{path}: tensor '{name}' holds values <= 0 (lambda must be positive)")
        if name in lam_names:
            lo, hi = _lam_range(config)
            if not bool(((t >= lo) & (t <= hi)).all()):
                worst = float(t.min()) if bool((t < lo).any()) else float(t.max())
                raise CheckpointError(f"{path}: tensor '{name}' holds λ = {worst:.3g}, outside [{lo:g}, {hi:g}]")


def _lam_range(config: ExperimentConfig) -> tuple[float, float]:
    """Where a checkpoint's λ may lie: a learned one within ``LAM_BOUNDS`` (stored as float32 or float64, so
    a bound itself may round by one part in 10^6), a fixed one at the config's base value."""
    if config.learn_lam and config.method == "imaml":
        return LAM_BOUNDS[0] * (1 - 1e-6), LAM_BOUNDS[1] * (1 + 1e-6)
    return config.lam * (1 - 1e-6), config.lam * (1 + 1e-6)


def load_model(path: str | os.PathLike[str]) -> nn.Module:
    """Rebuild the trained network from a checkpoint alone, holding theta: an ``nn.Sequential`` MLP, or for a
    classification run the conv net (its batch norm uses each batch's own statistics, as in training, so
    classify a task's images together)."""
    ckpt = load_checkpoint(path)
    config = ckpt.config
    module = model_for(config, family_for(config)).module().to(getattr(torch, config.dtype))
    module.load_state_dict(ckpt.params, strict=True)
    return module.eval()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["Checkpoint", "load_checkpoint", "load_model", "save_checkpoint", "tensor_digest"]
