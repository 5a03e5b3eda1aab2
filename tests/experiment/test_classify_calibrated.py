"""``classify`` with a bundle trained on orientation-calibrated windows: every animal's
windows are turned as training turned them, from all of that animal's files, streamed or
not, whatever the chunking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ethoedge.bundle import Bundle, read_bundle_info, save_bundle, window_like_bundle
from ethoedge.data import DataConfig, Normalizer, WindowConfig, load_dataset
from ethoedge.experiment import classify
from ethoedge.inference import Classifier
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig

CLASSES = ("graze", "rest", "walk")
T0 = 1_717_200_000.0


@pytest.fixture(scope="module")
def calibrated_bundle(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    student = GRUStudent(len(CLASSES), StudentConfig(hidden=8, input="static_dynamic")).eval()
    with torch.no_grad():  # weights that make the gravity direction matter
        for p in student.parameters():
            p.mul_(3.0)
    d = tmp_path_factory.mktemp("calibrated")
    window = WindowConfig(calibrate="gravity", gravity_axis="-z")
    save_bundle(Bundle(student, Normalizer((0.0, 0.0, -1.0), (0.3, 0.3, 0.3)), CLASSES,
                       window, 10.0), d)  # fmt: skip
    return d


def _files(folder: Path, suffix: str) -> Path:
    """Two animals with collars at different angles; animal "a" in two files."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    tilt = {"a": (0.5, -0.3, -0.8), "b": (-0.6, 0.2, -0.75)}
    parts = [("a", 0.0, 1200), ("a", 3600.0, 900), ("b", 0.0, 1500)]
    for k, (animal, t_off, n) in enumerate(parts):
        t = T0 + t_off + np.arange(n) / 10.0
        slow = np.sin(np.arange(n) / 80.0)[:, None] * np.array([0.3, 0.4, 0.1])
        acc = np.asarray(tilt[animal]) + slow + rng.normal(scale=0.15, size=(n, 3))
        df = pd.DataFrame({"animal": animal, "timestamp": t, "ax": acc[:, 0],
                           "ay": acc[:, 1], "az": acc[:, 2]})  # fmt: skip
        p = folder / f"part{k}{suffix}"
        df.to_parquet(p) if suffix == ".parquet" else df.to_csv(p, index=False)
    return folder


@pytest.mark.parametrize("suffix,chunk_rows", [(".parquet", None), (".parquet", 333),
                                               (".csv", 500)])  # fmt: skip
def test_windows_turned_as_training_turns_them(calibrated_bundle, tmp_path, suffix, chunk_rows):
    logs = _files(tmp_path / "logs", suffix)
    res = classify(calibrated_bundle, DataConfig(path=str(logs), unlabelled="keep"),
                   tmp_path / "out", chunk_rows=chunk_rows, plots=False)  # fmt: skip
    got = pd.read_csv(res.windows_csv, dtype={"animal": str})
    # What training does: the whole data set windowed at once, each animal calibrated over
    # all its windows (both of animal a's files).
    info = read_bundle_info(calibrated_bundle)
    ds = load_dataset(DataConfig(path=str(logs), unlabelled="keep"))
    w = window_like_bundle(info, ds, every_stretch=True)
    clf = Classifier.from_bundle(calibrated_bundle, "float")
    want = pd.DataFrame({"animal": w.animal.astype(str), "start": w.start})
    scores = [f"score_{c}" for c in CLASSES]
    want[scores] = clf.predict_proba(w.X).round(6)
    merged = got.merge(want, on=["animal", "start"], suffixes=("", "_want"), validate="1:1")
    assert len(merged) == len(got) == len(want) > 0
    for s in scores:
        np.testing.assert_allclose(merged[s], merged[f"{s}_want"], atol=2e-6)
    # ... and not what the windows as recorded give.
    plain = window_like_bundle(_as_recorded(info), ds, every_stretch=True)
    as_recorded = clf.predict_proba(plain.X).round(6)
    assert np.abs(as_recorded - want[scores].to_numpy()).max() > 0.05


def _as_recorded(info):
    """The bundle description with its windows uncalibrated."""
    return replace(info, window=replace(info.window, calibrate="none"))


@pytest.mark.parametrize("budget,reads", [(None, 3), (0, 6), (10_000, 6)])
def test_files_that_fit_are_read_once(calibrated_bundle, tmp_path, monkeypatch, budget, reads):
    """The first pass keeps the window blocks of files that fit in KEEP_WINDOWS_BYTES (all
    files together) and the second classifies them without reading the files again; files
    that do not fit (none, or each larger than 10 kB: one passes the budget part-way) are
    read twice. The answers are the same, byte for byte (the kept windows carry their
    labels)."""
    import importlib

    module = importlib.import_module("ethoedge.experiment.classify")
    logs = _files(tmp_path / "logs", ".parquet")
    for f in logs.iterdir():  # labelled, in two behaviours
        df = pd.read_parquet(f)
        df["label"] = np.where(np.arange(len(df)) < len(df) // 2, "graze", "walk")
        df.to_parquet(f)
    cfg = DataConfig(path=str(logs), unlabelled="keep")
    want = classify(calibrated_bundle, cfg, tmp_path / "want", chunk_rows=333, plots=False,
                    executor="processes", workers=2)  # fmt: skip
    calls = []
    read = module._blocks

    def counted(task, *args, **kwargs):
        calls.append(task.path.name)
        return read(task, *args, **kwargs)

    monkeypatch.setattr(module, "_blocks", counted)
    if budget is not None:
        monkeypatch.setattr(module, "KEEP_WINDOWS_BYTES", budget)
    got = classify(calibrated_bundle, cfg, tmp_path / "got", chunk_rows=333, plots=False)
    assert len(calls) == reads and sorted(set(calls)) == ["part0.parquet", "part1.parquet",
                                                          "part2.parquet"]  # fmt: skip
    for name in ("windows.csv", "bouts.csv", "budget.csv"):
        assert (tmp_path / "got" / name).read_bytes() == (tmp_path / "want" / name).read_bytes()
    assert got.n_windows == want.n_windows > 0
    assert got.metrics is not None and got.confusion.sum() > 0.9 * got.n_windows


def test_an_animal_whose_acceleration_is_all_zero_is_one_line(calibrated_bundle, tmp_path, capsys):
    """Its mean acceleration is 0, so it has no gravity direction to be turned by: the file and
    the animal are named (not an array of the Python API), and nothing is written."""
    from ethoedge.cli import main

    logs = _files(tmp_path / "logs", ".csv")
    dead = pd.read_csv(logs / "part2.csv").assign(ax=0.0, ay=0.0, az=0.0)  # animal b
    dead.to_csv(logs / "part2.csv", index=False)
    out = tmp_path / "out"
    code = main(["classify", str(calibrated_bundle), str(logs), "--out", str(out), "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err and err.count("error:") == 1
    assert f"{logs / 'part2.csv'}: animal 'b': the mean of its acceleration is 0" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["logs"]
