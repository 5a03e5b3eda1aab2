"""``ethoedge data stats`` / ``data plot`` through the CLI entry point."""

from __future__ import annotations

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
