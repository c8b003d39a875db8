"""How the `corpusmill` command line ends on an error: one line a user can act on, or a traceback under --debug.

Kept apart from the commands (`cli.py`) so that the policy lives in one place and every command follows it
the same way: an expected error (a bad recipe, a missing file, a full disk) is one `error:` line on stderr and
a non-zero exit; `--debug` shows the exception with its traceback instead; an OSError from any command, even
one raised in a Ray or Beam worker, is caught by the command group (`CommandGroup`) and described with its file
and errno (`core.faults.describe`); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from corpusmill.core.faults import describe, find_os_error

err = Console(stderr=True, soft_wrap=True)


class _Options:
    """The app's global options, set by its callback before any command runs."""

    debug = False


def set_debug(debug: bool) -> None:
    """Record the app's --debug option, which `fail` reads: the app's callback runs before any command."""
    _Options.debug = debug


def fail(exc: BaseException, code: int = 1) -> NoReturn:
    """End a command on an expected error: one line on stderr (an OSError with its file and errno), or,
    under --debug, the exception itself with its traceback."""
    if _Options.debug:
        raise exc
    os_error = find_os_error(exc)
    message = describe(os_error) if os_error is not None else str(exc)
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code) from None


class CommandGroup(TyperGroup):
    """The command group: an OSError from any command (a full disk, a read-only file system, a permission, even
    from a Ray or Beam worker) ends it with one line rather than a traceback; other exceptions are bugs and keep
    theirs."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if find_os_error(exc) is None:
                raise
            fail(exc)
