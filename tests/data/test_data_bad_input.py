"""Every kind of bad input gives one clear error naming the file, row and column."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datahelpers import frame, write

from ethoedge.cli import main
from ethoedge.data import DataConfig, WindowConfig, kfold_by_animal, load_dataset, make_windows
from ethoedge.errors import ConfigError, DataError


def good_lines() -> list[str]:
    """Header + 12 data rows (file lines 2..13), animal 'a' at 10 Hz."""
    return frame(animals=("a",), n=12).to_csv(index=False).splitlines()


def edit(line_no: int, column: str, value: str) -> Callable[[list[str]], list[str]]:
    def f(lines: list[str]) -> list[str]:
        header = lines[0].split(",")
        cells = lines[line_no - 1].split(",")
        cells[header.index(column)] = value
        lines[line_no - 1] = ",".join(cells)
        return lines

    return f


def drop_column(name: str) -> Callable[[list[str]], list[str]]:
    def f(lines: list[str]) -> list[str]:
        k = lines[0].split(",").index(name)
        return [",".join(c for i, c in enumerate(ln.split(",")) if i != k) for ln in lines]

    return f


def set_time(line_no: int, value_line: int) -> Callable[[list[str]], list[str]]:
    """Give line ``line_no`` the timestamp of line ``value_line``."""

    def f(lines: list[str]) -> list[str]:
        k = lines[0].split(",").index("timestamp")
        return edit(line_no, "timestamp", lines[value_line - 1].split(",")[k])(lines)

    return f


CASES = {
    "missing column": (drop_column("az"), {}, DataError, "missing column(s) ['az']", None, None),
    "non-numeric": (edit(5, "ax", "abc"), {}, DataError, "non-numeric value 'abc'", 5, "ax"),
    "NaN": (edit(6, "ay", "nan"), {}, DataError, "NaN/inf acceleration", 6, "ay"),
    "inf": (edit(7, "az", "inf"), {}, DataError, "NaN/inf acceleration", 7, "az"),
    "unlabelled": (edit(4, "label", ""), {}, DataError, "rows have no label", 4, "label"),
    "missing animal": (edit(3, "animal", ""), {}, DataError, "missing value", 3, "animal"),
    "bad timestamp": (edit(8, "timestamp", "yesterday"), {}, DataError, "cannot parse", 8, None),
    "non-monotonic": (set_time(9, 3), {}, DataError, "is before the previous", 9, "timestamp"),
    "duplicated": (set_time(9, 8), {}, DataError, "duplicates the previous", 9, "timestamp"),
    "ragged long": (
        lambda ls: [*ls[:9], ls[9] + ",1,2", *ls[10:]],
        {},
        DataError,
        "ragged row: 9 fields where the header has 7",
        10,
        None,
    ),
    "ragged short": (
        lambda ls: [*ls[:4], ",".join(ls[4].split(",")[:4]), *ls[5:]],
        {},
        DataError,
        "ragged row: 4 fields where the header has 7",
        5,
        None,
    ),
    "semicolons": (
        lambda ls: [ln.replace(",", ";") for ln in ls],
        {},
        DataError,
        "semicolon-separated",
        1,
        None,
    ),
    "column twice": (
        lambda ls: [ls[0] + ",AX ", *(ln + ",1" for ln in ls[1:])],
        {},
        DataError,
        "two columns named 'ax' and 'AX '",
        1,
        "ax",
    ),
    "delimiter at every line end": (
        # one field more than the header on every row: pandas would shift every column by one
        lambda ls: [ls[0] + ",note", *(ln + ",x," for ln in ls[1:])],
        {},
        DataError,
        "ragged row: 9 fields where the header has 8",
        2,
        None,
    ),
    "label with NUL": (
        edit(5, "label", "walk\x00"),
        {},
        DataError,
        "holds a control character",
        5,
        "label",
    ),
    "labels differing in case": (  # 'Rest' on lines 10-11, 'rest' on four others
        lambda ls: edit(11, "label", "Rest")(edit(10, "label", "Rest")(ls)),
        {},
        DataError,
        "behaviours 'Rest' and 'rest' differ only in letter case (2 and 4 rows; first 'Rest'",
        10,
        "label",
    ),
    "header only": (lambda ls: ls[:1], {}, DataError, "header but no data rows", None, None),
    "empty": (lambda ls: [], {}, DataError, "file is empty", None, None),
    "unknown class": (
        lambda ls: ls,
        {"classes": ("run",)},
        ConfigError,
        "['run'] not found",
        None,
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_csv_gives_clear_error(tmp_path: Path, case: str) -> None:
    change, cfg, exc, text, row, column = CASES[case]
    lines = change(good_lines())
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(exc) as ei:
        load_dataset(DataConfig(path=str(p), **cfg))
    e = ei.value
    assert text in str(e)
    assert str(p) in str(e)
    assert "\n" not in str(e)
    assert e.row == row
    if column is not None:
        assert e.column == column


@pytest.mark.parametrize("second_hz", [20.0, 5.0, 14.0])
def test_a_rate_change_within_a_recording_is_an_error(tmp_path: Path, second_hz: float) -> None:
    """60 samples at 10 Hz, then 40 at another steady rate: an error at the first sample of
    the shorter stretch; single gaps and jittered intervals are not."""
    f = frame(animals=("a",), n=100)
    t = 1000.0 + np.arange(60) / 10.0
    t = np.concatenate([t, t[-1] + np.arange(1, 41) / second_hz])
    f["timestamp"] = np.round(t, 6)
    p = tmp_path / "rates.csv"
    f.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"sampling rate changes within recording \(a, s0\)") as ei:
        load_dataset(DataConfig(path=str(p)))
    assert ei.value.row == 61 and ei.value.column == "timestamp"  # line 61: sample 60
    assert f"about {second_hz:g} Hz from here for 41 samples, where the rest is 10 Hz" in str(
        ei.value
    )
    rng = np.random.default_rng(1)
    t = 1000.0 + np.arange(100) / 10.0 + rng.uniform(-0.02, 0.02, 100)  # jitter
    t[50:] += 3.0  # one gap
    t[80:] += 0.7
    f["timestamp"] = np.round(t, 6)
    f.to_csv(p, index=False)
    (rec,) = load_dataset(DataConfig(path=str(p))).recordings  # intervals up to 40% off
    assert abs(rec.rate_hz - 10.0) < 0.5


def test_labels_differing_in_case_merge_with_the_label_map(tmp_path: Path) -> None:
    """The label map the case error suggests merges the two spellings into one class."""
    lines = edit(11, "label", "Rest")(edit(10, "label", "Rest")(good_lines()))
    p = tmp_path / "case.csv"
    p.write_text("\n".join(lines) + "\n")
    ds = load_dataset(DataConfig(path=str(p), label_map={"Rest": "rest"}))
    assert ds.class_names == ("rest", "walk")
    assert sum(int(np.sum(r.labels == "rest")) for r in ds.recordings) == 6  # all six rows


def _gz(tmp_path: Path) -> tuple[Path, bytes]:
    data = gzip.compress(frame(n=2000).to_csv(index=False).encode())
    return tmp_path / "x.csv.gz", data


def test_truncated_gzip(tmp_path):
    p, data = _gz(tmp_path)
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        load_dataset(DataConfig(path=str(p)))


def test_corrupt_gzip(tmp_path):
    p, data = _gz(tmp_path)
    p.write_bytes(data[:10] + bytes(200) + data[210:])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        load_dataset(DataConfig(path=str(p)))


def test_not_gzip_and_not_parquet(tmp_path):
    (tmp_path / "a.csv.gz").write_text("animal,timestamp\n")
    with pytest.raises(DataError, match="not a gzip file"):
        load_dataset(DataConfig(path=str(tmp_path / "a.csv.gz")))
    (tmp_path / "b.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(DataError, match="Parquet"):
        load_dataset(DataConfig(path=str(tmp_path / "b.parquet")))
    with pytest.raises(DataError, match="file not found"):
        load_dataset(DataConfig(path=str(tmp_path / "none.csv")))


def test_bad_parquet_columns(tmp_path):
    df = frame(n=20)
    df.assign(AX=df["ax"]).to_parquet(tmp_path / "twice.parquet", index=False)
    with pytest.raises(DataError, match="two columns named 'ax' and 'AX'") as ei:
        load_dataset(DataConfig(path=str(tmp_path / "twice.parquet")))
    assert ei.value.column == "ax" and ei.value.row is None
    df.assign(ay=df["ay"] > 0).to_parquet(tmp_path / "flags.parquet", index=False)
    with pytest.raises(DataError, match="non-numeric value False") as ei:
        load_dataset(DataConfig(path=str(tmp_path / "flags.parquet")))
    assert ei.value.column == "ay" and ei.value.row == 1


def test_recordings_shorter_than_one_window(tmp_path):
    p = tmp_path / "short.csv"
    frame(n=31).to_csv(p, index=False)
    ds = load_dataset(DataConfig(path=str(p)))
    with pytest.raises(DataError, match=r"a window is 50 samples \(5 s at 10 Hz\).* longest") as ei:
        make_windows(ds, WindowConfig())
    assert "31 samples" in str(ei.value)


def test_all_windows_impure(tmp_path):
    p = tmp_path / "mixed.csv"
    frame(n=60, labels=("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l")).to_csv(
        p, index=False
    )
    with pytest.raises(DataError, match="below min_purity"):
        make_windows(load_dataset(DataConfig(path=str(p))), WindowConfig())


def test_timestamps_in_messages_are_plain_numbers(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("\n".join(set_time(9, 8)(good_lines())) + "\n")
    with pytest.raises(DataError, match=r"timestamp 1000\.6 duplicates the previous row's 1000\.6"):
        load_dataset(DataConfig(path=str(p)))


def test_fewer_animals_than_folds():
    with pytest.raises(ConfigError, match="needs at least 5 animals, the data have 3"):
        kfold_by_animal(np.array(["a", "b", "c"]), k=5)


def test_cli_bad_file_exits_2_with_one_line(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(edit(5, "ax", "abc")(good_lines())) + "\n")
    assert main(["data", "stats", str(p)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0
    assert str(p) in err and "row 5" in err and "column 'ax'" in err


@pytest.mark.parametrize("column", ["animal", "label", "segment"])
def test_parquet_text_column_of_lists_or_structs(tmp_path, column):
    df = frame(n=20)
    for kind, value in (("list", lambda v: [v]), ("struct", lambda v: {"id": v})):
        p = tmp_path / f"{kind}.parquet"
        df.assign(**{column: df[column].map(value)}).to_parquet(p, index=False)
        with pytest.raises(DataError, match=f"{kind}<.*> values where text is expected") as ei:
            load_dataset(DataConfig(path=str(p)))
        assert (ei.value.row, ei.value.column) == (1, column)


def test_parquet_duration_timestamps_are_seconds(tmp_path):
    df = frame(n=60)
    df["timestamp"] = pd.to_timedelta(df["timestamp"] - 1000.0, unit="s")
    df.to_parquet(tmp_path / "since_start.parquet", index=False)
    ds = load_dataset(DataConfig(path=str(tmp_path / "since_start.parquet")))
    assert ds.recordings[0].rate_hz == 10.0
    assert ds.recordings[0].t[0] == 0.0 and ds.recordings[0].t[-1] == pytest.approx(5.9)


def test_a_rate_that_rounds_to_zero_is_named(tmp_path):
    df = frame(animals=("a",), n=20)
    df["timestamp"] = 1e9 + np.arange(20) * 1e6
    p = tmp_path / "slow.csv"
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"median step between samples is 1e\+06 s") as ei:
        load_dataset(DataConfig(path=str(p)))
    assert (ei.value.row, ei.value.column) == (2, "timestamp")


def test_empty_columns_at_the_end_of_each_line_are_ignored(tmp_path):
    """A spreadsheet export's trailing empty columns have no names: not two columns named ''."""
    p = tmp_path / "sheet.csv"
    p.write_text("\n".join(ln + ",," for ln in good_lines()) + "\n")
    ds = load_dataset(DataConfig(path=str(p)))
    assert len(ds.recordings[0].t) == 12


