"""Hostile live settings: random extremes of every live field, changed every few meta-iterations.

The engine must never raise, never write a non-finite theta, and keep reporting plain finite-or-flagged
numbers; a diverged iteration must leave theta exactly as it was.
"""

import math
import random

import torch

from imaml_core import ExperimentConfig, MetaTrainer

EXTREMES = {
    "lam": [0.01, 0.1, 1.0, 20.0, 100.0],
    "cg_steps": [0, 1, 5, 50],
    "cg_tol": [0.0, 1e-10, 1e-3, 0.5],
    "inner_steps": [1, 2, 10, 40],
    "inner_lr": [1e-4, 0.01, 0.3, 5.0],
    "inner_safeguard": [True, False],
    "inner_solver": ["gd", "hf"],
    "hf_cg_steps": [1, 10],
    "meta_lr": [1e-5, 1e-3, 0.1, 1.0],
    "meta_batch": [1, 3, 25],
    "analytic_grads": [True, False],
}


def test_random_extreme_live_settings_never_break_theta():
    rng = random.Random(1234)
    trainer = MetaTrainer(ExperimentConfig(val_every=7, val_tasks=10, hidden=[16, 16]))
    diverged = 0
    for it in range(90):
        if it % 3 == 0:
            changes = {k: rng.choice(v) for k, v in EXTREMES.items() if rng.random() < 0.5}
            trainer.apply_config(trainer.config.replace(**changes))
        before = trainer.theta.clone()
        report = trainer.step()
        assert torch.isfinite(trainer.theta).all()
        if report.diverged:
            diverged += 1
            assert torch.equal(trainer.theta, before) and report.message
        else:
            assert math.isfinite(report.meta_loss) and math.isfinite(report.grad_norm)
    assert trainer.iteration + diverged == 90
