"""Windowing: counts and labels on hand-made cases, gaps, bouts, purity, resampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethoedge.data import Dataset, Normalizer, Recording, WindowConfig, make_windows
from ethoedge.errors import ConfigError, DataError


def rec(t, labels, animal="a", segment="0", rate=10.0, acc=None) -> Recording:
    t = np.asarray(t, dtype=np.float64)
    if acc is None:
        acc = np.stack([t, 2 * t, -t], axis=1)
    return Recording(
        animal, segment, t, np.asarray(acc, np.float32), np.asarray(labels, object), rate
    )


def ds(*recs, classes=("a", "b")) -> Dataset:
    return Dataset("test", list(recs), tuple(classes), "test.csv")


def test_counts_labels_and_purity():
    t = np.arange(100) / 10.0
    r = rec(t, ["a"] * 60 + ["b"] * 40)
    w = make_windows(ds(r), WindowConfig(length=50, hop=25))
    # starts 0, 25, 50; purities 1.0 (a), 0.7 (a), 0.8 (b): the middle one is dropped
    assert w.y.tolist() == [0, 1]
    np.testing.assert_allclose(w.start, [0.0, 5.0])
    np.testing.assert_allclose(w.end, [5.0, 10.0])
    assert w.X.shape == (2, 3, 50) and w.X.dtype == np.float32
    np.testing.assert_array_equal(w.X[1], r.acc[50:100].T)
    kept = make_windows(ds(r), WindowConfig(length=50, hop=25, drop_impure=False))
    assert kept.y.tolist() == [0, 0, 1]
    loose = make_windows(ds(r), WindowConfig(length=50, hop=25, min_purity=0.7))
    assert len(loose) == 3


def test_seconds_and_samples_agree():
    r = rec(np.arange(200) / 10.0, ["a"] * 200)
    a = make_windows(ds(r), WindowConfig(length_s=5.0, hop_s=2.5))
    b = make_windows(ds(r), WindowConfig(length=50, hop=25))
    assert len(a) == len(b) == (200 - 50) // 25 + 1
    np.testing.assert_array_equal(a.X, b.X)


def test_unlabelled_samples_count_as_impure():
    labels = ["a"] * 40 + [None] * 10
    w = make_windows(ds(rec(np.arange(50) / 10.0, labels)), WindowConfig(length=50, hop=50))
    assert len(w) == 1 and w.y[0] == 0  # purity exactly 0.8
    labels = ["a"] * 39 + [None] * 11
    with pytest.raises(DataError, match="below min_purity"):
        make_windows(ds(rec(np.arange(50) / 10.0, labels)), WindowConfig(length=50, hop=50))


def test_no_window_across_a_gap():
    t = np.concatenate([np.arange(60) / 10.0, 100.0 + np.arange(60) / 10.0])
    w = make_windows(ds(rec(t, ["a"] * 120)), WindowConfig(length=50, hop=5))
    # each run of 60 gives (60 - 50) // 5 + 1 = 3 windows
    assert len(w) == 6
    np.testing.assert_allclose(w.end - w.start, 5.0)
    assert not np.any((w.start < 100.0) & (w.end > 6.0))


def test_no_window_across_a_bout_boundary():
    # Two bouts of one animal whose timestamps run on without a gap.
    r1 = rec(np.arange(30) / 10.0, ["a"] * 30, segment="1")
    r2 = rec(3.0 + np.arange(30) / 10.0, ["b"] * 30, segment="2")
    w = make_windows(ds(r1, r2), WindowConfig(length=20, hop=10))
    assert len(w) == 4
    assert w.segment.tolist() == ["1", "1", "2", "2"]
    assert w.y.tolist() == [0, 0, 1, 1]  # pure: never mixing the two bouts


def test_resampling_to_target_rate():
    t = np.arange(250) / 25.0  # 10 s at 25 Hz
    r = rec(t, ["a"] * 250, rate=25.0)
    w = make_windows(ds(r), WindowConfig(length_s=5.0, hop_s=2.5, target_rate_hz=20.0))
    assert w.rate_hz == 20.0 and w.n_samples == 100
    assert len(w) == 3  # 0 .. 9.96 s -> 0 .. 9.95 s at 20 Hz: 200 samples; starts 0, 50, 100
    np.testing.assert_allclose(w.X[1, 0], 2.5 + np.arange(100) / 20.0, atol=1e-5)
    np.testing.assert_allclose(w.X[1, 1], 2 * w.X[1, 0], atol=1e-5)


def test_resampling_makes_up_at_most_ten_samples_per_recorded_one():
    """1 Hz to 10 Hz is allowed (ten per recorded sample); 0.5 Hz to 10 Hz is an error naming
    the recording and its file, before any memory goes into interpolated samples (a burst
    at 1e-7 Hz would ask for 1e8 per sample)."""
    ok = rec(np.arange(30.0), ["a"] * 30, rate=1.0)
    w = make_windows(ds(ok), WindowConfig(length_s=5.0, hop_s=2.5, target_rate_hz=10.0))
    assert w.rate_hz == 10.0 and len(w) > 0
    slow = rec(np.arange(30.0) * 2.0, ["a"] * 30, animal="cow7", rate=0.5)
    slow = Recording(**{**slow.__dict__, "source": "logs/cow7.csv"})
    with pytest.raises(DataError, match=r"\(cow7, 0\) is sampled at 0.5 Hz.*more than 10") as ei:
        make_windows(ds(ok, slow), WindowConfig(length_s=5.0, hop_s=2.5, target_rate_hz=10.0))
    assert "logs/cow7.csv" in str(ei.value)


def test_mixed_rates_need_a_target():
    r1 = rec(np.arange(100) / 10.0, ["a"] * 100)
    r2 = rec(np.arange(100) / 20.0, ["a"] * 100, rate=20.0, segment="1")
    with pytest.raises(ConfigError, match="target_rate_hz"):
        make_windows(ds(r1, r2), WindowConfig())
    w = make_windows(ds(r1, r2), WindowConfig(target_rate_hz=10.0))
    assert w.rate_hz == 10.0 and set(w.segment) == {"0", "1"}
    assert len(w) == 3 + 1  # r2 spans 0 .. 4.95 s: 50 samples at 10 Hz, one window


@settings(max_examples=40, deadline=None)
@given(
    pieces=st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=6),
    length=st.integers(min_value=1, max_value=40),
    hop=st.integers(min_value=1, max_value=30),
)
def test_property_windows_stay_inside_runs(pieces, length, hop):
    """Runs separated by gaps: window count is the per-run formula; no window spans a gap."""
    t, t0 = [], 0.0
    for n in pieces:
        t.append(t0 + np.arange(n) / 10.0)
        t0 = t[-1][-1] + 1.0  # a 1 s gap = 10 periods
    t = np.concatenate(t)
    expected = sum((n - length) // hop + 1 for n in pieces if n >= length)
    r = rec(t, ["a"] * len(t))
    if expected == 0:
        with pytest.raises(DataError, match="no window fits"):
            make_windows(ds(r), WindowConfig(length=length, hop=hop))
        return
    w = make_windows(ds(r), WindowConfig(length=length, hop=hop))
    assert len(w) == expected
    np.testing.assert_allclose(w.end - w.start, length / 10.0, atol=1e-9)
    np.testing.assert_allclose(w.X[:, 0, 0], w.start, atol=1e-4)  # ax = t


def test_default_windows_on_real_data(default_dataset, default_windows):
    w = default_windows
    assert w.X.shape[1:] == (3, 50) and w.X.dtype == np.float32
    assert w.class_names == ("grazing", "resting", "standing", "walking")
    assert len(np.unique(w.animal)) == 8
    assert np.bincount(w.y, minlength=4).min() > 100
    # Every window lies inside one gap-free recording of its animal and segment.
    spans = {(r.animal, r.segment): (r.t[0], r.t[-1]) for r in default_dataset.recordings}
    lo = np.array([spans[(a, s)][0] for a, s in zip(w.animal, w.segment, strict=True)])
    hi = np.array([spans[(a, s)][1] for a, s in zip(w.animal, w.segment, strict=True)])
    assert np.all(w.start >= lo - 1e-6) and np.all(w.end <= hi + 0.1 + 1e-6)
    np.testing.assert_allclose(w.end - w.start, 5.0, atol=1e-4)


def test_normalizer_fits_train_side_only(default_windows):
    w = default_windows
    train = w.subset(w.animal != w.animal[0])
    norm = Normalizer.fit(train.X)
    z = norm.apply(train.X)
    np.testing.assert_allclose(z.mean(axis=(0, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=(0, 2)), 1.0, atol=1e-3)
