"""What the launcher shows while it runs: on a terminal an overall bar with its ETA above a
table of islands (rich), plain lines otherwise (pipes, CI).

Views only format what the launcher hands them (`Row`s and messages); they read no files.
The live table is refreshed by the launcher's loop, never by a rich background thread: the
launcher forks islands with a `preexec_fn`, which should not race with other threads.
Islands show "starting" from their spawn until their first status (importing torch takes
seconds), and the overall ETA waits for them (`islands.status.progress.Eta`). Before that, a
step the launcher waits on (the settings check, the island template importing torch) is named
by `begin` and kept alive by `waiting`, which the waiting loop calls (a line every
STEP_EVERY_S in plain mode, a spinner with the seconds on a terminal): the screen is never
blank while torch loads. This is the
launcher's view of many islands; one island's own bar is `islands.status.island_view`.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from islands.status.progress import Eta, clock, fraction, generation_text, number
from launcher.plan import format_cores


@dataclass(frozen=True)
class Row:
    """One island as the launcher sees it."""

    island: str
    state: str  # starting (spawned, no status yet), running, waiting, finished, stopped, failed
    generation: int | None = None
    generations: int | None = None
    best: float | None = None  # best-ever fitness
    evals_per_sec: float | None = None
    diversity: float | None = None
    restarts: int = 0
    cores: tuple[int, ...] = ()
    done: float | None = None  # share of its work done (`islands.status.progress.fraction`)

    def share(self) -> float | None:
        """The share done, from `done` or else the generations."""
        if self.done is not None:
            return self.done
        return fraction(self.generation, self.generations, finished=self.state == "finished")


STEP_EVERY_S = 3.0  # plain mode: a line this often while a step or the islands' start is under way
SPINNER = "|/-\\"


class Step:
    """The step the launcher is waiting on, and since when."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.since = self.shown = time.monotonic()

    def begin(self, text: str) -> None:
        self.text, self.since = text, time.monotonic()
        self.shown = self.since

    def elapsed(self) -> float:
        return time.monotonic() - self.since
STATES = ("running", "starting", "waiting", "pending", "requeued", "stopping", "finished", "stopped", "dead", "failed")


def overall(rows: Sequence[Row]) -> tuple[float | None, bool]:
    """The run's share done and whether every island has reported (the ETA's baseline is fixed
    from then on). A failed island counts at the share it had done (counting it as done made
    the share jump when islands failed), a finished or stopped one as done (it will not move
    again in this launch), one not reporting yet at 0."""
    shares = [1.0 if r.state in ("finished", "stopped") else r.share() for r in rows]
    known = [s for s in shares if s is not None]
    settled = all(r.state not in ("starting", "pending", "requeued") for r in rows)
    return (sum(known) / len(rows) if known and rows else None), settled


