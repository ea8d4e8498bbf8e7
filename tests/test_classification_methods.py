"""Every method and every form of lambda on the conv net: an iteration runs, stays finite, moves theta, and a
learned lambda moves too. Tiny sizes (4 filters, 3-way, two tasks): the maths is checked exactly in
test_classification_engine.py; this file checks that nothing in the method or lambda code assumes an MLP."""

import pytest
import torch

from imaml_core import ExperimentConfig, MetaTrainer

BASE = ExperimentConfig(
    task="glyphs", glyph_classes=40, filters=4, ways=3, shots=1, query=2, meta_batch=2, inner_steps=2, val_tasks=4
)
METHODS = [
    {"method": "imaml", "inner_solver": "gd"},
    {"method": "imaml", "inner_solver": "hf"},
    {"method": "maml"},
    {"method": "fomaml"},
    {"method": "reptile"},
]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: "-".join(m.values()))
def test_every_method_takes_finite_steps_on_the_conv_net(method):
    trainer = MetaTrainer(BASE.replace(**method, val_every=1))
    theta = trainer.theta.clone()
    for _ in range(2):
        report = trainer.step()
        assert not report.diverged, report.message
        assert 0.0 <= report.val_accuracy <= 1.0 and report.val_loss > 0
    assert trainer.iteration == 2 and not torch.equal(trainer.theta, theta)


@pytest.mark.parametrize("shape", ["scalar", "layer", "parameter"])
@pytest.mark.parametrize("learned", [False, True])
def test_every_form_of_lambda_on_the_conv_net(shape, learned):
    trainer = MetaTrainer(BASE.replace(inner_solver="hf", lam_shape=shape, learn_lam=learned, lam_lr=0.1))
    before = trainer.current_lam()
    report = trainer.step()
    assert not report.diverged, report.message
    after = trainer.current_lam()
    if shape == "scalar":
        assert (after != before) == learned
    else:
        assert set(after) == set(trainer.layout.names)
        moved = any(not torch.equal(after[k], before[k]) for k in after)
        assert moved == learned
    result = trainer.evaluate(tasks=6, steps=2)
    assert result.accuracy is not None and 0.0 <= result.accuracy <= 1.0
