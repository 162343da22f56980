"""`islands status`: the health, progress and diversity report of a run, for people or scripts.

A thin adapter over `islands.status.report.build_report`: a rich table by default, `--json` for
scripts (schema in `islands.status.schema`, printed by `--schema`), `--watch` to refresh in
place, `--plot` for a PNG. Registered as a plug-in command (entry point `islands.commands`).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from islands.cli_errors import Failure, guarded
from islands.cli_run_dir import find_run_to_show
from islands.cli_types import FiniteFloat
from islands.exit_codes import EXIT_ERROR
from islands.status.plot import write_plot
from islands.status.progress import generation_text
from islands.status.report import STALE_AFTER_S, build_report, problem_label
from islands.status.schema import SCHEMA
from islands.status.settings import display
from islands.status.text_table import RICH_ROWS, text_table
from islands.status.tuning import render as render_tuning
from migration_pool.errors import PoolError

STATE_STYLE = {
    "running": "green", "finished": "bold green", "stopped": "yellow", "stale": "bold yellow",
    "dead": "bold red", "failed": "bold red", "pending": "dim", "requeued": "yellow", "unreadable": "magenta",
}
SPARK = "▁▂▃▄▅▆▇█"
PIPE_WIDTH = 160
PLOT_SUFFIXES = (".png", ".svg", ".pdf")
MATRIX_MAX = 12  # islands beyond which the migration matrix is summarised as its top flows
ENDED = ("finished", "failed", "stopped")  # states no island leaves by itself: a watch of them ends


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="Run directory (default: $ISLANDS_RUN_DIR, else the current folder if it holds a run, else the "
                   "most recently active run under ~/.local/share/islands/runs; `islands runs` lists them).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the report as JSON (schema: `islands status --schema`); with --watch, one line per refresh.")
@click.option("--watch", type=FiniteFloat(min=0.1), is_flag=False, flag_value=2.0, default=None,
              metavar="[SECONDS]", help="Refresh in place every SECONDS (default 2) until Ctrl+C, or until every "
                                        "island has ended (finished, failed or stopped).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE.png",
              help="Also draw fitness per island and diversity over time into FILE.png (its path is printed).")
@click.option("--plot-x", type=click.Choice(["generation", "time"]), default="generation", show_default=True,
              help="The plot's x axis: generations, or wall-clock time since the run began.")
@click.option("--stale-after", type=FiniteFloat(min=0, min_open=True), default=STALE_AFTER_S, show_default=True,
              metavar="SECONDS", help="Heartbeat age beyond which a running island counts as stale (one of "
                   "another host: sooner if its heartbeats came often, after 20 of its intervals, at least 30 s).")
@click.option("--full-matrix", is_flag=True,
              help="With --json: add the dense N x N migration matrix (counts) to its sparse flows "
                   "(megabytes for thousands of islands).")
@click.option("--schema", "show_schema", is_flag=True, help="Print the JSON schema of --json and exit.")
@guarded
def status(run_dir: Path | None, as_json: bool, watch: float | None, plot: Path | None, plot_x: str,
           stale_after: float, full_matrix: bool, show_schema: bool) -> None:
    """Is every island alive, how far along is it, is diversity kept, do migrants flow?

    States: running, finished, stopped (resumable), stale (no recent heartbeat), dead (its
    process is gone without finishing), failed (the launcher gave up), pending (no status
    yet), unreadable (corrupt status file). Reads only the run directory, so it works on
    live, finished and remote runs (pids are checked on this host only).

    Columns: gen done/planned; best and mean fitness of the current population (maximised:
    minimisation problems show -f(x)); evals/s; restarts by the launcher; migrants
    sent/received/adopted/rejected (then bad pool files and failed publishes, when any); div, the within-island diversity (mean gene standard
    deviation / bound width); foreign, the share of the population whose lineage began on
    another island; lineage, the island's largest lineage and its share of the population
    ("own 100%": all its own; "07 62%": island-07's lineage holds 62% of it); seen, the age of
    the last heartbeat. Below the table: the archipelago's effective origins and their curve
    (every island at its latest origins), a warning when one island's lineage holds more than
    half of all individuals before the target was reached, a note when that happened after.
    """
    if show_schema:
        click.echo(json.dumps(SCHEMA, indent=2))
        return
    if plot is not None and plot.suffix.lower() not in PLOT_SUFFIXES:
        raise click.BadParameter(f"{str(plot)!r} must end in {', '.join(PLOT_SUFFIXES)} (the format is "
                                 "taken from the name)", param_hint="'--plot'")
    root = run_dir
    if root is None:
        root, which = find_run_to_show()
        if which:
            click.echo(which, err=True)  # stderr: --json stays parseable

    def make() -> dict[str, Any]:
        try:
            return build_report(root, stale_after=stale_after, full_matrix=full_matrix and as_json)
        except OSError as e:  # e.g. permission denied: one line, not a traceback
            if isinstance(e, PoolError):
                raise
            raise Failure(f"cannot read {root}: {e.strerror or e}", EXIT_ERROR) from None

    report = make()  # a missing or bad run fails here, once, with a clear message
    if plot is not None:
        _plot(root, report, plot, plot_x)
        click.echo(f"plot written to {plot.resolve()}", err=True)  # stderr: --json stays parseable
    try:
        if watch is None:
            _emit(report, as_json)
            return
        _install_sigterm()
        if as_json:
            while True:
                _emit(report, True, compact=True)
                if ended(report):
                    break
                time.sleep(watch)
                report = make()
        else:
            _watch_table(report, make, watch, root, plot, plot_x)
    except KeyboardInterrupt:  # Ctrl+C ends a watch normally (and interrupts a one-shot report)
        if watch is None:
            raise
    except BrokenPipeError:  # `islands status --json --watch | head`: the reader left, so do we
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit


def ended(report: dict[str, Any]) -> bool:
    """Every island has ended: nothing will change until someone resumes the run, so a watch
    stops (after showing this view once) instead of redrawing it forever."""
    islands = report.get("islands") or []
    return bool(islands) and all(i.get("state") in ENDED for i in islands)


def _emit(report: dict[str, Any], as_json: bool, compact: bool = False) -> None:
    if as_json:
        text = json.dumps(report, allow_nan=False, separators=(",", ":") if compact else None, indent=None if compact else 2)
        click.echo(text)
        sys.stdout.flush()
        return
    _console().print(render(report))


def _watch_table(report: dict[str, Any], make: Any, every: float, root: Path, plot: Path | None,
                 plot_x: str = "generation") -> None:
    from rich.live import Live  # lazy: rich loads only when a table is drawn (`status --json` stays fast)
    from rich.text import Text  # lazy: rich, as above

    with Live(render(report), console=_console(), auto_refresh=False) as live:
        while not ended(report):
            time.sleep(every)
            try:
                report = make()
                if plot is not None:
                    _plot(root, report, plot, plot_x)
                live.update(render(report), refresh=True)
            except (PoolError, Failure) as e:  # the run vanished or broke mid-watch: say so, go on
                live.update(Text(f"error: {e} (retrying every {every:g} s)", style="bold red"), refresh=True)
    click.echo("every island has ended; watch over", err=True)


def _console() -> Any:
    """A terminal's own width; piped output is not squeezed into 80 columns (COLUMNS wins)."""
    from rich.console import Console  # lazy: rich loads only when a table is drawn (`status --json` stays fast)

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=PIPE_WIDTH)
    return console


