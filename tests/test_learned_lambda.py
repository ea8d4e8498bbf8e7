"""Meta-learned lambda in the trainer: its gradient, its bounds, its checkpoints, and the fixed float path.

The exactness tests run in float64 with a converged inner solve (Newton-CG) and a converged implicit CG
solve, so the tolerances are set by rounding and finite-difference truncation.
"""

import math

import pytest
import torch
from safetensors import safe_open

from imaml_core import CheckpointError, ConfigError, ExperimentConfig, MetaTrainer, load_checkpoint, save_checkpoint
from imaml_core.cli import main
from imaml_core.engine.implicit import implicit_hypergradients
from imaml_core.engine.lam import flat_lam
from imaml_core.engine.lam_state import LAM_BOUNDS
from imaml_core.engine.methods import adapt, meta_gradient
from imaml_core.tasks.sinusoid import mse_per_task

SMALL = ["--meta-batch", "5", "--inner-steps", "3", "--shots", "5"]


def _exact_trainer(shape: str) -> MetaTrainer:
    """A float64 trainer whose inner solve and CG solve both converge (tiny net, Newton-CG, many CG steps)."""
    cfg = ExperimentConfig(
        dtype="float64", hidden=[6], meta_batch=3, shots=6, query=7, inner_solver="hf", inner_steps=25,
        hf_cg_steps=60, cg_steps=200, cg_tol=1e-13, lam=3.0, lam_shape=shape, learn_lam=True, val_tasks=1,
        val_every=0, seed=0,
    )  # fmt: skip
    return MetaTrainer(cfg)


def _converged(mg) -> None:
    """The exactness tests' precondition: every task's inner problem solved to rounding (a ReLU net's
    Newton-CG can stall on a kink; this seed's tasks do not), and the CG solve converged."""
    assert float(mg.stationarity.max()) < 1e-10 and float(mg.cg.residual.max()) < 1e-12


