"""A diverging meta-iteration leaves theta and the optimiser untouched and says why."""

import copy

import pytest
import torch

from imaml_core import ExperimentConfig, MetaTrainer


@pytest.mark.parametrize(
    "settings",
    [
        {"method": "imaml", "inner_solver": "gd", "inner_safeguard": False, "inner_lr": 50.0},
        {"method": "maml", "inner_lr": 50.0, "inner_steps": 5},
        {"method": "fomaml", "inner_lr": 50.0, "inner_steps": 5},
    ],
)
def test_divergence_skips_the_update_and_keeps_theta_and_adam(settings):
    trainer = MetaTrainer(ExperimentConfig(meta_batch=10, val_every=0, **settings).replace(inner_lr=0.001))
    assert not trainer.step().diverged  # a healthy step first, so Adam has state to protect
    theta = trainer.theta.clone()
    adam = copy.deepcopy(trainer.optimizer.state_dict())
    trainer.apply_config(trainer.config.replace(inner_lr=settings["inner_lr"]))
    report = trainer.step()
    assert report.diverged and report.iteration == 1
    assert "inner step size" in report.message and "theta unchanged" in report.message
    assert torch.equal(trainer.theta, theta)
    after = trainer.optimizer.state_dict()
    assert after["state"][0]["step"] == adam["state"][0]["step"]
    assert torch.equal(after["state"][0]["exp_avg"], adam["state"][0]["exp_avg"])
    # Fixing the setting lets the run continue from the same theta.
    trainer.apply_config(trainer.config.replace(inner_lr=0.001))
    assert not trainer.step().diverged and trainer.iteration == 2
    assert torch.isfinite(trainer.theta).all()


def test_safeguarded_gd_survives_a_huge_step_size():
    trainer = MetaTrainer(
        ExperimentConfig(inner_solver="gd", inner_safeguard=True, inner_lr=1000.0, meta_batch=10, val_every=0)
    )
    report = trainer.step()
    assert not report.diverged and torch.isfinite(trainer.theta).all()
