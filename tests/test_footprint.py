"""A meta-iteration that cannot fit in memory is refused before it starts, with the numbers; the estimate
grows with MAML's unrolled steps and stays flat for iMAML, as the measured memory does."""

import pytest

from imaml_core import ExperimentConfig, MetaTrainer
from imaml_core.common.errors import ConfigError
from imaml_core.engine import footprint
from imaml_core.engine.footprint import step_bytes

GLYPHS = ExperimentConfig(task="glyphs", glyph_classes=60, filters=8, ways=5, shots=1, query=1, meta_batch=4)


def test_maml_grows_with_inner_steps_and_imaml_does_not():
    trainer = MetaTrainer(GLYPHS)

    def need(method: str, steps: int) -> int:
        config = GLYPHS.replace(method=method, inner_steps=steps)
        return step_bytes(config, trainer.model, trainer.layout.numel, trainer.examples(config))

    growth = need("maml", 8) - need("maml", 4)
    assert growth > 0 and need("maml", 16) - need("maml", 8) == 2 * growth  # linear in the unrolled steps
    assert need("imaml", 16) == need("imaml", 2)
    assert need("maml", 16) > need("imaml", 16)


def test_a_step_that_cannot_fit_is_refused_at_start_and_when_a_setting_changes(monkeypatch):
    trainer = MetaTrainer(GLYPHS)
    config = GLYPHS.replace(meta_batch=64)
    free = step_bytes(config, trainer.model, trainer.layout.numel, trainer.examples(config)) // 2
    monkeypatch.setattr(footprint, "free_bytes", lambda device: free)
    with pytest.raises(ConfigError, match=r"meta-batch 64 .* needs about .* GB .* free on cpu"):
        MetaTrainer(config)
    with pytest.raises(ConfigError, match="lower the meta-batch"):
        trainer.apply_config(config)
    assert trainer.config.meta_batch == 4  # unchanged
    trainer.apply_config(GLYPHS.replace(meta_batch=8))  # fits
