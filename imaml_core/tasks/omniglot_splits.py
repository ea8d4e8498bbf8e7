"""Omniglot characters in memory (:class:`CharacterSet`) and the ways to divide them into meta-training,
validation and test characters. Reading the files and the cache live in omniglot.py, which re-exports
everything here.

Every split is a function of the sorted character (or alphabet) names and a seed, never of the order a file
system or a zip lists its entries, so the same data and seed give the same split on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imaml_core.common.errors import ConfigError, ImamlError

SPLITS = ("auto", "lake", "authors", "alphabet")
DRAWERS = 20  # every Omniglot character is drawn once by each of 20 people
SIZE = 28  # images are resized once to SIZE × SIZE, as the MAML and iMAML code does
AUTHORS_TRAIN = 1200  # meta-training characters of the iMAML/MAML split; the other 423 are the test set
ALPHABET_SHARES = (0.60, 0.15, 0.25)  # train, val, test shares of the alphabets in the "alphabet" split


class DataError(ImamlError):
    """A data set that is missing, malformed, corrupt or cannot be split as asked; one line naming the file,
    entry or set, and how to get a usable one."""


@dataclass(frozen=True, eq=False)
class CharacterSet:
    """Characters with all their drawings: ``images[c, d]`` is drawer ``d``'s drawing of character ``c``,
    uint8 with ink 255 on background 0 (the PNGs' black-on-white inverted, so ink is the high value)."""

    images: np.ndarray
    alphabets: tuple[str, ...]
    characters: tuple[str, ...]

    def __post_init__(self) -> None:
        images = self.images
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (DRAWERS, SIZE, SIZE):
            raise ValueError(f"images must be uint8 (C, {DRAWERS}, {SIZE}, {SIZE}), got {images.dtype} {images.shape}")
        if not len(self.alphabets) == len(self.characters) == len(images):
            raise ValueError("images, alphabets and characters must have one entry per character")

    def subset(self, index: Sequence[int]) -> CharacterSet:
        """The characters at ``index`` (in that order), as a new set."""
        index = [int(i) for i in index]
        images = self.images[np.asarray(index, dtype=np.intp)].reshape(len(index), DRAWERS, SIZE, SIZE)
        return CharacterSet(images, tuple(self.alphabets[i] for i in index), tuple(self.characters[i] for i in index))

    def __len__(self) -> int:
        return len(self.characters)


def merge(sets: Sequence[CharacterSet]) -> CharacterSet:
    """All characters of ``sets``, sorted by name; a name found in two sets (the small subsets share Greek
    and Latin) is the same character, kept once from the first set that has it."""
    first: dict[str, tuple[int, int]] = {}
    for s, charset in enumerate(sets):
        for c, name in enumerate(charset.characters):
            first.setdefault(name, (s, c))
    names = sorted(first)
    images = np.empty((len(names), DRAWERS, SIZE, SIZE), dtype=np.uint8)
    alphabets = []
    for i, name in enumerate(names):
        s, c = first[name]
        images[i] = sets[s].images[c]
        alphabets.append(sets[s].alphabets[c])
    return CharacterSet(images, tuple(alphabets), tuple(names))


def omniglot_splits(
    sets: dict[str, CharacterSet], split: str = "auto", seed: int = 0, val_fraction: float = 0.1
) -> dict[str, CharacterSet]:
    """``{"train", "val", "test"}`` character sets from the sources of ``load_omniglot``, disjoint by
    character (checked). ``split`` is one of :data:`SPLITS`:

    - ``lake``: Lake et al.'s protocol. The background set's characters are train and val (``val_fraction``
      of them, chosen by ``seed``), the evaluation set's are test. Needs both full sets.
    - ``authors``: the split of the iMAML (and MAML) code: all 1623 characters shuffled, the first 1200
      for meta-training (the first ``val_fraction`` of those for validation), the other 423 for test. Their
      code shuffled the order the file system listed the folders in, so their exact split cannot be
      reproduced; here the names are sorted and then shuffled with ``np.random.default_rng(seed)``.
    - ``alphabet``: whole alphabets, about 60% / 15% / 25% of them (at least one each), so no test alphabet
      is seen in training; works with any sources, duplicates across sources kept once.
      ``val_fraction`` does not apply: validation takes whole alphabets too.
    - ``auto``: ``lake`` when both full sets are loaded, otherwise ``alphabet``.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown Omniglot split {split!r} (choose from {', '.join(SPLITS)})")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not sets:
        raise DataError("no Omniglot characters to split")
    full = "background" in sets and "evaluation" in sets
    if split == "auto":
        split = "lake" if full else "alphabet"
    if split in ("lake", "authors") and not full:
        missing = " and ".join(f"images_{k}.zip" for k in ("background", "evaluation") if k not in sets)
        raise DataError(
            f"split {split!r} needs the full background and evaluation sets; {missing} missing "
            f"(loaded: {', '.join(sorted(sets))}); run `imaml data omniglot`, or use split 'alphabet'"
        )
    rng = np.random.default_rng(seed)
    if split == "lake":
        background = merge([sets["background"]])
        val, train = _cut(rng.permutation(len(background)), _count(val_fraction, len(background)))
        parts = {"train": background.subset(train), "val": background.subset(val), "test": merge([sets["evaluation"]])}
    elif split == "authors":
        everything = merge([sets["background"], sets["evaluation"]])
        if len(everything) <= AUTHORS_TRAIN:
            raise DataError(
                f"split 'authors' needs more than {AUTHORS_TRAIN} characters (the full sets have 1623); "
                f"the background and evaluation sets loaded have {len(everything)}"
            )
        meta_train, test = _cut(rng.permutation(len(everything)), AUTHORS_TRAIN)
        val, train = _cut(meta_train, _count(val_fraction, AUTHORS_TRAIN))
        parts = {"train": everything.subset(train), "val": everything.subset(val), "test": everything.subset(test)}
    else:
        parts = _by_alphabet(merge([sets[k] for k in sorted(sets)]), rng)
    _check_disjoint(parts)
    return parts


def _count(fraction: float, n: int) -> int:
    """``fraction`` of ``n``, rounded half up, at least 1 when the fraction is positive and n allows it."""
    k = int(fraction * n + 0.5)
    return min(max(k, 1 if fraction > 0 else 0), max(n - 1, 0))


def _cut(order: np.ndarray, k: int) -> tuple[list[int], list[int]]:
    """The first ``k`` of ``order`` and the rest, each sorted (so a part lists its characters by name)."""
    return sorted(int(i) for i in order[:k]), sorted(int(i) for i in order[k:])


def _by_alphabet(chars: CharacterSet, rng: np.random.Generator) -> dict[str, CharacterSet]:
    names = sorted(set(chars.alphabets))
    if len(names) < 3:
        raise DataError(
            f"split 'alphabet' needs at least 3 alphabets (one each for train, val and test); "
            f"the data holds {len(names)}: {', '.join(names)}"
        )
    order = [names[i] for i in rng.permutation(len(names))]
    n_val = max(1, int(ALPHABET_SHARES[1] * len(names) + 0.5))
    n_test = max(1, int(ALPHABET_SHARES[2] * len(names) + 0.5))
    n_train = len(names) - n_val - n_test
    if n_train < 1:  # three or four alphabets: one each for val and test, the rest for training
        n_val, n_test = 1, 1
        n_train = len(names) - 2
    groups = {
        "train": set(order[:n_train]),
        "val": set(order[n_train : n_train + n_val]),
        "test": set(order[n_train + n_val :]),
    }
    return {
        part: chars.subset([i for i, a in enumerate(chars.alphabets) if a in alphabets])
        for part, alphabets in groups.items()
    }


def _check_disjoint(parts: dict[str, CharacterSet]) -> None:
    seen: dict[str, str] = {}
    for part, charset in parts.items():
        for name in charset.characters:
            other = seen.setdefault(name, part)
            assert other == part, f"character {name} is in both {other} and {part}"
