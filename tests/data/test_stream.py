"""Streamed windowing equals whole-file windowing on every window, whatever the chunk size."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ethoedge.bundle import window_like_bundle
from ethoedge.data import DataConfig, WindowConfig, load_dataset
from ethoedge.data.stream import infer_rate, iter_blocks, stream_windows
from ethoedge.errors import DataError


def _recording_frame(seed: int = 0) -> pd.DataFrame:
    """Two animals, two segments for one of them, gaps inside runs, some unlabelled rows,
    label ties; interleaved animals (rows of both animals alternate in stretches)."""
    rng = np.random.default_rng(seed)
    parts = []
    for animal, segs in (("cow_a", ("s1", "s2")), ("cow_b", ("s1",))):
        for si, seg in enumerate(segs):
            n = 700 + 97 * si
            t = 1_700_000_000.0 + 5000 * si + np.arange(n) * 0.1
            t[230:] += 3.0  # a gap
            t[480:] += 0.4  # another (0.5 s step > 1.5 sample periods)
            lab = np.array(["graze", "rest", "walk"], dtype=object)[(np.arange(n) // 37) % 3]
            lab[100:160] = None
            lab[300:325] = "rest"
            lab[325:350] = "graze"  # a tie inside some windows
            parts.append(
                pd.DataFrame(
                    {
                        "animal": animal,
                        "segment": seg,
                        "timestamp": t,
                        "ax": rng.normal(size=n).astype(np.float32),
                        "ay": rng.normal(size=n),
                        "az": 1 + rng.normal(size=n),
                        "label": lab,
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def _whole(path: Path, wcfg: WindowConfig):
    ds = load_dataset(DataConfig(path=str(path), unlabelled="keep"))
    stub = SimpleNamespace(window=wcfg, rate_hz=10.0, n_samples=wcfg.length or 50)
    return window_like_bundle(stub, ds, every_stretch=True)


def _streamed(path: Path, wcfg: WindowConfig, chunk_rows: int, cfg: DataConfig | None = None):
    cfg = cfg or DataConfig(path=str(path))
    L = wcfg.length or 50
    hop = wcfg.hop or 25
    gap = wcfg.max_gap_factor
    it = stream_windows(path, cfg, length=L, hop=hop, rate_hz=10.0, max_gap_factor=gap,
                        chunk_rows=chunk_rows)  # fmt: skip
    return list(it)


def _assert_same(whole, blocks):
    X = np.concatenate([b.X for b in blocks])
    animal = np.concatenate([np.full(len(b), b.animal, object) for b in blocks])
    segment = np.concatenate([np.full(len(b), b.segment, object) for b in blocks])
    start = np.concatenate([b.start for b in blocks])
    end = np.concatenate([b.end for b in blocks])
    label = np.concatenate([b.label for b in blocks])
    # Whole-file windows come grouped by (animal, segment); streamed ones in file order.
    key_w = pd.DataFrame({"a": whole.animal, "s": whole.segment, "t": whole.start})
    key_s = pd.DataFrame({"a": animal.astype(str), "s": segment.astype(str), "t": start})
    order_w = np.lexsort((key_w.t, key_w.s, key_w.a))
    order_s = np.lexsort((key_s.t, key_s.s, key_s.a))
    assert len(order_w) == len(order_s)
    np.testing.assert_array_equal(key_w.to_numpy()[order_w], key_s.to_numpy()[order_s])
    np.testing.assert_array_equal(whole.X[order_w], X[order_s])
    np.testing.assert_array_equal(whole.end[order_w], end[order_s])
    names = np.asarray([*whole.class_names, None], dtype=object)
    wl = names[np.where(whole.y >= 0, whole.y, len(whole.class_names))]
    assert list(wl[order_w]) == list(label[order_s])


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
@pytest.mark.parametrize("chunk_rows", [7, 49, 50, 333, 100_000])
def test_chunked_windows_equal_whole_file_windows(tmp_path, suffix, chunk_rows):
    df = _recording_frame()
    path = tmp_path / f"rec{suffix}"
    df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
    wcfg = WindowConfig()
    _assert_same(_whole(path, wcfg), _streamed(path, wcfg, chunk_rows))


@pytest.mark.parametrize("length,hop", [(50, 25), (20, 30), (16, 16), (9, 4)])
def test_every_geometry_and_interleaved_animals(tmp_path, length, hop):
    """hop > length (samples skipped), hop == length, odd sizes; rows of two animals
    interleaved in the file."""
    df = _recording_frame(1)
    a, b = df[df.animal == "cow_a"], df[df.animal == "cow_b"]
    mixed = pd.concat([a.iloc[:400], b.iloc[:300], a.iloc[400:], b.iloc[300:]])
    path = tmp_path / "mixed.csv"
    mixed.to_csv(path, index=False)
    wcfg = WindowConfig(length=length, hop=hop)
    for chunk in (3, 64, 10_000):
        _assert_same(_whole(path, wcfg), _streamed(path, wcfg, chunk))


def test_windows_without_their_labels_are_the_same_windows(tmp_path):
    """labels=False (a pass that needs only the windows): the same windows, bit for bit, at
    the same times, every label None."""
    path = tmp_path / "rec.csv"
    _recording_frame().to_csv(path, index=False)
    cfg, gap = DataConfig(path=str(path)), WindowConfig().max_gap_factor
    kw = dict(length=50, hop=25, rate_hz=10.0, max_gap_factor=gap, chunk_rows=333)
    full = list(stream_windows(path, cfg, **kw))
    bare = list(stream_windows(path, cfg, labels=False, **kw))
    assert [(b.animal, b.segment, b.run) for b in bare] == [
        (b.animal, b.segment, b.run) for b in full
    ]
    for f, b in zip(full, bare, strict=True):
        np.testing.assert_array_equal(f.X, b.X)
        np.testing.assert_array_equal(f.start, b.start)
        assert b.label.tolist() == [None] * len(b)
    assert any(v is not None for f in full for v in f.label)


def test_unlabelled_file_without_animal_column_uses_the_stem(tmp_path):
    df = _recording_frame().drop(columns=["label", "animal", "segment"]).iloc[:600]
    df = df.assign(timestamp=1_700_000_000.0 + np.arange(600) * 0.1)
    path = tmp_path / "cow_17.parquet"
    df.to_parquet(path)
    blocks = _streamed(path, WindowConfig(), 128)
    assert {b.animal for b in blocks} == {"cow_17"} and {b.segment for b in blocks} == {"0"}
    assert sum(len(b) for b in blocks) == (600 - 50) // 25 + 1
    assert all(v is None for b in blocks for v in b.label)
    assert infer_rate(path) == 10.0


def test_bad_rows_name_file_row_and_column(tmp_path):
    df = _recording_frame().iloc[:300].copy()
    df.loc[250, "timestamp"] = df.loc[10, "timestamp"]
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"bad.csv, row 252, column 'timestamp'"):
        list(iter_blocks(path, chunk_rows=100))
    df = _recording_frame().iloc[:300].astype({"ay": object})
    df.loc[120, "ay"] = "x"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 122, column 'ay': non-numeric value 'x'"):
        list(iter_blocks(path, chunk_rows=100))
    lines = _recording_frame().iloc[:300].to_csv(index=False).splitlines()
    path.write_text("\n".join([lines[0], *(ln + "," for ln in lines[1:])]) + "\n")
    with pytest.raises(DataError, match=r"row 2: ragged row: 8 fields where the header has 7"):
        list(iter_blocks(path, chunk_rows=100))
    path.write_text("\n".join([lines[0] + ",AY", *(ln + ",0" for ln in lines[1:])]) + "\n")
    with pytest.raises(DataError, match=r"row 1, column 'ay': two columns named 'ay' and 'AY'"):
        list(iter_blocks(path, chunk_rows=100))


def test_acceleration_columns_of_any_float_width_and_unit(tmp_path):
    """Float32 and float64 columns (Parquet keeps both), in g or m/s2, give the float32 g of
    whole-file loading; a NaN in a float32 column and a float64 value too large for float32
    are named by row and column; with nan_policy drop their rows go."""
    df = _recording_frame().iloc[:400].copy()
    df["ay"] = df["ay"].astype(np.float32)  # ax float32 too, az float64
    path = tmp_path / "rec.parquet"
    df.to_parquet(path)
    for units in ("g", "m/s2"):
        cfg = DataConfig(path=str(path), units=units)
        blocks = list(iter_blocks(path, cfg, chunk_rows=150))
        ds = load_dataset(replace(cfg, unlabelled="keep"))
        got = {(b.animal, b.segment): [] for b in blocks}
        for b in blocks:
            got[(b.animal, b.segment)].append(b.acc)
        for r in ds.recordings:
            acc = np.concatenate(got[(r.animal, r.segment)])
            assert acc.dtype == np.float32
            np.testing.assert_array_equal(acc, r.acc)
    bad = df.copy()
    bad.loc[123, "ay"] = np.nan
    bad.to_parquet(path)
    with pytest.raises(DataError, match=r"row 124, column 'ay': NaN/inf acceleration"):
        list(iter_blocks(path, chunk_rows=150))
    bad = df.copy()
    bad.loc[321, "az"] = 1e300
    bad.to_parquet(path)
    with pytest.raises(DataError, match=r"row 322, column 'az': NaN/inf acceleration"):
        list(iter_blocks(path, chunk_rows=150))
    kept = list(iter_blocks(path, DataConfig(path=str(path), nan_policy="drop"), chunk_rows=150))
    assert sum(len(b.t) for b in kept) == len(df) - 1
    assert all(np.isfinite(b.acc).all() for b in kept)


def test_label_map_and_classes_as_in_whole_file_loading(tmp_path):
    df = _recording_frame()
    path = tmp_path / "rec.csv"
    df.to_csv(path, index=False)
    cfg = DataConfig(path=str(path), unlabelled="keep", label_map={"walk": None, "rest": "lie"})
    ds = load_dataset(cfg)
    stub = SimpleNamespace(window=WindowConfig(), rate_hz=10.0, n_samples=50)
    whole = window_like_bundle(stub, ds, every_stretch=True)
    _assert_same(whole, _streamed(path, WindowConfig(), 61, cfg))
    cfg = replace(cfg, label_map={}, classes=("walk", "graze"))
    whole = window_like_bundle(stub, load_dataset(cfg), every_stretch=True)
    _assert_same(whole, _streamed(path, WindowConfig(), 61, cfg))


def test_a_short_row_is_named_ragged_in_every_column(tmp_path):
    lines = _recording_frame().iloc[:300].to_csv(index=False).splitlines()
    path = tmp_path / "short.csv"
    lines[150] = ",".join(lines[150].split(",")[:4])  # animal, segment, timestamp, ax
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 151: ragged row: 4 fields where the header has 7"):
        list(iter_blocks(path, chunk_rows=100))
    lines[150] = ",".join(lines[150].split(",")[:1])  # the animal only
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 151: ragged row: 1 fields where the header has 7"):
        list(iter_blocks(path, chunk_rows=100))


def test_parquet_text_column_of_structs(tmp_path):
    df = _recording_frame().iloc[:300]
    path = tmp_path / "nested.parquet"
    df.assign(segment=df["segment"].map(lambda s: {"id": s})).to_parquet(path, index=False)
    with pytest.raises(DataError, match=r"row 1, column 'segment': struct<id: string> values"):
        list(iter_blocks(path, chunk_rows=100))


def test_infer_rate_of_a_rate_that_rounds_to_zero(tmp_path):
    df = _recording_frame().iloc[:300].copy()
    df["timestamp"] = 1e9 + np.arange(300) * 5000.0
    path = tmp_path / "slow.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"median step between samples is 5000 s"):
        infer_rate(path)


def _save(df: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_iso_timestamps_with_and_without_a_zone_are_an_error(tmp_path, suffix):
    """A naive timestamp after zoned ones, in the first chunk or a later one, is named by row
    as whole-file loading names it; all zoned or all naive stream as before."""
    df = _recording_frame().iloc[:300].copy()
    text = pd.to_datetime(df["timestamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    path = tmp_path / f"rec{suffix}"
    first = 2 if suffix == ".csv" else 1
    for naive_from in (50, 100, 250):  # in the first chunk of 100 rows; a later one
        _save(df.assign(timestamp=np.where(np.arange(300) < naive_from, text + "Z", text)), path)
        want = rf"row {naive_from + first}, column 'timestamp': timestamp '.*' has no time zone"
        with pytest.raises(DataError, match=want):
            list(iter_blocks(path, chunk_rows=100))
        with pytest.raises(DataError, match=want):
            load_dataset(DataConfig(path=str(path)))
    for zone in ("Z", ""):
        _save(df.assign(timestamp=text + zone), path)
        t = np.concatenate([b.t for b in iter_blocks(path, chunk_rows=100)])
        np.testing.assert_allclose(np.sort(t), np.sort(df["timestamp"].to_numpy()))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_numbers_and_iso_timestamps_mixed_name_the_same_row_streamed_and_whole(tmp_path, suffix):
    """The first row whose kind (number or ISO 8601 text) differs from the file's first
    timestamp's is named, streamed as whole, wherever the chunks fall: a chunk all of the
    other kind, or mostly of the other kind, after the first is an error too."""
    df = _recording_frame().iloc[:300].copy()
    text = pd.to_datetime(df["timestamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    nums = df["timestamp"].map(repr)
    path = tmp_path / f"rec{suffix}"
    first = 2 if suffix == ".csv" else 1
    cases = [  # (rows of the other kind, the first of them)
        (np.arange(300) >= 100, 100),  # chunk 1 one kind, chunks 2-3 the other
        (np.arange(300) >= 150, 150),  # half the file: no majority
        ((np.arange(300) >= 110) & (np.arange(300) < 190), 110),  # most of chunk 2
        (np.isin(np.arange(300), [40, 120]), 40),  # a few odd ones out
    ]
    for first_text in (False, True):
        a, b = (text, nums) if first_text else (nums, text)
        what = "is a number where earlier rows are ISO" if first_text else "is ISO 8601 text"
        for other, at in cases:
            _save(df.assign(timestamp=np.where(other, b, a)), path)
            want = rf"row {at + first}, column 'timestamp': timestamp \S+ {what}"
            with pytest.raises(DataError, match=want):
                list(iter_blocks(path, chunk_rows=100))
            with pytest.raises(DataError, match=want):
                load_dataset(DataConfig(path=str(path), unlabelled="keep"))
    bad = nums.copy()
    bad.iloc[[120, 130]] = ["soon", text.iloc[130]]  # neither kind before the other kind
    _save(df.assign(timestamp=bad), path)
    want = rf"row {120 + first}, column 'timestamp': cannot parse timestamp 'soon'"
    with pytest.raises(DataError, match=want):
        list(iter_blocks(path, chunk_rows=100))
    with pytest.raises(DataError, match=want):
        load_dataset(DataConfig(path=str(path), unlabelled="keep"))


def test_iso_timestamps_after_a_chunk_of_blank_lines(tmp_path):
    """A CSV whose first chunk is only blank lines streams its ISO 8601 timestamps (the
    first chunk with rows is no longer numbered from 0)."""
    df = _recording_frame().iloc[:30].copy()
    text = pd.to_datetime(df["timestamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    body = df.assign(timestamp=text).to_csv(index=False).splitlines()
    path = tmp_path / "rec.csv"
    path.write_text("\n".join([body[0], *[""] * 10, *body[1:]]) + "\n")
    t = np.concatenate([b.t for b in iter_blocks(path, chunk_rows=10)])
    np.testing.assert_allclose(np.sort(t), np.sort(df["timestamp"].to_numpy()))


def test_parquet_date_timestamps_are_a_clear_error_not_a_traceback(tmp_path):
    """Dates (Parquet date32: date objects, not text) have no zone to compare: the rate they
    give is named, streamed and whole."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 100
    days = pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)], pa.date32())
    path = tmp_path / "days.parquet"
    pq.write_table(pa.table({"timestamp": days, "ax": np.zeros(n), "ay": np.zeros(n),
                             "az": np.ones(n), "label": ["graze"] * n}), path)  # fmt: skip
    with pytest.raises(DataError, match="86400 s"):
        load_dataset(DataConfig(path=str(path)))
    with pytest.raises(DataError, match="86400 s"):
        infer_rate(path)


