"""Cross-validation by animal and the aggregation of results over folds and seeds.

Headline figure (documented in every report): for each seed, the predictions of all folds are
pooled (every window is predicted exactly once, by the model that did not see its animal) and
one MCC is computed; ``mcc`` is the mean of these pooled MCCs over seeds and ``mcc_std`` their
standard deviation over seeds (0 with one seed). Per-fold MCCs are reported beside them
(``mcc_fold_mean``, ``mcc_fold_std`` over all folds and seeds): their spread shows how much
animals differ.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from ethoedge.data import splits as _splits
from ethoedge.data.splits import Split
from ethoedge.errors import ConfigError

PROTOCOLS = ("loao", "kfold", "holdout")


def make_splits(
    animal: np.ndarray,
    protocol: str,
    *,
    k: int = 5,
    seed: int = 0,
    val_animals: int = 1,
    test_animals: int = 1,
) -> list[Split]:
    """Animal-wise splits, each with a validation set taken from its *training* animals
    (none when ``val_animals`` is 0: training then runs its fixed epoch budget and keeps the
    last epoch's weights).

    ``"loao"``: leave one animal out; ``"kfold"``: ``k`` folds by animal; ``"holdout"``: one
    train/val/test split (``val_animals`` and ``test_animals`` animals). No animal is in two
    parts of a split (checked with :func:`ethoedge.data.splits.assert_disjoint`).
    """
    animal = np.asarray(animal)
    n_animals = len(np.unique(animal))
    if protocol == "loao":
        base = _splits.leave_one_animal_out(animal)
    elif protocol == "kfold":
        if n_animals < k:
            raise ConfigError(f"kfold with k={k} needs at least {k} animals, found {n_animals}")
        base = _splits.kfold_by_animal(animal, k, seed)
    elif protocol == "holdout":
        return [_splits.train_val_test_by_animal(animal, val_animals, test_animals, seed)]
    else:
        raise ConfigError(f"unknown protocol '{protocol}' (one of {', '.join(PROTOCOLS)})")
    out = []
    for s in base:
        tr_animals = np.unique(animal[s.train])
        if val_animals and len(tr_animals) <= val_animals:
            raise ConfigError(
                f"fold {s.name} has {len(tr_animals)} training animal(s): {val_animals}"
                " validation animal(s) would leave none to train on (val_animals)"
            )
        if val_animals:
            tr, va = _splits.holdout_animals(animal[s.train], n=val_animals, seed=seed)
            split = Split(s.name, s.train[tr], s.test, s.train[va])
        else:
            split = Split(s.name, s.train, s.test, None)
        _splits.assert_disjoint(animal, split)
        out.append(split)
    return out


def mean_std(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for fewer than two values).

    >>> mean_std([1.0, 3.0])
    (2.0, 1.4142135623730951)
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def paired_difference(
    a: list[float] | np.ndarray, b: list[float] | np.ndarray, confidence: float = 0.95
) -> dict[str, Any]:
    """Mean of ``a - b`` over paired runs with a two-sided Student-t confidence interval.

    >>> d = paired_difference([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    >>> round(d["mean"], 3), round(d["ci_low"], 3), round(d["ci_high"], 3)
    (0.1, 0.1, 0.1)
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = int(d.size)
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return {
            "mean": mean,
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "n": n,
            "sd": float("nan"),
            "confidence": confidence,
        }
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {
        "mean": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "n": n,
        "sd": sd,
        "confidence": confidence,
    }
