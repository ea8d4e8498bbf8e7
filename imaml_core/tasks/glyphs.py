"""Synthetic glyphs: an Omniglot-shaped data set made from a seed, for machines without Omniglot.

Each class is one to three random pen strokes (cubic Bézier curves); each of its 20 "drawers" redraws them
with its own jitter of the control points, a small rotation, scale and shift, and its own pen width. Images
are rendered anti-aliased at 28×28, ink high, as uint8 — the layout of the Omniglot pools — so the same
family, model and settings run on both. They are easier than Omniglot and are labelled "synthetic" wherever
they are shown; their numbers say nothing about the paper's.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

DRAWERS = 20
SIZE = 28
GLYPH_SEED = 0  # the data set's seed: every run sees the same glyphs, as every run sees the same Omniglot
_POINTS = 28  # samples along each stroke (closer than a pixel at 28×28)
_CHUNK = 2048  # glyphs rendered at once


def _bezier(control: np.ndarray) -> np.ndarray:
    """Points along cubic Béziers: control (..., 4, 2) -> (..., _POINTS, 2)."""
    t = np.linspace(0.0, 1.0, _POINTS)[:, None]
    p0, p1, p2, p3 = (control[..., i : i + 1, :] for i in range(4))
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def _strokes(rng: np.random.Generator, classes: int) -> np.ndarray:
    """Each class's strokes' control points, (classes, 3, 4, 2) in [0.15, 0.85]; unused strokes are NaN."""
    control = rng.uniform(0.15, 0.85, size=(classes, 3, 4, 2))
    used = rng.integers(1, 4, size=classes)
    control[np.arange(3)[None, :] >= used[:, None]] = np.nan
    return control


def _drawn(rng: np.random.Generator, control: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every drawer's version of every class: points (classes, DRAWERS, 3 * _POINTS, 2), pen widths."""
    classes = control.shape[0]
    jitter = rng.normal(0.0, 0.035, size=(classes, DRAWERS, 3, 4, 2))
    points = _bezier(control[:, None] + jitter).reshape(classes, DRAWERS, 3 * _POINTS, 2) - 0.5
    angle = rng.uniform(-0.2, 0.2, size=(classes, DRAWERS))
    scale = rng.uniform(0.85, 1.1, size=(classes, DRAWERS))
    shift = rng.uniform(-0.05, 0.05, size=(classes, DRAWERS, 1, 2))
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (classes, DRAWERS, 2, 2)
    points = np.einsum("cdij,cdpj->cdpi", rotation, points) + shift + 0.5
    width = rng.uniform(0.03, 0.05, size=(classes, DRAWERS))
    return points, width


def _render(points: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Anti-aliased ink of glyphs given as points (G, P, 2) (NaN: no stroke) and pen widths (G,) -> uint8."""
    axis = (np.arange(SIZE) + 0.5) / SIZE
    grid = torch.from_numpy(np.stack(np.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)).float()
    out = np.empty((len(points), SIZE * SIZE), dtype=np.uint8)
    for lo in range(0, len(points), _CHUNK):
        p = torch.from_numpy(np.nan_to_num(points[lo : lo + _CHUNK], nan=1e3)).float()
        distance = torch.cdist(grid.expand(len(p), -1, -1), p).amin(dim=2)  # (g, SIZE * SIZE)
        w = torch.from_numpy(width[lo : lo + _CHUNK]).float()[:, None]
        ink = ((w - distance) * SIZE + 0.5).clamp(0.0, 1.0)
        out[lo : lo + len(p)] = (ink * 255.0).round().to(torch.uint8).numpy()
    return out.reshape(len(points), SIZE, SIZE)


@functools.lru_cache(maxsize=4)
def render_glyphs(classes: int, seed: int = GLYPH_SEED) -> np.ndarray:
    """``classes`` glyph classes of ``DRAWERS`` drawings each, (classes, DRAWERS, 28, 28) uint8, ink high.

    The same ``classes`` and ``seed`` give the same array on every machine (the draws are numpy's PCG64; the
    rendering is float32 arithmetic rounded to bytes). Cached: the array is read-only."""
    rng = np.random.default_rng([seed, classes])
    points, width = _drawn(rng, _strokes(rng, classes))
    images = _render(points.reshape(-1, *points.shape[2:]), width.reshape(-1))
    images = images.reshape(classes, DRAWERS, SIZE, SIZE)
    images.setflags(write=False)
    return images


def glyph_splits(classes: int, seed: int = GLYPH_SEED) -> dict[str, np.ndarray]:
    """The glyphs split by class: 70% meta-training, 10% validation, 20% test (classes are i.i.d., so the
    split is by index)."""
    images = render_glyphs(classes, seed)
    n_train, n_val = int(round(0.7 * classes)), int(round(0.1 * classes))
    return {
        "train": images[:n_train],
        "val": images[n_train : n_train + n_val],
        "test": images[n_train + n_val :],
    }
