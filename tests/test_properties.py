"""Property tests (hypothesis): configs validate or fail clearly, CG never returns NaN, batching is exact."""

import dataclasses
import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.reference_loop import public_api_meta_gradient
from imaml_core import ConfigError, ExperimentConfig, MetaTrainer, conjugate_gradient

from .helpers import rel_err

FIELDS = [f.name for f in dataclasses.fields(ExperimentConfig)]
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["imaml", "maml", "fomaml", "reptile", "gd", "hf", "cpu", "auto", "float64", "sinusoid"]),
    st.lists(st.integers(min_value=-5, max_value=5000), max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*FIELDS, "bogus_key"]), ANY_VALUE, max_size=6))
def test_any_config_either_validates_or_raises_a_config_error(changes):
    try:
        cfg = ExperimentConfig().replace(**changes)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and any(name in message for name in [*FIELDS, "bogus_key"])
        return
    assert ExperimentConfig.from_toml(cfg.to_toml()) == cfg


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=10),
    st.lists(st.floats(min_value=-10, max_value=10, allow_nan=False), min_size=10, max_size=10),
    st.integers(min_value=0, max_value=2**31 - 1),
    st.integers(min_value=0, max_value=30),
)
def test_cg_never_returns_nan_and_flags_indefinite_operators(n, eigs, seed, iters):
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    lam = torch.tensor(eigs[:n], dtype=torch.float64)
    a = q @ torch.diag(lam) @ q.T
    b = {"x": torch.randn(n, generator=gen, dtype=torch.float64)}
    x, info = conjugate_gradient(lambda v: {"x": a @ v["x"]}, b, max_iters=iters, tol=1e-12)
    assert torch.isfinite(x["x"]).all() and math.isfinite(info.residual)
    if bool((lam > 1e-3).all()) and iters >= 3 * n:
        # Well-posed SPD system, enough iterations: the answer is right.
        assert not info.nonpositive_curvature
        exact = torch.linalg.solve(a, b["x"])
        assert rel_err(x["x"], exact) < 1e-6 * float(lam.max() / lam.min())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=3),
    st.integers(min_value=1, max_value=7),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["gd", "hf"]),
    st.integers(min_value=1, max_value=12),
)
def test_batched_engine_equals_per_task_computation(hidden, batch, seed, solver, shots):
    cfg = ExperimentConfig(
        dtype="float64",
        hidden=hidden,
        meta_batch=batch,
        seed=seed,
        inner_solver=solver,
        inner_steps=3,
        shots=shots,
        val_tasks=1,
        val_every=0,
    )
    trainer = MetaTrainer(cfg)
    tasks = trainer.sample_batch()
    batched = trainer.meta_gradient(tasks).grad.mean(0)
    looped = public_api_meta_gradient(trainer, tasks)
    scale = max(float(looped.norm()), 1e-12)
    assert float((batched - looped).norm()) / scale < 1e-8
