"""`islands runs`: the runs under the per-user runs folder, one line each, and `--prune` to
remove the finished and abandoned ones (never a running or a resumable one).

A thin adapter over `islands.status.runlist`; torch-free, so it answers at once.
"""
from __future__ import annotations

import shutil
import time

import click

from islands.cli_errors import Failure, guarded
from islands.cli_run_dir import confirm_delete, runs_root
from islands.exit_codes import EXIT_ERROR
from islands.status.runlist import PRUNABLE, RunSummary, run_folders, summarize

_UNITS = ("B", "kB", "MB", "GB", "TB")


@click.command()
@click.option("--prune", is_flag=True,
              help=f"Remove the {' and '.join(PRUNABLE)} runs (asks on a terminal, else needs --yes); "
                   "running, stopped and pending runs stay.")
@click.option("--yes", "-y", is_flag=True, help="Confirm --prune without asking (needed where there is no terminal).")
@guarded
def runs(prune: bool, yes: bool) -> None:
    """List the runs under ~/.local/share/islands/runs (the runs made without --run-dir).

    Columns: the run's folder name (its settings and a hash of them); its state (running,
    finished, stopped: resumable by the same command, pending: planned, no island started yet,
    abandoned: an island's process is gone without finishing, unreadable); islands; the best
    fitness any island has seen; the generation of the furthest island; when it last did
    anything; its size on disk. Newest activity last.
    """
    root = runs_root()
    summaries = sorted((summarize(p) for p in run_folders(root)), key=lambda s: (s.last_active, s.name))
    if not summaries:
        click.echo(f"no runs under {root}; start one with `islands launch --problem rastrigin`")
        return
    _table(summaries, time.time())
    click.echo(f"{len(summaries)} run(s), {_size(sum(s.size for s in summaries))} in {root}")
    if prune:
        _prune([s for s in summaries if s.state in PRUNABLE], yes)


def _table(summaries: list[RunSummary], now: float) -> None:
    rows = [("run", "state", "islands", "best", "gen", "active", "size")]
    rows += [(s.name, s.state, str(s.islands), "-" if s.best is None else f"{s.best:.6g}",
              "-" if s.generation is None else str(s.generation), _ago(now - s.last_active), _size(s.size))
             for s in summaries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        click.echo("  ".join(cells).rstrip())


def _prune(doomed: list[RunSummary], yes: bool) -> None:
    if not doomed:
        click.echo(f"nothing to prune (no {' or '.join(PRUNABLE)} run)")
        return
    what = (f"--prune deletes {len(doomed)} run(s) ({_size(sum(s.size for s in doomed))}): "
            + ", ".join(f"{s.name} ({s.state})" for s in doomed))
    if not yes:
        confirm_delete(what, "Delete them?")
    for s in doomed:
        again = summarize(s.path)  # it may have been resumed since it was listed
        if again.state not in PRUNABLE:
            click.echo(f"kept {s.name}: it is {again.state} now", err=True)
            continue
        try:
            shutil.rmtree(s.path)
        except OSError as e:
            raise Failure(f"cannot delete {s.path}: {e.strerror or e}", EXIT_ERROR) from None
        click.echo(f"deleted {s.name} ({s.state})")


def _size(n: float) -> str:
    for unit in _UNITS:
        if n < 1000 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} {_UNITS[-1]}"  # pragma: no cover


def _ago(age: float) -> str:
    age = max(0.0, age)
    if age < 60:
        return f"{age:.0f}s ago"
    if age < 3600:
        return f"{age / 60:.0f}m ago"
    if age < 86400:
        return f"{age / 3600:.1f}h ago"
    return f"{age / 86400:.1f}d ago"

