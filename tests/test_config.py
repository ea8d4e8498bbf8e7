"""ExperimentConfig: validation with clear messages, TOML round trip, live/restart fields."""

import math

import pytest

from imaml_core import ConfigError, ExperimentConfig


def test_defaults_validate_and_round_trip_through_toml(tmp_path):
    cfg = ExperimentConfig()
    path = tmp_path / "c.toml"
    cfg.save(path)
    assert ExperimentConfig.load(path) == cfg
    custom = cfg.replace(lam=3, hidden=[10, 20, 30], method="maml", dtype="float64")
    assert ExperimentConfig.from_toml(custom.to_toml()) == custom
    assert isinstance(custom.lam, float)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"lam": -1.0}, "lam must be > 0"),
        ({"lam": 0.0}, "lam must be > 0"),
        ({"lam": math.nan}, "lam must be a finite number"),
        ({"lam": math.inf}, "lam must be a finite number"),
        ({"cg_steps": -1}, "cg_steps must be >= 0"),
        ({"inner_steps": 0}, "inner_steps must be >= 1"),
        ({"meta_batch": -5}, "meta_batch must be >= 1"),
        ({"inner_lr": -0.1}, "inner_lr must be > 0"),
        ({"method": "sgd"}, "method must be one of"),
        ({"inner_solver": "lbfgs"}, "inner_solver must be one of"),
        ({"device": "tpu"}, "device must be one of"),
        ({"hidden": []}, "hidden must be a list"),
        ({"hidden": [40, -1]}, "hidden must be a list"),
        ({"cg_steps": 2.5}, "cg_steps must be an integer"),
        ({"inner_steps": True}, "inner_steps must be an integer"),
        ({"lam": "big"}, "lam must be a number"),
        ({"inner_safeguard": 1}, "inner_safeguard must be true or false"),
        ({"colour": "red"}, "unknown config key 'colour'"),
    ],
)
def test_invalid_settings_name_the_key(changes, words):
    with pytest.raises(ConfigError) as exc:
        ExperimentConfig().replace(**changes)
    assert words in str(exc.value)


def test_invalid_toml_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("lam = = 3\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        ExperimentConfig.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        ExperimentConfig.load(tmp_path / "missing.toml")


def test_live_and_restart_fields_follow_the_design():
    for name in ("lam", "cg_steps", "cg_tol", "inner_steps", "inner_lr", "meta_lr", "meta_batch"):
        assert ExperimentConfig.is_live(name)
    for name in ("method", "shots", "seed", "device", "hidden"):
        assert not ExperimentConfig.is_live(name)


def test_a_file_that_still_names_the_retired_task_family_loads_and_drops_it():
    """Checkpoints and presets written while the config had ``task_family`` carry it; they must still load."""
    text = ExperimentConfig().to_toml() + 'task_family = "sinusoid"\n'
    assert ExperimentConfig.from_toml(text) == ExperimentConfig()
    with pytest.raises(ConfigError, match="task_family"):
        ExperimentConfig.from_toml(ExperimentConfig().to_toml() + 'task_family = "omniglot"\n')
