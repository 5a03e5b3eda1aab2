"""A folder or glob of per-animal files: animal ids, layouts, errors, and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datahelpers import frame, write

from ethoedge.cli import main
from ethoedge.data import DataConfig, load_dataset
from ethoedge.errors import DataError


def _folder(tmp_path: Path, animals=("cow_1", "cow_2"), drop=("animal",), suffix=".csv") -> Path:
    folder = tmp_path / "loggers"
    folder.mkdir(exist_ok=True)
    for k, a in enumerate(animals):
        df = frame(animals=(a,), n=80, seed=k).drop(columns=list(drop))
        write(df, folder / f"{a}{suffix}")
    return folder


def test_animal_id_is_the_file_stem_without_an_animal_column(tmp_path):
    folder = _folder(tmp_path, suffix=".csv")
    write(frame(animals=("x",), n=80).drop(columns=["animal"]), folder / "cow_3.parquet")
    ds = load_dataset(DataConfig(path=str(folder)))
    assert ds.animals == ("cow_1", "cow_2", "cow_3")
    assert [Path(r.source).name for r in ds.recordings] == [
        "cow_1.csv",
        "cow_2.csv",
        "cow_3.parquet",
    ]
    assert ds.name == "loggers" and ds.source == str(folder)


def test_animal_column_wins_over_the_file_stem(tmp_path):
    folder = _folder(tmp_path, drop=())
    (folder / "cow_1.csv").rename(folder / "file_a.csv")
    ds = load_dataset(DataConfig(path=str(folder)))
    assert ds.animals == ("cow_1", "cow_2")


def test_glob_selects_files(tmp_path):
    folder = _folder(tmp_path, animals=("cow_1", "cow_2", "sheep_1"))
    ds = load_dataset(DataConfig(path=str(folder / "cow_*.csv")))
    assert ds.animals == ("cow_1", "cow_2")
    with pytest.raises(DataError, match="no data files match"):
        load_dataset(DataConfig(path=str(folder / "goat_*.csv")))


def test_same_samples_as_one_table(tmp_path):
    one = frame(animals=("cow_1", "cow_2"), n=80)
    p = write(one, tmp_path / "all.csv")
    folder = tmp_path / "per_animal"
    folder.mkdir()
    for a, g in one.groupby("animal"):
        write(g.drop(columns=["animal"]), folder / f"{a}.csv")
    a, b = load_dataset(DataConfig(path=str(p))), load_dataset(DataConfig(path=str(folder)))
    assert [(r.animal, r.segment) for r in a.recordings] == [
        (r.animal, r.segment) for r in b.recordings
    ]
    for ra, rb in zip(a.recordings, b.recordings, strict=True):
        np.testing.assert_array_equal(ra.acc, rb.acc)
        np.testing.assert_array_equal(ra.labels, rb.labels)


def test_mixed_layouts_name_the_file(tmp_path):
    folder = _folder(tmp_path)
    write(frame(animals=("cow_9",), n=80), folder / "cow_9.csv")  # has an animal column
    with pytest.raises(DataError, match="mixed layouts") as ei:
        load_dataset(DataConfig(path=str(folder)))
    assert str(folder / "cow_9.csv") in str(ei.value) and "\n" not in str(ei.value)


def test_a_bad_row_in_the_second_file_names_that_file(tmp_path):
    folder = _folder(tmp_path)
    lines = (folder / "cow_2.csv").read_text().splitlines()
    cells = lines[4].split(",")
    cells[1] = "abc"  # ax
    lines[4] = ",".join(cells)
    (folder / "cow_2.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="non-numeric value 'abc'") as ei:
        load_dataset(DataConfig(path=str(folder)))
    e = ei.value
    assert e.path == folder / "cow_2.csv" and e.row == 5 and e.column == "ax"


def test_decreasing_time_in_a_later_file_names_its_row(tmp_path):
    folder = _folder(tmp_path)
    lines = (folder / "cow_2.csv").read_text().splitlines()
    t = lines[3].split(",")[0]
    cells = lines[6].split(",")
    cells[0] = t
    lines[6] = ",".join(cells)
    (folder / "cow_2.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="is before the previous") as ei:
        load_dataset(DataConfig(path=str(folder)))
    assert ei.value.path == folder / "cow_2.csv" and ei.value.row == 7


def test_a_folder_with_a_file_named_like_it_reads_that_file(tmp_path):
    folder = tmp_path / "herd"
    folder.mkdir()
    write(frame(animals=("a", "b"), n=80), folder / "herd.csv")
    write(frame(animals=("c",), n=80), folder / "other.csv")
    assert load_dataset(DataConfig(path=str(folder))).animals == ("a", "b")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="folder holds no data files"):
        load_dataset(DataConfig(path=str(tmp_path / "empty")))


def test_cli_stats_on_a_folder(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert main(["data", "stats", str(folder), "--window-s", "2", "--hop-s", "1"]) == 0
    out = capsys.readouterr().out
    assert "2 animals" in out and "cow_1" in out and "cow_2" in out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    return err


def _bad_labels(tmp_path: Path) -> tuple[Path, Path]:
    folder = _folder(tmp_path, drop=("animal", "label", "segment"))
    t0 = float(frame(n=1)["timestamp"].iloc[0])
    ann = tmp_path / "ann.csv"
    ann.write_text(
        f"animal,start,end,label\ncow_1,{t0},{t0 + 4},walk\ncow_1,{t0 + 3},{t0 + 8},rest\n"
    )
    return folder, ann


def test_cli_stats_bad_labels_is_one_line(tmp_path, capsys):
    folder, ann = _bad_labels(tmp_path)
    assert main(["data", "stats", str(folder), "--labels", str(ann)]) == 2
    err = _one_line_error(capsys)
    assert str(ann) in err and "row 3" in err and "overlaps row 2" in err


def test_cli_run_bad_labels_is_one_line_and_writes_nothing(tmp_path, capsys):
    folder, ann = _bad_labels(tmp_path)
    out = tmp_path / "run"
    assert main(["run", str(folder), "--labels", str(ann), "-o", str(out), "-q"]) == 2
    err = _one_line_error(capsys)
    assert "overlaps row 2" in err
    assert not out.exists()


def test_cli_run_unlabelled_samples_is_one_line(tmp_path, capsys):
    folder, _ = _bad_labels(tmp_path)
    t0 = float(frame(n=1)["timestamp"].iloc[0])
    ann = tmp_path / "ok.csv"
    ann.write_text(f"animal,start,end,label\ncow_1,{t0},{t0 + 4},walk\n")
    out = tmp_path / "run"
    assert main(["run", str(folder), "--labels", str(ann), "-o", str(out), "-q"]) == 2
    err = _one_line_error(capsys)
    assert "outside every annotation interval" in err and "Set unlabelled" in err
    assert not out.exists()


def test_cli_video_start_needs_labels(tmp_path, capsys):
    folder = _folder(tmp_path)
    assert main(["data", "stats", str(folder), "--labels-tz", "UTC"]) == 2
    assert "need --labels" in _one_line_error(capsys)


def test_a_folder_lists_only_its_data_files_and_names_a_broken_link(tmp_path):
    """Notes beside the loggers' files (README.txt, a .tsv export) are not data; a link to a
    file that is gone is named, not skipped without a word."""
    folder = _folder(tmp_path)
    (folder / "README.txt").write_text("collars fitted on 2024-05-12\n")
    (folder / "notes.tsv").write_text("a\tb\n")
    assert load_dataset(DataConfig(path=str(folder))).animals == ("cow_1", "cow_2")
    (folder / "cow_3.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(DataError, match=r"cow_3\.csv: a link to a file that does not exist"):
        load_dataset(DataConfig(path=str(folder)))


def test_numeric_looking_ids_stay_text_in_data_and_labels(tmp_path):
    """Animal ids such as 007 are text everywhere: in an animal column, in a file stem and in
    an annotation file, so that the three agree."""
    df = frame(animals=("007", "010"), n=80)
    p = write(df, tmp_path / "herd.csv")
    assert load_dataset(DataConfig(path=str(p))).animals == ("007", "010")
    folder = tmp_path / "loggers"
    folder.mkdir()
    write(df[df.animal == "007"].drop(columns=["animal"]), folder / "007.csv")
    labels = tmp_path / "labels.csv"
    labels.write_text("animal,start,end,label\n007,1000,1008,walk\n")
    ds = load_dataset(DataConfig(path=str(folder), labels=str(labels), unlabelled="drop"))
    assert ds.animals == ("007",)


def test_one_animal_in_two_files_at_overlapping_times_is_refused(tmp_path):
    """The same samples twice (a file exported again, two cuts that overlap) would count the
    animal's time twice; files of one animal one after the other are fine."""
    df = frame(animals=("A",), n=200).drop(columns=["segment"])
    folder = tmp_path / "logs"
    folder.mkdir()
    write(df.iloc[:120], folder / "part1.csv")
    write(df.iloc[100:], folder / "part2.csv")  # 20 samples again
    with pytest.raises(DataError, match=r"part2\.csv: animal 'A' is in part1\.csv until"):
        load_dataset(DataConfig(path=str(folder)))
    write(df.iloc[120:], folder / "part2.csv")
    ds = load_dataset(DataConfig(path=str(folder)))
    assert sum(len(r.t) for r in ds.recordings) == 200
