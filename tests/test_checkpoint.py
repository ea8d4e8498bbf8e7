"""Checkpoints round-trip exactly, rebuild an nn.Module, and every kind of bad file is refused clearly."""

import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from imaml_core import CheckpointError, ExperimentConfig, MetaTrainer, load_checkpoint, load_model, save_checkpoint
from imaml_core.engine.checkpoint import tensor_digest


@pytest.fixture
def saved(tmp_path):
    trainer = MetaTrainer(ExperimentConfig(meta_batch=4, val_every=0, hidden=[8, 8]))
    trainer.step()
    path = tmp_path / "theta.safetensors"
    save_checkpoint(path, trainer.params(), trainer.config, trainer.iteration)
    return trainer, path


def test_round_trip_is_exact_and_carries_config(saved):
    trainer, path = saved
    ckpt = load_checkpoint(path)
    assert ckpt.config == trainer.config and ckpt.iteration == 1
    assert ckpt.metadata["method"] == "imaml" and ckpt.metadata["format_version"] == "1"
    for k, v in trainer.params().items():
        assert torch.equal(ckpt.params[k], v)


def test_load_model_returns_module_with_trained_theta(saved):
    trainer, path = saved
    module = load_model(path)
    assert isinstance(module, torch.nn.Module)
    x = torch.linspace(-5, 5, 7).reshape(1, 7, 1)
    expected = trainer.model.forward({k: v[None] for k, v in trainer.params().items()}, x)
    assert torch.allclose(module(x[0]), expected[0], rtol=1e-6, atol=1e-6)


def _write_raw(path, tensors, cfg, **meta):
    metadata = {
        "format": "imaml-studio",
        "format_version": "1",
        "config": cfg.to_toml(),
        "iteration": "3",
        "sha256": tensor_digest(tensors),
    }
    metadata.update(meta)
    save_file(tensors, str(path), metadata=metadata)


def _cases(tmp_path, trainer, good_bytes):
    cfg, params = trainer.config, trainer.params()
    out = {}
    out["missing file"] = (tmp_path / "nope.safetensors", "not found")
    (tmp_path / "empty").write_bytes(b"")
    out["zero length"] = (tmp_path / "empty", "not a safetensors")
    (tmp_path / "trunc").write_bytes(good_bytes[: len(good_bytes) // 2])
    out["truncated"] = (tmp_path / "trunc", "corrupt")
    flipped = bytearray(good_bytes)
    flipped[-5] ^= 0x10
    (tmp_path / "flip").write_bytes(bytes(flipped))
    out["bit flip in data"] = (tmp_path / "flip", "checksum")
    (tmp_path / "huge").write_bytes(struct.pack("<Q", 2**40) + b"{}" * 10)
    out["huge header"] = (tmp_path / "huge", "header")
    (tmp_path / "pickle").write_bytes(pickle.dumps({"0.weight": [1, 2, 3]}))
    out["pickle"] = (tmp_path / "pickle", "safetensors")
    torch.save(params, tmp_path / "torchsave")
    out["torch.save file"] = (tmp_path / "torchsave", "safetensors")
    save_file(params, str(tmp_path / "nometa"))
    out["no metadata"] = (tmp_path / "nometa", "not an iMAML Studio checkpoint")
    _write_raw(tmp_path / "future", params, cfg, format_version="99")
    out["future version"] = (tmp_path / "future", "version 99")
    wrong = dict(params)
    wrong["2.weight"] = torch.zeros(3, 3)
    _write_raw(tmp_path / "shape", wrong, cfg)
    out["wrong shape"] = (tmp_path / "shape", "shape")
    extra = dict(params, extra=torch.zeros(2))
    _write_raw(tmp_path / "extra", extra, cfg)
    out["extra tensor"] = (tmp_path / "extra", "unexpected tensor 'extra'")
    missing = {k: v for k, v in params.items() if k != "0.bias"}
    _write_raw(tmp_path / "missing", missing, cfg)
    out["missing tensor"] = (tmp_path / "missing", "missing tensor '0.bias'")
    f64 = {k: v.double() for k, v in params.items()}
    _write_raw(tmp_path / "dtype", f64, cfg)
    out["wrong dtype"] = (tmp_path / "dtype", "float64")
    nan = dict(params)
    nan["0.bias"] = torch.full_like(params["0.bias"], float("nan"))
    _write_raw(tmp_path / "nan", nan, cfg)
    out["nan values"] = (tmp_path / "nan", "NaN")
    _write_raw(tmp_path / "badcfg", params, cfg, config="lam = -1\n")
    out["invalid embedded config"] = (tmp_path / "badcfg", "lam")
    out["directory"] = (tmp_path, "directory")
    return out


def test_every_bad_file_is_refused_with_a_clear_one_line_error(saved, tmp_path):
    trainer, path = saved
    for case, (bad, words) in _cases(tmp_path, trainer, path.read_bytes()).items():
        with pytest.raises(CheckpointError) as exc:
            load_checkpoint(bad)
        message = str(exc.value)
        assert words in message, (case, message)
        assert "\n" not in message, case


def test_failed_save_leaves_previous_file_intact(saved, monkeypatch):
    trainer, path = saved
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("imaml_core.engine.checkpoint.save_file", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, trainer.params(), trainer.config, 99)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_checkpoint_records_the_package_version_which_pyproject_reads_from_the_package(saved):
    """The version is written once, in ``imaml_core.common.version``; ``imaml_core.__version__`` and
    pyproject.toml take it from there."""
    import sys
    from pathlib import Path

    import imaml_core

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    _, path = saved
    assert load_checkpoint(path).metadata["imaml_studio_version"] == imaml_core.__version__
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "imaml_core.common.version.VERSION"}
