"""Which ticks an axis labels so that the labels read: pure functions of the view range, the axis's
length in pixels and each label's size.

pyqtgraph's log axis labels every mantissa it finds room for by a rough fill ratio, so a short axis shows
"0.70.8.91" or "3·10·4·10", and its linear axis lets a narrow plot draw "160", "180", "200" over each
other. ``choose_log_ticks`` and ``choose_linear_ticks`` pick the labelled values from the axis's pixel
length and the width (or height) of each label, densest first, so adjacent labels never touch.

Tick choice runs at every repaint, so it stays cheap and total on any view range: a non-finite range has no
ticks, the range is clamped to what a float holds (``LOG_LIMIT``), decades are visited ``stride`` at a time
from a stride the axis length allows, and linear steps start at the finest whose ticks stand ``MIN_GAP_PX``
apart.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence

PLAIN_RANGE = (1e-3, 1e4)  # labels inside this range are plain numbers ("0.01", "500"); others "1e-5"
MIN_GAP_PX = 10.0  # least free space between neighbouring labels; at least one label's own extent, too
LOG_LIMIT = 307.0  # |log10| of the view range is clamped here: 10^±307 are normal floats
MAX_LABELS = 100  # no candidate set is built with more labels than this, however long the axis
MAX_DIGITS = 17  # significant digits that tell any two distinct floats apart

Tick = tuple[float, str]


def format_tick(value: float, digits: int = 0) -> str:
    """A plain number inside ``PLAIN_RANGE`` ("0.01", "20"), a compact exponent outside it ("1e-5", "2e6").

    Plain numbers carry up to 6 significant digits and mantissas up to 3, or ``digits`` when that is more."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if PLAIN_RANGE[0] * (1 - 1e-9) <= abs(value) < PLAIN_RANGE[1]:
        return f"{value:.{max(6, digits)}g}"
    # Python's own decimal exponent: exact for subnormals, where value / 10**exponent would underflow
    mantissa, exponent = f"{value:.{max(3, digits) - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def log_range(lo: float, hi: float) -> tuple[float, float] | None:
    """[lo, hi] in order and clamped to ±``LOG_LIMIT``; None when either end is not finite."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    lo, hi = min(lo, hi), max(lo, hi)
    return max(-LOG_LIMIT, min(lo, LOG_LIMIT)), max(-LOG_LIMIT, min(hi, LOG_LIMIT))


def _mantissa_ticks(lo: float, hi: float, mantissas: Sequence[int], stride: int = 1) -> list[float]:
    """Values m·10^k (m in ``mantissas``; k a multiple of ``stride``) whose log10 lies in [lo, hi]."""
    out = []
    first = math.ceil((math.floor(lo) - 1) / stride) * stride
    for k in range(first, math.ceil(hi) + 1, stride):
        for m in mantissas:
            v = math.log10(m) + k
            if lo - 1e-9 <= v <= hi + 1e-9:
                out.append(float(f"{m}e{k}"))  # exact decimal, not m * 10.0**k
    return out


def _linear_ticks(lo: float, hi: float) -> list[list[float]]:
    """Evenly spaced round values (steps 1, 2, 5 × 10^k) between 10^lo and 10^hi, finest step first.

    Used when the range spans about a decade or less, where decades and their 2 and 5 may give a single
    label or none."""
    a, b = 10.0**lo, 10.0**hi
    candidates = []
    top = math.floor(math.log10(b - a)) if b > a else math.floor(lo)
    for k in range(top - 3, top + 1):
        for m in (1, 2, 5):
            step = m * 10.0**k
            if step < sys.float_info.min:  # subnormal or zero: no exact grid to count on
                continue
            first, last = math.ceil(a / step - 1e-9), math.floor(b / step + 1e-9)
            if 2 <= last - first + 1 <= 200:
                values = [float(f"{i * m}e{k}") for i in range(first, last + 1)]  # exact decimals
                candidates.append(values)
                candidates.append([values[0], values[-1]])  # the two ends, for a short axis
    return candidates


def _strides(span: float, least: float) -> Iterator[int]:
    """Decade strides 1, 2, 3, 5, 10, 20, 40, … of at least ``least``, up to the first that passes ``span``
    (yielded even below ``least``: it gives at most one decade, the single label of a very short axis)."""
    stride = 1
    while True:
        if stride >= least - 1e-9 or stride > span:
            yield stride
        if stride > span:
            return
        stride = {1: 2, 2: 3, 3: 5}.get(stride, stride * 2)


def candidate_levels(lo: float, hi: float, length_px: float = math.inf) -> list[list[float]]:
    """Sets of labelled values for the log10 range [lo, hi], roughly densest first.

    Decade sets start at the least stride whose neighbours are ``MIN_GAP_PX`` apart on ``length_px``
    pixels (a denser set could never fit) and that gives at most ``MAX_LABELS`` values, so the work is
    bounded by the axis, not by the range; each stride's decades are visited directly."""
    span = hi - lo
    levels: list[list[float]] = []
    if span <= 1.0 + 1e-9:
        levels.extend(_linear_ticks(lo, hi))
    if 3 * span <= MAX_LABELS:
        levels.append(_mantissa_ticks(lo, hi, (1, 2, 5)))
    least = span / MAX_LABELS
    if span > 0:
        least = max(least, MIN_GAP_PX * span / length_px if length_px > 0 else math.inf)
    levels.extend(_mantissa_ticks(lo, hi, (1,), stride) for stride in _strides(span, least))
    return [level for level in levels if level]


