"""CLI commands (registered on import): ``export-c`` and ``verify-c``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from ethoedge.cli.app import app
from ethoedge.cli.options import format_opt, out_opt, units_opt


@app.command("export-c")
def export_c_cmd(
    bundle: Path = typer.Argument(
        ..., metavar="BUNDLE", help="Model bundle directory (with quantized/w{bits}.json)."
    ),
    bits: int = typer.Option(8, "--bits", help="Word length of the quantized model: 8 or 16."),
    out: Path = out_opt("Directory for the C module."),
    prefix: str = typer.Option("ethoedge_model", "--prefix", help="C identifier prefix."),
) -> None:
    """Write the quantized student as an allocation-free C99 module (+ example main.c)."""
    from ethoedge.export.deploy import export_bundle

    command = "ethoedge " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "ethoedge export-c"
    from ethoedge.bundle import read_bundle_info
    from ethoedge.export.deploy import input_orientation

    paths = export_bundle(bundle, bits, out, prefix=prefix, command=command)
    for p in paths:
        typer.echo(f"wrote {p}")
    window = read_bundle_info(bundle).window
    if window.calibrate != "none":
        typer.echo(f"note: input: {input_orientation(window)}")


@app.command("verify-c")
def verify_c_cmd(
    export_dir: Path = typer.Argument(
        ..., metavar="EXPORT_DIR", help="Directory written by `ethoedge export-c`."
    ),
    data: Path | None = typer.Argument(
        None,
        metavar="DATA",
        help="Data file, windowed as the bundle was trained (omitted: the bundled default data).",
        show_default=False,
    ),
    qemu: bool = typer.Option(
        False, "--qemu", help="Also run on emulated Cortex-M4 (mps2-an386) and Cortex-M3 (an385)."
    ),
    max_windows: int | None = typer.Option(
        None, "--max-windows", min=1, help="Only the first N windows (default: all)."
    ),
    format: str | None = format_opt(None),
    units: str | None = units_opt(),
    prefix: str | None = typer.Option(
        None,
        "--prefix",
        help="Which model of a folder holding several (exported with different --prefix);"
        " default: the latest export.",
        show_default=False,
    ),
) -> None:
    """Compile the exported C, run it on every window of DATA and compare its scores with the
    integer reference (exit 1 on any difference): the window API, and the streaming API with
    hop = L/2 on the windows joined into one stream (every overlapping window)."""
    from ethoedge.export.deploy import verify_export

    targets = ("host", "cortex-m4", "cortex-m3") if qemu else ("host",)
    results = verify_export(
        export_dir, data, targets=targets, max_windows=max_windows, data_format=format,
        units=units, prefix=prefix,
    )  # fmt: skip
    failed = False
    for r in results:
        typer.echo(f"{r.target} ({r.api}): {r.n_identical}/{r.n_windows} windows identical")
        if not r.ok:
            failed = True
            typer.echo(f"  first differing window: {r.first_diff}")
            typer.echo(f"  C scores:        {r.c_scores}")
            typer.echo(f"  reference scores: {r.expected}")
            if r.stream_mismatches:
                typer.echo(f"  streaming API differed from the window API on {r.stream_mismatches}")
    if failed:
        raise typer.Exit(1)
