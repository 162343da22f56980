"""`islands confirm RUN`: re-run the run's top settings alone on new seeds (`islands.tuning.confirm`)."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import click

from islands.evaluate_cli import guard
from islands.threads import limit_env
from islands.tuning.space import settings_text


def _num(x: float) -> str:
    return "?" if x is None or not math.isfinite(x) else f"{x:.6g}"


@click.command("confirm")
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--top", type=click.IntRange(1, 100), default=3, show_default=True, help="How many of the run's best settings.")
@click.option("--seeds", type=click.IntRange(1, 1000), default=5, show_default=True, help="New seeds per setting.")
@click.option("--evaluations", type=click.IntRange(1), default=None,
              help="Each re-run's budget  [default: an island's budget in the run]")
@click.option("--workers", type=click.IntRange(1, 1024), default=None,
              help="Re-runs at a time, one process each  [default: the cores of this machine]")
def confirm(run: Path, top: int, seeds: int, evaluations: int | None, workers: int | None) -> None:
    """Re-run the top settings of RUN alone (no migration, no tuner) on new seeds, and print each
    one's median and spread beside the run's own ranking, with their Spearman correlation."""
    limit_env()
    workers = workers or len(os.sched_getaffinity(0))
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        left = (time.monotonic() - started) / done * (total - done)
        click.echo(f"\rre-runs {done}/{total}, ETA {left:.0f} s ", nl=done == total, err=True)

    def act() -> Any:
        from islands.results import open_run  # lazy: loads torch, after limit_env() above
        from islands.tuning import confirm as check  # lazy: as above

        rows = check.confirm(open_run(run), top=top, seeds=seeds, evaluations=evaluations, workers=workers,
                             on_result=progress)
        rho = check.spearman([r.candidate.score for r in rows], [r.median for r in rows])
        return rows, check.ranks([r.median for r in rows]), rho

    rows, reranks, rho = guard(act)
    by = rows[0].candidate.by
    click.echo(f"{'rank':>4}  {'from':<14} {by:>14}  {'re-run median':>14}  {'min .. max':>25}  {'re-run rank':>11}  settings")
    for row, rerank in zip(rows, reranks):
        c = row.candidate
        spread = f"{_num(min(row.results))} .. {_num(max(row.results))}"
        click.echo(f"{c.rank:>4}  {c.source:<14} {_num(c.score):>14}  {_num(row.median):>14}  {spread:>25}  "
                   f"{rerank:>11g}  {settings_text(c.settings)}")
    shown = "n/a (fewer than 3 settings, or no spread)" if rho is None else f"{rho:.2f}"
    click.echo(f"Spearman, the run's ranking against the re-runs' medians: {shown} over {len(rows)} setting(s), "
               f"{len(rows[0].results)} seed(s) each")
