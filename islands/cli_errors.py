"""How the command line shows a library error: one line `error: ...` and the exit code of its kind.

Every command is wrapped in `guarded`, so a user's mistake never ends in a traceback: a
contradiction of the manifest or a bad setting exits 2, an unusable checkpoint 3, a run
another process holds 4, any other library or I/O error 1 (`islands.exit_codes`). An I/O
error of the run directory says what to do about it (`os_error_line`). A problem whose own
code fails (its module, factory or fitness function raises or calls sys.exit) is a
ConfigError naming the user's file and line, so it exits 2 too; `islands --debug` (or
ISLANDS_DEBUG=1) prints the exception behind such a line, with its traceback, before it.
"""
from __future__ import annotations

import errno
from typing import Any, Callable

import click

from islands.errors import CheckpointError, ConfigError, IslandsError, show_traceback
from islands.exit_codes import EXIT_BUSY, EXIT_CHECKPOINT, EXIT_ERROR, EXIT_USAGE
from migration_pool.errors import IslandBusy, ManifestConflict, PoolError


class Failure(click.ClickException):
    """A library error shown as `error: ...` with the exit code of its kind."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Map library errors to exit codes; a user's mistake never ends in a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (IslandsError, PoolError, OSError) as e:
            if e.__cause__ is not None:  # with --debug: the exception behind the line (the user's code)
                show_traceback(e)
            raise Failure(*failure(e)) from None

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def failure(e: Exception) -> tuple[str, int]:
    """The line and the exit code of library error `e`, by its kind."""
    if isinstance(e, ManifestConflict):
        ctx = click.get_current_context(silent=True)
        again = {"launch": "launch --fresh", "evolve": "evolve --fresh-run"}.get(ctx.info_name if ctx else "")
        return (f"{e}; leave the option out to join this run, or use another --run-dir for a new one"
                + (f" (or start this one over: {again})" if again else "")), EXIT_USAGE
    if isinstance(e, ConfigError):
        return str(e), EXIT_USAGE
    if isinstance(e, CheckpointError):
        return str(e), EXIT_CHECKPOINT
    if isinstance(e, IslandBusy):
        return str(e), EXIT_BUSY
    if isinstance(e, (IslandsError, PoolError)):
        return str(e), EXIT_ERROR
    assert isinstance(e, OSError)  # disk full, a run dir made read-only, a file replaced by a directory
    return os_error_line(e), EXIT_ERROR


def os_error_line(e: OSError) -> str:
    """One line for an I/O error of the run directory, with what to do about it. Files are
    replaced atomically, so the last checkpoint is intact whatever failed."""
    name = getattr(e, "filename2", None) or e.filename  # os.replace(tmp, path): path is the one that matters
    where = f" ({name})" if name else ""
    hint = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
            errno.EROFS: "make the run directory writable", errno.EACCES: "make the run directory writable",
            errno.EPERM: "make the run directory writable"}.get(e.errno or 0, "fix it")
    return (f"{e.strerror or e}{where}; {hint}, then run the same command again to resume "
            "from the last checkpoint")
