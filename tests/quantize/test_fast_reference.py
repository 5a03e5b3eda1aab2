"""The fast integer reference (float BLAS where exact, full activation tables, chunks) equals
the plain int64 reference bit for bit; the exactness bound picks int64 where floats would round."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ethoedge.data import Normalizer
from ethoedge.errors import ConfigError
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig
from ethoedge.quantize import fixedpoint
from ethoedge.quantize.api import quantize_student
from ethoedge.quantize.config import QuantConfig
from ethoedge.quantize.fixedpoint import ExactAffine, dot
from ethoedge.quantize.qmodel import QTensor, QuantizedStudent
from ethoedge.quantize.reference import (
    _FastNet,
    check_exact,
    quantize_input,
    reference_logits,
    reference_logits_plain,
)

from .helpers import random_windows


def extreme_inputs(n: int, length: int, seed: int = 0) -> np.ndarray:
    """(n, 3, L) int16: large random accelerations, then full-scale, alternating and zero rows."""
    rng = np.random.default_rng(seed)
    x = np.clip(np.round(rng.normal(0.0, 3.0, size=(n, 3, length)) * 2048), -32768, 32767)
    x = x.astype(np.int16)
    x[0] = 32767
    x[1] = -32768
    x[2, :, ::2], x[2, :, 1::2] = 32767, -32768
    x[3] = 0
    x[4, 0], x[4, 1], x[4, 2] = 32767, -32768, 0
    return x


def seeded_student(stage: str, hidden: int, seed: int) -> GRUStudent:
    torch.manual_seed(seed)
    cfg = StudentConfig(hidden=hidden, input=stage)  # type: ignore[arg-type]
    student = GRUStudent(4, cfg).eval()
    with torch.no_grad():
        for p in student.parameters():
            p.mul_(3.0)  # saturating gates and states, not only the linear region
    return student


@pytest.mark.parametrize("stage", ["raw", "static_dynamic", "dynamic"])
@pytest.mark.parametrize("w", list(range(4, 17)))
def test_fast_equals_plain_every_word_length_and_stage(w, stage):
    student = seeded_student(stage, hidden=13, seed=w)
    X = random_windows(40, 16, seed=w)
    norm = Normalizer.fit(X)
    q = quantize_student(student, norm, X, w, QuantConfig(rule="percentile", percentile=99.0))
    xi = np.concatenate([quantize_input(X), extreme_inputs(24, 16, seed=w)])
    plain = reference_logits_plain(q, xi)
    assert np.array_equal(reference_logits(q, xi), plain)
    assert np.array_equal(reference_logits(q, xi, chunk=7), plain)  # chunks of odd sizes
    assert len(np.unique(plain, axis=0)) > 4  # the windows give different answers


@pytest.mark.parametrize("w", [8, 16])
def test_fast_equals_plain_on_every_bundled_window(cattle, trained, w):
    student, norm = trained
    q = quantize_student(student, norm, cattle.X, w, QuantConfig(calib_windows=512))
    xi = quantize_input(cattle.X)
    assert np.array_equal(reference_logits(q, xi), reference_logits_plain(q, xi))
    # the realistic models take the float paths: float64 always exact, float32 at W = 8
    net = _FastNet(q)
    assert net.hh_rz.dtype == (np.float32 if w == 8 else np.float64)
    assert net.inp.dtype == (np.float32 if w == 8 else np.float64)


def test_int64_fallback_gives_the_same_logits(trained, monkeypatch):
    """With no float type allowed, every product takes the int64 branch: same integers."""
    student, norm = trained
    X = random_windows(32, 12)
    q = quantize_student(student, norm, X, 16)
    xi = np.concatenate([quantize_input(X), extreme_inputs(8, 12)])
    expected = reference_logits_plain(q, xi)
    monkeypatch.setattr(fixedpoint, "EXACT_FLOAT_TYPES", ())
    assert _FastNet(q).hh_n.dtype == np.int64
    assert np.array_equal(reference_logits(q, xi), expected)


def test_exact_affine_bound_picks_the_type():
    rng = np.random.default_rng(0)
    # W = 16 extremes: |w|, |x| = 2**15, K = 256: 2**38 (float64, not float32)
    w = rng.choice([-(2**15), 2**15 - 1], size=(5, 256))
    x = rng.choice([-(2**15), 2**15 - 1], size=(9, 256))
    f = ExactAffine(w, None, 2**15)
    assert f.dtype == np.float64 and np.array_equal(f(x), dot(w, x))
    # W = 8 extremes: 2**21 (float32)
    w8, x8 = np.full((3, 128), -128), np.full((4, 128), -128)
    f8 = ExactAffine(w8, np.array([5, -5, 0]), 2**7)
    assert f8.dtype == np.float32 and np.array_equal(f8(x8), dot(w8, x8) + np.array([5, -5, 0]))
    # exactly at 2**24 float32 is still exact; one more and it is float64
    assert ExactAffine(np.array([[2**12]]), None, 2**12).dtype == np.float32
    assert ExactAffine(np.array([[2**12]]), np.array([1]), 2**12).dtype == np.float64


def test_exact_affine_falls_back_to_int64_beyond_2_53():
    """A sum that float64 would round (2**60 + 1) is computed in int64, exactly."""
    w = np.array([[2**40, 1, -(2**39)]])
    x = np.array([[2**20, 1, 0], [2**20, 1, 2**20]])
    f = ExactAffine(w, np.array([3]), 2**20)
    assert f.bound > 2**53 and f.dtype == np.int64
    exact = [sum(int(a) * int(b) for a, b in zip(w[0], row, strict=True)) + 3 for row in x]
    assert f(x)[:, 0].tolist() == exact
    as_float = (x.astype(np.float64) @ w.T.astype(np.float64) + 3).astype(np.int64)
    assert as_float[0, 0] != exact[0]  # what the bound protects against


def test_empty_batch():
    q = quantize_student(seeded_student("raw", 4, 0), Normalizer.fit(random_windows(8, 6)),
                         random_windows(8, 6), 8)  # fmt: skip
    out = reference_logits(q, np.zeros((0, 3, 6), dtype=np.int16))
    assert out.shape == (0, 4) and out.dtype == np.int64


def random_qmodel(
    w: int, stage: str, rng: np.random.Generator, fracs: tuple[int, int]
) -> QuantizedStudent:
    """Full-range random weights and random formats in ``fracs`` within ``check_exact``'s
    limits: shifts from large left to large right, saturating sums and states (small
    fraction bits: large left shifts, so that ``gx`` and ``gh`` saturate at opposite ends)."""
    hid, mlp, ncls = int(rng.integers(1, 20)), int(rng.integers(1, 12)), int(rng.integers(1, 5))
    k = 6 if stage == "static_dynamic" else 3
    shapes = {"inp.weight": (hid, k), "inp.bias": (hid,), "gru.weight_ih": (3 * hid, hid),
              "gru.weight_hh": (3 * hid, hid), "gru.bias_ih": (3 * hid,),
              "gru.bias_hh": (3 * hid,), "mlp.weight": (mlp, hid), "mlp.bias": (mlp,),
              "out.weight": (ncls, mlp), "out.bias": (ncls,)}  # fmt: skip
    lo, hi = -(1 << (w - 1)), 1 << (w - 1)
    while True:
        weights = {
            name: QTensor(rng.integers(lo, hi, size=shape), int(rng.integers(*fracs)), w)
            for name, shape in shapes.items()
        }
        act = {name: int(rng.integers(*fracs)) for name in ("a", "h", "m", "logits")}
        q = QuantizedStudent(w, 11, weights, act, hid, mlp, ncls, input_stage=stage,
                             static_shift=int(rng.integers(1, 9)))  # fmt: skip
        try:
            check_exact(q)
        except ConfigError:
            continue
        return q


@pytest.mark.parametrize("stage", ["raw", "static_dynamic", "dynamic"])
@pytest.mark.parametrize("w", [4, 7, 8, 12, 16])
def test_fast_equals_plain_on_random_extreme_models(w, stage):
    rng = np.random.default_rng(100 * w + len(stage))
    for i in range(24):
        q = random_qmodel(w, stage, rng, (-6, 2 * w) if i % 2 else (-8, 3))
        xi = extreme_inputs(16, int(rng.integers(1, 9)), seed=int(rng.integers(1 << 30)))
        assert np.array_equal(reference_logits(q, xi, chunk=5), reference_logits_plain(q, xi))


@pytest.mark.parametrize("block_rows", [1, 10, 33])
def test_time_blocks_of_the_input_half(trained, monkeypatch, block_rows):
    """The input layer and ``W_ih a`` are computed a few time steps at a time (here 1, 3 and
    11 steps of 16, the last block shorter): the same logits."""
    from ethoedge.quantize import reference

    student, norm = trained
    X = random_windows(30, 16, seed=3)
    q = quantize_student(student, norm, X, 8)
    xi = np.concatenate([quantize_input(X), extreme_inputs(6, 16)])
    expected = reference_logits_plain(q, xi)
    monkeypatch.setattr(reference, "BLOCK_ROWS", block_rows)
    assert np.array_equal(reference_logits(q, xi, chunk=3), expected)


@pytest.mark.parametrize("w", [8, 16])
def test_chunks_on_threads_give_the_chunks_in_order(w):
    rng = np.random.default_rng(7 + w)
    q = random_qmodel(w, "dynamic", rng, (-6, 2 * w))
    xi = extreme_inputs(103, 7, seed=3)
    want = reference_logits_plain(q, xi)
    for threads in (2, 3, 16):  # uneven chunks, more threads than chunks
        assert np.array_equal(reference_logits(q, xi, chunk=10, threads=threads), want)
