"""Loading: generic layout (CSV, CSV.gz, Parquet), presets, label map, units, rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from datahelpers import frame, write

from ethoedge.data import DataConfig, load_dataset
from ethoedge.data.loaders import G, default_data_path
from ethoedge.errors import ConfigError, DataError


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_generic_formats_load_the_same(tmp_path, suffix):
    df = frame()
    ds = load_dataset(DataConfig(path=str(write(df, tmp_path / f"d{suffix}"))))
    assert ds.animals == ("a", "b")
    assert ds.class_names == ("rest", "walk")  # sorted when not configured
    assert ds.rates_hz == (10.0,)
    a = ds.for_animal("a")[0]
    np.testing.assert_allclose(a.acc[:, 2], df.loc[df.animal == "a", "az"], atol=1e-6)
    assert a.acc.dtype == np.float32 and a.t.dtype == np.float64
    assert list(a.labels[:3]) == ["walk"] * 3


def test_bom_extra_columns_iso_timestamps_and_units(tmp_path):
    df = frame(animals=("a",), n=20)
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    df["ax"] = df["ax"] * G
    df["temperature"] = 21.5
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode())
    ds = load_dataset(DataConfig(path=str(p), units="m/s2"))
    rec = ds.recordings[0]
    np.testing.assert_allclose(np.diff(rec.t), 0.1, atol=1e-6)
    assert rec.t[0] == pytest.approx(1000.0)
    np.testing.assert_allclose(rec.acc[:, 0], df["ax"] / G, atol=1e-5)


def test_session_column_and_inferred_rate(tmp_path):
    df = frame(rate=25.0, segments=2).rename(columns={"segment": "session"})
    ds = load_dataset(DataConfig(path=str(write(df, tmp_path / "s.csv"))))
    assert ds.rates_hz == (25.0,)
    assert sorted({r.segment for r in ds.recordings}) == ["s0", "s1"]
    assert len(ds.recordings) == 4


def test_label_map_merge_rename_drop_and_classes(tmp_path):
    df = frame(labels=("walk", "trot", "rest", "noise"), n=80)
    p = str(write(df, tmp_path / "m.csv"))
    ds = load_dataset(
        DataConfig(path=p, label_map={"trot": "walking", "walk": "walking", "noise": None})
    )
    assert ds.class_names == ("rest", "walking")
    labs = np.concatenate([r.labels for r in ds.recordings])
    assert set(labs) == {"rest", "walking"}
    assert (labs == "walking").sum() == 2 * 40
    ds2 = load_dataset(DataConfig(path=p, classes=("walk", "rest")))
    assert ds2.class_names == ("walk", "rest")
    assert any("outside the classes" in n for n in ds2.notes)
    with pytest.raises(ConfigError, match="not found in the data"):
        load_dataset(DataConfig(path=p, classes=("walk", "grazing")))


def test_unlabelled_keep_and_drop(tmp_path):
    df = frame(animals=("a",), n=30)
    df.loc[5:9, "label"] = ""
    p = str(write(df, tmp_path / "u.csv"))
    kept = load_dataset(DataConfig(path=p, unlabelled="keep"))
    assert sum(lab is None for lab in kept.recordings[0].labels) == 5
    dropped = load_dataset(DataConfig(path=p, unlabelled="drop"))
    assert len(dropped.recordings[0]) == 25


def test_nan_policies(tmp_path):
    df = frame(animals=("a",), n=30)
    df.loc[4, "ay"] = np.nan
    df.loc[7, "az"] = np.inf
    p = str(write(df, tmp_path / "n.csv"))
    d = load_dataset(DataConfig(path=p, nan_policy="drop"))
    assert len(d.recordings[0]) == 28 and "dropped 2 rows" in d.notes[0]
    i = load_dataset(DataConfig(path=p, nan_policy="interpolate"))
    rec = i.recordings[0]
    assert len(rec) == 30 and np.isfinite(rec.acc).all()
    assert rec.acc[4, 1] == pytest.approx((df.ay[3] + df.ay[5]) / 2, abs=1e-5)


def test_timestamp_policy_sort_dedupes(tmp_path):
    df = frame(animals=("a",), n=30)
    df = pd.concat([df, df.iloc[[3]]]).iloc[::-1]
    ds = load_dataset(DataConfig(path=str(write(df, tmp_path / "t.csv")), timestamp_policy="sort"))
    assert len(ds.recordings[0]) == 30 and np.all(np.diff(ds.recordings[0].t) > 0)


def test_otariid_preset_resamples_mixed_rates(tmp_path):
    parts = []
    for sess, fs in (("x_1", 25), ("x_2", 20)):
        n = fs * 10
        parts.append(
            pd.DataFrame(
                {
                    "animal": "x",
                    "timestamp": np.arange(n) / fs,
                    "ax": np.sin(np.arange(n) / fs),
                    "ay": 0.0,
                    "az": 1.0,
                    "label": "swimming",
                    "label_group": np.where(np.arange(n) < n // 2, "travelling", "resting"),
                    "session": sess,
                    "fs_hz": fs,
                }
            )
        )
    p = write(pd.concat(parts), tmp_path / "otariids.csv")
    ds = load_dataset(DataConfig(path=str(p)))  # auto-detected from the columns
    assert ds.name == "otariids_ladds"
    assert ds.class_names == ("resting", "travelling")
    assert ds.rates_hz == (20.0,)
    r25 = next(r for r in ds.recordings if r.segment == "x_1")
    assert len(r25) == 9 * 20 + 1 + 19  # 0 .. 9.96 s at 20 Hz: t = 0, 0.05, ..., 9.95
    np.testing.assert_allclose(r25.acc[:, 0], np.sin(r25.t), atol=2e-3)
    assert r25.labels[0] == "travelling" and r25.labels[-1] == "resting"


@pytest.mark.parametrize("fs", [20, 50, 1e9])
def test_otariid_rate_column_must_agree_with_timestamps(tmp_path, fs):
    n = 250  # 25 Hz timestamps
    df = pd.DataFrame(
        {
            "animal": "x",
            "timestamp": np.arange(n) / 25,
            "ax": 0.0,
            "ay": 0.0,
            "az": 1.0,
            "label_group": "resting",
            "session": "x_1",
            "fs_hz": fs,
        }
    )
    p = write(df, tmp_path / "otariids.csv")
    with pytest.raises(DataError, match=r"row 2, column 'fs_hz'.*disagrees with its timestamps"):
        load_dataset(DataConfig(path=str(p)))


def test_bundled_default_is_the_cattle_preset(default_dataset):
    ds = default_dataset
    assert default_data_path().stat().st_size < 3_000_000
    assert ds.class_names == ("grazing", "resting", "standing", "walking")
    assert len(ds.animals) == 8
    assert ds.rates_hz == (10.0,)
    acc = np.concatenate([r.acc for r in ds.recordings])
    assert 0.9 < float(np.median(np.linalg.norm(acc, axis=1))) < 1.05  # m/s² converted to g
    merged = load_dataset(DataConfig(label_map={"trotting": "walking"}))
    n_walk = sum(int((r.labels == "walking").sum()) for r in ds.recordings)
    n_walk2 = sum(int((r.labels == "walking").sum()) for r in merged.recordings)
    assert n_walk2 > n_walk


def test_config_roundtrip_and_validation():
    c = DataConfig(path="x.csv", classes=("a", "b"), label_map={"c": None}, nan_policy="drop")
    assert DataConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ConfigError, match="nan_policy"):
        DataConfig(nan_policy="zero")
    with pytest.raises(ConfigError, match=r"unknown keys \['data\.paht'\]"):
        DataConfig.from_dict({"paht": "x"})


def test_parquet_with_datetime_timestamps_and_int_ids(tmp_path):
    df = frame(animals=("1", "2"), n=20)
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s")
    df["animal"] = df["animal"].astype(int)
    ds = load_dataset(DataConfig(path=str(write(df, tmp_path / "d.parquet"))))
    assert ds.animals == ("1", "2")
    np.testing.assert_allclose(np.diff(ds.recordings[0].t), 0.1, atol=1e-6)
    assert ds.recordings[0].t[0] == pytest.approx(1000.0)


def test_label_column_override(tmp_path):
    df = frame(animals=("a",), n=20).rename(columns={"label": "behaviour"})
    p = str(write(df, tmp_path / "b.csv"))
    with pytest.raises(DataError, match=r"missing column\(s\) \['label'\]"):
        load_dataset(DataConfig(path=p))
    ds = load_dataset(DataConfig(path=p, label_column="behaviour"))
    assert ds.class_names == ("rest", "walk")