def test_the_carried_samples_keep_no_block_alive():
    """Between pushes each (animal, segment) carries fewer samples than a window, as copies:
    a view would keep its whole block in memory, one block per segment of a recording."""
    from ethoedge.data.stream import Block, WindowStream

    ws = WindowStream(50, 25, 10.0, 1.5)
    blocks = []
    for k in range(20):  # 20 segments of 30 samples: shorter than a window, all carried
        t = 1_700_000_000.0 + np.arange(30) / 10.0
        b = Block("cow", f"s{k}", t, np.ones((30, 3), np.float32),
                  np.full(30, None, dtype=object), np.arange(30))  # fmt: skip
        blocks.append(b)
        assert ws.push(b) == []
    for b in blocks:
        c = ws._carry[(b.animal, b.segment)]
        assert len(c.t) == 30
        assert not np.shares_memory(c.t, b.t) and not np.shares_memory(c.acc, b.acc)
    b = Block("cow", "s0", blocks[0].t + 3.0, np.ones((40, 3), np.float32)[:30],
              np.full(30, None, dtype=object), np.arange(30))  # fmt: skip
    out = ws.push(b)  # 60 samples of s0 now: one window; the next starts at 25: 35 carried
    assert len(out) == 1 and len(out[0]) == 1
    c = ws._carry[("cow", "s0")]
    assert len(c.t) == 35 and not np.shares_memory(c.acc, b.acc)
