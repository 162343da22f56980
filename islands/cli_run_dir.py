"""The run directory as the command line sees it: where a new run goes, which run a reading
command looks at, the options that name it, and the confirmation a fresh start needs.

New runs without --run-dir get a timestamped folder under a per-user data folder (never the
source tree), so a second experiment never meets the first one's manifest. Deleting a run
(`--fresh`, `--fresh-run`) asks on a terminal and needs --yes elsewhere.
"""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import click

from islands.cli_errors import Failure
from islands.errors import ConfigError
from islands.exit_codes import EXIT_USAGE
from migration_pool.fsinfo import lock_warning
from migration_pool.rundir import RunDir

RUNS_FOLDER = "runs"  # new runs without --run-dir get a timestamped folder under this


def runs_root() -> Path:
    """The per-user folder that holds runs made without `--run-dir` (never a folder of the source tree)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "islands" / RUNS_FOLDER


def new_run_dir(problem: str, now: float | None = None) -> Path:
    """`$ISLANDS_RUN_DIR` (an explicit choice), else a new timestamped folder under `runs_root()`,
    so a second experiment with other settings never meets the first one's manifest."""
    env = os.environ.get("ISLANDS_RUN_DIR")
    if env:
        return Path(env)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(now))
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", problem.split(":")[-1]).strip("-.")[:40] or "run"
    root, path = runs_root(), runs_root() / f"{stamp}-{slug}"
    n = 2
    while path.exists():  # two runs started within one second
        path, n = root / f"{stamp}-{slug}-{n}", n + 1
    return path


def default_run_dir() -> Path:
    """The run a command that reads runs looks at without `--run-dir`: `$ISLANDS_RUN_DIR`, else
    the newest folder under `runs_root()` (the name sorts by time), else `runs_root()` itself."""
    env = os.environ.get("ISLANDS_RUN_DIR")
    if env:
        return Path(env)
    try:
        runs = sorted(p for p in runs_root().iterdir() if p.is_dir())
    except OSError:
        runs = []
    return runs[-1] if runs else runs_root()


def _interactive() -> bool:
    """Whether a person can be asked (stdin and stderr are terminals)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def confirm_fresh(root: Path, yes: bool, flag: str) -> None:
    """A run-level fresh start deletes a run: ask on a terminal (y/N), else require --yes.

    Nothing to confirm when `root` holds no run yet. Raises ConfigError (exit 2, nothing
    deleted) without a terminal to ask on, and Failure (exit 2) when the answer is no.
    """
    rundir = RunDir(root)
    if yes or not rundir.is_run():
        return
    n = len(rundir.island_ids())
    what = (f"{flag} deletes the run in {root} ({n} island(s): checkpoints, histories, migrants, "
            "results and the manifest)")
    if not _interactive():
        raise ConfigError(f"{what}; add --yes to confirm (no terminal to ask on); nothing was deleted")
    if not click.confirm(f"{what}. Delete it and start over?", default=False, err=True):
        raise Failure("not confirmed; nothing was deleted", EXIT_USAGE)


yes_option = click.option("--yes", "-y", is_flag=True, help="Confirm a run-level fresh start without asking.")


def _run_dir(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Path | None:
    # click.Path turns "" into Path("."), the current directory: refuse it while it is still "".
    if value is not None and not value.strip():
        raise click.BadParameter("is empty; name a directory for the run")
    return None if value is None else Path(value)


run_dir_option = click.option(
    "--run-dir", type=click.Path(), default=None, callback=_run_dir,
    help="Run directory. To resume or join a run, name its folder. Default for a new run: "
         "$ISLANDS_RUN_DIR, else a new timestamped folder under ~/.local/share/islands/runs "
         "(printed at the start).")
allow_nonempty_option = click.option(
    "--allow-nonempty", is_flag=True,
    help="Create a run in a directory that already holds other files (refused by default).")


def warn_about_locks(root: Path) -> None:
    """One line on stderr when the run directory's filesystem keeps file locks node-local."""
    line = lock_warning(root)
    if line:
        click.echo(line, err=True)
