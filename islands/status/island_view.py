"""What `islands evolve` shows while its island runs: one rich bar with the ETA on a terminal,
a plain line every few seconds otherwise (pipes, logs, CI).

The bar is redrawn from the island's status callback, never by a rich background thread (an
island runs on one thread; docs/DESIGN.md, "One thread per island"). Messages print above it.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from islands.status.progress import Eta, clock, fraction, generation_text, number
from islands.status.record import IslandStatus


class PlainIslandView:
    """A progress line every `every_s` seconds (and at the end), through `echo`."""

    def __init__(self, echo: Callable[[str], None], max_evaluations: Callable[[], int | None],
                 every_s: float = 2.0) -> None:
        self.echo, self.budget, self.every_s = echo, max_evaluations, every_s
        self.eta = Eta()
        self._last = 0.0

    def log(self, text: str) -> None:
        self.echo(text)

    def status(self, st: IslandStatus) -> None:
        due = _due(self, st)
        if due is None:
            return
        done, eta = due
        share = "" if done is None else f"  {done:.0%} ETA {clock(eta)}"
        self.echo(f"{st.island}  gen {generation_text(st.generation, st.generations)}{share}  best {number(st.best_ever)}  "
                  f"{st.evals_per_sec or 0.0:,.0f} evals/s  diversity {number(st.diversity, 3)}")

    def close(self) -> None:
        pass


class BarIslandView:
    """One rich progress bar on stderr: share done, generation, best, rate, ETA."""

    def __init__(self, island: str, max_evaluations: Callable[[], int | None], every_s: float = 0.25,
                 console: Any = None) -> None:
        # lazy: rich only for a terminal's bar; `islands evolve` (under the launcher: plain lines) imports this module
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn  # lazy: rich, as above

        self.budget, self.every_s = max_evaluations, every_s
        self.console = console or Console(stderr=True)
        self.eta = Eta()
        self._last = float("-inf")
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=30), TaskProgressColumn(),
                            TextColumn("{task.fields[figures]}"), TextColumn("ETA {task.fields[eta]}"),
                            console=self.console, auto_refresh=False, redirect_stdout=False,
                            redirect_stderr=False)
        self.task = self.bar.add_task(f"{island} starting", total=1.0, figures="", eta="?")
        self._started = False  # at the first status: an early error prints only itself

    def log(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def status(self, st: IslandStatus) -> None:
        due = _due(self, st)
        if due is None:
            return
        done, eta = due
        figures = (f"gen {generation_text(st.generation, st.generations)}  best {number(st.best_ever)}  "
                   f"{st.evals_per_sec or 0.0:,.0f} evals/s")
        self.bar.update(self.task, completed=done or 0.0, description=str(st.island), figures=figures,
                        eta=clock(eta))
        if not self._started:
            self._started = True
            self.bar.start()
        self.bar.refresh()

    def close(self) -> None:
        if self._started:
            self.bar.stop()


def _due(view: "PlainIslandView | BarIslandView", st: IslandStatus) -> tuple[float | None, float | None] | None:
    """(share done, ETA in seconds) when `view` should redraw for `st`, else None.

    Every status feeds the ETA (it needs every sample); the redraw is throttled to
    `view.every_s`, except for the last status of a run (state other than running).
    """
    now = time.monotonic()
    done = fraction(st.generation, st.generations, st.evaluations, view.budget(), finished=st.state == "finished")
    eta = view.eta.update(done, now, True)
    if now - view._last < view.every_s and st.state == "running":
        return None
    view._last = now
    return done, eta


def make_island_view(island: str, echo: Callable[[str], None], terminal: bool,
                     max_evaluations: Callable[[], int | None]) -> PlainIslandView | BarIslandView:
    """The bar on a terminal, plain lines otherwise; `max_evaluations` is asked once the run
    is known (its manifest may set a budget the command line did not name)."""
    cached: list[int | None] = []

    def budget() -> int | None:
        if not cached:
            cached.append(max_evaluations())
        return cached[0]

    return BarIslandView(island, budget) if terminal else PlainIslandView(echo, budget)
