"""The run directory as the command line sees it: where a new run goes, which run a reading
command looks at, the options that name it, and the confirmation a fresh start needs.

A run without --run-dir lives in a folder named by its settings under a per-user data folder
(never the source tree): the same command finds the same run again (up-arrow after Ctrl+C
resumes it), other settings make another folder, and `--new` starts another run beside it.
Deleting a run (`--fresh`, `--fresh-run`, `islands runs --prune`) asks on a terminal and needs
--yes elsewhere.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping

import click

from islands.cli_errors import Failure
from islands.config import RunConfig
from islands.errors import ConfigError, IslandsError
from islands.exit_codes import EXIT_USAGE
from islands.status.reader import open_run
from islands.status.runlist import most_recently_active
from migration_pool.errors import PoolError
from migration_pool.fsinfo import lock_warning
from migration_pool.rundir import RunDir

RUNS_FOLDER = "runs"  # runs without --run-dir live under this, in folders named by their settings
HASH_CHARS = 8  # of the settings' hash in a run folder's name: collisions among one user's runs are remote
NAME_CHARS = 60  # of the readable part of a run folder's name


def runs_root() -> Path:
    """The per-user folder that holds runs made without `--run-dir` (never a folder of the source tree)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "islands" / RUNS_FOLDER


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-.")


def run_name(config: RunConfig, extra: Mapping[str, Any] | None = None) -> str:
    """The folder name of the run these settings define: readable (problem, its parameters,
    algorithm, dimension, seed) plus a short hash of every setting, so the same command finds
    the same run and any other setting makes another one.

    `extra` holds what else defines the run beyond its RunConfig (the launcher's island count and
    --vary when given); the device and the display options are not part of a run's identity.
    """
    canonical = json.dumps({"config": config.to_dict(), **(extra or {})}, sort_keys=True, default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:HASH_CHARS]
    params = "-".join(f"{k}{v}" for k, v in sorted(config.problem_params.items()))
    module, _, factory = config.problem.partition(":")  # "pkg.mod:make" -> "mod", "gym:CartPole-v1" as is
    problem = module.split(".")[-1] + ("" if factory in ("", "make") else f"-{factory}")
    parts = [problem, params, config.algorithm, f"d{config.dim}", f"s{config.seed}"]
    readable = _slug("-".join(p for p in parts if p))[:NAME_CHARS].strip("-.") or "run"
    return f"{readable}-{digest}"


def _family(base: Path) -> list[tuple[int, Path]]:
    """The runs of one name: `base` (number 1) and the folders `--new` made beside it (`base-2`, ...)."""
    pattern = re.compile(re.escape(base.name) + r"(?:-(\d+))?")
    try:
        names = [p.name for p in base.parent.iterdir() if p.is_dir()]
    except OSError:
        return []
    found = [(int(m.group(1) or 1), base.parent / name) for name in names if (m := pattern.fullmatch(name))]
    return sorted(found)


def settings_run_dir(config: RunConfig, extra: Mapping[str, Any] | None = None, new: bool = False) -> Path:
    """Where a run without `--run-dir` lives: `$ISLANDS_RUN_DIR` (an explicit choice), else the
    folder named by its settings under `runs_root()`, so the same command resumes the same run.

    Of a name's folders the newest (highest suffix) is the one the command resumes; `new` adds
    the next (`NAME-2`, `NAME-3`, ...). Raises ConfigError for `new` under `$ISLANDS_RUN_DIR`.
    """
    env = os.environ.get("ISLANDS_RUN_DIR")
    if env:
        if new:
            raise ConfigError("--new starts a run in a new folder under the runs folder, but $ISLANDS_RUN_DIR "
                              f"names the run's folder ({env}); unset it or leave out --new")
        return Path(env)
    base = runs_root() / run_name(config, extra)
    family = _family(base)
    if not family:
        return base
    number, newest = family[-1]
    return base.with_name(f"{base.name}-{number + 1}") if new else newest


