"""The ``ethoedge`` command line: a thin layer over the Python API.

Every command lives in a module of this package that registers itself on the application
object of :mod:`ethoedge.cli.app`.
User errors (:class:`~ethoedge.errors.EthoedgeError`) print one line and exit with status 2,
never a traceback.
"""

from __future__ import annotations

import gc
import sys
from typing import NoReturn

from rich.console import Console
from rich.markup import escape

from ethoedge.cli.app import app
from ethoedge.errors import EthoedgeError

__all__ = ["app", "main", "run"]

err_console = Console(stderr=True)


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    from ethoedge.cli import data_cmds, export_cmds, quant_cmds, run_cmds  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Entry point. Returns the exit status (0 ok, 1 verification failure, 2 user error).

    Usage errors (unknown command or option, missing or malformed argument, no command) are
    reported by the command-line library itself: its usage line, a help hint and one
    ``Error:`` line, exit status 2. :class:`~ethoedge.errors.EthoedgeError` from a command is
    printed as one line, also with status 2.
    """
    _register()
    try:
        app(args=argv, prog_name="ethoedge", standalone_mode=True)
    except EthoedgeError as e:
        msg = escape(e.message)  # a message holds the user's text: no markup in it
        err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
        return 2
    except SystemExit as e:  # standalone mode ends every command with SystemExit
        code = e.code
        if code is None:
            return 0
        return code if isinstance(code, int) else 1
    return 0


def run() -> NoReturn:
    """The ``ethoedge`` program: :func:`main`, then exit with its status.

    Every file the command wrote is complete and closed by then. The objects still alive
    (mostly the modules a command imported: pandas, matplotlib, ...) are moved out of the
    garbage collector's reach first, so the interpreter's shutdown does not sweep them all,
    once per collection it makes (about 0.3 s after a classify on 2 cores).
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
