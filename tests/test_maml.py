"""Second-order MAML's meta-gradient against central finite differences of the unrolled objective."""

import torch

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.engine.methods import adapt


def test_maml_gradient_matches_finite_differences_float64():
    trainer = MetaTrainer(
        ExperimentConfig(method="maml", dtype="float64", meta_batch=3, inner_steps=4, inner_lr=0.02, val_tasks=2)
    )
    cfg = trainer.config
    tasks = trainer.sample_batch()
    train, test = trainer.task_losses(tasks)
    grad = trainer.meta_gradient(tasks).grad.mean(0)

    def outer(theta: torch.Tensor) -> float:
        phi = adapt(cfg, train, theta.expand(3, -1), cfg.inner_steps)
        return float(test(phi).mean())

    gen = torch.Generator().manual_seed(0)
    eps = 1e-6  # central differences: truncation ~eps^2, rounding ~1e-16/eps ~ 1e-10 relative
    for _ in range(5):
        u = torch.randn(trainer.theta.shape, generator=gen, dtype=torch.float64)
        u /= u.norm()
        fd = (outer(trainer.theta + eps * u) - outer(trainer.theta - eps * u)) / (2 * eps)
        exact = float(grad @ u)
        assert abs(fd - exact) <= 1e-6 * max(1.0, abs(exact)), (fd, exact)
