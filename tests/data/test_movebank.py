"""Movebank accelerometer exports, built from the attribute dictionary's column names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethoedge.data import DataConfig, WindowConfig, load_dataset, make_windows
from ethoedge.data.config import MovebankConfig
from ethoedge.errors import ConfigError, DataError

T0 = pd.Timestamp("2024-05-13 10:00:00", tz="UTC").timestamp()


def _bursts(
    n_bursts: int = 3,
    n: int = 20,
    freq: float = 10.0,
    every_s: float = 60.0,
    animals: tuple[str, ...] = ("stork1", "stork2"),
    axes: str = "XYZ",
) -> tuple[pd.DataFrame, dict[tuple[str, int], np.ndarray]]:
    """A burst export and, per (animal, burst), the (n, 3) counts in x, y, z order."""
    rng = np.random.default_rng(0)
    rows, truth = [], {}
    eid = 1
    for a in animals:
        for b in range(n_bursts):
            xyz = rng.integers(1500, 2600, size=(n, 3))
            truth[(a, b)] = xyz
            cols = xyz[:, ["XYZ".index(c) for c in axes]]
            t = pd.Timestamp(T0 + b * every_s, unit="s")
            rows.append(
                {
                    "event-id": eid,
                    "visible": "true",
                    "timestamp": t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                    "eobs:acceleration-axes": axes,
                    "eobs:acceleration-sampling-frequency-per-axis": freq,
                    "eobs:accelerations-raw": " ".join(str(v) for v in cols.ravel()),
                    "eobs:start-timestamp": t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                    "sensor-type": "acceleration",
                    "individual-taxon-canonical-name": "Ciconia ciconia",
                    "tag-local-identifier": f"tag-{a}",
                    "individual-local-identifier": a,
                    "study-name": "constructed",
                }
            )
            eid += 1
    return pd.DataFrame(rows), truth


def _write(df: pd.DataFrame, tmp_path: Path, name: str = "acc.csv") -> Path:
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_bursts_become_segments_in_g(tmp_path):
    df, truth = _bursts()
    ds = load_dataset(DataConfig(path=str(_write(df, tmp_path)), unlabelled="keep"))
    assert len(ds.recordings) == 6 and ds.animals == ("stork1", "stork2")
    assert ds.rates_hz == (10.0,)
    for k, r in enumerate(ds.recordings):
        a, b = ("stork1", "stork2")[k // 3], k % 3
        assert r.animal == a and len(r) == 20
        np.testing.assert_allclose(r.t, T0 + b * 60.0 + np.arange(20) / 10.0)
        expect = (truth[(a, b)] - 2048.0) / 1024.0
        np.testing.assert_allclose(r.acc, expect.astype(np.float32))
        assert all(v is None for v in r.labels)
    assert any("default e-obs assumption" in n for n in ds.notes)


def test_axis_order_and_calibration(tmp_path):
    df, truth = _bursts(animals=("s",), axes="ZXY")
    cfg = DataConfig(
        path=str(_write(df, tmp_path)),
        unlabelled="keep",
        movebank=MovebankConfig(zero=2000.0, g_per_count=0.002),
    )
    ds = load_dataset(cfg)
    np.testing.assert_allclose(
        ds.recordings[0].acc, ((truth[("s", 0)] - 2000.0) * 0.002).astype(np.float32)
    )
    assert not any("default e-obs assumption" in n for n in ds.notes)


def test_windows_never_cross_a_burst(tmp_path):
    # back-to-back bursts: 2 s each, the next one 2 s later, so time alone shows no gap
    df, _ = _bursts(n_bursts=4, n=20, every_s=2.0, animals=("s",))
    df["behavioural-classification"] = "flying"
    ds = load_dataset(DataConfig(path=str(_write(df, tmp_path))))
    w = make_windows(ds, WindowConfig(length=10, hop=5))
    assert len(w) == 4 * 3  # 3 windows per 20-sample burst, none across two
    burst = np.floor((w.start - T0) / 2.0 + 1e-9)
    assert (np.floor((w.end - 1e-6 - T0) / 2.0) == burst).all()
    with pytest.raises(DataError, match="no window fits"):
        make_windows(ds, WindowConfig(length=30, hop=5))


def test_other_sensor_rows_are_skipped_and_labels_read(tmp_path):
    df, _ = _bursts(animals=("s",))
    gps = df.iloc[:1].copy()
    gps["sensor-type"] = "gps"
    gps["eobs:accelerations-raw"] = ""
    df = pd.concat([df, gps], ignore_index=True)
    df["behavioural-classification"] = ["flying", "resting", "flying", ""]
    ds = load_dataset(DataConfig(path=str(_write(df, tmp_path))))
    assert any("skipped 1 rows of other sensor types" in n for n in ds.notes)
    assert ds.class_names == ("flying", "resting")
    assert ds.recordings[1].labels[0] == "resting"


@pytest.mark.parametrize("layout", ["tilt", "raw"])
def test_one_sample_per_row(tmp_path, layout):
    n = 100
    rng = np.random.default_rng(1)
    vals = rng.normal(0, 0.3, (n, 3)) if layout == "tilt" else rng.integers(1500, 2600, (n, 3))
    cols = [f"tilt-{c}" for c in "xyz"] if layout == "tilt" else [
        f"acceleration-raw-{c}" for c in "xyz"
    ]  # fmt: skip
    t = pd.to_datetime(T0 + np.arange(n) / 20.0, unit="s")
    df = pd.DataFrame(vals, columns=cols)
    df.insert(0, "timestamp", t.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3])
    df["individual-local-identifier"] = "goat7"
    ds = load_dataset(DataConfig(path=str(_write(df, tmp_path)), unlabelled="keep"))
    (r,) = ds.recordings
    assert r.animal == "goat7" and r.rate_hz == 20.0
    expect = vals if layout == "tilt" else (vals - 2048.0) / 1024.0
    np.testing.assert_allclose(r.acc, expect.astype(np.float32), rtol=1e-6)


def test_file_stem_is_the_animal_without_an_id_column(tmp_path):
    df, _ = _bursts(animals=("s",))
    df = df.drop(columns=["individual-local-identifier", "tag-local-identifier"])
    ds = load_dataset(DataConfig(path=str(_write(df, tmp_path, "ibex_3.csv")), unlabelled="keep"))
    assert ds.animals == ("ibex_3",)


def _edit(df: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    df = df.copy()
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("eobs:acceleration-axes", "XY", "needs the three axes X, Y and Z"),
        ("eobs:acceleration-axes", "", r"missing value \(no acceleration axes\)$"),
        ("eobs:accelerations-raw", "2048 2050 abc", "non-integer value 'abc'"),
        ("eobs:accelerations-raw", "2048 2050 2051 2052", "4 values does not divide into 3"),
        ("eobs:accelerations-raw", "", "an empty burst"),
        ("eobs:accelerations-raw", "2048 " + "9" * 30, r"value 9{30} in the burst is out of range"),
        ("eobs:acceleration-sampling-frequency-per-axis", 0, "must be a positive number, got 0$"),
        ("eobs:acceleration-sampling-frequency-per-axis", "inf", "positive number, got inf$"),
        ("eobs:acceleration-sampling-frequency-per-axis", "", r"missing value \(no sampling"),
        ("eobs:acceleration-sampling-frequency-per-axis", 1e-300, "past the year 2262$"),
        ("individual-local-identifier", "", "missing value"),
        ("timestamp", "not a time", "cannot parse timestamp"),
    ],
)
def test_bad_bursts_name_file_row_and_column(tmp_path, column, value, text):
    df, _ = _bursts()
    p = _write(_edit(df, 2, column, value), tmp_path)  # data row 3 = file line 4
    with pytest.raises(DataError, match=text) as ei:
        load_dataset(DataConfig(path=str(p), unlabelled="keep"))
    e = ei.value
    assert e.row == 4 and str(p) in str(e) and "\n" not in str(e)
    assert e.column == column


def test_two_bursts_of_one_animal_at_one_time_collide(tmp_path):
    df, _ = _bursts()
    p = _write(_edit(df, 2, "timestamp", df.loc[1, "timestamp"]), tmp_path)  # file lines 4, 3
    with pytest.raises(DataError, match="bursts collide") as ei:
        load_dataset(DataConfig(path=str(p), unlabelled="keep"))
    e = ei.value
    assert (e.row, e.column) == (4, "timestamp") and str(p) in str(e)
    assert "animal 'stork1' starts at 2024-05-13T10:01:00, as does the burst in row 3" in str(e)
    assert "before the previous row" not in str(e)
    ds = load_dataset(DataConfig(path=str(p), unlabelled="keep", timestamp_policy="sort"))
    assert "dropped 20 duplicate timestamps" in " ".join(ds.notes)


def test_overlapping_bursts_of_one_animal_are_an_error(tmp_path):
    """A burst that starts before another burst of its animal has ended would record the
    same time twice; back-to-back bursts (the next starts where the last ends) are fine."""
    df, _ = _bursts(n_bursts=3, n=20, freq=10.0, every_s=2.0)  # 2 s bursts, back to back
    assert len(load_dataset(DataConfig(path=str(_write(df, tmp_path)), unlabelled="keep"))
               .recordings) == 6  # fmt: skip
    # stork1's third burst (file line 4) moved to 1.5 s after its second began (line 3)
    late = pd.Timestamp(T0 + 2.0 + 1.5, unit="s").strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    p = _write(_edit(df, 2, "timestamp", late), tmp_path, "overlap.csv")
    with pytest.raises(DataError, match="bursts overlap") as ei:
        load_dataset(DataConfig(path=str(p), unlabelled="keep"))
    e = ei.value
    assert (e.row, e.column) == (4, "timestamp") and str(p) in str(e) and "\n" not in str(e)
    assert "animal 'stork1' starts at 2024-05-13T10:00:03.500000, before the burst in row 3" \
        " ends (2024-05-13T10:00:04)" in str(e)  # fmt: skip
    # bursts are compared within an animal: stork1's at the same times as stork2's are
    # fine, the error names stork2's own overlap
    other = _edit(df, 5, "timestamp", late)  # stork2's third burst
    other = other[other["individual-local-identifier"] == "stork2"]
    both = pd.concat([df[df["individual-local-identifier"] == "stork1"], other])
    ok = _write(both, tmp_path, "other_animal.csv")
    with pytest.raises(DataError, match="animal 'stork2'"):
        load_dataset(DataConfig(path=str(ok), unlabelled="keep"))
    assert load_dataset(DataConfig(path=str(p), unlabelled="keep",
                                   timestamp_policy="sort")).recordings  # fmt: skip


def test_missing_movebank_columns(tmp_path):
    df, _ = _bursts()
    p = _write(df.drop(columns=["eobs:acceleration-axes"]), tmp_path)
    with pytest.raises(DataError, match=r"missing column\(s\) \['eobs:acceleration-axes'\]"):
        load_dataset(DataConfig(path=str(p), unlabelled="keep"))


@pytest.mark.parametrize("axes", ["acceleration-raw-{}", "tilt-{}"])
def test_a_sample_per_row_export_missing_an_axis_names_it(tmp_path, axes):
    """Without its z column a one-sample-per-row export is still read as Movebank's, and the
    error names the column it lacks (not the generic layout's ax, ay, az)."""
    t = pd.to_datetime(T0 + np.arange(40) / 20.0, unit="s").strftime("%Y-%m-%d %H:%M:%S.%f")
    df = pd.DataFrame({"timestamp": t.str[:-3], axes.format("x"): 1.0, axes.format("y"): 2.0,
                       "individual-local-identifier": "goat7"})  # fmt: skip
    with pytest.raises(DataError, match=rf"missing column\(s\) \['{axes.format('z')}'\]"):
        load_dataset(DataConfig(path=str(_write(df, tmp_path)), unlabelled="keep"))


@pytest.mark.parametrize("axes", ["acceleration-raw-{}", "tilt-{}"])
def test_a_sample_per_row_nan_names_the_files_column(tmp_path, axes):
    t = pd.to_datetime(T0 + np.arange(40) / 20.0, unit="s").strftime("%Y-%m-%d %H:%M:%S.%f")
    df = pd.DataFrame({"timestamp": t.str[:-3], axes.format("x"): 1.0, axes.format("y"): 2.0,
                       axes.format("z"): 3.0, "individual-local-identifier": "goat7"})  # fmt: skip
    df.loc[5, axes.format("y")] = np.nan
    with pytest.raises(DataError, match=rf"row 7, column '{axes.format('y')}': 1 rows have NaN"):
        load_dataset(DataConfig(path=str(_write(df, tmp_path)), unlabelled="keep"))


def test_units_other_than_g_are_refused_for_movebank(tmp_path):
    t = pd.to_datetime(T0 + np.arange(40) / 20.0, unit="s").strftime("%Y-%m-%d %H:%M:%S.%f")
    df = pd.DataFrame({"timestamp": t.str[:-3], "tilt-x": 0.0, "tilt-y": 0.0, "tilt-z": 9.81})
    p = str(_write(df, tmp_path))
    with pytest.raises(ConfigError, match=r"units 'm/s2' do not apply to the movebank layout"):
        load_dataset(DataConfig(path=p, units="m/s2", unlabelled="keep"))
    assert load_dataset(DataConfig(path=p, units="g", unlabelled="keep")).recordings


def test_bursts_labelled_by_annotation_intervals(tmp_path):
    df, _ = _bursts(n_bursts=2, animals=("s",))
    ann = tmp_path / "ann.csv"
    # first burst flying, second resting (half-open: the second starts exactly at T0 + 60)
    ann.write_text(
        f"animal,start,end,label\ns,{T0},{T0 + 2},flying\ns,{T0 + 60},{T0 + 62},resting\n"
    )
    ds = load_dataset(DataConfig(path=str(_write(df, tmp_path)), labels=str(ann)))
    assert [set(r.labels) for r in ds.recordings] == [{"flying"}, {"resting"}]


def test_cli_stats_on_a_burst_export(tmp_path, capsys):
    from ethoedge.cli import main

    df, _ = _bursts(n_bursts=4, n=60)
    df["behavioural-classification"] = "flying"
    p = _write(df, tmp_path)
    assert main(["data", "stats", str(p), "--window-s", "2", "--hop-s", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 animals, 8 segments" in out and "default e-obs assumption" in out
    bad = _write(_edit(df, 1, "eobs:acceleration-axes", "XY"), tmp_path, "bad.csv")
    assert main(["data", "stats", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().count("\n") == 0
    assert "row 3" in err and "eobs:acceleration-axes" in err
