"""The headline aggregation against hand-computed values: MCC pooled over folds per seed,
mean and sd over seeds, and the paired KD-minus-plain intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ethoedge.experiment.aggregate import Prediction, aggregate, model_entry
from ethoedge.experiment.keys import STUDENT, STUDENT_KD, TEACHER

NAMES = ("a", "b")
# 8 windows; folds f1 = windows 0-3, f2 = windows 4-7.
Y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
F1, F2 = np.arange(4), np.arange(4, 8)


def _p(fold: str, seed: int, idx: np.ndarray, pred: list[int]) -> Prediction:
    probs = np.eye(2)[np.asarray(pred)]
    return Prediction(fold, seed, idx, probs, best_epoch=3, epochs_run=5)


def _mcc(tp: int, tn: int, fp: int, fn: int) -> float:
    den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / den if den else 0.0


def test_pooled_mcc_per_seed_mean_and_sd():
    # seed 0: f1 all right; f2 predicts [0, 1, 0, 0] for truth [0, 1, 1, 0] -> one fn.
    # seed 1: f1 predicts [0, 1, 1, 1] for [0, 0, 1, 1] -> one fp; f2 all right.
    preds = [_p("f1", 0, F1, [0, 0, 1, 1]), _p("f2", 0, F2, [0, 1, 0, 0]),
             _p("f1", 1, F1, [0, 1, 1, 1]), _p("f2", 1, F2, [0, 1, 1, 0])]  # fmt: skip
    e = model_entry(Y, preds, NAMES)
    # Pooled over the 8 windows, class b positive. Seed 0: tp 3, tn 4, fp 0, fn 1.
    m0 = _mcc(3, 4, 0, 1)
    # Seed 1: tp 4, tn 3, fp 1, fn 0.
    m1 = _mcc(4, 3, 1, 0)
    assert [r["mcc"] for r in e["pooled_by_seed"]] == pytest.approx([m0, m1])
    assert e["mcc"] == pytest.approx((m0 + m1) / 2)
    assert e["mcc_std"] == pytest.approx(np.std([m0, m1], ddof=1))
    assert e["accuracy"] == pytest.approx(7 / 8)
    # Per fold: f1 seed 0 perfect (1.0), f2 seed 0 = mcc(tp 1, tn 2, fp 0, fn 1), ...
    per_fold = {(r["fold"], r["seed"]): r["mcc"] for r in e["per_fold"]}
    assert per_fold[("f1", 0)] == pytest.approx(1.0)
    assert per_fold[("f2", 0)] == pytest.approx(_mcc(1, 2, 0, 1))
    assert per_fold[("f1", 1)] == pytest.approx(_mcc(2, 1, 1, 0))
    assert e["mcc_fold_mean"] == pytest.approx(np.mean(list(per_fold.values())))
    assert e["confusion"] == [[7, 1], [1, 7]]  # over all folds and seeds


def test_paired_kd_minus_plain_interval():
    plain = [_p("f1", 0, F1, [0, 0, 1, 0]), _p("f2", 0, F2, [0, 1, 1, 0]),
             _p("f1", 1, F1, [0, 0, 1, 1]), _p("f2", 1, F2, [1, 1, 1, 0]),
             _p("f1", 2, F1, [1, 0, 1, 1]), _p("f2", 2, F2, [0, 1, 0, 0])]  # fmt: skip
    kd = [_p("f1", 0, F1, [0, 0, 1, 1]), _p("f2", 0, F2, [0, 1, 1, 0]),
          _p("f1", 1, F1, [0, 0, 1, 1]), _p("f2", 1, F2, [0, 1, 1, 0]),
          _p("f1", 2, F1, [0, 0, 1, 1]), _p("f2", 2, F2, [1, 1, 0, 0])]  # fmt: skip
    res = aggregate({"dataset": "d"}, ["f1", "f2"], Y, NAMES,
                    {STUDENT: plain, STUDENT_KD: kd, TEACHER: kd}, {})  # fmt: skip
    pair = res.paired["student_kd_vs_student"]

    def pooled(preds, seed):
        ps = [p for p in preds if p.seed == seed]
        idx = np.concatenate([p.test_idx for p in ps])
        pr = np.concatenate([p.pred for p in ps])
        t = Y[idx]
        tp, tn = int(((pr == 1) & (t == 1)).sum()), int(((pr == 0) & (t == 0)).sum())
        fp, fn = int(((pr == 1) & (t == 0)).sum()), int(((pr == 0) & (t == 1)).sum())
        return _mcc(tp, tn, fp, fn)

    d = np.array([pooled(kd, s) - pooled(plain, s) for s in (0, 1, 2)])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    got = pair["pooled_by_seed"]
    assert got["n"] == 3
    assert got["mean"] == pytest.approx(d.mean())
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    # Per fold and seed: 6 pairs, matched by (fold, seed), not by list position.
    fold_pairs = pair["per_fold_and_seed"]
    assert fold_pairs["n"] == 6
    e_kd, e_pl = res.models[STUDENT_KD], res.models[STUDENT]
    a = {(r["fold"], r["seed"]): r["mcc"] for r in e_kd["per_fold"]}
    b = {(r["fold"], r["seed"]): r["mcc"] for r in e_pl["per_fold"]}
    assert fold_pairs["mean"] == pytest.approx(np.mean([a[k] - b[k] for k in a]))
    assert list(res.paired) == ["student_kd_vs_student"]  # the teacher is paired with nothing


def test_results_json_names_and_order():
    preds = [_p("f1", 0, F1, [0, 0, 1, 1]), _p("f2", 0, F2, [0, 1, 1, 0])]
    from ethoedge.experiment.keys import ModelKey

    keys = [ModelKey.parse(n) for n in ("student_kd_w8", "student_h16", "student", "teacher",
                                        "student_kd", "student_w8", "student_kd_h16")]  # fmt: skip
    res = aggregate({"dataset": "d", "protocol": "loao"}, ["f1", "f2"], Y, NAMES,
                    {k: preds for k in keys}, {})  # fmt: skip
    doc = res.to_json()
    assert list(doc["models"]) == ["teacher", "student", "student_kd", "student_h16",
                                   "student_kd_h16", "student_w8", "student_kd_w8"]  # fmt: skip
    assert list(doc)[:4] == ["dataset", "protocol", "folds", "models"]
