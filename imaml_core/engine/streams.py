"""Seeded random streams: each use of randomness in a run draws from its own generator, derived from the
run's seed, so that e.g. changing the validation set size never changes the training tasks."""

from __future__ import annotations

import torch

THETA_INIT = 0
TRAINING_TASKS = 1
VALIDATION_TASKS = 2
EVALUATION_TASKS = 7
PREVIEW_TASK = 11


def subseed(seed: int, stream: int) -> int:
    """A seed for ``stream`` of the run seeded with ``seed`` (distinct streams never share a seed)."""
    return (seed * 1_000_003 + stream) % (2**63)


def generator(device: torch.device, seed: int, stream: int) -> torch.Generator:
    """A fresh generator on ``device`` for ``stream`` of the run seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(subseed(seed, stream))
    return gen
