"""``ethoedge data stats`` / ``data plot`` through the CLI entry point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ethoedge.cli import main


def test_stats_on_default_data(capsys):
    assert main(["data", "stats"]) == 0
    out = capsys.readouterr().out
    assert "per animal" in out and "per class" in out
    for word in ("grazing", "resting", "standing", "walking", "1217", "6319", "windows"):
        assert word in out


def test_plot_writes_png(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["data", "plot", "--animal", "1219", "--duration", "30", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]  # no temporary left behind


def test_plot_bad_animal_is_one_line(tmp_path, capsys):
    code = main(["data", "plot", "--animal", "nobody", "-o", str(tmp_path / "p.png")])
    err = capsys.readouterr().err
    assert code == 2 and "nobody" in err and "Traceback" not in err
    assert "cattle_collar_ufro_subset.csv.gz" in err  # the data it is not in
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(
    "cmd", [["data", "--help"], ["data", "stats", "--help"], ["data", "plot", "--help"]]
)
def test_help(cmd, capsys):
    assert main(cmd) == 0
    assert "Usage" in capsys.readouterr().out


def test_wrong_delimiter_exit_2_no_traceback(tmp_path, capsys):
    p = tmp_path / "x.csv"
    p.write_text("animal;timestamp;ax;ay;az;label\n")
    assert main(["data", "stats", str(p)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "semicolon-separated" in err and str(p) in err


def test_plot_to_a_place_that_cannot_be_written_is_one_line(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    (tmp_path / "pics").mkdir()
    for out, why in (
        (notes / "p.png", f"cannot write here: {notes} is a file, not a folder"),
        (tmp_path / "pics", "cannot write here: it is a folder; give a file name"),
    ):
        code = main(["data", "plot", "--animal", "1219", "--duration", "30", "-o", str(out)])
        err = " ".join(capsys.readouterr().err.split())
        assert code == 2 and "Traceback" not in err and f"{out}: {why}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "pics"]
    assert not list((tmp_path / "pics").iterdir())


def test_plot_that_cannot_be_written_leaves_no_new_folders(tmp_path, capsys):
    """A file name the file system refuses (too long): one line, and the folders made for the
    plot are gone again."""
    out = tmp_path / "new" / "deeper" / ("x" * 300 + ".png")
    code = main(["data", "plot", "--animal", "1219", "--duration", "30", "-o", str(out)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err and "cannot write here: File name too long" in err
    assert not (tmp_path / "new").exists()


def _logger(path, n: int, labels=None):
    """A 10 Hz generic recording of ``n`` samples (a label column where ``labels`` is given)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"timestamp": 1_717_200_000 + np.arange(n) / 10.0,
                       "ax": rng.normal(0, 0.2, n), "ay": rng.normal(0, 0.2, n),
                       "az": 1 + rng.normal(0, 0.2, n)})  # fmt: skip
    if labels is not None:
        df["label"] = labels
    df.to_csv(path, index=False)
    return path


def test_stats_on_an_unlabelled_recording_counts_its_windows(tmp_path):
    from ethoedge.data import DataConfig, WindowConfig, load_dataset
    from ethoedge.data.stats import dataset_stats

    p = _logger(tmp_path / "cow_7.csv", 1000)
    ds = load_dataset(DataConfig(path=str(p), unlabelled="keep"))
    st = dataset_stats(ds, WindowConfig(length_s=5.0, hop_s=2.5))
    # 1,000 samples, windows of 50 every 25: (1000 - 50) // 25 + 1 = 39
    assert st.per_animal.loc["cow_7", "windows"] == 39
    assert st.per_animal.loc["cow_7", "windows:(unlabelled)"] == 39
    assert st.per_class.loc["(unlabelled)", "windows"] == 39
    assert st.per_class.loc["(unlabelled)", "samples"] == 1000
    assert main(["data", "stats", str(p)]) == 0  # no label column: kept and counted


def test_stats_on_a_partly_labelled_recording(tmp_path):
    from ethoedge.data import DataConfig, WindowConfig, load_dataset
    from ethoedge.data.stats import dataset_stats

    labels = ["walk"] * 500 + [""] * 500  # the second half not annotated
    p = _logger(tmp_path / "cow_8.csv", 1000, labels)
    ds = load_dataset(DataConfig(path=str(p), unlabelled="keep"))
    st = dataset_stats(ds, WindowConfig(length_s=5.0, hop_s=2.5))
    # pure windows only: 19 of walking (starts 0..450), 19 unlabelled (starts 500..950);
    # the window at 475 is half and half (purity 0.5 < 0.8)
    assert st.per_class.loc["walk", "windows"] == 19
    assert st.per_class.loc["(unlabelled)", "windows"] == 19
    assert st.per_animal.loc["cow_8", "windows"] == 38
    assert main(["data", "stats", str(p), "--unlabelled", "error"]) == 2  # as before, on request


