"""Any nn.Module works: the vmapped ModuleModel gives the same meta-gradient as the built-in MLP."""

import torch

from imaml_core import ExperimentConfig, MetaTrainer, ModuleModel

from .helpers import rel_err


def test_module_model_matches_builtin_mlp_float64():
    cfg = ExperimentConfig(dtype="float64", meta_batch=4, val_every=0, val_tasks=2, hidden=[8, 8])
    builtin = MetaTrainer(cfg)
    module = builtin.model.module().double()
    module.load_state_dict(builtin.params())
    generic = MetaTrainer(cfg, theta=builtin.params(), model=ModuleModel(module))
    tasks = builtin.sample_batch()

    def grad(trainer):
        return trainer.meta_gradient(tasks).grad

    assert generic.losses(tasks.x_support, tasks.y_support).derivatives is None  # autograd path
    assert rel_err(grad(generic), grad(builtin)) < 1e-10


def test_module_model_trains_a_tanh_network():
    net = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    trainer = MetaTrainer(ExperimentConfig(meta_batch=5, val_every=0, val_tasks=20), model=ModuleModel(net))
    before = trainer.validation_loss()
    for _ in range(30):
        assert not trainer.step().diverged
    assert trainer.validation_loss() < before
