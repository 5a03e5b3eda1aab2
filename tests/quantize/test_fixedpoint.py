"""The integer helpers of the contract: edge values, properties (hypothesis), activations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethoedge.quantize.fixedpoint import (
    SIGMOID_TABLE,
    TANH_TABLE,
    activation,
    activation_error,
    align,
    bias_acc,
    choose_frac_bits,
    dot,
    max_int,
    min_int,
    quantize_values,
    requant,
    round_shift,
    saturate,
)

I64 = st.integers(min_value=-(2**40), max_value=2**40)
WB = st.integers(min_value=4, max_value=16)
# Shared 2-core machine: no per-example deadline, a modest number of examples.
PROPS = settings(deadline=None, max_examples=60)


@pytest.mark.parametrize("w", [4, 8, 16, 32])
def test_saturate_edges(w):
    lo, hi = min_int(w), max_int(w)
    v = np.array([lo - 1, lo, lo + 1, -1, 0, 1, hi - 1, hi, hi + 1, 2**62, -(2**62)])
    assert saturate(v, w).tolist() == [lo, lo, lo + 1, -1, 0, 1, hi - 1, hi, hi, hi, lo]


def test_round_shift_ties_go_up():
    # x.5 -> up (towards +inf) for both signs
    assert round_shift(np.array([1, 3, -1, -3, 2, -2]), 1).tolist() == [1, 2, 0, -1, 1, -1]
    assert round_shift(np.array([6, -6, 5, -5, 7, -7]), 2).tolist() == [2, -1, 1, -1, 2, -2]
    assert round_shift(np.array([5, -5]), 0).tolist() == [5, -5]
    assert round_shift(np.array([5, -5]), -3).tolist() == [40, -40]


def test_requant_and_align_saturate_instead_of_wrapping():
    assert requant(np.array([2**20, -(2**20)]), 4, 4, 8).tolist() == [127, -128]
    assert requant(np.array([32767 * 256 + 200]), 8, 0, 16).tolist() == [32767]
    assert align(np.array([2**35, -(2**35)]), 0, 0).tolist() == [2**31 - 1, -(2**31)]
    assert align(np.array([2**30]), 0, 2).tolist() == [2**31 - 1]


@PROPS
@given(v=I64, s=st.integers(min_value=1, max_value=20))
def test_round_shift_is_nearest_with_ties_up(v, s):
    got = int(round_shift(np.array([v]), s)[0])
    # exact: floor(v / 2^s + 1/2)
    assert got == (2 * v + 2**s) // 2 ** (s + 1)


@PROPS
@given(v=I64, s=st.integers(min_value=-20, max_value=20), w=WB)
def test_requant_is_saturated_exact_rounding(v, s, w):
    got = int(requant(np.array([v]), s, 0, w)[0])
    exact = v * 2**-s if s <= 0 else (2 * v + 2**s) // 2 ** (s + 1)
    assert got == min(max(exact, min_int(w)), max_int(w))
    assert min_int(w) <= got <= max_int(w)


@PROPS
@given(x=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), f=st.integers(-8, 24), w=WB)
def test_quantize_values_saturates_and_rounds_to_nearest(x, f, w):
    q = int(quantize_values(np.array([x]), f, w)[0])
    assert min_int(w) <= q <= max_int(w)
    if min_int(w) < x * 2.0**f < max_int(w):
        assert abs(q - x * 2.0**f) <= 0.5


@PROPS
@given(
    w=st.lists(st.integers(-(2**15), 2**15 - 1), min_size=1, max_size=64),
    x=st.lists(st.integers(-(2**15), 2**15 - 1), min_size=64, max_size=64),
)
def test_dot_is_exact(w, x):
    k = len(w)
    got = int(dot(np.array([w]), np.array([x[:k]]))[0, 0])
    assert got == sum(a * b for a, b in zip(w, x[:k], strict=True))


def test_bias_acc_shifts_both_ways():
    assert bias_acc(np.array([-128, 127]), 7, 20).tolist() == [-(2**20), 127 * 2**13]
    assert bias_acc(np.array([3, -3, 2]), 4, 3).tolist() == [2, -1, 1]


@pytest.mark.parametrize(
    ("values", "w", "expected"),
    [
        ([1.0], 8, 7),  # ceil(log2 1) = 0
        ([0.99], 8, 7),
        ([1.01], 8, 6),
        ([0.5], 16, 16),
        ([0.3, -0.26], 8, 8),  # ceil(log2 0.3) = -1
        ([-5.0, 2.0], 16, 12),  # ceil(log2 5) = 3
        ([1e-30], 8, 24),  # clipped to 2W + 8
        ([1e30], 8, -8),  # clipped to -8
        ([0.0, 0.0], 12, 11),  # all zero: W - 1
    ],
)
def test_choose_frac_bits_on_known_ranges(values, w, expected):
    assert choose_frac_bits(np.array(values), w) == expected


def test_choose_frac_bits_percentile_ignores_outliers():
    v = np.concatenate([np.full(9999, 0.9), [100.0]])
    assert choose_frac_bits(v, 8, "max") == 0
    assert choose_frac_bits(v, 8, "percentile", 99.0) == 7
    with pytest.raises(ValueError, match="unknown"):
        choose_frac_bits(v, 8, "mean")


@PROPS
@given(values=st.lists(st.floats(1e-6, 1e6), min_size=1, max_size=20), w=WB)
def test_max_rule_fits_the_range(values, w):
    """With the max rule the largest value needs at most one LSB of saturation."""
    f = choose_frac_bits(np.array(values), w)
    if -8 < f < 2 * w + 8:
        assert max(values) * 2.0**f <= 2 ** (w - 1)
        assert max(values) * 2.0 ** (f + 1) > 2 ** (w - 1)


# Documented bounds (docs/fixedpoint.md): interpolated Q0.15 value within these of the
# true function; after rounding to W bits add one W-bit LSB (saturation at +1).
Q15_BOUND = {"sigmoid": 1e-4, "tanh": 5e-4}


@pytest.mark.parametrize("fn", ["sigmoid", "tanh"])
def test_activation_error_below_stated_bound(fn):
    e = activation_error(fn, (4, 6, 8, 12, 16))
    assert e.max_abs_error_q15 < Q15_BOUND[fn]
    for w, err in e.max_abs_error_w.items():
        assert err <= Q15_BOUND[fn] + 2.0 ** -(w - 1)


@PROPS
@given(pre=st.integers(-(2**31), 2**31 - 1), w=WB, frac=st.integers(0, 24))
def test_activation_outputs_stay_in_range(pre, w, frac):
    """Any int32 pre-activation, even far outside [-8, 8), gives an in-range gate value."""
    s = int(activation(np.array([pre]), frac, SIGMOID_TABLE, w)[0])
    t = int(activation(np.array([pre]), frac, TANH_TABLE, w)[0])
    assert 0 <= s <= max_int(w)
    assert -max_int(w) - 1 <= t <= max_int(w)


def test_activation_is_monotone_over_the_whole_input_range():
    u = np.arange(-(2**15), 2**15, dtype=np.int64)
    for table in (SIGMOID_TABLE, TANH_TABLE):
        y = activation(u, 12, table, 16)
        assert np.all(np.diff(y) >= 0)
