"""The baseline's hand-made features on windows whose answer is known by hand, and against a
plain per-window reference implementation."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from ethoedge.baseline import feature_names, window_features
from ethoedge.baseline import features as feat
from ethoedge.errors import DataError


def windows_of(*vectors: np.ndarray) -> np.ndarray:
    """One window (1, 3, L) from three per-axis sample arrays (or scalars, broadcast)."""
    L = max(np.size(v) for v in vectors)
    axes = [np.broadcast_to(np.asarray(v, dtype=np.float64), (L,)) for v in vectors]
    return np.stack(axes)[None]


def as_dict(X: np.ndarray, rate_hz: float = 10.0) -> dict[str, float]:
    F, names = window_features(X, rate_hz)
    assert F.shape == (1, len(names))
    return dict(zip(names, F[0].tolist(), strict=True))


# ----------------------------------------------------------------------------- reference


def reference(w: np.ndarray, rate_hz: float) -> dict[str, float]:
    """The features of one window (3, L), computed the plain way, one value at a time."""
    w = w.astype(np.float64)
    L = w.shape[1]
    out: dict[str, float] = {}
    for i, a in enumerate("xyz"):
        v = w[i]
        q = {p: float(np.percentile(v, p)) for p in (10, 25, 50, 75, 90)}
        out |= {f"{a}_mean": float(v.mean()), f"{a}_sd": float(v.std())}
        out |= {f"{a}_min": float(v.min()), f"{a}_max": float(v.max())}
        out |= {f"{a}_q{p}": q[p] for p in q}
        out[f"{a}_iqr"] = q[75] - q[25]
        out[f"{a}_mean_abs_diff"] = sum(abs(v[t + 1] - v[t]) for t in range(L - 1)) / (L - 1)
    mag = [math.sqrt(w[0, t] ** 2 + w[1, t] ** 2 + w[2, t] ** 2) for t in range(L)]
    out |= {"mag_mean": statistics.fmean(mag), "mag_sd": statistics.pstdev(mag)}
    out |= {"mag_min": min(mag), "mag_max": max(mag)}
    s = w.mean(axis=1)
    d = w - s[:, None]
    vec = [math.sqrt(d[0, t] ** 2 + d[1, t] ** 2 + d[2, t] ** 2) for t in range(L)]
    out["vedba"] = statistics.fmean(vec)
    out["odba"] = statistics.fmean(abs(d[0, t]) + abs(d[1, t]) + abs(d[2, t]) for t in range(L))
    out["vedba_sd"] = statistics.pstdev(vec)
    out["pitch"] = math.degrees(math.atan2(-s[0], math.hypot(s[1], s[2])))
    out["roll"] = math.degrees(math.atan2(s[1], s[2]))
    pitches = [math.degrees(math.atan2(-w[0, t], math.hypot(w[1, t], w[2, t]))) for t in range(L)]
    rolls = [math.degrees(math.atan2(w[1, t], w[2, t])) for t in range(L)]
    out["pitch_sd"] = statistics.pstdev(pitches)
    out["roll_sd"] = statistics.pstdev([(r - out["roll"] + 180) % 360 - 180 for r in rolls])
    nyq = rate_hz / 2
    lows = [lo for lo in (0.0, 0.5, 1.0, 2.0, 3.0) if lo < nyq]
    his = [*lows[1:], nyq]
    for i, a in enumerate("xyz"):
        # two-sided DFT; bin k and L - k are the same frequency
        spec = np.fft.fft(d[i])
        power = [0.0] * (L // 2 + 1)
        for k in range(L):
            power[min(k, L - k)] += abs(spec[k]) ** 2 / L**2
        freqs = [j * rate_hz / L for j in range(len(power))]
        for b, (lo, hi) in enumerate(zip(lows, his, strict=True)):
            last = b == len(lows) - 1
            out[f"{a}_band_{lo:g}-{hi:g}hz"] = sum(
                p
                for p, f in zip(power, freqs, strict=True)
                if f >= lo - 1e-9 and (last or f < hi - 1e-9)
            )
        constant = float(np.std(w[i])) == 0.0
        ac = power[1:]
        out[f"{a}_dom_freq"] = 0.0 if constant else freqs[1 + ac.index(max(ac))]
        if constant or len(ac) < 2:
            out[f"{a}_spec_entropy"] = 0.0
        else:
            p = [v / sum(ac) for v in ac]
            out[f"{a}_spec_entropy"] = -sum(v * math.log(v) for v in p if v > 0) / math.log(len(p))
    for i, j, name in ((0, 1, "corr_xy"), (0, 2, "corr_xz"), (1, 2, "corr_yz")):
        if np.std(w[i]) == 0 or np.std(w[j]) == 0:
            out[name] = 0.0
        else:
            out[name] = float(np.corrcoef(w[i], w[j])[0, 1])
    return out


@pytest.mark.parametrize(("rate_hz", "L"), [(10.0, 50), (25.0, 37), (4.0, 20)])
def test_vectorised_features_equal_a_per_window_reference(rate_hz, L):
    rng = np.random.default_rng(int(rate_hz * 100 + L))
    X = rng.normal(0.0, 0.3, size=(25, 3, L)) + np.array([0.2, -0.4, 0.8])[None, :, None]
    X[3, 1] = 1.0  # a constant axis
    X[4] = np.array([0.0, 0.0, 1.0])[:, None]  # a still window
    X[5, 2] *= -1  # upside down: roll near 180 degrees
    F, names = window_features(X, rate_hz)
    assert F.dtype == np.float64
    assert F.shape == (25, len(names))
    for n in range(X.shape[0]):
        ref = reference(X[n], rate_hz)
        assert list(ref) == list(names), "names or order differ from the documented ones"
        np.testing.assert_allclose(F[n], [ref[k] for k in names], rtol=1e-9, atol=1e-9)


def test_blocks_of_windows_give_the_same_features(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(0.0, 0.5, size=(23, 3, 50))
    whole, _ = window_features(X, 10.0)
    monkeypatch.setattr(feat, "_BLOCK", 5)
    blocked, _ = window_features(X, 10.0)
    np.testing.assert_array_equal(blocked, whole)


def test_float32_windows_are_computed_in_float64():
    X = np.random.default_rng(4).normal(0.0, 0.5, size=(6, 3, 50)).astype(np.float32)
    F32, _ = window_features(X, 10.0)
    F64, _ = window_features(X.astype(np.float64), 10.0)
    assert F32.dtype == np.float64
    np.testing.assert_array_equal(F32, F64)


# ----------------------------------------------------------------------------- by hand


@pytest.mark.parametrize("g", [(0.0, 0.0, 1.0), (0.3, -0.7, 0.65), (0.1, 0.1, 0.1)])
def test_a_still_window_has_no_dynamic_acceleration_and_no_nan(g):
    X = np.tile(np.asarray(g)[None, :, None], (3, 1, 50))
    F, names = window_features(X, 10.0)
    assert np.isfinite(F).all()
    f = dict(zip(names, F[0].tolist(), strict=True))
    zero = ["vedba", "odba", "vedba_sd", "mag_sd", "pitch_sd", "roll_sd"]
    zero += ["corr_xy", "corr_xz", "corr_yz"]
    zero += [k for k in names if k.endswith(("_sd", "_iqr", "_mean_abs_diff", "hz"))]
    zero += [k for k in names if k.endswith(("_dom_freq", "_spec_entropy"))]
    for k in zero:
        assert f[k] == pytest.approx(0.0, abs=1e-9), k
    for i, a in enumerate("xyz"):
        assert f[f"{a}_mean"] == pytest.approx(g[i]) and f[f"{a}_q50"] == pytest.approx(g[i])
    assert f["mag_mean"] == pytest.approx(math.sqrt(sum(v * v for v in g)))


def test_sub_microgravity_jitter_counts_as_a_constant_axis():
    rng = np.random.default_rng(11)
    jitter = 1e-8 * rng.normal(size=(3, 50))  # sd 0.01 µg: below the constant threshold
    X = np.array([0.3, -0.7, 0.65])[:, None] + jitter
    f = as_dict(X[None])
    for k in ("vedba", "odba", "x_sd", "x_dom_freq", "x_spec_entropy", "x_band_3-5hz", "corr_xy"):
        assert f[k] == 0.0, k
    X[0] += 0.01 * rng.normal(size=50)  # a real signal on x is not constant
    f = as_dict(X[None])
    assert f["x_sd"] > 0.005 and f["x_dom_freq"] > 0 and f["x_spec_entropy"] > 0
    assert f["corr_xy"] == 0.0 and f["y_dom_freq"] == 0.0


def test_level_posture_is_pitch_and_roll_zero():
    f = as_dict(windows_of(0.0, 0.0, np.ones(50)))
    assert f["pitch"] == 0.0 and f["roll"] == 0.0


@pytest.mark.parametrize("deg", [30.0, -30.0, 60.0])
def test_a_tilt_about_y_is_pitch(deg):
    t = math.radians(deg)
    f = as_dict(windows_of(np.full(50, math.sin(t)), 0.0, math.cos(t)))  # R_y(t) (0, 0, 1)
    assert f["pitch"] == pytest.approx(-deg)
    assert f["roll"] == pytest.approx(0.0, abs=1e-12)
    assert f["pitch_sd"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("deg", [30.0, -30.0, 120.0])
def test_a_tilt_about_x_is_roll(deg):
    t = math.radians(deg)
    f = as_dict(windows_of(0.0, np.full(50, -math.sin(t)), math.cos(t)))  # R_x(t) (0, 0, 1)
    assert f["roll"] == pytest.approx(-deg)
    assert f["pitch"] == pytest.approx(0.0, abs=1e-12)
    assert f["roll_sd"] == pytest.approx(0.0, abs=1e-9)


def test_roll_sd_wraps_around_upside_down():
    # roll alternates between +179 and -179 degrees: 2 degrees apart, not 358
    r = np.radians(np.where(np.arange(50) % 2 == 0, 179.0, -179.0))
    f = as_dict(windows_of(0.0, np.sin(r), np.cos(r)))
    assert abs(f["roll"]) == pytest.approx(180.0)
    assert f["roll_sd"] == pytest.approx(1.0)


def test_pitch_sd_is_the_sd_of_the_per_sample_pitch():
    deg = np.where(np.arange(50) % 2 == 0, 10.0, 30.0)  # pitch alternates -10, -30 degrees
    t = np.radians(deg)
    f = as_dict(windows_of(np.sin(t), 0.0, np.cos(t)))
    assert f["pitch_sd"] == pytest.approx(10.0)


@pytest.mark.parametrize(("rate_hz", "L", "top"), [(10.0, 50, 5.0), (25.0, 50, 12.5)])
def test_a_2_hz_sinusoid_puts_its_energy_in_the_2_to_3_hz_band(rate_hz, L, top):
    t = np.arange(L) / rate_hz
    amp = 0.4
    f = as_dict(windows_of(0.1 + amp * np.sin(2 * np.pi * 2.0 * t), 0.0, 1.0), rate_hz)
    assert f["x_dom_freq"] == pytest.approx(2.0)
    assert f["x_band_2-3hz"] == pytest.approx(amp**2 / 2)  # the sinusoid's mean square
    for band in ("0-0.5", "0.5-1", "1-2", f"3-{top:g}"):
        assert f[f"x_band_{band}hz"] == pytest.approx(0.0, abs=1e-12)
    assert f["x_spec_entropy"] == pytest.approx(0.0, abs=1e-9)
    assert f["x_sd"] ** 2 == pytest.approx(amp**2 / 2)
    assert f["y_dom_freq"] == 0.0 and f["y_band_2-3hz"] == 0.0


def test_a_frequency_on_a_band_edge_belongs_to_the_upper_band():
    t = np.arange(50) / 10.0
    f = as_dict(windows_of(np.sin(2 * np.pi * 1.0 * t), 0.0, 1.0))
    assert f["x_band_1-2hz"] == pytest.approx(0.5)
    assert f["x_band_0.5-1hz"] == pytest.approx(0.0, abs=1e-12)
    assert f["x_dom_freq"] == pytest.approx(1.0)


def test_band_energies_add_up_to_the_variance():
    X = np.random.default_rng(5).normal(0.0, 0.5, size=(10, 3, 51))  # odd L: no Nyquist bin
    F, names = window_features(X, 10.0)
    for a in "xyz":
        cols = [i for i, k in enumerate(names) if k.startswith(f"{a}_band_")]
        np.testing.assert_allclose(F[:, cols].sum(axis=1), F[:, names.index(f"{a}_sd")] ** 2)


def test_white_noise_has_a_high_spectral_entropy():
    X = np.random.default_rng(6).normal(0.0, 1.0, size=(20, 3, 200))
    F, names = window_features(X, 10.0)
    entropy = F[:, names.index("x_spec_entropy")]
    assert (entropy > 0.85).all() and (entropy <= 1.0).all()


def test_vedba_and_odba_of_a_known_dynamic_signal():
    s = np.where(np.arange(50) % 2 == 0, 1.0, -1.0)  # zero mean over the window
    f = as_dict(windows_of(0.3 * s, 0.2 - 0.4 * s, 1.0))
    assert f["vedba"] == pytest.approx(0.5)  # sqrt(0.3² + 0.4²) at every sample
    assert f["odba"] == pytest.approx(0.7)
    assert f["vedba_sd"] == pytest.approx(0.0, abs=1e-12)
    assert f["x_dom_freq"] == pytest.approx(5.0)  # the Nyquist frequency
    assert f["x_band_3-5hz"] == pytest.approx(0.09)
    assert f["corr_xy"] == pytest.approx(-1.0)
    assert f["corr_xz"] == 0.0
    assert f["x_mean_abs_diff"] == pytest.approx(0.6)


def test_vedba_of_a_circular_motion_is_its_radius():
    t = np.arange(50) / 10.0
    w = 2 * np.pi * 1.0 * t
    f = as_dict(windows_of(0.25 * np.cos(w), 0.25 * np.sin(w), 1.0))
    assert f["vedba"] == pytest.approx(0.25)
    assert f["vedba_sd"] == pytest.approx(0.0, abs=1e-12)
    # mean(|cos| + |sin|) over whole periods of 10 samples
    phase = 2 * np.pi * np.arange(10) / 10
    assert f["odba"] == pytest.approx(0.25 * np.mean(np.abs(np.cos(phase)) + np.abs(np.sin(phase))))
    assert f["mag_mean"] == pytest.approx(math.sqrt(1 + 0.25**2))


# ----------------------------------------------------------------------------- names, shapes


def test_feature_count_and_names_at_10_hz():
    names = feature_names(3, 10.0, 50)
    assert len(names) == 68 and len(set(names)) == 68
    assert names == window_features(np.zeros((1, 3, 50)), 10.0)[1]
    assert names[:3] == ("x_mean", "x_sd", "x_min")
    assert names[-3:] == ("corr_xy", "corr_xz", "corr_yz")
    assert [k for k in names if k.startswith("x_band_")] == [
        "x_band_0-0.5hz",
        "x_band_0.5-1hz",
        "x_band_1-2hz",
        "x_band_2-3hz",
        "x_band_3-5hz",
    ]


def test_bands_above_nyquist_are_omitted():
    names = feature_names(3, 4.0, 20)
    assert [k for k in names if k.startswith("z_band_")] == [
        "z_band_0-0.5hz",
        "z_band_0.5-1hz",
        "z_band_1-2hz",
    ]
    assert len(names) == 68 - 2 * 3
    assert "x_band_3-12.5hz" in feature_names(3, 25.0, 50)


def test_no_windows_give_an_empty_matrix():
    F, names = window_features(np.zeros((0, 3, 50), dtype=np.float32), 10.0)
    assert F.shape == (0, 68) and F.dtype == np.float64 and len(names) == 68


@pytest.mark.parametrize(
    ("shape", "rate_hz", "fill"),
    [
        ((2, 2, 50), 10.0, 0.0),  # two axes
        ((2, 3, 1), 10.0, 0.0),  # one sample
        ((3, 50), 10.0, 0.0),  # not a batch
        ((2, 3, 50), 0.0, 0.0),  # no rate
        ((2, 3, 50), float("nan"), 0.0),
        ((2, 3, 50), 10.0, float("nan")),  # a missing sample
        ((2, 3, 50), 10.0, float("inf")),
    ],
)
def test_bad_windows_are_a_data_error(shape, rate_hz, fill):
    X = np.zeros(shape)
    X.flat[X.size - 1] = fill
    with pytest.raises(DataError):
        window_features(X, rate_hz)
