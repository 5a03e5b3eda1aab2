"""Per-animal logger files plus BORIS intervals give the same data as the single table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethoedge.cli import main
from ethoedge.data import DataConfig, WindowConfig, default_data_path, load_dataset, make_windows
from ethoedge.data.config import LabelsConfig

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "per_animal_layout.py"


def _script():
    spec = importlib.util.spec_from_file_location("per_animal_layout", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return _script().write_layout(tmp_path_factory.mktemp("layout"))


def _split_cfg(layout) -> DataConfig:
    return DataConfig(
        path=str(layout["loggers"]),
        format="cattle_ufro",
        labels=LabelsConfig(path=str(layout["labels"]), video_start=str(layout["video_start"])),
    )


def test_layout_files(layout):
    files = sorted(p.name for p in layout["loggers"].iterdir())
    assert files == [
        f"{a}.csv" for a in ("1217", "1219", "1319", "3120", "3321", "4119", "6019", "6319")
    ]
    head = (layout["loggers"] / "1217.csv").read_text().splitlines()[0]
    assert head == "timestamp,ax,ay,az,segment"  # no animal, no label column
    assert "POINT" in layout["labels"].read_text()


def _shared_instants() -> dict[str, set[float]]:
    """Per animal, the timestamps that two of its segments share (two bouts meeting)."""
    df = pd.read_csv(default_data_path(), dtype={"animal": str})
    dup = df[df.duplicated(["animal", "timestamp"], keep=False)]
    out = {str(a): set() for a in df["animal"].unique()}
    for a, g in dup.groupby("animal"):
        out[str(a)] = set(g["timestamp"].tolist())
    return out


def test_same_recordings_and_windows_as_the_single_table(layout):
    single = load_dataset(DataConfig())
    split = load_dataset(_split_cfg(layout))
    assert split.class_names == single.class_names
    assert any("point events" in n for n in split.notes)
    # Intervals of one animal cannot overlap, so where two bouts meet at one timestamp both
    # samples take the later bout's label: the only differences, and none reaches a window.
    shared = _shared_instants()
    by_key = {(r.animal, r.segment): r for r in split.recordings}
    for r in single.recordings:
        s = by_key.pop((r.animal, r.segment))
        n = len(s)
        assert n in (len(r), len(r) - 1)
        if n < len(r):
            assert r.t[-1] in shared[r.animal]
        np.testing.assert_array_equal(s.t, r.t[:n])
        np.testing.assert_array_equal(s.acc, r.acc[:n])
        differ = np.flatnonzero(s.labels != r.labels[:n])
        assert all(r.t[i] in shared[r.animal] for i in differ)
    assert all(len(s) == 1 and s.t[0] in shared[s.animal] for s in by_key.values())
    for wcfg in (WindowConfig(), WindowConfig(length_s=2.0, hop_s=1.0)):
        wa, wb = make_windows(split, wcfg), make_windows(single, wcfg)
        assert len(wa) == len(wb) > 1000
        for field in ("X", "y", "animal", "segment", "start", "end"):
            np.testing.assert_array_equal(getattr(wa, field), getattr(wb, field), err_msg=field)


def test_a_glob_of_the_files_loads_the_same(layout):
    cfg = _split_cfg(layout)
    glob_cfg = DataConfig(
        path=str(layout["loggers"] / "*.csv"), format="cattle_ufro", labels=cfg.labels
    )
    a, b = load_dataset(cfg), load_dataset(glob_cfg)
    assert [len(r) for r in a.recordings] == [len(r) for r in b.recordings]


def test_data_stats_cli_on_the_layout(layout, capsys):
    args = ["data", "stats", str(layout["loggers"]), "--format", "cattle_ufro"]
    args += ["--labels", str(layout["labels"]), "--video-start", str(layout["video_start"])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "8 animals" in out and "point events" in out
    assert main(["data", "stats"]) == 0
    single = capsys.readouterr().out
    windows_line = next(ln for ln in single.splitlines() if ln.startswith("windows:"))
    assert windows_line in out.splitlines()  # the same number of windows


def test_a_bundles_labels_apply_only_to_its_training_data(layout, tmp_path):
    import shutil

    from ethoedge.bundle import Bundle, windows_for_bundle
    from ethoedge.data import Normalizer
    from ethoedge.models.gru_mlp import GRUStudent

    cfg = _split_cfg(layout)
    classes = ("grazing", "resting", "standing", "walking")
    b = Bundle(
        student=GRUStudent(len(classes)),
        normalizer=Normalizer((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        class_names=classes,
        window=WindowConfig(),
        rate_hz=10.0,
        data=cfg.to_dict(),
    )
    own = windows_for_bundle(b, cfg.path)
    assert (own.y >= 0).all() and len(own) > 1000
    copy = shutil.copytree(layout["loggers"], tmp_path / "new_loggers")
    new = windows_for_bundle(b, copy, every_stretch=True)
    assert (new.y == -1).all()  # unlabelled: the annotation file belongs to the training data
