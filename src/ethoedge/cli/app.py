"""The command-line application object; every command module registers itself on it."""

from __future__ import annotations

import typer

from ethoedge import __version__

app = typer.Typer(
    name="ethoedge",
    help="Animal behaviour classification from accelerometry, distilled and quantized for MCUs.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ethoedge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """ethoedge: from raw accelerometer CSV to verified firmware source."""
