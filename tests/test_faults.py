"""Faults inside the engine: an overflowing update, out-of-memory, and interrupted writes lose nothing."""

import pytest
import torch

from imaml_core import ExperimentConfig, MetaTrainer, load_checkpoint, save_checkpoint
from imaml_core.common.files import atomic_write_text


def _trainer() -> MetaTrainer:
    trainer = MetaTrainer(ExperimentConfig(meta_batch=4, val_every=0, hidden=[8]))
    trainer.step()
    return trainer


def test_overflowing_adam_update_is_undone(monkeypatch):
    trainer = _trainer()
    theta, step = trainer.theta.clone(), int(trainer.optimizer.state[trainer.theta]["step"])

    def explode(*_args, **_kwargs):
        trainer.theta.add_(float("inf"))

    monkeypatch.setattr(trainer.optimizer, "step", explode)
    report = trainer.step()
    assert report.diverged and "Adam update overflowed" in report.message
    assert torch.equal(trainer.theta, theta) and trainer.iteration == 1
    assert int(trainer.optimizer.state[trainer.theta]["step"]) == step


def test_out_of_memory_is_reported_and_the_run_goes_on(monkeypatch):
    trainer = _trainer()
    theta = trainer.theta.clone()
    real = __import__("imaml_core.engine.trainer", fromlist=["meta_gradient"]).meta_gradient

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr("imaml_core.engine.trainer.meta_gradient", oom)
    report = trainer.step()
    assert report.diverged and "out of memory" in report.message and "lower" in report.message
    assert torch.equal(trainer.theta, theta)
    monkeypatch.setattr("imaml_core.engine.trainer.meta_gradient", real)
    trainer.apply_config(trainer.config.replace(meta_batch=2))
    assert not trainer.step().diverged and trainer.iteration == 2


@pytest.mark.parametrize("fail_after", [0, 10, 100, 10_000])
def test_checkpoint_write_failing_midway_keeps_the_previous_file(tmp_path, monkeypatch, fail_after):
    trainer = _trainer()
    path = tmp_path / "theta.safetensors"
    save_checkpoint(path, trainer.params(), trainer.config, 1)
    before = path.read_bytes()
    real_save = __import__("safetensors.torch", fromlist=["save_file"]).save_file

    def partial_save(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "rb") as fh:
            data = fh.read()
        with open(filename, "wb") as fh:
            fh.write(data[:fail_after])
        raise OSError("No space left on device")

    monkeypatch.setattr("imaml_core.engine.checkpoint.save_file", partial_save)
    trainer.step()
    with pytest.raises(OSError):
        save_checkpoint(path, trainer.params(), trainer.config, 2)
    assert path.read_bytes() == before and load_checkpoint(path).iteration == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theta.safetensors"]


def test_text_write_failing_midway_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.csv"
    atomic_write_text(path, "old\n")

    class Boom(Exception):
        pass

    def failing_write_bytes(self, data):
        with open(self, "wb") as fh:
            fh.write(data[:2])
        raise Boom

    monkeypatch.setattr("pathlib.Path.write_bytes", failing_write_bytes)
    with pytest.raises(Boom):
        atomic_write_text(path, "new content\n")
    assert path.read_text() == "old\n"


def test_should_stop_abandons_a_meta_iteration_without_touching_theta():
    from imaml_core import StepCancelled

    for method in ("imaml", "maml", "fomaml"):
        trainer = MetaTrainer(ExperimentConfig(method=method, meta_batch=4, val_every=0, hidden=[8], inner_steps=50))
        theta = trainer.theta.clone()
        polls = []

        def stop_after_three(polls: list = polls) -> bool:
            polls.append(1)
            return len(polls) > 3

        with pytest.raises(StepCancelled):
            trainer.step(should_stop=stop_after_three)
        assert torch.equal(trainer.theta, theta) and trainer.iteration == 0
        assert not trainer.step().diverged and trainer.iteration == 1  # and the trainer still works