def labels_fit(
    lo: float,
    hi: float,
    length_px: float,
    ticks: Sequence[Tick],
    extent: Callable[[str], float],
    *,
    spacious: bool = True,
) -> bool:
    """True when the free space between neighbouring labels is at least ``MIN_GAP_PX`` and, when
    ``spacious``, at least the larger label's extent too (so labels read as separate numbers).

    ``extent`` is a label's size along the axis: its width on a horizontal axis, the line height on a
    vertical one."""
    if hi <= lo:
        return len(ticks) <= 1
    scale = length_px / (hi - lo)
    return _spaced([(math.log10(v) - lo) * scale for v, _ in ticks], [extent(t) for _, t in ticks], spacious)


def _spaced(positions: Sequence[float], sizes: Sequence[float], spacious: bool) -> bool:
    """``labels_fit``'s test on labels already placed: centres in pixels, extents along the axis."""
    for i in range(1, len(positions)):
        gap = max(MIN_GAP_PX, sizes[i], sizes[i - 1]) if spacious else MIN_GAP_PX
        if positions[i] - positions[i - 1] < (sizes[i] + sizes[i - 1]) / 2 + gap:
            return False
    return True


def distinct_ends(lo: float, hi: float) -> list[Tick]:
    """10^lo and 10^hi with the fewest digits (at least ``format_tick``'s own) that tell them apart; empty
    when no number of digits does (the ends are one float)."""
    a, b = 10.0**lo, 10.0**hi
    for digits in range(6, MAX_DIGITS + 1):
        low, high = format_tick(a, digits), format_tick(b, digits)
        if low != high:
            return [(a, low), (b, high)]
    return []


def choose_log_ticks(lo: float, hi: float, length_px: float, extent: Callable[[str], float]) -> list[Tick]:
    """The labelled ticks of a log axis showing 10^lo..10^hi on ``length_px`` pixels.

    The candidate set with the most labels that fit with room to spare wins. Two or more labels are
    preferred to a single one: where no such set has room to spare, the densest with ``MIN_GAP_PX``
    between labels is taken, so a short range or a short axis still reads (0.6 and 1; 1e-5 and 1e-4).
    A set whose labels repeat (a range narrower than six digits tell apart) is never taken; where that
    leaves no set of two, the two ends are labelled with as many digits as it takes to differ, if they fit.
    No ticks for a non-finite range or length; the range is clamped to ±``LOG_LIMIT`` first."""
    bounds = log_range(lo, hi)
    if bounds is None or not math.isfinite(length_px):
        return []
    lo, hi = bounds
    levels: list[list[Tick]] = []
    repeated = False
    for values in candidate_levels(lo, hi, length_px):
        ticks = [(v, format_tick(v)) for v in values]
        if len({text for _, text in ticks}) == len(ticks):
            levels.append(ticks)
        else:
            repeated = True
    for spacious in (True, False):
        several = [t for t in levels if len(t) >= 2 and labels_fit(lo, hi, length_px, t, extent, spacious=spacious)]
        if several:
            return max(several, key=len)  # the first of equally dense sets: the finer rule
    if repeated:
        ends = distinct_ends(lo, hi)
        if ends and labels_fit(lo, hi, length_px, ends, extent, spacious=False):
            return ends
    single = [t for t in levels if len(t) == 1]
    if single:
        return single[0]
    end = 10.0**lo  # finite and positive: lo is clamped
    return [(end, format_tick(end))]


