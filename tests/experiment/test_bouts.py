"""Bouts and daily budgets on hand-made window predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ethoedge.experiment.bouts import BoutBuilder, DailyBudget, bouts_frame, split_days

STEP = 2.5


def _bouts(labels, starts=None, runs=None, smooth=1, min_bout_s=0.0, chunk=None):
    labels = np.asarray(list(labels), dtype=object)
    n = len(labels)
    starts = np.arange(n) * STEP if starts is None else np.asarray(starts, dtype=float)
    runs = np.zeros(n, int) if runs is None else np.asarray(runs)
    bb = BoutBuilder(STEP, smooth=smooth, min_bout_s=min_bout_s)
    out = []
    chunk = chunk or n
    for a in range(0, n, chunk):
        sl = slice(a, a + chunk)
        for r in np.unique(runs[sl]):
            m = runs[sl] == r
            out += bb.push("cow", "0", int(r), starts[sl][m], labels[sl][m])
    out += bb.flush()
    return [(b.behaviour, b.start, b.end) for b in out]


def test_consecutive_windows_merge_and_gaps_split():
    got = _bouts("aaabba", runs=[0, 0, 0, 0, 0, 0])
    assert got == [("a", 0.0, 7.5), ("b", 7.5, 12.5), ("a", 12.5, 15.0)]
    # A gap (new run) between windows 2 and 3 ends the bout even with the same label.
    starts = [0, 2.5, 5, 100, 102.5]
    got = _bouts("aaaab", starts=starts, runs=[0, 0, 0, 1, 1])
    assert got == [("a", 0.0, 7.5), ("a", 100.0, 102.5), ("b", 102.5, 105.0)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_smoothing_and_min_bout_do_not_depend_on_chunks(chunk):
    labels = "aabaaaccbcccaab"
    assert _bouts(labels, smooth=3, chunk=chunk) == _bouts(labels, smooth=3)
    assert _bouts(labels, min_bout_s=5.0, chunk=chunk) == _bouts(labels, min_bout_s=5.0)
    # Majority of 3: the lone b at 2 and 8 vanish, the last b stays (end of run: a, b only
    # -> tie keeps its own label).
    assert _bouts(labels, smooth=3) == [("a", 0.0, 15.0), ("c", 15.0, 30.0),
                                        ("a", 30.0, 35.0), ("b", 35.0, 37.5)]  # fmt: skip
    # Bouts under 5 s (one window) join the bout before: b at 2 into a, b at 8 into c,
    # final b into a.
    assert _bouts(labels, min_bout_s=5.0) == [("a", 0.0, 15.0), ("c", 15.0, 30.0),
                                              ("a", 30.0, 37.5)]  # fmt: skip
    # A short first bout joins the one after it.
    assert _bouts("bcc", min_bout_s=5.0) == [("c", 0.0, 7.5)]


def test_day_boundaries_in_a_non_utc_zone_and_hours_add_up():
    """Europe/Berlin (UTC+1 in January): local midnight is 23:00 UTC. 20 windows of 2.5 min
    step from 22:30 UTC: 30 min before local midnight, 20 min after."""
    t0 = pd.Timestamp("2024-01-10 22:30", tz="UTC").timestamp()
    step = 150.0
    bb = BoutBuilder(step)
    labels = np.array(["graze"] * 8 + ["rest"] * 12, dtype=object)
    bouts = bb.push("cow", "0", 0, t0 + np.arange(20) * step, labels) + bb.flush()
    budget = DailyBudget("Europe/Berlin")
    budget.add(bouts)
    f = budget.frame(("graze", "rest", "walk")).set_index(["date", "behaviour"])
    assert f.loc[("2024-01-10", "graze"), "hours"] == pytest.approx(20 / 60)
    assert f.loc[("2024-01-10", "rest"), "hours"] == pytest.approx(10 / 60)
    assert f.loc[("2024-01-11", "rest"), "hours"] == pytest.approx(20 / 60)
    assert f.loc[("2024-01-11", "graze"), "hours"] == 0 and ("2024-01-11", "walk") in f.index
    # Hours add up to the recorded time (20 windows x 150 s); fractions to 1 per day.
    assert f["hours"].sum() == pytest.approx(20 * step / 3600)
    assert f.groupby(level="date")["fraction"].sum().tolist() == pytest.approx([1.0, 1.0])
    # In UTC the same bouts fall on one day.
    utc = DailyBudget("UTC")
    utc.add(bouts)
    assert set(utc.frame()["date"]) == {"2024-01-10"}
    assert bouts_frame(bouts, "Europe/Berlin")["local_start"].iloc[0] == "2024-01-10T23:30:00+0100"


def test_dst_day_has_23_hours():
    """Europe/Berlin on 2024-03-31 (clocks forward): a bout over the whole local day is 23 h."""
    s = pd.Timestamp("2024-03-31 00:00", tz="Europe/Berlin").timestamp()
    e = pd.Timestamp("2024-04-01 06:00", tz="Europe/Berlin").timestamp()
    _, d, a, b = split_days(np.array([s]), np.array([e]), "Europe/Berlin")
    assert d.tolist() == ["2024-03-31", "2024-04-01"]
    assert ((b - a) / 3600).tolist() == pytest.approx([23.0, 6.0])


def _reference_bouts(labels, starts, runs):
    """Window by window: one bout per stretch of one label within a run."""
    out = []
    for r in dict.fromkeys(runs):
        raw = []
        for i in (i for i in range(len(labels)) if runs[i] == r):
            if raw and raw[-1][0] == labels[i]:
                raw[-1][2] = starts[i] + STEP
            else:
                raw.append([labels[i], starts[i], starts[i] + STEP])
        out += [tuple(b) for b in raw]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_unsmoothed_bouts_are_runs_of_one_label_whatever_the_pushes(seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1]).tolist()
    runs = np.cumsum(rng.random(n) < 0.02).tolist()
    starts = (np.arange(n) * STEP + np.asarray(runs) * 1000.0).tolist()
    want = _reference_bouts(labels, starts, runs)
    for chunk in (1, 7, n):
        assert _bouts(labels, starts=starts, runs=runs, chunk=chunk) == want, chunk
    # With a minimum bout length: pushes of many windows give the bouts of pushes of one
    # window each (each window then goes through the bout rules on its own).
    one = _bouts(labels, starts=starts, runs=runs, min_bout_s=6.0, chunk=1)
    assert one != want
    for chunk in (7, n):
        assert _bouts(labels, starts=starts, runs=runs, min_bout_s=6.0, chunk=chunk) == one


@pytest.mark.parametrize(
    "tz", ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kolkata", "Pacific/Chatham"]
)
def test_local_start_is_strftimes_iso_time(tz):
    """bouts.csv's local_start, built array-wise, is what pandas' strftime writes: whole
    seconds (fractions dropped, also before 1970), daylight saving and odd offsets (+0530,
    -0230, +1345, and the +HHMMSS of 19th-century local mean times)."""
    from ethoedge.experiment.bouts import iso_local

    rng = np.random.default_rng(1)
    t = np.concatenate([rng.uniform(-3e9, 4e9, 3000), rng.uniform(1.7e9, 1.8e9, 3000),
                        [0.0, -0.5, 1e9 - 0.25]])  # fmt: skip
    want = pd.to_datetime(t, unit="s", utc=True).tz_convert(tz).strftime("%Y-%m-%dT%H:%M:%S%z")
    assert iso_local(t, tz).tolist() == list(want)


def test_ethogram_raster_takes_the_behaviour_at_each_columns_centre():
    """Hand-made pieces on a 24-column grid of 0-24 h (one column per hour, centres at
    h + 0.5): a piece colours exactly the columns whose centres it holds; gaps stay empty;
    pieces given out of order land where they belong; a piece narrower than a column and
    holding no centre leaves no mark; rows are independent."""
    from ethoedge.experiment.ethogram import raster

    row = np.array([0, 0, 0, 1, 0])
    x0 = np.array([5.0, 0.0, 10.2, 23.5, 12.6])
    x1 = np.array([10.0, 2.5, 10.4, 24.0, 24.0])
    code = np.array([1, 0, 3, 2, 2])
    grid = raster(row, x0, x1, code, 2, 0.0, 24.0, n_cols=24)
    want0 = [0, 0] + [-1] * 3 + [1] * 5 + [-1] * 3 + [2] * 11  # [0, 2.5) holds 0.5, 1.5
    assert grid[0].tolist() == want0
    assert grid[1].tolist() == [-1] * 23 + [2]
    # the empty case
    assert (
        raster(np.zeros(0, int), np.zeros(0), np.zeros(0), np.zeros(0, int), 1, 0, 1) == -1
    ).all()