def _install_sigterm() -> None:
    """SIGTERM ends a watch as cleanly as Ctrl+C does."""

    def handler(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _plot(root: Path, report: dict[str, Any], path: Path, x_axis: str = "generation") -> None:
    try:
        write_plot(root, report, path, x_axis=x_axis)
    except OSError as e:
        raise Failure(f"cannot write the plot {path}: {e.strerror or e}", EXIT_ERROR) from None


# -- rendering ----------------------------------------------------------------------------
def render(report: dict[str, Any]) -> Any:
    """The rich renderable of a report: header, island table, archipelago, notes."""
    from rich.console import Group  # lazy: rich loads only when a table is drawn (`status --json` stays fast)
    from rich.table import Table  # lazy: rich, as above
    from rich.text import Text  # lazy: rich, as above

    run, tot, arch = report["run"], report["totals"], report["archipelago"]
    mig = run["migration"]
    header = Text.assemble(
        ("run ", "bold"), (f"{(run['run_id'] or '?')[:12]}", "cyan"),
        f"  {problem_label(run)}  {run['algorithm']} pop {run['population'] or 'default'}  "
        f"{_limits(run)}  ",
        "isolated" if not mig["every"] else f"migrate every {mig['every']} ({mig['topology']}, {mig['migrants']} migrant{'' if mig['migrants'] == 1 else 's'})",
        f"\n{report['run_dir']}\n",
    )
    for i, (state, n) in enumerate(tot["states"].items()):
        header.append(", " if i else "")
        header.append(f"{n} {state}", STATE_STYLE.get(state, ""))
    header.append(f"  ·  {tot['evaluations']:,} evaluations  ·  {tot['evals_per_sec']:,.0f} evals/s now")
    if tot["progress"] is not None:
        header.append(f"  ·  {tot['progress']:.0%} done")

    isl_rows = report["islands"]
    bad = any(i["migration"]["bad_files"] for i in isl_rows)
    unpublished = any(i["migration"]["publish_errors"] for i in isl_rows)
    restarts = any(i["restarts"] for i in isl_rows)
    shared = run.get("budget_share") == "progress"
    notes = [" · ".join(x for x in (", ".join(f"{k}={_num(v)}" for k, v in i["overrides"].items()), i["note"]) if x)
             for i in isl_rows]
    table = Table(box=None, pad_edge=False, header_style="bold underline")
    columns = ["island", "state", "gen", "best", "mean", "evals/s"] + (["restarts"] if restarts else []) + \
        (["budget"] if shared else []) + \
        ["sent/recv/adopt/rej" + ("/bad" if bad else "") + ("/unpub" if unpublished else ""), "div", "foreign", "lineage",
         "seen"]
    keep = {"island": max((len(i["island"]) for i in isl_rows), default=6), "state": 10, "best": 10}
    for name in columns:
        table.add_column(name, justify="left" if name in ("island", "state") else "right", no_wrap=True,
                         min_width=keep.get(name))
    if any(notes):
        table.add_column("overrides · note", overflow="fold", min_width=12)
    rows = []
    for isl, note in zip(isl_rows, notes):
        m = isl["migration"]
        counts = [m["sent"], m["received"], m["adopted"], m["rejected"]] + ([m["bad_files"]] if bad else []) \
            + ([m["publish_errors"]] if unpublished else [])
        cells = [isl["island"], (isl["state"], STATE_STYLE.get(isl["state"], "")),
                 generation_text(isl["generation"], isl["generations"]),
                 _num(isl["best"]), _num(isl["mean"]), _rate(isl["evals_per_sec"])]
        cells += [str(isl["restarts"])] if restarts else []
        cells += [_budget_cell(isl)] if shared else []
        cells += ["/".join(map(str, counts)), _num(isl["diversity"], ".3f"), _pct(isl["foreign_share"]),
                  _lineage_cell(isl), _ago(isl["heartbeat_age_s"])]
        rows.append([*cells, *([note] if any(notes) else [])])
    if len(rows) > RICH_ROWS:  # rich lays out ~1,000 rows a second: thousands of islands get plain columns
        table = text_table(columns + (["overrides · note"] if any(notes) else []), rows,
                           ("island", "state", "overrides · note"), STATE_STYLE)
    for row in rows if len(rows) <= RICH_ROWS else ():
        table.add_row(*[c if isinstance(c, str) else Text(*c) for c in row])
    parts: list[Any] = [header, table, Text(""), _archipelago(arch)]
    if report["settings"]:
        parts += [Text(""), _settings(report["settings"])]
    if report.get("tuning"):
        parts += [Text(""), render_tuning(report["tuning"])]
    if report["notes"]:
        parts.append(Text("\n".join(f"note: {n}" for n in report["notes"]), style="yellow"))
    return Group(*parts)


def _budget_cell(isl: dict[str, Any]) -> str:
    """Under --budget-share progress: "w0.42" (its weight against the best-improving island's
    1.00), "w0.10 waiting" while it holds no more than it spent; "-" before it reported."""
    weight, allowed, spent = isl.get("budget_weight"), isl.get("budget_allowed"), isl.get("evaluations")
    if weight is None:
        return "-"
    waiting = isl["state"] == "running" and allowed and spent is not None and spent >= allowed
    return f"w{weight:.2f}" + (" waiting" if waiting else "")


def _lineage_cell(isl: dict[str, Any]) -> str:
    """"own 100%": the island's population is its own lineage; "07 62%": island-07's lineage
    holds 62% of it (a takeover seen from the island); "-" before it reported."""
    origin, share = isl.get("lineage_origin"), isl.get("lineage_share")
    if origin is None or share is None:
        return "-"
    who = "own" if origin == isl["island"] else origin.rsplit("-", 1)[-1]
    return f"{who} {share:.0%}"


def _limits(run: dict[str, Any]) -> str:
    """What stops the islands: "200 generations", "budget 4,000 evaluations (2,000 per island)"."""
    parts = []
    if run.get("evaluation_budget") is not None:
        each = run.get("max_evaluations")
        parts.append(f"budget {run['evaluation_budget']:,} evaluations"
                     + (" shared by progress" if run.get("budget_share") == "progress" else
                        f" ({each:,} per island)" if each is not None and each != run["evaluation_budget"] else ""))
    elif run.get("max_evaluations") is not None:
        parts.append(f"budget {run['max_evaluations']:,} evaluations per island")
    if run.get("generations") is not None or not parts:
        parts.append(f"{run.get('generations')} generations")
    return ", ".join(parts)


def _archipelago(arch: dict[str, Any]) -> Any:
    from rich.console import Group  # lazy: rich loads only when a table is drawn (`status --json` stays fast)
    from rich.table import Table  # lazy: rich, as above
    from rich.text import Text  # lazy: rich, as above

    lines = Text()
    champ = arch["champion"]
    if champ:
        lines.append("champion ", "bold")
        lines.append(f"{_num(champ['fitness'], '.6g')} on {champ['island']}")
        if champ["fitness"] <= 0:
            lines.append(f" (f(x) = {_num(0.0 - champ['fitness'], '.6g')})")
        if champ["generation"] is not None:
            lines.append(f" at generation {champ['generation']}")
        lines.append("\n")
    if arch.get("optima"):
        lines.append("optima ", "bold")
        lines.append(f"{len(arch['optima'])} distinct basins found: " + ", ".join(
            f"{_num(o['best'], '.4g')} ({o['island']})" for o in arch["optima"]) + "\n")
    gen = arch.get("generalisation")
    if gen:
        lines.append("unseen starts ", "bold")
        lines.append(f"mean return {_num(gen['mean'], '.6g')} over {gen['episodes']} episodes (--seed {gen['seed']})")
        if gen["solved"] is not None:
            lines.append(f", solved {gen['solved']}/{gen['episodes']} (return >= {gen['threshold']:g})")
        if not gen["current"]:
            lines.append(" [an earlier champion: run islands evaluate again]", "yellow")
        lines.append("\n")
    lines.append("diversity ", "bold")
    lines.append(f"between islands {_num(arch['between_island_diversity'], '.3f')}, "
                 f"within islands {_num(arch['mean_diversity'], '.3f')} (mean), "
                 f"foreign share {_pct(arch['mean_foreign_share'])} (mean)"
                 + (f", separation {arch['separation']:.2f} (between / within)" if arch["separation"] is not None else "")
                 + "\n")
    lin = arch["lineage"]
    if lin["effective_origins"] is not None:
        lines.append("lineages ", "bold")
        lines.append(f"{lin['effective_origins']:.1f} effective origins of {lin['islands_counted']} islands"
                     f" (largest: {lin['dominant_origin']} {_pct(lin['dominant_share'])})")
        trend = lin["over_time"]
        if len(trend) > 1:
            lines.append(f"  gen {trend[0]['generation']} {trend[0]['effective_origins']:.1f} ")
            lines.append(_spark([p["effective_origins"] for p in trend]), "cyan")
            lines.append(f" gen {trend[-1]['generation']} {trend[-1]['effective_origins']:.1f}")
        lines.append("\n")
        if lin["warning"]:
            lines.append(lin["warning"] + "\n", "bold yellow")
        elif lin.get("note"):
            lines.append(lin["note"] + "\n", "green")
    series = arch["diversity_over_time"]
    if series:
        lines.append("diversity over time ", "bold")
        lines.append(f"gen {series[0]['generation']} {series[0]['mean']:.3f} ")
        lines.append(_spark([p["mean"] for p in series]), "cyan")
        lines.append(f" gen {series[-1]['generation']} {series[-1]['mean']:.3f}\n")
    m = arch["migrants"]
    lines.append("migrants ", "bold")
    lines.append(f"{m['sent']} sent, {m['received']} received, {m['adopted']} adopted, {m['rejected']} rejected"
                 + (f", {m['bad_files']} bad files" if m["bad_files"] else "")
                 + (f", {m['publish_errors']} failed publishes" if m["publish_errors"] else ""))
    mat = arch["migration_matrix"]
    if not mat["flows"]:
        return lines
    if len(mat["receivers"]) <= MATRIX_MAX and len(mat["sources"]) <= MATRIX_MAX:
        grid = Table(box=None, pad_edge=False, header_style="bold underline")
        grid.add_column("received by \\ from")
        for s in mat["sources"]:
            grid.add_column(s.split("-")[-1], justify="right")
        cells = {(r, s): c for r, s, c in mat["flows"]}
        for r in mat["receivers"]:
            grid.add_row(r, *[str(cells[r, s]) if (r, s) in cells else "·" for s in mat["sources"]])
        return Group(lines, Text(""), grid)
    top = ", ".join(f"{s}→{r} {c}" for r, s, c in mat["flows"][:8])  # largest first
    lines.append(f"\nlargest flows ({mat['flows_total']} in all): {top}")
    return lines


def _settings(sec: dict[str, Any]) -> Any:
    """Which setting won: one row per value of each varied setting, ranked, the champion's marked."""
    from rich.console import Group  # lazy: rich loads only when a table is drawn (`status --json` stays fast)
    from rich.table import Table  # lazy: rich, as above
    from rich.text import Text  # lazy: rich, as above

    head = Text("settings ", "bold")
    log = sec["rank_by"] == "own_log_gain"
    head.append("ranked by median " + {"own_log_gain": "own gain (orders of magnitude of f(x))",
                                       "own_gain": "own gain"}.get(sec["rank_by"], "best_ever"))
    if sec["note"]:
        head.append("\n" + sec["note"], "bold yellow")
    grid = Table(box=None, pad_edge=False, header_style="bold underline")
    gain = ("median_own_log_gain", "median_adopted_log_gain") if log else ("median_own_gain", "median_adopted_gain")
    for name in ("setting", "value", "islands", "best_ever", "own gain" + (" (log10)" if log else ""), "adopted",
                 "rank", ""):
        grid.add_column(name, justify="left" if name in ("setting", "value", "") else "right")
    for setting in sec["settings"]:
        for n, v in enumerate(setting["values"]):
            grid.add_row(setting["name"] if n == 0 else "", display(v["value"]), str(v["islands"]),
                         _num(v["median_best_ever"]), _num(v[gain[0]], ".3g"), _num(v[gain[1]], ".3g"),
                         _num(v["rank"]), "champion" if v["champion"] else "")
    return Group(head, grid, Text("(medians over each value's islands)", style="dim"))


def _spark(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    span = hi - lo
    return "".join(SPARK[0 if span <= 0 else min(len(SPARK) - 1, int((v - lo) / span * len(SPARK)))] for v in values)


def _rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1000:.1f}k" if x >= 10_000 else f"{x:.0f}"


def _num(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return format(x, spec)
    return str(x)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _ago(age: float | None) -> str:
    if age is None:
        return "-"
    if age < 60:
        return f"{age:.0f}s"
    if age < 3600:
        return f"{age / 60:.0f}m"
    return f"{age / 3600:.1f}h"