def test_learned_per_layer_lambda_through_the_cli_moves_and_eval_uses_it(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", *SMALL, "--iterations", "30", "--lam-shape", "layer", "--learn-lam", "--lam-lr", "0.05"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    path = out / "meta_params.safetensors"
    ckpt = load_checkpoint(path)
    assert ckpt.config.learn_lam and ckpt.config.lam_shape == "layer"
    assert set(ckpt.current_lam) == set(ckpt.params)
    values = torch.stack([ckpt.current_lam[n] for n in ckpt.params])
    assert bool(torch.isfinite(values).all()) and bool((values > 0).all())
    # 30 Adam steps of size 0.05 in log space move every entry with a non-zero gradient by far more than 1e-3.
    assert float((values.log() - math.log(20.0)).abs().max()) > 1e-2
    with safe_open(str(path), framework="pt") as fh:
        names = fh.keys()
    assert {k for k in names if "lam" in k} == {f"lam.{n}" for n in ckpt.params}
    capsys.readouterr()
    assert main(["eval", str(path), "--tasks", "30", "--steps", "3", "--device", "cpu"]) == 0
    assert "query MSE" in capsys.readouterr().out


@pytest.mark.parametrize("shape", ["scalar", "layer"])
def test_log_lambda_gradient_matches_finite_differences_float64(shape):
    trainer = _exact_trainer(shape)
    cfg = trainer.config
    tasks = trainer.sample_batch()
    train, test = trainer.task_losses(tasks)
    mg = trainer.meta_gradient(tasks)
    _converged(mg)
    g = trainer.log_lam_gradient(mg)
    theta_b = trainer.theta.expand(len(tasks), -1)
    lam = trainer.current_lam()

    def meta_loss(log_shift: dict[str, float] | float) -> float:
        if isinstance(lam, float):
            moved: float | dict = lam * math.exp(log_shift)
        else:
            moved = {n: t * math.exp(log_shift.get(n, 0.0)) for n, t in lam.items()}
        flat = flat_lam(moved, trainer.layout, torch.float64, "cpu")
        return float(test.value(adapt(cfg, train, theta_b, cfg.inner_steps, lam=flat)).mean())

    # Central differences: truncation ~h^2 ~ 1e-8 relative; the loss is computed to ~1e-15, so rounding
    # adds ~1e-15 / h ~ 1e-11.
    h = 1e-4
    if shape == "scalar":
        fd = (meta_loss(h) - meta_loss(-h)) / (2 * h)
        assert abs(g - fd) <= 1e-6 * abs(fd)
        return
    fd = torch.tensor([(meta_loss({n: h}) - meta_loss({n: -h})) / (2 * h) for n in lam], dtype=torch.float64)
    analytic = torch.stack([g[n] for n in lam])
    assert float((analytic - fd).norm()) <= 1e-6 * float(fd.norm())


@pytest.mark.parametrize("shape", ["scalar", "layer", "parameter"])
def test_trainer_lambda_gradient_equals_implicit_hypergradients_task_by_task_float64(shape):
    trainer = _exact_trainer(shape)
    cfg = trainer.config
    tasks = trainer.sample_batch()
    mg = trainer.meta_gradient(tasks)
    _converged(mg)
    g = trainer.log_lam_gradient(mg)
    lam = trainer.current_lam()
    theta = trainer.params()
    per_task = []
    for b in range(len(tasks)):

        def loss_on(x, y):
            return lambda p: mse_per_task(trainer.model.forward({k: v[None] for k, v in p.items()}, x), y)[0]

        phi = trainer.layout.unflatten(mg.phi[b])
        _, g_lam, _ = implicit_hypergradients(
            loss_on(tasks.x_support[b : b + 1], tasks.y_support[b : b + 1]),
            loss_on(tasks.x_query[b : b + 1], tasks.y_query[b : b + 1]),
            phi, theta, lam, cg_steps=cfg.cg_steps, cg_tol=cfg.cg_tol,
        )  # fmt: skip
        per_task.append(g_lam)
    if shape == "scalar":
        expected = lam * sum(per_task) / len(per_task)
        assert abs(g - expected) <= 1e-8 * abs(expected)
        return
    for name in lam:
        expected = lam[name] * torch.stack([t[name] for t in per_task]).mean(0)
        err = float((g[name] - expected).norm())
        assert err <= 1e-8 * max(float(expected.norm()), 1e-12), name


def test_a_step_that_leaves_the_bounds_is_clipped_and_reported():
    # Adam's first step moves every entry by about lam_lr = 10 in log space, from lambda = 1 to e^+-10: past
    # 1e4 upwards and past 1e-3 downwards, so every entry with a non-zero gradient lands on a bound.
    cfg = ExperimentConfig(hidden=[8], meta_batch=4, inner_steps=2, lam=1.0, lam_shape="layer", learn_lam=True,
                           lam_lr=10.0, val_every=0)  # fmt: skip
    trainer = MetaTrainer(cfg)
    report = trainer.step()
    assert not report.diverged and report.lam_clipped == len(trainer.layout.names)
    for name, value in report.lam_by_layer.items():
        assert min(abs(value / LAM_BOUNDS[0] - 1), abs(value / LAM_BOUNDS[1] - 1)) < 1e-5, name
    quiet = MetaTrainer(cfg.replace(lam_lr=1e-3))
    assert quiet.step().lam_clipped == 0


def test_fixed_scalar_lambda_is_the_engines_float_path_bit_for_bit():
    cfg = ExperimentConfig(hidden=[16, 16], meta_batch=5, inner_steps=4, val_every=0, lam_shape="scalar")
    trainer, reference = MetaTrainer(cfg), MetaTrainer(cfg)
    assert trainer.engine_lam() == cfg.lam and isinstance(trainer.engine_lam(), float)
    for _ in range(4):
        trainer.step()
        tasks = reference.sample_batch()
        train, test = reference.task_losses(tasks)
        mg = meta_gradient(cfg, train, test, reference.theta, cfg.meta_batch)  # lam defaults to cfg.lam
        assert reference.apply_meta_gradient(mg.grad.mean(0)) == ""
    assert torch.equal(trainer.theta, reference.theta)


@pytest.mark.parametrize("shape", ["layer", "parameter"])
def test_fixed_vector_lambda_of_the_base_value_trains_like_the_scalar(shape):
    base = dict(dtype="float64", hidden=[16], meta_batch=4, inner_steps=4, val_every=0)
    scalar = MetaTrainer(ExperimentConfig(**base))
    vector = MetaTrainer(ExperimentConfig(**base, lam_shape=shape))
    for _ in range(3):
        assert scalar.step().lam_by_layer == {"λ": 20.0}
        assert set(vector.step().lam_by_layer.values()) == {20.0}
    # The same arithmetic up to the order of float64 operations in the per-coordinate path.
    assert float((scalar.theta - vector.theta).abs().max()) < 1e-12


def test_bad_lambda_settings_are_one_line_errors(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "a"), "--lam-shape", "diagonal", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--lam-shape" in err and "\n" not in err
    assert main(["train", "--out", str(tmp_path / "b"), "--lam-lr", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: lam_lr must be > 0, got 0.0"
    for changes, words in [
        ({"lam_shape": "diagonal"}, "lam_shape must be one of scalar, layer, parameter"),
        ({"lam_lr": -1e-3}, "lam_lr must be > 0"),
        ({"lam_lr": math.nan}, "lam_lr must be a finite number"),
        ({"learn_lam": "yes"}, "learn_lam must be true or false"),
    ]:
        with pytest.raises(ConfigError, match=words):
            ExperimentConfig().replace(**changes)
    cfg = ExperimentConfig(hidden=[4], lam_shape="layer", learn_lam=True, val_every=0)
    params = MetaTrainer(cfg).params()
    with pytest.raises(ConfigError, match=r"lam\['0.weight'\] of shape \(3,\) does not broadcast"):
        MetaTrainer(cfg, current_lam={n: torch.ones(3) for n in params})
    with pytest.raises(ConfigError, match=r"lam_shape is layer, but lam\['0.weight'\] holds more than one value"):
        MetaTrainer(cfg, current_lam={n: torch.ones_like(p) for n, p in params.items()})
    with pytest.raises(ConfigError, match=r"lam\['2.bias'\] must be positive"):
        MetaTrainer(cfg, current_lam={n: torch.tensor(-1.0 if n == "2.bias" else 1.0) for n in params})


def test_learned_lambda_checkpoint_round_trip_and_refusals(tmp_path):
    cfg = ExperimentConfig(hidden=[8], meta_batch=4, inner_steps=2, lam_shape="parameter", learn_lam=True,
                           lam_lr=0.1, val_every=0)  # fmt: skip
    trainer = MetaTrainer(cfg)
    for _ in range(3):
        trainer.step()
    path = tmp_path / "p.safetensors"
    save_checkpoint(path, trainer.params(), trainer.config, trainer.iteration, trainer.current_lam())
    ckpt = load_checkpoint(path)
    saved = trainer.current_lam()
    assert all(torch.equal(ckpt.current_lam[n], saved[n]) for n in saved)
    assert set(ckpt.params) == set(trainer.params())
    again = MetaTrainer(ckpt.config, theta=ckpt.params, iteration=ckpt.iteration, current_lam=ckpt.current_lam)
    restored = again.current_lam()
    # lambda -> log -> exp in float32: a few ulps.
    assert all(float(((restored[n] - saved[n]) / saved[n]).abs().max()) < 1e-6 for n in saved)
    assert again.evaluate(tasks=20, steps=3).mse == pytest.approx(trainer.evaluate(tasks=20, steps=3).mse, rel=1e-5)
    for bad in (-1.0, 0.0, math.nan):
        broken = {n: t.clone() for n, t in saved.items()}
        broken["2.weight"].view(-1)[3] = bad
        save_checkpoint(path, trainer.params(), trainer.config, trainer.iteration, broken)
        with pytest.raises(CheckpointError) as exc:
            load_checkpoint(path)
        assert "'lam.2.weight'" in str(exc.value) and "\n" not in str(exc.value)
    fixed = MetaTrainer(ExperimentConfig(hidden=[8], val_every=0))
    save_checkpoint(path, fixed.params(), fixed.config, 0, fixed.current_lam())
    assert load_checkpoint(path).current_lam == 20.0


def test_evaluation_adapts_with_the_learned_lambda():
    cfg = ExperimentConfig(hidden=[8], val_tasks=10, lam_shape="scalar", learn_lam=True, val_every=0)
    learned = MetaTrainer(cfg, current_lam=200.0)
    fixed = MetaTrainer(cfg.replace(lam=200.0, learn_lam=False), theta=learned.params())
    assert learned.current_lam() == pytest.approx(200.0, rel=1e-6)
    # The same theta and (to float32 rounding of log lambda) the same lambda: the same adaptation.
    assert learned.evaluate(tasks=40, steps=4).mse == pytest.approx(fixed.evaluate(tasks=40, steps=4).mse, rel=1e-4)
    assert learned.validation_loss() == pytest.approx(fixed.validation_loss(), rel=1e-4)
    assert learned.evaluate(tasks=40, steps=4).mse != MetaTrainer(cfg, theta=learned.params()).evaluate(40, steps=4).mse


def test_a_new_base_value_rescales_a_learned_lambda_and_resets_a_fixed_one():
    cfg = ExperimentConfig(hidden=[8], meta_batch=4, inner_steps=2, lam_shape="layer", learn_lam=True,
                           lam_lr=0.1, val_every=0)  # fmt: skip
    learned = MetaTrainer(cfg)
    for _ in range(3):
        learned.step()
    before = learned.current_lam()
    learned.apply_config(cfg.replace(lam=40.0))
    after = learned.current_lam()
    assert all(float(after[n] / before[n]) == pytest.approx(2.0, rel=1e-5) for n in before)
    fixed = MetaTrainer(cfg.replace(learn_lam=False))
    fixed.step()
    fixed.apply_config(fixed.config.replace(lam=5.0))
    assert set(fixed.step().lam_by_layer.values()) == {5.0}


def test_a_skipped_iteration_leaves_lambda_untouched_and_other_methods_ignore_it(monkeypatch):
    cfg = ExperimentConfig(hidden=[8], meta_batch=4, inner_steps=2, lam_shape="layer", learn_lam=True,
                           lam_lr=0.1, val_every=0)  # fmt: skip
    trainer = MetaTrainer(cfg)
    trainer.step()
    lam, theta = trainer.current_lam(), trainer.theta.clone()
    monkeypatch.setattr("imaml_core.engine.trainer.diagnose", lambda *_: "meta-iteration skipped: forced")
    report = trainer.step()
    assert report.diverged and torch.equal(trainer.theta, theta)
    assert all(torch.equal(trainer.current_lam()[n], lam[n]) for n in lam) and report.lam_clipped == 0
    monkeypatch.undo()
    maml = MetaTrainer(cfg.replace(method="maml"))
    assert not maml.lam_learned and maml.step().lam_by_layer == {}
