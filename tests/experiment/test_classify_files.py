"""``classify`` on new recordings: unlabelled and labelled, streamed in chunks, file by file
in parallel, with bouts, daily budgets and ethograms; bad input leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ethoedge.bundle import Bundle, save_bundle
from ethoedge.cli import main
from ethoedge.data import DataConfig, Normalizer, WindowConfig, load_dataset
from ethoedge.errors import ConfigError
from ethoedge.evaluate.metrics import classification_metrics
from ethoedge.experiment import classify
from ethoedge.models.gru_mlp import GRUStudent, StudentConfig

CLASSES = ("graze", "rest", "walk")
T0 = 1_717_200_000.0  # 2024-06-01 00:00 UTC


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    """A seeded untrained student over 5 s windows at 10 Hz (no training: cheap)."""
    torch.manual_seed(0)
    student = GRUStudent(len(CLASSES), StudentConfig(hidden=8))
    student.eval()
    d = tmp_path_factory.mktemp("bundle")
    save_bundle(Bundle(student, Normalizer((0.0, 0.0, 1.0), (0.3, 0.3, 0.3)), CLASSES,
                       WindowConfig(), 10.0), d)  # fmt: skip
    return d


def _frame(n: int, seed: int, t0: float = T0, rate: float = 10.0, labels: bool = False):
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(n) / rate
    t[n // 3 :] += 7.0  # a gap
    slow = np.sin(np.arange(n) / 300.0)[:, None]
    acc = rng.normal(scale=0.2, size=(n, 3)) + slow * np.array([0.5, -0.4, 0.3]) + [0, 0, 1]
    df = pd.DataFrame({"timestamp": t, "ax": acc[:, 0], "ay": acc[:, 1], "az": acc[:, 2]})
    if labels:
        lab = np.array(CLASSES, dtype=object)[(np.arange(n) // 400) % 3]
        lab[: n // 10] = None
        df["label"] = lab
    return df


def _folder(tmp_path: Path, n: int = 3000, labels: bool = False, suffix: str = ".parquet"):
    d = tmp_path / "logs"
    d.mkdir()
    for k, name in enumerate(("cow_1", "cow_2", "cow_3")):
        df = _frame(n + 500 * k, k, labels=labels)
        p = d / f"{name}{suffix}"
        df.to_parquet(p) if suffix == ".parquet" else df.to_csv(p, index=False)
    return d


def test_unlabelled_folder_cli_writes_every_answer(bundle_dir, tmp_path, capsys):
    logs = _folder(tmp_path)
    out = tmp_path / "answers"
    code = main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet",
                 "--tz", "Europe/Berlin"])  # fmt: skip
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "time budget" in text.out and "MCC" not in text.out
    names = {p.name for p in out.iterdir()}
    assert names == {"windows.csv", "bouts.csv", "budget.csv", "budget.png",
                     "ethogram_cow_1.png", "ethogram_cow_2.png", "ethogram_cow_3.png"}  # fmt: skip
    w = pd.read_csv(out / "windows.csv", keep_default_na=False)
    assert list(w.animal.unique()) == ["cow_1", "cow_2", "cow_3"]  # file order
    assert (w.true_label == "").all() and set(w.label) <= set(CLASSES)
    # Hours add up to the recorded time: 2.5 s per window.
    budget = pd.read_csv(out / "budget.csv")
    per_animal = budget.groupby("animal")["hours"].sum()
    np.testing.assert_allclose(per_animal.to_numpy(), w.groupby("animal").size() * 2.5 / 3600)
    np.testing.assert_allclose(budget.groupby(["animal", "date"])["fraction"].sum(), 1.0)
    bouts = pd.read_csv(out / "bouts.csv")
    np.testing.assert_allclose(bouts.groupby("animal")["duration_s"].sum() / 3600, per_animal)
    assert set(bouts.columns) >= {"animal", "start", "end", "behaviour", "duration_s"}
    # 2024-06-01 00:00 UTC is 02:00 in Berlin: the dates are local.
    assert set(budget.date) == {"2024-06-01"}
    assert (out / "ethogram_cow_1.png").stat().st_size > 2000
    # --no-plots: the tables only.
    code = main(["classify", str(bundle_dir), str(logs), "--out", str(tmp_path / "np"),
                 "--quiet", "--no-plots"])  # fmt: skip
    assert code == 0 and "plots" not in capsys.readouterr().out
    assert {p.name for p in (tmp_path / "np").iterdir()} == {"windows.csv", "bouts.csv",
                                                             "budget.csv"}  # fmt: skip


def test_labelled_cli_prints_metrics_and_confusion(bundle_dir, tmp_path, capsys):
    logs = _folder(tmp_path, labels=True, suffix=".csv")
    out = tmp_path / "w.csv"
    assert main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "MCC" in text and "macro F1" in text and "confusion matrix" in text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    w = pd.read_csv(out, keep_default_na=False)
    lab = w[w.true_label != ""]
    lut = {c: i for i, c in enumerate(CLASSES)}
    m = classification_metrics(lab.true_label.map(lut).to_numpy(), lab.label.map(lut).to_numpy(),
                               CLASSES)  # fmt: skip
    assert f"MCC {m['mcc']:.3f}" in text and f"macro F1 {m['macro_f1']:.3f}" in text
    assert 0 < len(lab) < len(w)  # the first 10% of each file is unlabelled


class _Intervals:
    """Annotation intervals: everything of cow_2 between two times is 'walk'."""

    def label_samples(self, animal: str, t: np.ndarray) -> np.ndarray:
        out = np.full(len(t), None, dtype=object)
        if animal == "cow_2":
            out[(t >= T0 + 100) & (t < T0 + 200)] = "walk"
        return out


def test_labels_from_an_annotation_object(bundle_dir, tmp_path):
    logs = _folder(tmp_path)
    res = classify(bundle_dir, DataConfig(path=str(logs)), tmp_path / "o.csv", labels=_Intervals())
    w = res.predictions
    assert set(w[w.true_label != ""].animal) == {"cow_2"}
    assert res.metrics is not None and res.metrics["n"] == (w.true_label == "walk").sum() > 0
    assert res.confusion.sum() == res.metrics["n"]


def test_labels_file_cli_joins_intervals(bundle_dir, tmp_path, capsys):
    """``--labels FILE``: a generic interval table labels the windows it covers."""
    logs = _folder(tmp_path, suffix=".csv")
    ann = tmp_path / "intervals.csv"
    pd.DataFrame({"animal": ["cow_2"], "start": [T0 + 100], "end": [T0 + 200],
                  "label": ["walk"]}).to_csv(ann, index=False)  # fmt: skip
    out = tmp_path / "w.csv"
    code = main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet",
                 "--labels", str(ann)])  # fmt: skip
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "MCC" in text.out
    w = pd.read_csv(out, keep_default_na=False)
    lab = w[w.true_label != ""]
    assert set(lab.animal) == {"cow_2"} and set(lab.true_label) == {"walk"}
    # windows wholly inside [T0 + 100, T0 + 200) carry the label (purity of the window)
    inside = w[(w.animal == "cow_2") & (w.start >= T0 + 100) & (w.end <= T0 + 200)]
    assert len(inside) > 0 and (inside.true_label == "walk").all()


def test_labels_file_naming_an_unknown_behaviour_is_one_line(bundle_dir, tmp_path, capsys):
    logs = _folder(tmp_path, suffix=".csv")
    ann = tmp_path / "intervals.csv"
    ann.write_text("animal,start,end,label\ncow_2,1717200100,1717200200,walk\n"
                   "cow_2,1717200150,1717200300,rest\n")  # fmt: skip
    out = tmp_path / "answers"
    code = main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet",
                 "--labels", str(ann)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "intervals.csv" in err[0], err
    assert "overlap" in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("row", "why", "executor"),
    [
        ("cow_9,1717200100,1717200200,walk", "animal 'cow_9', which has no recording", "serial"),
        ("cow_1,1717210000,1717210100,walk", "of animal 'cow_1' is outside its recording",
         "processes"),
        # cow_3's recording (4,000 samples at 10 Hz) has no samples from T0 + 133.2 to + 140.3
        ("cow_3,1717200134,1717200140,walk", "covers no sample: it lies in a gap", "serial"),
    ],
)  # fmt: skip
def test_labels_for_no_recording_are_one_line(bundle_dir, tmp_path, capsys, row, why, executor):
    """As in ``run``: an interval of an animal no file holds, outside its recording or in a
    gap of it, is an error naming the annotation's row, found after every file was read;
    nothing written."""
    logs = _folder(tmp_path, suffix=".csv")
    ann = tmp_path / "intervals.csv"
    # cow_1's recording: T0 to about T0 + 307 s; its last interval ends after the last sample
    ann.write_text(f"animal,start,end,label\ncow_1,1717200100,1717200400,walk\n{row}\n")
    out = tmp_path / "answers"
    code = main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet",
                 "--labels", str(ann), "--executor", executor, "--workers", "2"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "intervals.csv, row 3" in err[0] and why in err[0], err
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_chunks_and_parallel_files_give_identical_outputs(bundle_dir, tmp_path):
    logs = _folder(tmp_path, labels=True)
    ref = classify(bundle_dir, DataConfig(path=str(logs)), tmp_path / "ref", chunk_rows=10**6,
                   smooth=3, min_bout_s=10.0, tz="America/New_York")  # fmt: skip
    small = classify(bundle_dir, DataConfig(path=str(logs)), tmp_path / "small", chunk_rows=37,
                     smooth=3, min_bout_s=10.0, tz="America/New_York")  # fmt: skip
    par = classify(bundle_dir, DataConfig(path=str(logs)), tmp_path / "par", chunk_rows=37,
                   smooth=3, min_bout_s=10.0, tz="America/New_York", executor="processes",
                   workers=2)  # fmt: skip
    for name in ("windows.csv", "bouts.csv", "budget.csv"):
        a = (ref.out / name).read_bytes()
        assert a == (small.out / name).read_bytes(), name
        assert a == (par.out / name).read_bytes(), name
    assert ref.metrics == par.metrics and ref.n_windows == par.n_windows
    assert all("streamed" in n for n in ref.notes)


def test_another_rate_is_read_whole_and_resampled(bundle_dir, tmp_path):
    p = tmp_path / "cow_9.csv"
    _frame(4000, 3, rate=20.0).to_csv(p, index=False)
    res = classify(bundle_dir, DataConfig(path=str(p)), tmp_path / "o")
    assert "read whole (20 Hz, resampled" in res.notes[0]
    w = res.predictions
    assert len(w) > 0 and np.allclose(np.diff(w.start.to_numpy()[:5]), 2.5)


def test_the_cli_says_which_files_it_resampled(bundle_dir, tmp_path, capsys):
    p = tmp_path / "cow_9.csv"
    _frame(2000, 3, rate=20.0).to_csv(p, index=False)
    assert main(["classify", str(bundle_dir), str(p), "--out", str(tmp_path / "o"), "-q"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "note: cow_9.csv: read whole (20 Hz, resampled to the model's 10 Hz)" in said


def test_bad_input_one_line_and_no_partial_output(bundle_dir, tmp_path, capsys):
    logs = _folder(tmp_path, suffix=".csv")
    bad = pd.read_csv(logs / "cow_2.csv").astype({"ay": object})
    bad.loc[1234, "ay"] = "oops"
    bad.to_csv(logs / "cow_2.csv", index=False)
    for extra in ([], ["--executor", "processes", "--workers", "2"]):
        out = tmp_path / "answers"
        code = main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet",
                     *extra])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        assert "cow_2.csv, row 1236, column 'ay': non-numeric value 'oops'" in " ".join(err.split())
        assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name[0] == "."]
    assert main(["classify", str(bundle_dir), str(logs), "--out", str(tmp_path / "x"),
                 "--tz", "Mars/Olympus"]) == 2  # fmt: skip
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


def test_unwritable_out_one_line_and_no_folders_left_behind(bundle_dir, tmp_path, capsys):
    logs = _folder(tmp_path, n=600, suffix=".csv")
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    (tmp_path / "taken.csv").mkdir()
    for out, why in (
        (notes / "answers", f"cannot write here: {notes} is a file, not a folder"),
        (notes / "pred.csv", f"cannot write here: {notes} is a file, not a folder"),
        (tmp_path / "taken.csv", "is a folder: give a FILE.csv"),
    ):
        code = main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet"])
        err = " ".join(capsys.readouterr().err.split())
        assert code == 2 and "Traceback" not in err and f"{out}: {why}" in err
    bad = pd.read_csv(logs / "cow_3.csv").astype({"ax": object})
    bad.loc[5, "ax"] = "oops"
    bad.to_csv(logs / "cow_3.csv", index=False)
    out = tmp_path / "new" / "deeper" / "answers"
    assert main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet"]) == 2
    assert "cow_3.csv, row 7, column 'ax'" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_out_that_cannot_take_the_answers_is_one_line_and_left_as_it_was(
    bundle_dir, tmp_path, capsys
):
    logs = _folder(tmp_path, n=600, suffix=".csv")
    out = tmp_path / "answers"
    (out / "budget.csv").mkdir(parents=True)  # a folder where an answer goes
    long = tmp_path / "new" / ("x" * 300)
    for o, why in (
        (out, f"cannot write here: {out / 'budget.csv'} is a folder, not a file"),
        (long, "cannot write here: File name too long"),
        (long.with_suffix(".csv"), "cannot write here: File name too long"),
    ):
        code = main(["classify", str(bundle_dir), str(logs), "--out", str(o), "--quiet",
                     "--no-plots"])  # fmt: skip
        err = " ".join(capsys.readouterr().err.split())
        assert code == 2 and "Traceback" not in err and f"{o}: {why}" in err
    assert [p.name for p in out.iterdir()] == ["budget.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers", "logs"]


def test_bundle_that_is_not_complete_is_one_line(bundle_dir, tmp_path, capsys):
    import shutil

    logs = _folder(tmp_path, n=600, suffix=".csv")
    broken = {
        "bundle.json": (b'{"format": "ethoedge.bundle/1"}', "not a complete bundle description"),
        "student.npz": (b"PK\x03\x04 not a zip", "not a readable student"),
        "quantized/w8.json": (b"{", "not a readable integer model"),
    }
    for k, (name, (content, text)) in enumerate(broken.items()):
        b = tmp_path / f"bundle_{k}"
        shutil.copytree(bundle_dir, b)
        (b / name).parent.mkdir(exist_ok=True)
        (b / name).write_bytes(content)
        engine = "int" if name.startswith("quantized") else "float"
        code = main(["classify", str(b), str(logs), "--out", str(tmp_path / "o"), "--quiet",
                     "--engine", engine])  # fmt: skip
        err = " ".join(capsys.readouterr().err.split())
        assert code == 2 and "Traceback" not in err and f"{b / name}: {text}" in err
    (tmp_path / "notes.txt").write_text("x")
    out = str(tmp_path / "o")
    assert main(["classify", str(tmp_path / "notes.txt"), str(logs), "--out", out]) == 2
    assert "not a model bundle (no bundle.json)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_classify_imports_neither_pytorch_nor_scikit_learn_until_a_model_runs():
    """The parent of classify's worker processes reads bundle.json only: importing PyTorch
    (2 s, 220 MB) or scikit-learn (1 s, 190 MB) there would cost every run."""
    import subprocess
    import sys

    code = (
        "import sys; from ethoedge.experiment import classify; import ethoedge.cli; "
        "from ethoedge.bundle import read_bundle_info; import ethoedge.inference; "
        "print(sorted(m for m in ('torch', 'sklearn', 'scipy', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "code",
    [
        "from ethoedge.experiment import ClassifyResult, classify",
        "from ethoedge.experiment import run_windows, run",
        "import ethoedge.experiment.run, ethoedge.experiment.classify; "
        "from ethoedge.experiment import run, classify",
    ],
)
def test_the_package_names_the_functions_whatever_was_imported_first(code):
    """``classify`` and ``run`` are functions and submodules; importing the submodule must not
    hide the function."""
    import subprocess
    import sys

    check = "; import ethoedge.experiment as e; print(callable(e.run), callable(e.classify))"
    out = subprocess.run([sys.executable, "-c", code + check], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.split() == ["True", "True"]


def test_a_bundle_written_again_at_the_same_path_is_read_again(tmp_path):
    """The per-process model cache must not serve the old weights after retraining."""
    d = tmp_path / "bundle"
    rec = tmp_path / "rec.csv"
    _frame(1200, 0).to_csv(rec, index=False)
    scores = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        save_bundle(Bundle(GRUStudent(len(CLASSES), StudentConfig(hidden=8)).eval(),
                           Normalizer((0.0, 0.0, 1.0), (0.3, 0.3, 0.3)), CLASSES,
                           WindowConfig(), 10.0), d)  # fmt: skip
        res = classify(d, DataConfig(path=str(rec)), tmp_path / f"p{seed}.csv", plots=False)
        scores.append(res.predictions[[f"score_{c}" for c in CLASSES]].to_numpy())
    assert not np.allclose(scores[0], scores[1])


def test_plots_drawn_in_the_helper_process_are_the_plots_drawn_here(bundle_dir, tmp_path,
                                                                    monkeypatch):  # fmt: skip
    """The ethograms and the budget chart come from a helper process forked at the start
    (it imports matplotlib while the windows are classified): the same PNGs, byte for byte,
    as drawn in the calling process, which then never imports matplotlib itself."""
    import importlib
    import subprocess
    import sys

    cl = importlib.import_module("ethoedge.experiment.classify")  # the module, not the function
    logs = _folder(tmp_path)
    code = (
        "import sys; from ethoedge.experiment import classify; "
        "from ethoedge.data import DataConfig; "
        f"r = classify({str(bundle_dir)!r}, DataConfig(path={str(logs)!r}), "
        f"{str(tmp_path / 'helper')!r}); "
        "print(len(r.plots), 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.split() == ["4", "False"]  # 3 ethograms and the budget; matplotlib elsewhere
    monkeypatch.setattr(cl, "_plot_process", lambda several: None)
    here = classify(bundle_dir, DataConfig(path=str(logs)), tmp_path / "here")
    assert len(here.plots) == 4
    for p in here.plots:
        assert p.read_bytes() == (tmp_path / "helper" / p.name).read_bytes(), p.name


def _pid_to(path: str) -> None:
    Path(path).write_text(str(os.getpid()))


def _fail(message: str) -> None:
    raise ValueError(message)


def test_jobs_side_by_side_run_in_forked_processes_and_raise_their_errors(tmp_path):
    """In the plots' helper (one process), drawing jobs run at once: all but the first in
    processes forked from it; an error of any job is raised to the caller, and no child is
    left behind."""
    import importlib
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    cl = importlib.import_module("ethoedge.experiment.classify")
    files = [str(tmp_path / f"job{k}") for k in range(3)]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=ctx) as helper:
        helper.submit(cl._side_by_side, [(_pid_to, (f,)) for f in files]).result()
        pids = [Path(f).read_text() for f in files]
        assert len(set(pids)) == 3  # three processes: the helper and two forked from it
        failing = {"a child": [(_pid_to, (files[0],)), (_fail, ("a child",))],
                   "the helper": [(_fail, ("the helper",)), (_pid_to, (files[1],))]}  # fmt: skip
        for where, jobs in failing.items():
            with pytest.raises(ValueError, match=f"^{where}$"):
                helper.submit(cl._side_by_side, jobs).result()
        # the helper reaped its children: it has none left
        left = helper.submit(_children_left).result()
        assert left == 0


def _draw_unless_forked(path: str, helper_pid: int) -> None:
    """A job that dies (as the out-of-memory killer would kill it) in any process but the
    helper's own."""
    import signal

    if os.getpid() != helper_pid:
        os.kill(os.getpid(), signal.SIGKILL)
    Path(path).write_text("drawn")


