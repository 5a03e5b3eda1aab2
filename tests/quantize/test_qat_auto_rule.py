"""``qat="auto"`` decides from the training windows alone: whether a fold's student is
fine-tuned must not depend on the labels of the windows it is then scored on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import ethoedge.quantize.sweep as sweep
from ethoedge.data.windows import Normalizer
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.reference import quantize_input, reference_logits_batched

from .helpers import random_windows

NAMES = ("a", "b", "c")
AUTO = QuantConfig(word_bits=(4,), qat="auto", qat_epochs=1, calib_windows=64, qat_batch=32)


@pytest.fixture
def case():
    torch.manual_seed(1)
    student = GRUStudent(3, StudentConfig(hidden=8)).eval()
    with torch.no_grad():  # larger weights: the float student calls all three classes
        for p in student.parameters():
            p.mul_(4.0)
    train_X, test_X = random_windows(n=96, length=12, seed=1), random_windows(n=96, length=12)
    norm = Normalizer.fit(train_X)
    # the 4-bit post-training student, as the sweep builds it, and the float one on the test
    q = sweep._quantize(student, norm, train_X, 4, AUTO, NAMES)
    q_test = reference_logits_batched(q, quantize_input(test_X, AUTO.in_frac)).argmax(1)
    f_test = sweep.float_predict(student, norm, test_X)
    return student, norm, train_X, test_X, f_test, q_test


@pytest.fixture
def tuned(monkeypatch):
    """Word lengths quantization-aware fine-tuning ran at, per call of the sweep."""
    calls: list[int] = []
    real = sweep.qat_finetune

    def spy(student, normalizer, X, y, w, *args, **kwargs):
        calls.append(w)
        return real(student, normalizer, X, y, w, *args, **kwargs)

    monkeypatch.setattr(sweep, "qat_finetune", spy)
    return calls


@pytest.mark.parametrize("train_labels", ["float", "quantized"])
def test_auto_rule_ignores_the_test_labels(case, tuned, train_labels):
    student, norm, train_X, test_X, f_test, q_test = case
    # Test labels that make the 4-bit student lose to the float one (the float student's own
    # classes) and that make it win (its own classes): a rule scored on the test windows
    # would fine-tune under the first and not the second.
    assert len(set(f_test.tolist())) == 3
    assert np.mean(f_test != q_test) > 0.05  # the two differ enough to move the MCC
    q_train = sweep._quantize(student, norm, train_X, 4, AUTO, NAMES)
    f_train = sweep.float_predict(student, norm, train_X)
    p_train = reference_logits_batched(q_train, quantize_input(train_X, AUTO.in_frac)).argmax(1)
    train_y = f_train if train_labels == "float" else p_train
    rows = []
    for test_y in (f_test, q_test):
        before = len(tuned)
        (row,) = sweep.evaluate_word_lengths(
            student, norm, train_X, test_X, test_y, AUTO, NAMES, train_y=train_y
        )
        rows.append((row, len(tuned) - before))
    (a, n_a), (b, n_b) = rows
    assert n_a == n_b  # the same decision under both test labellings
    assert a["train_mcc_loss"] == pytest.approx(b["train_mcc_loss"])
    # and it is the training windows' figure: the float student's own classes make the
    # 4-bit one lose there, its own classes make it win
    if train_labels == "float":
        assert a["train_mcc_loss"] > AUTO.qat_threshold and n_a == 1
    else:
        assert a["train_mcc_loss"] < 0 and n_a == 0
    assert {a["method"], b["method"]} == {"qat" if n_a else "ptq"}


def test_auto_rule_needs_training_labels(case):
    student, norm, train_X, test_X, f_test, _ = case
    with pytest.raises(ValueError, match="train_y"):
        sweep.evaluate_word_lengths(student, norm, train_X, test_X, f_test, AUTO, NAMES)


def test_auto_rule_scores_at_most_qat_rule_windows(case, monkeypatch):
    student, norm, train_X, test_X, f_test, _ = case
    sizes: list[int] = []
    real = sweep.float_predict

    def spy(student, normalizer, X):
        sizes.append(len(X))
        return real(student, normalizer, X)

    monkeypatch.setattr(sweep, "float_predict", spy)
    cfg = replace(AUTO, word_bits=(8,), qat_rule_windows=40)
    train_y = np.arange(len(train_X)) % 3
    (row,) = sweep.evaluate_word_lengths(
        student, norm, train_X, test_X, f_test, cfg, NAMES, train_y=train_y
    )
    assert sizes == [len(test_X), 40]  # the test windows, then the rule's 40 training windows
    assert row["train_mcc_loss"] is not None