def states_text(rows: Sequence[Row]) -> str:
    """"starting 3/20" while islands have not reported yet, else the count of each state."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    if counts.get("starting"):
        up = len(rows) - counts["starting"] - counts.get("waiting", 0)
        rest = ", ".join(f"{counts[s]} {s}" for s in ("waiting", "failed") if counts.get(s))
        return f"starting {up}/{len(rows)}" + (f", {rest}" if rest else "")
    return ", ".join(f"{counts[s]} {s}" for s in STATES if counts.get(s)) or "no islands"


def headline(rows: Sequence[Row], elapsed: float, eta: float | None = None, share: bool = True) -> str:
    """One line for the whole archipelago (the plain view prints it; the live one titles its
    table with it, without the share done and ETA that its bar shows)."""
    gens = [r.generation for r in rows if r.generation is not None]
    total = next((r.generations for r in rows if r.generations is not None), None)
    bests = [(r.best, r.island) for r in rows if r.best is not None]
    best = max(bests) if bests else None
    reporting = [r for r in rows if r.state == "running" and r.evals_per_sec is not None]
    restarts = sum(r.restarts for r in rows)
    parts = [f"[{clock(elapsed)}] {states_text(rows)}"]
    done, _ = overall(rows)
    if done is not None and share:
        parts.append(f"{done:.0%} done, ETA {clock(eta)}")
    if gens:
        parts.append(f"gen {min(gens)}-{max(gens)}" + (f"/{total}" if total is not None else ""))
    if best is not None:
        parts.append(f"best {number(best[0])} ({best[1]})")
    if reporting:  # no "0 evals/s" while islands are still importing torch
        parts.append(f"{sum(r.evals_per_sec or 0.0 for r in reporting):,.0f} evals/s")
    parts.append(f"restarts {restarts}")
    return " | ".join(parts)


class PlainView:
    """Periodic one-line reports and every event, for logs and pipes."""

    def __init__(self, out: TextIO | None = None, every_s: float = 10.0) -> None:
        self.out = out or sys.stdout
        self.every_s = every_s
        self._last = float("-inf")
        self.eta = Eta()
        self.step = Step()

    def message(self, text: str) -> None:
        self.step.text = None
        print(text, file=self.out, flush=True)

    def begin(self, text: str) -> None:
        """A step the launcher now waits on: said at once."""
        self.message(f"{text} ...")
        self.step.begin(text)

    def waiting(self) -> None:
        """Called by the loop that waits on the step: a line every STEP_EVERY_S."""
        now = time.monotonic()
        if self.step.text is not None and now - self.step.shown >= STEP_EVERY_S:
            self.step.shown = now
            print(f"{self.step.text} ... {self.step.elapsed():.0f} s", file=self.out, flush=True)

    def update(self, rows: Sequence[Row], elapsed: float, force: bool = False) -> None:
        done, settled = overall(rows)
        eta = self.eta.update(done, elapsed, settled)
        now = time.monotonic()
        # While islands import torch ("starting n/N") a line every few seconds, not every 10.
        every = min(self.every_s, STEP_EVERY_S) if not settled else self.every_s
        if force or now - self._last >= every:
            self._last = now
            self.message(headline(rows, elapsed, eta))

    def end(self) -> None:
        """The run is over: what follows (the summary) is the last thing printed."""

    def close(self) -> None:
        pass


STYLES = {"running": "green", "starting": "yellow", "waiting": "yellow", "failed": "bold red",
          "finished": "cyan", "stopped": "magenta", "pending": "dim", "requeued": "yellow", "dead": "bold red"}


class LiveView:
    """An overall bar with its ETA above a table of islands (each with its own bar), redrawn
    by `update`; `end` leaves the last frame on screen so the summary prints below it."""

    def __init__(self, every_s: float = 0.5, console: Any = None) -> None:
        self.console = console or Console()
        self.every_s = every_s
        self._last = float("-inf")
        self.eta = Eta()
        self.live = Live(console=self.console, auto_refresh=False, transient=False,
                         vertical_overflow="ellipsis")
        # Rendered inside `live`, never started itself: no rich refresh thread (module docstring).
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=40), TaskProgressColumn(),
                            TextColumn("ETA {task.fields[eta]}"), TextColumn("elapsed {task.fields[elapsed]}"),
                            console=self.console, auto_refresh=False)
        self.task = self.bar.add_task("starting", total=1.0, eta="?", elapsed="0:00:00")
        self._started = False  # started on first use, so an early error prints only itself
        self._ended = False
        self.step = Step()

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self.live.start()

    def message(self, text: str) -> None:
        if self._ended:
            self.console.print(text, markup=False, highlight=False)
            return
        self._start()
        if self.step.text is not None:  # the step is over: its spinner goes
            self.step.text = None
            self.live.update(Text(""), refresh=False)
        self.live.console.print(text, markup=False, highlight=False)

    def begin(self, text: str) -> None:
        """A step the launcher now waits on: a spinner line with its seconds, until the next message."""
        if self._ended:
            return
        self._start()
        self.step.begin(text)
        self._spin()

    def waiting(self) -> None:
        """Called by the loop that waits on the step: the spinner turns, the seconds count."""
        if self.step.text is not None and not self._ended and time.monotonic() - self.step.shown >= 0.2:
            self._spin()

    def _spin(self) -> None:
        self.step.shown = time.monotonic()
        elapsed = self.step.elapsed()
        self.live.update(Text(f"{SPINNER[int(elapsed * 5) % len(SPINNER)]} {self.step.text} ... {elapsed:.0f} s",
                              style="yellow"), refresh=True)

    def update(self, rows: Sequence[Row], elapsed: float, force: bool = False) -> None:
        done, settled = overall(rows)
        eta = self.eta.update(done, elapsed, settled)
        now = time.monotonic()
        if self._ended or not (force or now - self._last >= self.every_s):
            return
        self._start()
        self._last = now
        self.step.text = None  # the islands' table replaces a step's spinner
        self.live.update(self.frame(rows, elapsed, done, eta), refresh=True)

    def frame(self, rows: Sequence[Row], elapsed: float, done: float | None, eta: float | None) -> Any:
        """The overall bar and the table of islands, as one renderable."""
        what = states_text(rows) if any(r.state == "starting" for r in rows) else "run"
        self.bar.update(self.task, completed=done or 0.0, description=what, eta=clock(eta),
                        elapsed=clock(elapsed))
        return Group(self.bar, self._table(rows, elapsed))

    def _table(self, rows: Sequence[Row], elapsed: float) -> Any:
        table = Table(title=headline(rows, elapsed, share=False), title_justify="left", expand=False)
        for name, justify in (("island", "left"), ("state", "left"), ("progress", "left"), ("generation", "right"),
                              ("best", "right"), ("evals/s", "right"), ("diversity", "right"),
                              ("restarts", "right"), ("core", "right")):
            table.add_column(name, justify=justify)
        for r in rows:
            share = r.share()
            bar = Text("-") if share is None else ProgressBar(total=1.0, completed=share, width=12)
            gen = generation_text(r.generation, r.generations)
            table.add_row(r.island, Text(r.state, style=STYLES.get(r.state, "")), bar, gen, number(r.best),
                          "-" if r.evals_per_sec is None else f"{r.evals_per_sec:,.0f}",
                          number(r.diversity, 3), str(r.restarts), format_cores(r.cores))
        return table

    def end(self) -> None:
        """Stop redrawing, leaving the last frame on screen: what follows prints below it."""
        if self._started and not self._ended:
            self.live.stop()
        self._ended = True

    def close(self) -> None:
        self.end()


def make_view(live: bool | None = None, every_s: float | None = None) -> PlainView | LiveView:
    """The live bar and table when stdout is a terminal (or `live`), plain periodic lines otherwise."""
    if live is None:
        live = sys.stdout.isatty()
    if live:
        return LiveView(every_s if every_s is not None else 0.5)
    return PlainView(every_s=every_s if every_s is not None else 10.0)