def _iso(df: pd.DataFrame, zoned: np.ndarray) -> pd.DataFrame:
    """``df`` with its timestamps as ISO 8601 text, with a zone (``Z``) where ``zoned``."""
    text = pd.to_datetime(df["timestamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return df.assign(timestamp=np.where(zoned, text + "Z", text))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("first_zoned", [True, False])
def test_iso_timestamps_with_and_without_a_zone_are_an_error(tmp_path, suffix, first_zoned):
    """A naive timestamp among zoned ones (or the reverse) is named by row; files whose
    timestamps all have a zone, or none, load as before (naive ones as UTC)."""
    df = frame(animals=("a",), n=12)
    zoned = np.full(12, first_zoned)
    zoned[7:] = not first_zoned  # file row 9 (CSV line 9, Parquet record 8) on
    p = write(_iso(df, zoned), tmp_path / f"mixed{suffix}")
    with pytest.raises(DataError) as ei:
        load_dataset(DataConfig(path=str(p)))
    e = ei.value
    kind = "no time zone where earlier rows have one" if first_zoned else "a time zone where"
    assert f"timestamp '1970-01-01T00:16:40.700000{'' if first_zoned else 'Z'}' has {kind}" in str(
        e
    )
    assert "give every timestamp a zone, or none" in str(e) and str(p) in str(e)
    assert (e.row, e.column) == (9 if suffix == ".csv" else 8, "timestamp")
    for every in (True, False):
        p = write(_iso(df, np.full(12, every)), tmp_path / f"same{suffix}")
        t = load_dataset(DataConfig(path=str(p))).recordings[0].t
        np.testing.assert_allclose(t, df["timestamp"].to_numpy())


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_file_that_is_not_utf8_names_its_first_such_row(tmp_path, suffix):
    """A Latin-1 label far into the file: the row, not the parser's position in a buffer of
    its own (which is not the file's offset), streamed and whole."""
    from ethoedge.data.stream import iter_blocks

    df = frame(animals=("a",), n=20_000)
    df.loc[15_000:, "label"] = "rumiación"
    p = tmp_path / f"latin1{suffix}"
    text = df.to_csv(index=False).encode("latin-1")
    p.write_bytes(gzip.compress(text) if suffix.endswith(".gz") else text)
    want = r"row 15002: not UTF-8 text \(byte 0xf3, e\.g\. Latin-1 or UTF-16\)"
    with pytest.raises(DataError, match=want):
        load_dataset(DataConfig(path=str(p)))
    with pytest.raises(DataError, match=want):
        list(iter_blocks(p))
