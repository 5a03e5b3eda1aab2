"""Usage errors of the installed ``ethoedge`` entry point, run as a user runs it: in a
subprocess. Each must end with the command-line library's usage line, a help hint and one
``Error:`` line, exit status 2, and no traceback."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest


def _entry_point() -> str:
    exe = Path(sys.executable).parent / "ethoedge"
    found = str(exe) if exe.is_file() else shutil.which("ethoedge")
    assert found, "the ethoedge console script is not installed (pip install -e .)"
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_entry_point(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


CASES = [
    # (arguments, expected usage line, expected error text)
    ((), "Usage: ethoedge [OPTIONS] COMMAND [ARGS]...", "Missing command"),
    (("run", "--bogus"), "Usage: ethoedge run [OPTIONS]", "No such option: --bogus"),
    (("classify", "b", "d", "--out", "x.csv", "--bogus"), "Usage: ethoedge classify", "--bogus"),
    (("nosuchcommand",), "Usage: ethoedge [OPTIONS] COMMAND", "No such command 'nosuchcommand'"),
    (("run",), "Usage: ethoedge run [OPTIONS]", "Missing option '--out'"),
    (("classify", "bundle_only"), "Usage: ethoedge classify", "Missing argument 'DATA'"),
    (("data", "stats", "--window-s", "abc"), "Usage: ethoedge data stats", "'--window-s'"),
    (("export-c", "b", "--out", "d", "--bits", "eight"), "Usage: ethoedge export-c", "'--bits'"),
    (("data",), "Usage: ethoedge data [OPTIONS] COMMAND", "Missing command"),
    (("run", "--out", "x", "--device", "tpu"), "Usage: ethoedge run", "'--device'"),
]


@pytest.mark.parametrize(("args", "usage", "error"), CASES, ids=lambda v: " ".join(v) or "-")
def test_usage_error_is_one_line_with_status_2(args, usage, error):
    r = _run(*args)
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out, out
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith(usage), out
    assert any(ln.startswith("Try 'ethoedge") and "--help' for help." in ln for ln in lines), out
    errors = [ln for ln in lines if ln.startswith("Error:")]
    assert len(errors) == 1 and error in errors[0], out


def test_help_and_version_exit_0():
    r = _run("--help")
    assert r.returncode == 0 and "classify" in r.stdout and "Traceback" not in r.stderr
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.startswith("ethoedge ")


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "run",
            ("--out", "--quiet", "--device", "--format", "--units", "--labels", "--video-start"),
        ),
        ("classify", ("--out", "--quiet", "--device", "--format", "--units")),
        ("quantize", ("--quiet", "--format", "--units")),
        ("verify-c", ("--format", "--units")),
        ("export-c", ("--out",)),
        ("data stats", ("--format", "--units", "--labels", "--video-start", "--labels-tz")),
        ("data plot", ("--out", "--format", "--units")),
    ],
)
def test_shared_options_are_spelled_the_same(command, options):
    from ethoedge.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main([*command.split(), "--help"]) == 0
    text = buf.getvalue()
    for opt in options:
        assert opt in text, f"{command} lacks {opt}"
    if "--out" in options:
        assert "-o, --out" in text
    if "--quiet" in options:
        assert "-q, --quiet" in text


@pytest.mark.parametrize("status", [0, 1, 2])
def test_the_program_exits_with_the_commands_status(monkeypatch, status):
    import gc

    import ethoedge.cli as cli

    monkeypatch.setattr(cli, "main", lambda: status)
    try:
        with pytest.raises(SystemExit) as e:
            cli.run()
        assert e.value.code == status
        assert gc.get_freeze_count() > 0  # shutdown skips sweeping what is still alive
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("name", ["[/oops].csv", "cows[bold]x.csv"])
def test_brackets_in_the_users_text_are_printed_as_written(tmp_path, name):
    """An error names the user's file as written: brackets are not console markup (a closing
    tag crashed the error line, an opening one ate the text)."""
    r = _run("data", "stats", str(tmp_path / name))
    assert r.returncode == 2 and "Traceback" not in r.stdout + r.stderr
    said = " ".join(r.stderr.split())
    assert f"{tmp_path / name}: no data files match this pattern" in said  # brackets: a glob
