"""Files the engine writes are replaced atomically and get the permissions the user's umask gives."""

import contextlib
import os
import stat
import sys

import pytest

from imaml_core import ExperimentConfig, MetaTrainer, save_checkpoint
from imaml_core.cli import main
from imaml_core.common.files import atomic_write_text

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")


@contextlib.contextmanager
def umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_checkpoint_gets_the_mode_the_umask_gives(tmp_path, mask, mode):
    trainer = MetaTrainer(ExperimentConfig(meta_batch=2, val_every=0, val_tasks=2, hidden=[4]))
    path = tmp_path / "theta.safetensors"
    with umask(mask):
        save_checkpoint(path, trainer.params(), trainer.config, trainer.iteration)
        atomic_write_text(tmp_path / "notes.txt", "x")
    assert _mode(path) == mode
    assert _mode(tmp_path / "notes.txt") == mode


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_imaml_train_out_files_get_the_mode_the_umask_gives(tmp_path, mask, mode):
    out = tmp_path / "run"
    argv = ["train", "--meta-batch", "2", "--inner-steps", "2", "--iterations", "2", "--out", str(out), "--quiet"]
    with umask(mask):
        assert main(argv) == 0
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {"meta_params.safetensors", "config.toml", "metrics.csv"} <= {p.name for p in written}
    for path in written:
        assert _mode(path) == mode, path.name


def test_rewriting_a_file_replaces_it_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "config.toml"
    atomic_write_text(path, "a = 1\n")
    atomic_write_text(path, "b = 2\n")
    assert path.read_text() == "b = 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]
