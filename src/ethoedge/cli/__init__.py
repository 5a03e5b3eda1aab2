"""The ``ethoedge`` command line: a thin layer over the Python API.

Every command lives in a module of this package that registers itself on :data:`app`.
User errors (:class:`~ethoedge.errors.EthoedgeError`) print one line and exit with status 2,
never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ethoedge import __version__
from ethoedge.errors import EthoedgeError

app = typer.Typer(
    name="ethoedge",
    help="Animal behaviour classification from accelerometry, distilled and quantized for MCUs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


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


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    from ethoedge.cli import data_cmds, export_cmds, quant_cmds, run_cmds  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Entry point. Returns the exit status (0 ok, 1 verification failure, 2 user error)."""
    _register()
    try:
        # with standalone_mode=False, click returns a command's `typer.Exit(code)` as a value
        rv = app(args=argv, standalone_mode=False)
    except EthoedgeError as e:
        err_console.print(f"[bold red]error:[/] {e.message}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("[bold red]aborted[/]")
        return 130
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        if isinstance(e, click.exceptions.Exit):
            return e.exit_code
        raise
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
