"""Annotation intervals: the time join, time zones, BORIS exports and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datahelpers import frame

from ethoedge.data import DataConfig, WindowConfig, load_dataset, make_windows
from ethoedge.data.annotations import read_annotations
from ethoedge.data.config import LabelsConfig
from ethoedge.errors import ConfigError, DataError

T0 = 1_715_600_000.0  # 2024-05-13T11:33:20Z


def _write(tmp_path: Path, text: str, name: str = "ann.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _generic(tmp_path: Path, rows: list[str], name: str = "ann.csv") -> Path:
    return _write(tmp_path, "\n".join(["animal,start,end,label", *rows]) + "\n", name)


# ----------------------------------------------------------------------------- the join


def test_half_open_edges_and_gaps(tmp_path):
    p = _generic(tmp_path, ["a,10,20,walk", "a,20,25,rest", "a,30,40,walk", "b,0,5,rest"])
    ann = read_annotations(p)
    t = np.array([9.999, 10.0, 19.999, 20.0, 24.999, 25.0, 29.0, 30.0, 39.999, 40.0])
    assert ann.label_samples("a", t).tolist() == [
        None, "walk", "walk", "rest", "rest", None, None, "walk", "walk", None,
    ]  # fmt: skip
    assert ann.label_samples("b", np.array([0.0, 5.0])).tolist() == ["rest", None]
    assert ann.label_samples("nobody", np.array([10.0])).tolist() == [None]
    assert ann.animals == {"a", "b"}
    assert ann.behaviours == ["walk", "rest"]
    assert ann.label_samples("a", t).dtype == object


def test_unsorted_rows_join_the_same(tmp_path):
    p = _generic(tmp_path, ["a,30,40,walk", "a,10,20,walk", "a,20,25,rest"])
    t = np.arange(0, 45, 0.5)
    q = _generic(tmp_path, ["a,10,20,walk", "a,20,25,rest", "a,30,40,walk"], "sorted.csv")
    assert (
        read_annotations(p).label_samples("a", t) == read_annotations(q).label_samples("a", t)
    ).all()


@pytest.mark.parametrize(
    ("rows", "row", "other"),
    [
        (["a,10,20,walk", "a,19.5,30,rest"], 3, 2),  # partial overlap
        (["a,0,100,walk", "a,150,200,rest", "a,50,60,rest"], 4, 2),  # nested, out of order
        (["a,10,20,walk", "b,10,20,walk", "a,10,20,walk"], 4, 2),  # duplicate row
    ],
)
def test_overlaps_of_one_animal_are_rejected_naming_both_rows(tmp_path, rows, row, other):
    p = _generic(tmp_path, rows)
    with pytest.raises(DataError, match=f"overlaps row {other}'s") as ei:
        read_annotations(p)
    assert ei.value.row == row and str(p) in str(ei.value) and "\n" not in str(ei.value)


def test_touching_intervals_and_other_animals_do_not_overlap(tmp_path):
    p = _generic(tmp_path, ["a,10,20,walk", "a,20,30,rest", "b,15,25,walk"])
    assert len(read_annotations(p)) == 3


# ----------------------------------------------------------------------------- time zones


def test_iso_times_with_zones_equal_epoch_seconds(tmp_path):
    p = _generic(
        tmp_path,
        [
            "a,2024-05-13T13:33:20+02:00,2024-05-13T11:33:30Z,walk",
            "a,2024-05-13T11:33:30.5+00:00,2024-05-13T12:33:40+0100,rest",
        ],
    )
    ann = read_annotations(p)
    iv = ann.intervals("a")
    assert iv is not None
    assert iv.start.tolist() == [T0, T0 + 10.5] and iv.end.tolist() == [T0 + 10, T0 + 20]


def test_naive_times_need_tz_and_are_read_in_it(tmp_path):
    p = _generic(tmp_path, ["a,2024-05-13 13:33:20,2024-05-13 13:33:30,walk"])
    with pytest.raises(DataError, match=r"has no time zone.*\(data.labels.tz, --labels-tz\)") as ei:
        read_annotations(p)
    assert ei.value.row == 2 and ei.value.column == "start"
    iv = read_annotations(p, tz="Europe/Berlin").intervals("a")  # CEST, UTC+2 in May
    assert iv is not None and iv.start.tolist() == [T0]
    iv = read_annotations(p, tz="UTC").intervals("a")
    assert iv is not None and iv.start.tolist() == [T0 + 7200]


def test_mixed_naive_and_zoned_times_are_rejected(tmp_path):
    p = _generic(
        tmp_path,
        [
            "a,2024-05-13T11:33:20Z,2024-05-13T11:33:30Z,walk",
            "a,2024-05-13 11:34:00,2024-05-13T11:35:00Z,rest",
        ],
    )
    with pytest.raises(DataError, match="no time zone while other times have one") as ei:
        read_annotations(p, tz="UTC")
    assert ei.value.row == 3 and ei.value.column == "start"
    # the annotations' zone option, not classify's --tz (the zone of the answers)
    assert "naive ones: set data.labels.tz, --labels-tz" in str(ei.value)


def test_a_row_with_a_zoned_start_and_a_naive_end_is_rejected(tmp_path):
    """Each column is consistent on its own; the row mixes: rejected with or without tz."""
    p = _generic(
        tmp_path,
        [
            "a,2024-05-13T11:33:20Z,2024-05-13 11:33:30,walk",
            "a,2024-05-13T11:34:00Z,2024-05-13 11:35:00,rest",
        ],
    )
    for tz in (None, "UTC"):
        with pytest.raises(DataError, match="no time zone while the row's start has one") as ei:
            read_annotations(p, tz=tz)
        assert ei.value.row == 2 and ei.value.column == "end"
        assert "naive ones: set data.labels.tz, --labels-tz" in str(ei.value)
    q = _generic(tmp_path, ["a,2024-05-13 11:33:20,2024-05-13T11:33:30Z,walk"])
    with pytest.raises(DataError, match="no time zone while the row's end has one") as ei:
        read_annotations(q, tz="UTC")
    assert ei.value.row == 2 and ei.value.column == "start"


def test_zone_that_disagrees_with_tz_is_a_mismatch(tmp_path):
    p = _generic(tmp_path, ["a,2024-05-13T12:33:20+01:00,2024-05-13T12:33:30+01:00,walk"])
    read_annotations(p)  # fine without tz
    with pytest.raises(DataError, match=r"time zone mismatch.*UTC\+01:00.*UTC\+02:00") as ei:
        read_annotations(p, tz="Europe/Berlin")
    assert ei.value.row == 2


def test_nonexistent_local_time_and_unknown_zone(tmp_path):
    p = _generic(
        tmp_path,
        [
            "a,2024-03-31 01:00:00,2024-03-31 01:30:00,walk",
            "a,2024-03-31 02:30:00,2024-03-31 03:30:00,rest",
        ],
    )  # 02:30 does not exist: clocks jump from 02:00 to 03:00
    with pytest.raises(
        DataError, match="'2024-03-31 02:30:00' does not exist or is ambiguous"
    ) as ei:
        read_annotations(p, tz="Europe/Berlin")
    assert ei.value.row == 3 and ei.value.column == "start"
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        read_annotations(p, tz="Mars/Olympus")


# ----------------------------------------------------------------------------- BORIS

BORIS_HEAD = (
    "Observation id\tObservation date\tDescription\tObservation type\tSource\tTotal length\tFPS"
    "\tSubject\tBehavior\tBehavioral category\tModifiers\tBehavior type\tStart (s)\tStop (s)"
    "\tDuration (s)\tComment start\tComment stop"
)


def _boris_row(obs: str, subject: str, behavior: str, kind: str, start: str, stop: str) -> str:
    return "\t".join(
        [obs, "2024-05-13 11:33:20", "", "MEDIA", f"player #1:/v/{obs}.mp4", "600", "25",
         subject, behavior, "", "", kind, start, stop, "", "", ""]
    )  # fmt: skip


def _boris(tmp_path: Path, rows: list[str]) -> Path:
    return _write(tmp_path, "\n".join([BORIS_HEAD, *rows]) + "\n", "boris.tsv")


def test_boris_state_events_relative_to_one_video_start(tmp_path):
    p = _boris(
        tmp_path,
        [
            _boris_row("o1", "cow1", "grazing", "STATE", "0.000", "12.500"),
            _boris_row("o1", "cow1", "head shake", "POINT", "3.000", "3.000"),
            _boris_row("o1", "cow1", "walking", "STATE", "12.500", "20.000"),
            _boris_row("o1", "cow2", "resting", "STATE", "5.000", "6.000"),
        ],
    )
    ann = read_annotations(p, video_start="2024-05-13T11:33:20Z")
    assert ann.animals == {"cow1", "cow2"} and ann.behaviours == ["grazing", "walking", "resting"]
    assert ann.notes == ("ignored 1 BORIS point events (no duration) in boris.tsv",)
    t = T0 + np.array([0.0, 12.4, 12.5, 19.99, 20.0])
    assert ann.label_samples("cow1", t).tolist() == [
        "grazing", "grazing", "walking", "walking", None,
    ]  # fmt: skip
    # naive video start in a time zone
    same = read_annotations(p, video_start="2024-05-13 13:33:20", tz="Europe/Berlin")
    assert (same.label_samples("cow1", t) == ann.label_samples("cow1", t)).all()


def test_boris_video_start_table_per_observation(tmp_path):
    p = _boris(
        tmp_path,
        [
            _boris_row("o1", "cow1", "grazing", "STATE", "0", "10"),
            _boris_row("o2", "cow1", "walking", "STATE", "0", "10"),
        ],
    )
    vs = _write(
        tmp_path, "observation,start\no1,2024-05-13T11:33:20Z\no2,2024-05-13T11:34:20Z\n", "vs.csv"
    )
    ann = read_annotations(p, video_start=str(vs))
    assert ann.label_samples("cow1", T0 + np.array([5.0, 35.0, 65.0])).tolist() == [
        "grazing", None, "walking",
    ]  # fmt: skip
    media = _write(
        tmp_path, "media,start\no1.mp4,2024-05-13T11:33:20Z\no2.mp4,2024-05-13T11:34:20Z\n", "m.csv"
    )
    by_media = read_annotations(p, video_start=str(media))
    assert by_media.label_samples("cow1", T0 + np.array([65.0])).tolist() == ["walking"]
    missing = _write(tmp_path, "observation,start\no1,2024-05-13T11:33:20Z\n", "vs1.csv")
    with pytest.raises(DataError, match="no video start for observation 'o2'") as ei:
        read_annotations(p, video_start=str(missing))
    assert ei.value.row == 3 and ei.value.column == "observation id"
    twice = "o1,2024-05-13T11:33:20Z\no2,2024-05-13T11:34:20Z\no1,2024-05-13T11:35:20Z\n"
    twice = _write(tmp_path, "observation,start\n" + twice, "vs2.csv")
    with pytest.raises(DataError, match="observation 'o1' has another start in row 2") as ei:
        read_annotations(p, video_start=str(twice))
    assert ei.value.row == 4 and ei.value.column == "start" and str(twice) in str(ei.value)


@pytest.mark.parametrize(
    ("row", "kwargs", "text", "column"),
    [
        (_boris_row("o1", "cow1", "grazing", "STATE", "0", "10"), {}, "say when that was", None),
        (
            _boris_row("o1", "No focal subject", "grazing", "STATE", "0", "10"),
            {"video_start": "2024-05-13T11:33:20Z"},
            "without a subject",
            "subject",
        ),
        (
            _boris_row("o1", "cow1", "grazing", "EVENT", "0", "10"),
            {"video_start": "2024-05-13T11:33:20Z"},
            "neither STATE nor POINT",
            "behavior type",
        ),
        (
            _boris_row("o1", "cow1", "grazing", "STATE", "0", "ten"),
            {"video_start": "2024-05-13T11:33:20Z"},
            "not a number of seconds: 'ten'",
            "stop (s)",
        ),
        (
            _boris_row("o1", "cow1", "grazing", "STATE", "0", ""),
            {"video_start": "2024-05-13T11:33:20Z"},
            "missing value",
            "stop (s)",
        ),
        (
            _boris_row("o1", "cow1", "grazing", "STATE", "0", "inf"),
            {"video_start": "2024-05-13T11:33:20Z"},
            "not a number of seconds: inf$",
            "stop (s)",
        ),
        (
            _boris_row("o1", "cow1", "grazing", "STATE", "10", "10"),
            {"video_start": "2024-05-13T11:33:20Z"},
            "at or before it starts",
            "stop (s)",
        ),
        (
            _boris_row("o1", "cow1", "grazing", "STATE", "0", "10"),
            {"video_start": "yesterday"},
            "neither a date-time nor a file",
            None,
        ),
        (
            _boris_row("o1", "cow1", "grazing", "STATE", "0", "10"),
            {"video_start": "2024-05-13 11:33:20"},
            "video_start '2024-05-13 11:33:20' has no time zone",
            None,
        ),
        (
            _boris_row("o1", "cow1", "grazing", "STATE", "0", "10"),
            {"video_start": "2024-05-13T11:33:20+01:00", "tz": "Europe/Berlin"},
            "video_start time zone mismatch",
            None,
        ),
    ],
)
def test_bad_boris_input(tmp_path, row, kwargs, text, column):
    p = _boris(tmp_path, [row])
    with pytest.raises(DataError, match=text) as ei:
        read_annotations(p, **kwargs)
    assert "\n" not in str(ei.value)
    if column is not None:
        assert ei.value.column == column and ei.value.row == 2 and str(p) in str(ei.value)


# ----------------------------------------------------------------------------- bad generic input


@pytest.mark.parametrize(
    ("rows", "kwargs", "text", "row", "column"),
    [
        (["a,20,10,walk"], {}, "at or before it starts", 2, "end"),
        (["a,10,20,walk", ",10,20,walk"], {}, "missing value", 3, "animal"),
        (["a,10,20,"], {}, "missing value", 2, "label"),
        (["a,10,,walk"], {}, "missing value", 2, "end"),
        (["a,10,20,walk", "a,x,30,rest"], {}, "cannot parse time 'x'", 3, "start"),
        (["a,10,20,walk", "a,20,inf,rest"], {}, "not a finite time: inf", 3, "end"),
        (["a,10,20,walk,"], {}, "ragged row: 5 fields where the header has 4", 2, None),
        (
            ["a,2024-05-13T11:33:20Z,13/05/2024 11:34,walk"],
            {},
            "cannot parse time '13/05/2024 11:34' \\(expected epoch seconds or ISO 8601\\)",
            2,
            "end",
        ),
        (
            ["a,1715600000,2024-05-13T11:34:00Z,walk"],
            {},
            "cannot parse time '1715600000' .*not a mix",
            2,
            "start",
        ),
        (
            ["a,10,20,walk", "a,20,30,trot"],
            {"behaviours": ["walk", "rest"]},
            "unknown behaviour 'trot'",
            3,
            "label",
        ),
    ],
)
def test_bad_generic_input(tmp_path, rows, kwargs, text, row, column):
    p = _generic(tmp_path, rows)
    with pytest.raises(DataError, match=text) as ei:
        read_annotations(p, **kwargs)
    e = ei.value
    assert e.row == row and e.column == column and str(p) in str(e) and "\n" not in str(e)


def test_not_an_annotation_table_and_missing_file(tmp_path):
    p = _write(tmp_path, "who,from,to,what\na,1,2,b\n")
    with pytest.raises(DataError, match="not an annotation table"):
        read_annotations(p)
    with pytest.raises(DataError, match="annotation file not found"):
        read_annotations(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder, not an annotation file"):
        read_annotations(tmp_path)
    p = _write(tmp_path, "animal,start,end,label,Label\na,1,2,b,c\n")
    with pytest.raises(DataError, match="two columns named 'label' and 'Label'") as ei:
        read_annotations(p)
    assert ei.value.row == 1 and ei.value.column == "label"


def test_check_against_recordings(tmp_path):
    p = _generic(tmp_path, ["a,10,20,walk", "a,100,110,rest", "b,0,1,walk"])
    ann = read_annotations(p)
    ann.check_against({"a": (15.0, 100.0), "b": (0.5, 0.5)})  # overlapping at least a bit
    with pytest.raises(DataError, match="animal 'b', which has no recording") as ei:
        ann.check_against({"a": (0.0, 200.0)})
    assert ei.value.row == 4 and ei.value.column == "animal"
    with pytest.raises(DataError, match="outside its recording") as ei:
        ann.check_against({"a": (0.0, 99.9), "b": (0.0, 1.0)})
    assert ei.value.row == 3


# ----------------------------------------------------------------------------- load_dataset


def _logger(tmp_path: Path, animal: str, n: int = 200, t0: float = T0) -> Path:
    """A per-animal file without animal and label columns, 10 Hz from ``t0``."""
    df = frame(animals=(animal,), n=n).drop(columns=["animal", "label", "segment"])
    df["timestamp"] = np.round(t0 + np.arange(n) / 10.0, 6)
    folder = tmp_path / "loggers"
    folder.mkdir(exist_ok=True)
    p = folder / f"{animal}.csv"
    df.to_csv(p, index=False)
    return p


def test_load_dataset_with_labels_labels_by_time(tmp_path):
    for a in ("cow1", "cow2"):
        _logger(tmp_path, a)
    ann = _generic(
        tmp_path,
        [
            f"cow1,{T0},{T0 + 10},walk",
            f"cow1,{T0 + 10},{T0 + 20},rest",
            f"cow2,{T0},{T0 + 20},rest",
        ],
    )
    cfg = DataConfig(path=str(tmp_path / "loggers"), labels=str(ann))
    ds = load_dataset(cfg)
    assert ds.animals == ("cow1", "cow2") and ds.class_names == ("rest", "walk")
    r = ds.for_animal("cow1")[0]
    assert r.labels[:100].tolist() == ["walk"] * 100 and r.labels[100:].tolist() == ["rest"] * 100
    w = make_windows(ds, WindowConfig())
    assert set(w.animal) == {"cow1", "cow2"}


def test_samples_outside_every_interval_follow_unlabelled(tmp_path):
    _logger(tmp_path, "cow1")
    ann = _generic(tmp_path, [f"cow1,{T0 + 5},{T0 + 15},walk"])
    cfg = DataConfig(path=str(tmp_path / "loggers"), labels=str(ann))
    with pytest.raises(DataError, match="100 samples are outside every annotation interval") as ei:
        load_dataset(cfg)
    assert ei.value.row == 2 and "cow1.csv" in str(ei.value)
    ds = load_dataset(
        DataConfig(path=str(tmp_path / "loggers"), labels=str(ann), unlabelled="drop")
    )
    assert ds.n_samples == 100
    assert any("dropped 100 unlabelled rows" in n for n in ds.notes)


@pytest.mark.parametrize(
    ("rows", "cfg", "text", "row"),
    [
        ([f"cow9,{T0},{T0 + 20},walk"], {}, "animal 'cow9', which has no recording", 2),
        ([f"cow1,{T0 + 100},{T0 + 120},walk"], {}, "outside its recording", 2),
        (["cow1,1e300,1e301,walk"], {}, r"interval \[1e\+300 s, 1e\+301 s\) .* outside", 2),
        (
            [f"cow1,{T0},{T0 + 20},walk", f"cow1,{T0 + 20},{T0 + 30},trot"],
            {"classes": ("walk",)},
            "unknown behaviour 'trot'",
            3,
        ),
        ([f"cow1,{T0},{T0 + 20},walk"], {"labels_tz": "Nowhere/Zone"}, "unknown time zone", None),
    ],
)
def test_bad_labels_through_load_dataset(tmp_path, rows, cfg, text, row):
    _logger(tmp_path, "cow1")
    ann = _generic(tmp_path, rows)
    tz = cfg.pop("labels_tz", None)
    full = DataConfig(
        path=str(tmp_path / "loggers"), labels=LabelsConfig(path=str(ann), tz=tz), **cfg
    )
    with pytest.raises((DataError, ConfigError), match=text) as ei:
        load_dataset(full)
    assert ei.value.row == row and "\n" not in str(ei.value)
    if row is not None:
        assert str(ann) in str(ei.value)


def test_interval_in_a_gap_between_recordings(tmp_path):
    df = pd.concat(
        [
            pd.read_csv(_logger(tmp_path, "cow1")),
            pd.read_csv(_logger(tmp_path, "cow1", t0=T0 + 100)),
        ]
    )
    df.to_csv(tmp_path / "loggers" / "cow1.csv", index=False)
    ann = _generic(
        tmp_path,
        [
            f"cow1,{T0},{T0 + 20},walk",
            f"cow1,{T0 + 50},{T0 + 60},rest",
            f"cow1,{T0 + 100},{T0 + 120},walk",
        ],
    )
    with pytest.raises(DataError, match="covers no sample") as ei:
        load_dataset(DataConfig(path=str(tmp_path / "loggers"), labels=str(ann)))
    assert ei.value.row == 3


def test_label_map_and_behaviours_config(tmp_path):
    _logger(tmp_path, "cow1")
    ann = _generic(tmp_path, [f"cow1,{T0},{T0 + 10},trot", f"cow1,{T0 + 10},{T0 + 20},rest"])
    cfg = DataConfig(
        path=str(tmp_path / "loggers"),
        labels=str(ann),
        classes=("rest", "walk"),
        label_map={"trot": "walk"},
    )
    ds = load_dataset(cfg)
    assert ds.recordings[0].labels[0] == "walk"
    strict = LabelsConfig(path=str(ann), behaviours=("rest",))
    with pytest.raises(DataError, match="unknown behaviour 'trot'"):
        load_dataset(DataConfig(path=str(tmp_path / "loggers"), labels=strict))


@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_short_annotation_row_is_named_ragged(tmp_path, sep):
    """A row with a field too few is a ragged row (as in data files), not a missing label;
    tab-separated files (BORIS) are counted by tabs."""
    rows = ["animal,start,end,label", "a,10,20,walk", "a,20,30"]
    p = _write(tmp_path, "\n".join(r.replace(",", sep) for r in rows) + "\n", "ann.tsv")
    with pytest.raises(DataError, match="ragged row: 3 fields where the header has 4") as ei:
        read_annotations(p)
    assert ei.value.row == 3
