"""The trainer knows tasks only through the family it is given (imaml_core.tasks.TaskFamily)."""

import numpy as np
import pytest
import torch

from imaml_core import ConfigError, ExperimentConfig, MetaTrainer
from imaml_core.engine.streams import PREVIEW_TASK, generator
from imaml_core.tasks import Sinusoid, family
from imaml_core.tasks.sinusoid import sinusoid

SMALL = ExperimentConfig(hidden=[16, 16], meta_batch=4, val_tasks=4, inner_steps=3)


class ScaledLoss(Sinusoid):
    """Sinusoid tasks under three times the MSE, counting the batches drawn."""

    name = "scaled"
    loss_name = "3·MSE"

    def __init__(self) -> None:
        self.draws: list[tuple[int, int, int]] = []

    def sample(self, n, shots, query, generator, dtype, device, split="train"):
        self.draws.append((n, shots, query, split))
        return super().sample(n, shots, query, generator, dtype, device, split)

    def loss_per_task(self, prediction, target):
        return 3 * super().loss_per_task(prediction, target)


def test_the_trainer_takes_its_tasks_and_loss_from_the_family_it_is_given():
    plain, scaled = Sinusoid(), ScaledLoss()
    a = MetaTrainer(SMALL, tasks=plain)
    b = MetaTrainer(SMALL, tasks=scaled)
    ra, rb = a.step(), b.step()
    # same θ and the same tasks at the start, so the loss before adaptation is exactly 3x (float32 rounding)
    assert rb.pre_loss == pytest.approx(3 * ra.pre_loss, rel=1e-6)
    # the validation set, then the meta-batch, both drawn through the family with the config's sizes
    assert scaled.draws == [
        (SMALL.val_tasks, SMALL.shots, 100, "val"),
        (SMALL.meta_batch, SMALL.shots, SMALL.query, "train"),
    ]


def test_a_loss_other_than_mse_is_never_given_the_hand_written_mse_derivatives():
    trainer = MetaTrainer(SMALL.replace(analytic_grads=True), tasks=ScaledLoss())
    tasks = trainer.sample_batch()
    train, _ = trainer.task_losses(tasks)
    assert train.derivatives is None  # the MLP's exact derivatives hold for MSE only
    assert MetaTrainer(SMALL.replace(analytic_grads=True)).task_losses(tasks)[0].derivatives is not None


def test_an_unknown_family_is_a_config_error_naming_the_known_ones():
    with pytest.raises(ConfigError, match="sinusoid"):
        family("omniglot-typo")


def test_the_sinusoid_preview_task_is_its_truth_on_its_support_points():
    task = family().preview_task(7, generator(torch.device("cpu"), 3, PREVIEW_TASK))
    amplitude, phase = task.params
    x = torch.as_tensor(task.x_support, dtype=torch.float64).reshape(1, -1, 1)
    expected = sinusoid(x, torch.tensor([amplitude], dtype=torch.float64), torch.tensor([phase], dtype=torch.float64))
    # numpy's and torch's float64 sine agree to a few ulps
    np.testing.assert_allclose(task.y_support, expected.reshape(-1).numpy(), rtol=1e-14, atol=1e-14)
    assert len(task.x_support) == 7 and np.all(np.abs(task.x_support) <= 5.0)
