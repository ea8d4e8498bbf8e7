"""Student's t intervals, shared by evaluation (hundreds of tasks) and seed groups (a handful of seeds).

Torch-free and Qt-free: the run store's history reader and the CLI's listing import it without torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile at ``p`` (0.5 < p < 1) for ``df`` >= 1 degrees of freedom, solved to the last
    bit by bisection on the t distribution's exact finite series (Abramowitz & Stegun 26.7.3-4)."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError("t_quantile needs 0.5 < p < 1 and df >= 1")
    target = 2 * p - 1  # P(|T| < t)
    lo, hi = 0.0, 1.0
    while _central(hi, df) < target:
        lo, hi = hi, 2 * hi
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            return hi if abs(_central(hi, df) - target) <= abs(_central(lo, df) - target) else lo
        lo, hi = (mid, hi) if _central(mid, df) < target else (lo, mid)


def _central(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer ``df``."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        term, total = math.cos(theta), 0.0  # cos θ (1 + 2/3 cos²θ + 2·4/(3·5) cos⁴θ + …)
        if df > 1:
            total = term
            for k in range(1, (df - 1) // 2):
                term *= c2 * (2 * k) / (2 * k + 1)
                total += term
        return 2 / math.pi * (theta + math.sin(theta) * total)
    term = total = 1.0  # 1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + …
    for k in range(1, df // 2):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total


def mean_ci95(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and 95% half-width, ``t(0.975, n-1) · s / √n`` with ``s`` the sample standard deviation
    (ddof 1); the half-width is NaN below two values, the mean too for none."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan")
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan")
    return mean, t_quantile(0.975, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
