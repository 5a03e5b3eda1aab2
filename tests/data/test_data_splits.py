"""Splits by animal: never an animal on both sides; reproducible from a seed."""

from __future__ import annotations

import numpy as np
import pytest

from ethoedge.data import (
    Split,
    assert_disjoint,
    holdout_animals,
    kfold_by_animal,
    leave_one_animal_out,
    train_val_test_by_animal,
)
from ethoedge.errors import ConfigError, DataError


def _covers(n: int, *parts: np.ndarray) -> bool:
    allidx = np.concatenate(parts)
    return len(allidx) == n and np.array_equal(np.sort(allidx), np.arange(n))


def test_leave_one_animal_out(default_windows):
    a = default_windows.animal
    splits = leave_one_animal_out(a)
    assert [s.name for s in splits] == [f"loao-{x}" for x in sorted(set(a))]
    for s in splits:
        assert_disjoint(a, s)
        assert len(set(a[s.test])) == 1
        assert _covers(len(a), s.train, s.test)


@pytest.mark.parametrize("k", [2, 3, 8])
def test_kfold_by_animal(default_windows, k):
    a = default_windows.animal
    splits = kfold_by_animal(a, k, seed=3)
    assert len(splits) == k
    assert _covers(len(a), *[s.test for s in splits])  # every window tested exactly once
    for s in splits:
        assert_disjoint(a, s)
        assert _covers(len(a), s.train, s.test)
    again = kfold_by_animal(a, k, seed=3)
    assert all(np.array_equal(x.test, y.test) for x, y in zip(splits, again, strict=True))
    # The order of the windows does not matter, only the set of animals and the seed.
    perm = np.random.default_rng(0).permutation(len(a))
    shuffled = kfold_by_animal(a[perm], k, seed=3)
    assert [set(a[s.test]) for s in splits] == [set(a[perm][s.test]) for s in shuffled]


def test_train_val_test_and_holdout(default_windows):
    a = default_windows.animal
    s = train_val_test_by_animal(a, val_animals=2, test_animals=1, seed=1)
    assert s.val is not None
    assert_disjoint(a, s)
    assert len(set(a[s.val])) == 2 and len(set(a[s.test])) == 1
    assert _covers(len(a), s.train, s.val, s.test)
    assert np.array_equal(train_val_test_by_animal(a, 2, 1, seed=1).test, s.test)
    tr, va = holdout_animals(a[s.train], n=1, seed=0)
    assert not set(a[s.train][tr]) & set(a[s.train][va])
    assert _covers(len(s.train), tr, va)


def test_errors():
    a = np.array(["x", "x", "y"])
    with pytest.raises(ConfigError, match="at least 3 animals"):
        kfold_by_animal(a, 3)
    with pytest.raises(ConfigError, match="at least 3 animals"):
        train_val_test_by_animal(a)
    with pytest.raises(ConfigError, match="at least 2 animals"):
        leave_one_animal_out(np.array(["x", "x"]))
    with pytest.raises(DataError, match=r"\['x'\] are on both train and val"):
        assert_disjoint(a, Split("s", np.array([0]), np.array([2]), np.array([1])))
