"""The run's ``kd`` settings (one home: :class:`~ethoedge.distill.KDConfig`) reach the
distillation loss of quantization-aware fine-tuning, through the sweep and the bundle path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ethoedge.quantize.rewrite as rewrite
from ethoedge.bundle import Bundle, save_bundle
from ethoedge.data.windows import Normalizer, WindowConfig, Windows
from ethoedge.distill import KDConfig
from ethoedge.distill.loss import kd_loss
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig
from ethoedge.models.resnet import ResNetTeacher, TeacherConfig
from ethoedge.quantize.bundle_quant import quantize_bundle
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.sweep import evaluate_word_lengths

from .helpers import random_windows

QAT = QuantConfig(word_bits=(8,), qat=True, qat_epochs=1, calib_windows=32, qat_batch=16)


@pytest.fixture
def seen(monkeypatch):
    """(alpha, temperature, standardize) of every call of the KD loss by quantization-aware
    fine-tuning."""
    calls: list[tuple[float, float, bool]] = []

    def recording_kd_loss(student_logits, teacher_logits, y, alpha, T, standardize):
        calls.append((alpha, T, standardize))
        return kd_loss(student_logits, teacher_logits, y, alpha, T, standardize)

    monkeypatch.setattr(rewrite, "kd_loss", recording_kd_loss)
    return calls


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    X = random_windows(n=32, length=10)
    y = np.arange(32) % 2
    soft = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    return GRUStudent(2, StudentConfig(hidden=4)).eval(), Normalizer.fit(X), X, y, soft


def test_kd_settings_reach_the_qat_loss(seen, tiny):
    student, norm, X, y, soft = tiny
    kd = KDConfig(alpha=0.9, temperature=2.0, standardize_logits=True)
    (row,) = evaluate_word_lengths(
        student, norm, X, X, y, QAT, ("a", "b"), soft_labels=soft, train_y=y, kd=kd
    )
    assert row["qat"] is not None
    assert seen and set(seen) == {(0.9, 2.0, True)}


def test_qat_kd_defaults_without_kd(seen, tiny):
    student, norm, X, y, soft = tiny
    evaluate_word_lengths(student, norm, X, X, y, QAT, ("a", "b"), soft_labels=soft, train_y=y)
    assert set(seen) == {(KDConfig().alpha, KDConfig().temperature, False)}


def test_qat_without_soft_labels_uses_no_kd_loss(seen, tiny):
    student, norm, X, y, _ = tiny
    evaluate_word_lengths(student, norm, X, X, y, QAT, ("a", "b"), train_y=y, kd=KDConfig())
    assert seen == []


def test_quantize_bundle_passes_kd_to_qat(seen, tiny, tmp_path):
    student, norm, X, y, _ = tiny
    teacher = ResNetTeacher(2, TeacherConfig(filters=(4, 4, 4))).eval()
    b = Bundle(student, norm, ("a", "b"), WindowConfig(length=10, hop=10), 10.0, teacher=teacher)
    d = save_bundle(b, tmp_path / "bundle")
    t = np.arange(32, dtype=np.float64)
    w = Windows(X, y, np.full(32, "1"), np.full(32, "0"), t, t + 1.0, ("a", "b"), 10.0)
    quantize_bundle(d, QAT, windows=w, kd=KDConfig(alpha=0.9, temperature=3.0))
    assert seen and set(seen) == {(0.9, 3.0, False)}


def test_quantize_bundle_without_qat_does_not_read_the_teacher(tiny, tmp_path):
    """Post-training quantization needs the student only: a damaged teacher does not stop it;
    fine-tuning, which distils from the teacher, still reads it (one clear error)."""
    from ethoedge.errors import ConfigError

    student, norm, X, y, _ = tiny
    teacher = ResNetTeacher(2, TeacherConfig(filters=(4, 4, 4))).eval()
    b = Bundle(student, norm, ("a", "b"), WindowConfig(length=10, hop=10), 10.0, teacher=teacher)
    d = save_bundle(b, tmp_path / "bundle")
    (d / "teacher.npz").write_bytes(b"not an archive")
    t = np.arange(32, dtype=np.float64)
    w = Windows(X, y, np.full(32, "1"), np.full(32, "0"), t, t + 1.0, ("a", "b"), 10.0)
    (row,) = quantize_bundle(d, QuantConfig(word_bits=(8,), calib_windows=32), windows=w)
    assert row["method"] == "ptq" and (d / "quantized" / "w8.json").is_file()
    with pytest.raises(ConfigError, match=r"teacher\.npz"):
        quantize_bundle(d, QAT, windows=w)