class _TwoArgumentError(Exception):
    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} at {where}")


def _fail_unpicklably() -> None:
    raise _TwoArgumentError("no room", "the end")


def test_a_drawing_process_that_dies_is_drawn_again_and_errors_always_come_back(tmp_path):
    """A forked drawing process killed without a word has its job run again in the helper;
    an error whose exception does not unpickle comes back as its type and text."""
    import importlib
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    cl = importlib.import_module("ethoedge.experiment.classify")
    done = tmp_path / "budget"
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=ctx) as helper:
        pid = helper.submit(os.getpid).result()
        jobs = [(_pid_to, (str(tmp_path / "first"),)), (_draw_unless_forked, (str(done), pid))]
        helper.submit(cl._side_by_side, jobs).result()
        assert done.read_text() == "drawn" and (tmp_path / "first").is_file()
        jobs = [(_pid_to, (str(tmp_path / "first"),)), (_fail_unpicklably, ())]
        with pytest.raises(RuntimeError, match=r"^_TwoArgumentError: no room at the end$"):
            helper.submit(cl._side_by_side, jobs).result()
        assert helper.submit(_children_left).result() == 0


def _children_left() -> int:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return 0
    return 1


def test_one_animal_plots_drawn_side_by_side_are_the_plots_drawn_here(tmp_path, monkeypatch):
    """One recording of one animal (one helper process): its ethogram and the budget chart
    are drawn side by side in processes forked from the helper, the same PNGs, byte for
    byte, as drawn here."""
    import importlib

    cl = importlib.import_module("ethoedge.experiment.classify")
    d = tmp_path / "bundle"
    torch.manual_seed(0)
    save_bundle(Bundle(GRUStudent(len(CLASSES), StudentConfig(hidden=8)).eval(),
                       Normalizer((0.0, 0.0, 1.0), (0.3, 0.3, 0.3)), CLASSES,
                       WindowConfig(), 10.0), d)  # fmt: skip
    rng = np.random.default_rng(0)
    n = 6000
    rec = tmp_path / "cow_1.parquet"
    pd.DataFrame({"timestamp": 1_717_200_000.0 + np.arange(n) / 10.0,
                  **{c: rng.normal(size=n).astype(np.float32) for c in ("ax", "ay", "az")}}
                 ).to_parquet(rec)  # fmt: skip
    calls = []
    draw_all = cl._draw_all

    def recorded(jobs, plotter, forked=False):
        calls.append((len(jobs), forked))
        draw_all(jobs, plotter, forked)

    monkeypatch.setattr(cl, "_draw_all", recorded)
    helper = classify(d, DataConfig(path=str(rec)), tmp_path / "helper")
    assert [p.name for p in helper.plots] == ["ethogram_cow_1.png", "budget.png"]
    assert calls == [(2, True)]
    monkeypatch.setattr(cl, "_plot_process", lambda several: None)
    here = classify(d, DataConfig(path=str(rec)), tmp_path / "here")
    for p in here.plots:
        assert p.read_bytes() == (tmp_path / "helper" / p.name).read_bytes(), p.name