def test_stats_give_each_animals_mean_gravity(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    from ethoedge.data import DataConfig, load_dataset
    from ethoedge.data.stats import dataset_stats

    d = tmp_path / "logs"
    d.mkdir()
    for name, g in (("cow_a", (0.0, 0.0, -1.0)), ("cow_b", (0.6, 0.0, -0.8))):
        p = _logger(d / f"{name}.csv", 600)
        df = pd.read_csv(p)
        df[["ax", "ay", "az"]] = np.asarray(g) + 0.05 * np.sin(np.arange(600))[:, None]
        df.to_csv(p, index=False)
    st = dataset_stats(load_dataset(DataConfig(path=str(d), unlabelled="keep")))
    mean = st.per_animal[["gravity_x", "gravity_y", "gravity_z"]]
    np.testing.assert_allclose(mean.loc["cow_a"], [0.0, 0.0, -1.0], atol=0.01)
    np.testing.assert_allclose(mean.loc["cow_b"], [0.6, 0.0, -0.8], atol=0.01)
    assert main(["data", "stats", str(d)]) == 0
    assert "+0.60 +0.00 -0.80" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, said",
    [
        (["--duration", "inf"], "--duration must be a positive number of seconds, got inf"),
        (["--start", "nan"], "--start must be a number of seconds, got nan"),
        (["-o", "e.jpg"], "the plot is a PNG: give a file name ending in .png"),
    ],
)
def test_plot_arguments_it_cannot_draw_are_one_line(tmp_path, capsys, args, said):
    """An infinite stretch crashed matplotlib (a traceback); a .jpg name got PNG bytes."""
    out = ["-o", str(tmp_path / "p.png")] if "-o" not in args else []
    args = [str(tmp_path / a) if a.endswith(".jpg") else a for a in args]
    assert main(["data", "plot", "--animal", "1219", *args, *out]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and said in " ".join(err.split())
    assert not list(tmp_path.iterdir())


def test_names_with_brackets_print_as_written_in_the_tables(tmp_path, capsys):
    """An animal named ``[/x]`` is text in the per-animal table, not a closing markup tag
    (which stopped the command with a rich MarkupError)."""
    n = 300
    label = np.repeat(["walk", "rest"], n // 2)
    df = pd.DataFrame({"animal": "[/x]", "timestamp": 1000 + np.arange(n) / 10, "ax": 0.1,
                       "ay": 0.0, "az": 1.0, "label": label})  # fmt: skip
    p = tmp_path / "herd.csv"
    df.to_csv(p, index=False)
    assert main(["data", "stats", str(p)]) == 0
    assert "[/x]" in capsys.readouterr().out


def _two_bouts(tmp_path):
    """Animal 'a': 30 s at 10 Hz, a 50 s gap, 30 s more (0 to 109.9 s from the first sample)."""
    t = 1_717_200_000.0 + np.arange(600) / 10
    t[300:] += 50.0
    p = tmp_path / "d.csv"
    pd.DataFrame({"animal": "a", "timestamp": t, "ax": 0.1, "ay": 0.0, "az": 1.0,
                  "label": np.repeat(["walk", "rest"], 300)}).to_csv(p, index=False)  # fmt: skip
    return p


@pytest.mark.parametrize(
    "args, said",
    [
        (["--start", "1e9"], "--start 1e+09 s is past the end of animal 'a''s recording, which"
         " spans 0 to 109.9 s from its first sample"),
        (["--start", "-1e9"], "the stretch ends at -1e+09 s, before animal 'a''s first sample"),
        (["--start", "35", "--duration", "1e-9"], "has no samples in the 1e-09 s from 35 s"),
        (["--start", "109.9"], "has only one sample in the 60 s from 109.9 s"),
    ],
)  # fmt: skip
def test_plot_of_a_stretch_without_the_signal_is_one_line(tmp_path, capsys, args, said):
    """A --start past the data said 'no samples between 1e+09 s and 1e+09 s ... with gaps
    between bouts'; one sample drew an empty plot."""
    p = _two_bouts(tmp_path)
    out = tmp_path / "plots" / "p.png"
    assert main(["data", "plot", str(p), "--animal", "a", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().count("\n") == 0 and said in err
    assert [f.name for f in tmp_path.iterdir()] == ["d.csv"]


@pytest.mark.parametrize(
    "args", [["--duration", "1e9"], ["--start", "-1e20", "--duration", "1.00000000001e20"]]
)
def test_plot_of_a_stretch_beyond_the_recording_spans_the_recording(tmp_path, monkeypatch, args):
    """A --duration of 1e9 s squeezed the signal into the first pixel of its axis; a --start
    of -1e20 lost the animal's first sample time and found no samples."""
    from matplotlib.figure import Figure

    limits = []
    savefig = Figure.savefig

    def spy(fig, *a, **k):
        limits.append(fig.axes[0].get_xlim())
        return savefig(fig, *a, **k)

    monkeypatch.setattr(Figure, "savefig", spy)
    out = tmp_path / "p.png"
    p = _two_bouts(tmp_path)
    assert main(["data", "plot", str(p), "--animal", "a", *args, "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert limits == [pytest.approx((0.0, 109.9))]
