"""Splits by animal: no animal is ever on two sides of a split.

Every function takes the per-window ``animal`` array (``Windows.animal``) and returns integer
index arrays into it. Animals are sorted before any shuffling, so a split depends only on the
set of animals and the seed, not on the order of the windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ethoedge.errors import ConfigError, DataError


@dataclass(frozen=True)
class Split:
    """One split: integer indices of the train, test and (optional) validation windows."""

    name: str
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray | None = None

    def animals(self, animal: np.ndarray) -> dict[str, list[str]]:
        """The animals on each side, sorted."""
        sides = {"train": self.train, "test": self.test}
        if self.val is not None:
            sides["val"] = self.val
        return {k: sorted({str(a) for a in np.asarray(animal)[v]}) for k, v in sides.items()}


def _animals(animal: np.ndarray, need: int, what: str) -> np.ndarray:
    uniq = np.unique(np.asarray(animal).astype(str))
    if len(uniq) < need:
        raise ConfigError(
            f"{what} needs at least {need} animals, the data have {len(uniq)}: {uniq.tolist()}"
        )
    return uniq


def _idx(animal: np.ndarray, group: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.isin(np.asarray(animal).astype(str), group)).astype(np.int64)


def assert_disjoint(animal: np.ndarray, split: Split) -> None:
    """Raise :class:`DataError` if any animal has windows on two sides of ``split``.

    >>> a = np.array(["x", "x", "y"])
    >>> assert_disjoint(a, Split("ok", np.array([0, 1]), np.array([2])))
    >>> assert_disjoint(a, Split("bad", np.array([0]), np.array([1, 2])))
    Traceback (most recent call last):
    ...
    ethoedge.errors.DataError: split 'bad': animals ['x'] are on both train and test
    """
    sides = split.animals(animal)
    names = list(sides)
    for i, s1 in enumerate(names):
        for s2 in names[i + 1 :]:
            both = sorted(set(sides[s1]) & set(sides[s2]))
            if both:
                raise DataError(f"split {split.name!r}: animals {both} are on both {s1} and {s2}")


def leave_one_animal_out(animal: np.ndarray) -> list[Split]:
    """One split per animal: that animal's windows are the test set, all others train.

    >>> [s.name for s in leave_one_animal_out(np.array(["b", "a", "b"]))]
    ['loao-a', 'loao-b']
    """
    uniq = _animals(animal, 2, "leave-one-animal-out")
    out = []
    for a in uniq:
        s = Split(f"loao-{a}", _idx(animal, uniq[uniq != a]), _idx(animal, np.array([a])))
        assert_disjoint(animal, s)
        out.append(s)
    return out


def kfold_by_animal(animal: np.ndarray, k: int, seed: int = 0) -> list[Split]:
    """``k`` folds of whole animals (shuffled by ``seed``); fold ``i`` is the test set of split i.

    >>> a = np.repeat(np.array(["a", "b", "c", "d", "e"]), 2)
    >>> [len(s.test) for s in kfold_by_animal(a, 2, seed=0)]
    [6, 4]
    """
    if k < 2:
        raise ConfigError(f"k-fold needs k >= 2, got {k}")
    uniq = _animals(animal, k, f"{k}-fold cross-validation")
    perm = uniq[np.random.default_rng(seed).permutation(len(uniq))]
    out = []
    for i, test_animals in enumerate(np.array_split(perm, k)):
        s = Split(
            f"fold-{i}",
            _idx(animal, np.setdiff1d(uniq, test_animals)),
            _idx(animal, test_animals),
        )
        assert_disjoint(animal, s)
        out.append(s)
    return out


def train_val_test_by_animal(
    animal: np.ndarray, val_animals: int = 1, test_animals: int = 1, seed: int = 0
) -> Split:
    """One fixed split: ``test_animals`` and ``val_animals`` drawn by ``seed``, the rest train."""
    if val_animals < 0 or test_animals < 1:
        raise ConfigError(
            f"need test_animals >= 1 and val_animals >= 0, got {test_animals}, {val_animals}"
        )
    uniq = _animals(animal, val_animals + test_animals + 1, "a train/validation/test split")
    perm = uniq[np.random.default_rng(seed).permutation(len(uniq))]
    test, val, train = (
        perm[:test_animals],
        perm[test_animals : test_animals + val_animals],
        perm[test_animals + val_animals :],
    )
    s = Split(
        f"tvt-seed{seed}",
        _idx(animal, train),
        _idx(animal, test),
        _idx(animal, val) if val_animals else None,
    )
    assert_disjoint(animal, s)
    return s


def holdout_animals(animal: np.ndarray, n: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hold ``n`` animals out for validation (e.g. early stopping inside the training animals).

    Returns ``(train_idx, val_idx)``, integer indices into ``animal``.
    """
    if n < 1:
        raise ConfigError(f"holdout needs n >= 1 animals, got {n}")
    uniq = _animals(animal, n + 1, f"holding out {n} animal(s)")
    perm = uniq[np.random.default_rng(seed).permutation(len(uniq))]
    s = Split("holdout", _idx(animal, perm[n:]), _idx(animal, perm[:n]))
    assert_disjoint(animal, s)
    return s.train, s.test