def test_nan_policy_option_lets_a_recording_with_nan_through(bundle_dir, tmp_path, capsys):
    """The NaN error names ``--nan-policy``; with ``drop`` the recording is classified, no
    window spanning the dropped samples."""
    df = _frame(3000, 0)
    df.loc[1200:1210, "ay"] = np.nan
    p = tmp_path / "cow_1.csv"
    df.to_csv(p, index=False)
    out = tmp_path / "w.csv"
    assert main(["classify", str(bundle_dir), str(p), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "row 1202, column 'ay'" in err and "--nan-policy drop" in err and not out.exists()
    code = main(["classify", str(bundle_dir), str(p), "--out", str(out), "--quiet",
                 "--nan-policy", "drop"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    w = pd.read_csv(out)
    t_nan = df.timestamp[1200:1211]
    assert len(w) > 0 and not ((w.start <= t_nan.max()) & (w.end > t_nan.min())).any()


def test_behaviours_the_model_does_not_know_are_counted_and_left_out(bundle_dir, tmp_path, capsys):
    """Windows labelled with a behaviour outside the bundle's classes are said, with their
    count, and kept out of the metrics (the known ones still scored)."""
    df = _frame(3000, 0, labels=True)
    df.loc[df.label == "walk", "label"] = "trot"  # not a bundle class
    p = tmp_path / "cow_1.csv"
    df.to_csv(p, index=False)
    res = classify(bundle_dir, DataConfig(path=str(p), unlabelled="keep"), tmp_path / "w.csv",
                   plots=False, progress=False)  # fmt: skip
    w = res.predictions
    lab = df.label.to_numpy(object)
    assert set(res.unknown) == {"trot"} and res.unknown["trot"] > 0
    assert res.metrics is not None
    assert res.metrics["n"] == int((w.true_label.fillna("") != "").sum())
    assert "trot" not in set(w.true_label.dropna()) and "trot" in set(lab)
    assert main(["classify", str(bundle_dir), str(p), "--out", str(tmp_path / "x.csv"),
                 "--quiet"]) == 0  # fmt: skip
    out = " ".join(capsys.readouterr().out.split())
    assert f"{res.unknown['trot']:,} windows are labelled with behaviours the model does not" in out
    assert f"('trot': {res.unknown['trot']:,})" in out  # a name, then its count


def test_a_run_folder_given_for_its_bundle_names_the_bundle(bundle_dir, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(bundle_dir, run_dir / "model")
    logs = _folder(tmp_path)
    assert main(["classify", str(run_dir), str(logs), "--out", str(tmp_path / "o")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{run_dir}: not a model bundle (no bundle.json); the run's bundle is" in err
    assert str(run_dir / "model") in err and not (tmp_path / "o").exists()


def test_two_plot_helpers_only_where_several_animals_are_likely(bundle_dir, tmp_path):
    """A second plot helper pays for its matplotlib import only with several ethograms:
    several files, a file with an animal column, or a layout read whole; one generic file
    without an animal column is one animal (the file stem)."""
    import importlib

    cl = importlib.import_module("ethoedge.experiment.classify")  # the module
    logs = _folder(tmp_path)

    def tasks(*paths):
        return [cl._Task(i, Path(p), bundle_dir, DataConfig(path=str(p)).to_dict(), "float", 8,
                         "cpu", 1000, 1, 0.0, "UTC", tmp_path, None)
                for i, p in enumerate(paths)]  # fmt: skip

    one = logs / "cow_1.parquet"
    assert not cl._several_animals(tasks(one))
    assert cl._several_animals(tasks(one, logs / "cow_2.parquet"))
    named = tmp_path / "named.parquet"
    pd.read_parquet(one).assign(animal="a").to_parquet(named)
    assert cl._several_animals(tasks(named))
    default = Path(cl.__file__).parents[1] / "datasets" / "default"
    assert cl._several_animals(tasks(next(default.glob("*.csv.gz"))))  # a layout read whole
    assert cl._several_animals(tasks(tmp_path / "missing.csv"))  # classifying will say why


def _classify_fails(bundle_dir, logs, tmp_path, capsys) -> str:
    """classify ``logs`` expecting the one-line error: its text (blanks joined)."""
    out = tmp_path / "answers"
    code = main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name[0] == "."]
    return " ".join(err.split())


def test_timestamps_in_milliseconds_are_one_line_naming_the_row(bundle_dir, tmp_path, capsys):
    """Unix milliseconds read as seconds lie past the year 2262, where no clock time (bouts,
    days) exists: one line naming the row, not a crash in the bouts."""
    logs = _folder(tmp_path, n=600, suffix=".csv")
    ms = pd.read_csv(logs / "cow_2.csv")
    ms["timestamp"] = (ms["timestamp"] * 1000).round()
    ms.to_csv(logs / "cow_2.csv", index=False)
    err = _classify_fails(bundle_dir, logs, tmp_path, capsys)
    assert "cow_2.csv, row 2, column 'timestamp'" in err and "milliseconds?" in err


def test_acceleration_beyond_float32_is_not_let_through(bundle_dir, tmp_path, capsys):
    """1e300 is finite as a float64 but inf as the models' float32: an error as for inf, not
    windows with NaN scores."""
    logs = _folder(tmp_path, n=600, suffix=".csv")
    big = pd.read_csv(logs / "cow_1.csv")
    big.loc[99, "ax"] = 1e300
    big.to_csv(logs / "cow_1.csv", index=False)
    err = _classify_fails(bundle_dir, logs, tmp_path, capsys)
    assert "cow_1.csv, row 101, column 'ax': NaN/inf acceleration" in err


def test_files_of_mixed_layouts_are_refused_as_in_data_stats(bundle_dir, tmp_path, capsys):
    logs = _folder(tmp_path, n=600, suffix=".csv")
    with_id = pd.read_csv(logs / "cow_3.csv").assign(animal="cow_3")
    with_id.to_csv(logs / "cow_3.csv", index=False)
    err = _classify_fails(bundle_dir, logs, tmp_path, capsys)
    assert "cow_3.csv: mixed layouts" in err
    assert main(["data", "stats", str(logs)]) == 2
    assert "cow_3.csv: mixed layouts" in " ".join(capsys.readouterr().err.split())


def test_numeric_looking_animal_ids_stay_text(bundle_dir, tmp_path):
    """An animal column of ``007`` and ``010`` (read whole and streamed in chunks) names the
    animals 007 and 010, as the file stem ``007`` would, not 7 and 10."""
    logs = tmp_path / "logs"
    logs.mkdir()
    pd.concat([_frame(900, 0).assign(animal="007"), _frame(900, 1).assign(animal="010")]).to_csv(
        logs / "herd.csv", index=False
    )
    res = classify(bundle_dir, DataConfig(path=str(logs / "herd.csv")), tmp_path / "a",
                   chunk_rows=500)  # fmt: skip
    assert sorted(res.budget.index) == ["007", "010"]
    written = pd.read_csv(res.windows_csv, dtype={"animal": str})
    assert sorted(set(written["animal"])) == ["007", "010"]
    assert sorted(p.name for p in res.plots if p.name.startswith("ethogram")) == [
        "ethogram_007.png", "ethogram_010.png"]  # fmt: skip


def test_a_short_row_is_named_as_short_when_streamed(bundle_dir, tmp_path, capsys):
    """A row cut short reads as missing values to the parser; streamed as read whole, the
    message says the row is short, not that its acceleration is NaN."""
    logs = _folder(tmp_path, n=600, suffix=".csv")
    lines = (logs / "cow_2.csv").read_text().splitlines()
    lines[100] = ",".join(lines[100].split(",")[:3])
    (logs / "cow_2.csv").write_text("\n".join(lines) + "\n")
    err = _classify_fails(bundle_dir, logs, tmp_path, capsys)
    assert "cow_2.csv, row 101: ragged row: 3 fields where the header has 4" in err


def test_an_earlier_runs_plots_are_not_left_beside_this_runs(bundle_dir, tmp_path, capsys):
    logs = _folder(tmp_path, n=600, suffix=".csv")
    out = tmp_path / "answers"
    assert main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet"]) == 0
    assert (out / "ethogram_cow_3.png").is_file()
    (out / "my_notes.txt").write_text("keep me\n")
    (logs / "cow_3.csv").unlink()
    capsys.readouterr()
    assert main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "note: removed 1 plot(s) of an earlier run" in said and "ethogram_cow_3.png" in said
    assert sorted(p.name for p in out.iterdir()) == [
        "bouts.csv", "budget.csv", "budget.png", "ethogram_cow_1.png", "ethogram_cow_2.png",
        "my_notes.txt", "windows.csv"]  # fmt: skip


def test_one_animal_in_two_overlapping_files_is_refused(bundle_dir, tmp_path, capsys):
    """Two files of one animal that overlap in time doubled its hours in budget.csv."""
    logs = tmp_path / "logs"
    logs.mkdir()
    df = _frame(1200, 0).assign(animal="A")
    df.iloc[:800].to_csv(logs / "a1.csv", index=False)
    df.iloc[600:].to_csv(logs / "a2.csv", index=False)
    err = _classify_fails(bundle_dir, logs, tmp_path, capsys)
    assert "a2.csv: animal 'A' is in a1.csv until" in err


@pytest.mark.parametrize("second_hz", [20.0, 5.0])
def test_a_rate_change_within_a_file_is_one_line_naming_the_row(
    bundle_dir, tmp_path, capsys, second_hz
):
    """A file sampled at 10 Hz (the model's rate: streamed) or mostly at another rate (read
    whole and resampled) whose rate changes: one line naming the first sample of the stretch
    at the other rate, and no answers written."""
    logs = _folder(tmp_path, n=900, suffix=".csv")
    df = pd.read_csv(logs / "cow_2.csv")
    t = T0 + np.arange(len(df)) / 10.0
    t[1000:] = t[999] + np.arange(1, len(df) - 999) / second_hz  # rows 1002 on
    df["timestamp"] = t
    df.to_csv(logs / "cow_2.csv", index=False)
    err = _classify_fails(bundle_dir, logs, tmp_path, capsys)
    assert "cow_2.csv, row 1001, column 'timestamp': the sampling rate changes" in err
    assert f"about {second_hz:g} Hz from here for {len(df) - 999:,} samples" in err
    # mostly at the other rate: the file is read whole (another rate), the 10 Hz part named
    t = T0 + np.arange(len(df)) / second_hz
    t[1000:] = t[999] + np.arange(1, len(df) - 999) / 10.0
    df["timestamp"] = t
    df.to_csv(logs / "cow_2.csv", index=False)
    err = _classify_fails(bundle_dir, logs, tmp_path, capsys)
    assert "cow_2.csv, row 1001, column 'timestamp': the sampling rate changes" in err
    assert f"about 10 Hz from here for 401 samples, where the rest is {second_hz:g} Hz" in err


def test_bits_with_the_float_engine_is_one_line(bundle_dir, tmp_path, capsys):
    """--bits sets the integer engines' word length: with the float engine it would be ignored
    without a word, so it is refused before anything is read or written."""
    logs = _folder(tmp_path, n=600, suffix=".csv")
    out = tmp_path / "answers"
    code = main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--bits", "16"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err and not out.exists()
    assert "--bits sets the word length of the int and c engines; --engine float has none" in err


def test_a_folder_with_a_file_named_like_it_classifies_that_file_only(bundle_dir, tmp_path):
    """As loading a data set (``data stats``, ``run``) reads it."""
    herd = tmp_path / "herd"
    herd.mkdir()
    _frame(900, 0).assign(animal="cow_a").to_csv(herd / "herd.csv", index=False)
    _frame(900, 1).assign(animal="cow_b").to_csv(herd / "other.csv", index=False)
    res = classify(bundle_dir, DataConfig(path=str(herd)), tmp_path / "a", plots=False)
    assert sorted(res.budget.index) == ["cow_a"]
    assert load_dataset(DataConfig(path=str(herd), unlabelled="keep")).animals == ("cow_a",)


@pytest.mark.parametrize(
    "extra,why",
    [
        (["--min-bout", "inf"], "min_bout_s must be a finite number >= 0, got inf"),
        (["--ray-address", "host:6379"], "--ray-address needs --executor ray"),
        (["--executor", "processes", "--workers", "2", "--ray-address", "host:6379"],
         "--ray-address needs --executor ray"),
    ],
)  # fmt: skip
def test_options_that_would_be_ignored_or_meaningless_are_one_line(
    bundle_dir, tmp_path, capsys, extra, why
):
    """An infinite --min-bout (every bout merged into the first), a Ray address for an
    executor other than Ray: refused, nothing written."""
    logs = _folder(tmp_path, n=600, suffix=".csv")
    out = tmp_path / "answers"
    code = main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet", *extra])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err and why in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]


@pytest.mark.parametrize("min_bout_s", [float("inf"), float("nan"), -1.0])
def test_min_bout_must_be_finite(bundle_dir, tmp_path, min_bout_s):
    logs = _folder(tmp_path, n=600, suffix=".csv")
    with pytest.raises(ConfigError, match="min_bout_s must be a finite number >= 0"):
        classify(bundle_dir, DataConfig(path=str(logs)), tmp_path / "o", min_bout_s=min_bout_s)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]


@pytest.mark.parametrize(
    "data,out,why",
    [
        ("logs/cow_1.csv", "logs/cow_1.csv", "would replace"),
        ("logs", "logs/cow_1.csv", "would replace"),
        ("logs/cow_1.csv", "labels.csv", "would replace"),
        ("logs", "logs/answers.csv", "is in the data folder: the next run over the same data"
                                     " would read answers.csv as a recording"),
        ("logs", "logs", "is the data folder: the next run over the same data would read"
                         " windows.csv as a recording"),
        ("logs/cow_*.csv", "logs/cow_answers.csv", "matches the data pattern"),
        ("logs/cow_1.csv", "answers.csv.gz", "names a file, but the windows are written as"
                                             " CSV only"),
    ],
)  # fmt: skip
def test_out_that_would_replace_an_input_or_be_read_as_one_is_refused(
    bundle_dir, tmp_path, capsys, data, out, why
):
    """--out naming a recording or the annotations overwrote it with the windows; --out in
    the data folder, the folder itself or a name the data pattern matches was read as a
    recording by the next run; --out ending .csv.gz made a folder of that name. Each is one
    line, and nothing is written."""
    logs = _folder(tmp_path, n=600, suffix=".csv")
    labels = tmp_path / "labels.csv"
    labels.write_text(f"animal,start,end,label\ncow_1,{T0},{T0 + 30},graze\n")
    before = {p: p.read_bytes() for p in [*logs.iterdir(), labels]}
    data, out = str(tmp_path / data), str(tmp_path / out)
    code = main(["classify", str(bundle_dir), data, "--out", out, "--labels", str(labels),
                 "--quiet", "--no-plots"])  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err and f"{out}: {why}" in err
    assert {p: p.read_bytes() for p in [*logs.iterdir(), labels]} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "logs"]


def test_out_in_a_folder_inside_the_data_folder_is_fine(bundle_dir, tmp_path):
    """A folder inside the data folder is not read as data: answers may go there."""
    logs = _folder(tmp_path, n=600, suffix=".csv")
    out = logs / "answers"
    assert main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet",
                 "--no-plots"]) == 0  # fmt: skip
    assert (out / "windows.csv").is_file()
    assert main(["classify", str(bundle_dir), str(logs), "--out", str(out), "--quiet",
                 "--no-plots"]) == 0  # fmt: skip


def test_out_beside_data_that_would_not_be_read_is_fine(bundle_dir, tmp_path):
    """Answers go where the data argument would not read them: into a folder that holds a
    file named like itself (only that file is its data), under a hidden name, or beside a
    file whose name holds [ ] (a file, not a pattern)."""
    cows = tmp_path / "cows"
    cows.mkdir()
    _frame(600, 0).to_csv(cows / "cows.csv", index=False)
    bracket = tmp_path / "run[1].csv"
    _frame(600, 1).to_csv(bracket, index=False)
    logs = _folder(tmp_path, n=600, suffix=".csv")
    for data, out in ((cows, cows), (cows, cows / "answers.csv"), (bracket, tmp_path / "run1.csv"),
                      (logs / "*.csv", logs / ".answers.csv")):  # fmt: skip
        code = main(["classify", str(bundle_dir), str(data), "--out", str(out), "--quiet",
                     "--no-plots"])  # fmt: skip
        assert code == 0, (data, out)
        assert (out / "windows.csv" if out.is_dir() else out).is_file()


def test_gaps_that_leave_no_window_are_named_as_gaps(bundle_dir, tmp_path, capsys):
    """A 200 s recording with a 1 s gap every 10 samples has no window: not because it is
    shorter than a window."""
    df = _frame(2000, 0)
    k = np.arange(2000)
    df["timestamp"] = T0 + k / 10.0 + (k // 10) * 1.0
    p = tmp_path / "cow.csv"
    df.to_csv(p, index=False)
    code = main(["classify", str(bundle_dir), str(p), "--out", str(tmp_path / "o"), "--quiet"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err
    assert (
        "no windows: no recording has a gap-free stretch as long as the model's window"
        " (50 samples, 5 s at 10 Hz; a step of more than 1.5 sample periods is a gap)"
    ) in err
    assert not (tmp_path / "o").exists()