def refuse_new_with_run_dir(new: bool, run_dir: Path | None) -> None:
    """`--new` picks a folder; `--run-dir` names one: both at once is a mistake, said before anything runs."""
    if new and run_dir is not None:
        raise ConfigError("--new starts a run in a new folder named by its settings; --run-dir names the folder "
                          "itself: give one of them")


def start_line(root: Path, new: bool = False) -> str:
    """What a command that picked its run folder itself says first: a new run, a resumed one and
    where it stopped, or a finished one (whose command has nothing left to do)."""
    try:
        reader = open_run(root)
        statuses = reader.statuses(sorted(set(reader.present()) | set(reader.planned)))
    except (IslandsError, PoolError, OSError):
        again = "the same command without --new" if new else "the same command"
        return f"new run {root.name} (folder {root}; {again} resumes it, --new starts another)"
    generation = max((s.generation or 0 for s in statuses.values()), default=0)
    ids = set(reader.present()) | set(reader.planned)
    if ids and len(statuses) == len(ids) and all(s.state == "finished" for s in statuses.values()):
        return (f"run {root.name} finished at generation {generation} (folder {root}; --new starts "
                "another)")
    return f"resuming run {root.name} (stopped at generation {generation}; folder {root})"


def find_run_to_show() -> tuple[Path, str | None]:
    """The run a reading command shows without `--run-dir`, and a line saying which and why.

    `$ISLANDS_RUN_DIR` (an explicit choice, said nothing about), else the current folder when it
    holds a run, else the most recently active run under `runs_root()` (by its last heartbeat or
    history line, not by when it was made). Raises Failure (exit 2) when there is no run at all.
    """
    env = os.environ.get("ISLANDS_RUN_DIR")
    if env:
        return Path(env), None
    here = Path.cwd()
    if RunDir(here).is_run():
        return here, f"showing run {here.name} (the current folder)"
    newest = most_recently_active(runs_root())
    if newest is None:
        raise Failure(f"no runs yet (none in the current folder or under {runs_root()}); start one with "
                      "`islands launch --problem rastrigin`", EXIT_USAGE)
    return newest, f"showing run {newest.name} (most recently active; islands runs lists all)"


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
    confirm_delete(f"{flag} deletes the run in {root} ({n} island(s): checkpoints, histories, migrants, "
                   "results and the manifest)", "Delete it and start over?")


def confirm_delete(what: str, question: str) -> None:
    """Ask `question` about deleting `what` on a terminal (y/N); without one, refuse (the caller
    skips this under --yes). Raises ConfigError or Failure, both exit 2, nothing deleted."""
    if not _interactive():
        raise ConfigError(f"{what}; add --yes to confirm (no terminal to ask on); nothing was deleted")
    if not click.confirm(f"{what}. {question}", default=False, err=True):
        raise Failure("not confirmed; nothing was deleted", EXIT_USAGE)


yes_option = click.option("--yes", "-y", is_flag=True, help="Confirm a run-level fresh start without asking.")


def _run_dir(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Path | None:
    # click.Path turns "" into Path("."), the current directory: refuse it while it is still "".
    if value is not None and not value.strip():
        raise click.BadParameter("is empty; name a directory for the run")
    return None if value is None else Path(value)


run_dir_option = click.option(
    "--run-dir", type=click.Path(), default=None, callback=_run_dir,
    help="Run directory. Default: $ISLANDS_RUN_DIR, else a folder named by the run's settings under "
         "~/.local/share/islands/runs (printed at the start), so the same command resumes the same run.")
new_option = click.option(
    "--new", is_flag=True,
    help="Start another run with these settings in a new folder beside the earlier ones (NAME-2, ...) "
         "instead of resuming the newest of them; not with --run-dir.")
allow_nonempty_option = click.option(
    "--allow-nonempty", is_flag=True,
    help="Create a run in a directory that already holds other files (refused by default).")


def warn_about_locks(root: Path) -> None:
    """One line on stderr when the run directory's filesystem keeps file locks node-local."""
    line = lock_warning(root)
    if line:
        click.echo(line, err=True)
