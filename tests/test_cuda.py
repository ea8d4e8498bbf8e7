"""The GPU path: training, the memory probe, checkpoints and the window on a CUDA device.

Skipped where torch sees no CUDA device. Every check here also holds on the CPU, where the rest of the
suite covers it; this file proves it on the device the engine's batched solvers are meant for.
"""

from __future__ import annotations

import pytest
import torch

from imaml_core import METHODS, ExperimentConfig, MetaTrainer, load_checkpoint, load_model, save_checkpoint

from .helpers import rel_err

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

DEVICE = "cuda"


def _config(**changes: object) -> ExperimentConfig:
    return ExperimentConfig(device=DEVICE, val_every=0, val_tasks=50).replace(**changes)


@pytest.mark.parametrize("method", METHODS)
def test_fifty_meta_iterations_on_cuda_train_without_divergence_and_lower_the_validation_loss(method):
    trainer = MetaTrainer(_config(method=method))
    assert trainer.theta.device.type == DEVICE
    before = trainer.validation_loss()
    reports = [trainer.step() for _ in range(50)]
    assert not any(r.diverged for r in reports), next(r.message for r in reports if r.diverged)
    assert trainer.iteration == 50
    assert bool(torch.isfinite(trainer.theta).all())
    assert all(r.memory_bytes > 0 for r in reports)  # CUDA: peak bytes allocated during each iteration
    # 50 Adam steps of 1e-3 from a random θ move every method's post-adaptation loss down on sinusoids.
    assert trainer.validation_loss() < before


@pytest.mark.parametrize("method", METHODS)
def test_a_cuda_meta_gradient_equals_the_cpu_one_float64(method):
    """Same θ, same tasks: the batched solvers on the GPU compute what they compute on the CPU."""
    cpu = MetaTrainer(_config(method=method, device="cpu", dtype="float64", meta_batch=8))
    gpu = MetaTrainer(_config(method=method, dtype="float64", meta_batch=8), theta=cpu.params())
    tasks = cpu.sample_batch()
    on_gpu = type(tasks)(*(t.to(DEVICE) for t in tasks.tensors()))
    expected = cpu.meta_gradient(tasks).grad
    # float64; the GPU sums in another order (and uses other kernels): agreement to ~1e-12, checked at 1e-9.
    assert rel_err(gpu.meta_gradient(on_gpu).grad.cpu(), expected) < 1e-9


def _memory(method: str, steps: int) -> int:
    """Peak CUDA bytes of one meta-iteration, after one untimed iteration has settled the allocator (cuBLAS
    workspaces and lazily created kernels are then part of the baseline, not of the measurement)."""
    trainer = MetaTrainer(_config(method=method, inner_steps=steps, meta_batch=25))
    trainer.step()
    return trainer.step().memory_bytes


def test_cuda_memory_probe_grows_with_maml_inner_steps_and_stays_flat_for_imaml():
    maml_low, maml_high = _memory("maml", 5), _memory("maml", 50)
    imaml_low, imaml_high = _memory("imaml", 5), _memory("imaml", 50)
    assert maml_low > 0 and imaml_low > 0
    # MAML keeps every unrolled step's graph: ~10x the steps, several times the bytes (CPU probe: 34x
    # from 5 to 200 steps). iMAML holds one step's temporaries whatever the count; 1.25x leaves room for the
    # caching allocator's block rounding.
    assert maml_high >= 3 * maml_low, (maml_low, maml_high)
    assert imaml_high <= 1.25 * imaml_low, (imaml_low, imaml_high)


def test_a_cuda_trained_checkpoint_round_trips_to_cpu_and_back(tmp_path):
    trainer = MetaTrainer(_config(meta_batch=10))
    for _ in range(5):
        assert not trainer.step().diverged
    path = tmp_path / "meta_params.safetensors"
    save_checkpoint(path, trainer.params(), trainer.config, trainer.iteration)

    ckpt = load_checkpoint(path)
    assert ckpt.config.device == DEVICE and ckpt.iteration == 5
    for name, value in trainer.params().items():
        assert ckpt.params[name].device.type == "cpu"
        assert torch.equal(ckpt.params[name], value.cpu())

    on_cpu = MetaTrainer(ckpt.config.replace(device="cpu"), theta=ckpt.params, iteration=ckpt.iteration)
    back = MetaTrainer(ckpt.config, theta=on_cpu.params(), iteration=ckpt.iteration)
    assert back.theta.device.type == DEVICE
    assert torch.equal(back.theta, trainer.theta)
    assert torch.equal(on_cpu.theta, trainer.theta.cpu())

    x = torch.linspace(-5, 5, 50).reshape(-1, 1)
    module = load_model(path)  # CPU module from the file alone
    with torch.no_grad():
        expected = trainer.model.forward(trainer.layout.unflatten(trainer.theta[None]), x.to(DEVICE)[None])[0].cpu()
        # float32 on two devices: the same products summed by different kernels.
        assert torch.allclose(module(x), expected, rtol=1e-5, atol=1e-5)


def test_the_window_trains_on_cuda(qtbot, make_window):
    from PySide6.QtWidgets import QWidget

    from .app_helpers import small_config

    window = make_window(small_config(device=DEVICE))
    window.findChild(QWidget, "button_start").click()
    qtbot.waitUntil(lambda: window.iteration >= 3, timeout=60_000)
    window.findChild(QWidget, "button_start").click()  # pause
    assert window.applied_config().device == DEVICE
    assert len(window.history) >= 3
    assert (window.history.column("memory_bytes") > 0).all()