def minor_ticks(lo: float, hi: float, labelled: Sequence[float], length_px: float) -> list[float]:
    """Unlabelled ticks at 1..9 × 10^k, drawn only while neighbouring decades are at least 40 px apart
    (and over at most ``MAX_LABELS`` decades); none for a non-finite range."""
    bounds = log_range(lo, hi)
    if bounds is None:
        return []
    lo, hi = bounds
    if hi <= lo or hi - lo > MAX_LABELS or not length_px / (hi - lo) >= 40:
        return []
    taken = {round(math.log10(v), 9) for v in labelled}
    return [v for v in _mantissa_ticks(lo, hi, range(1, 10)) if round(math.log10(v), 9) not in taken]


def _round_steps(span: float, least: float) -> Iterator[float]:
    """Steps 1, 2, 5 × 10^k from the finest of at least ``least`` (and at least a ``MAX_LABELS``-th of
    ``span``) up to the first longer than ``span`` (which gives at most one value)."""
    least = max(least, span / MAX_LABELS)
    k = math.floor(math.log10(least))
    while True:
        for m in (1, 2, 5):
            step = float(f"{m}e{k}")  # exact decimal
            if step >= least * (1 - 1e-9):
                yield step
            if step > span:
                return
        k += 1


def choose_linear_ticks(
    lo: float,
    hi: float,
    length_px: float,
    extent: Callable[[str], float],
    label: Callable[[list[float], float], list[str]],
    overhang: float = math.inf,
) -> tuple[float, list[Tick]]:
    """The step and labelled ticks of a linear axis showing lo..hi on ``length_px`` pixels.

    Candidates are the multiples of round steps (1, 2, 5 × 10^k); ``label(values, step)`` writes their
    labels (the axis's own format), and a label reaching more than ``overhang`` pixels past an end of the
    axis is left out (pyqtgraph hides it). The finest step whose labels fit with room to spare wins, then
    the finest with ``MIN_GAP_PX`` between labels, so a narrow plot shows "0" and "200" rather than
    "1601820". Where no step's labels fit, the first and last labels of the coarsest step (of at least a
    tenth of the range, so they stay round) with room for two are kept (0.7 and 0.9 rather than 0.8 alone);
    one label is the last resort. A step whose labels repeat (a range narrower than the labels' digits) is
    never taken. No ticks for a non-finite range or length, or an empty range."""
    if not all(math.isfinite(x) for x in (lo, hi, length_px)) or length_px <= 0:
        return 0.0, []
    lo, hi = min(lo, hi), max(lo, hi)
    span = hi - lo
    if not 0 < span < math.inf or span < 1e-12 * max(abs(lo), abs(hi)):
        return 0.0, []
    levels: list[tuple[float, list[Tick], list[float], list[float]]] = []
    for step in _round_steps(span, min(MIN_GAP_PX * span / length_px, span / 10)):  # finer ones never fit
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        values = [i * step for i in range(first, last + 1)]
        texts = label(values, step) if values else []
        if len(set(texts)) < len(texts):
            continue
        ticks, positions, sizes = [], [], []
        for value, text in zip(values, texts, strict=True):
            position, size = (value - lo) * length_px / span, extent(text)
            if -overhang <= position - size / 2 and position + size / 2 <= length_px + overhang:
                ticks.append((value, text))
                positions.append(position)
                sizes.append(size)
        if ticks:
            levels.append((step, ticks, positions, sizes))
    for spacious in (True, False):
        for step, ticks, positions, sizes in levels:
            if len(ticks) >= 2 and _spaced(positions, sizes, spacious):
                return step, ticks
    for step, ticks, positions, sizes in reversed(levels):  # coarsest first: the roundest two labels
        if (
            step >= span / 10
            and len(ticks) > 2
            and _spaced(positions[:: len(ticks) - 1], sizes[:: len(ticks) - 1], False)
        ):
            return step, ticks[:: len(ticks) - 1]
    single = [(step, ticks) for step, ticks, _, _ in levels if len(ticks) == 1]
    return single[0] if single else (0.0, [])


def minor_step(step: float, length_px_per_unit: float, subdivide: bool = True) -> float | None:
    """The step of the unlabelled ticks under a labelled one, when they are at least 5 px apart: a fifth of
    a 1 or 5 step, half a 2 step; the step itself where not ``subdivide`` (labels on only some multiples)."""
    mantissa = round(step / 10.0 ** math.floor(math.log10(step) + 1e-9))
    minor = step / (2 if mantissa == 2 else 5) if subdivide else step
    return minor if minor * length_px_per_unit >= 5 else None
