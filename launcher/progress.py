"""What the launcher shows while it runs: a rich live table on a terminal, plain lines otherwise.

Views only format what the launcher hands them (`Row`s and messages); they read no files.
The live table is refreshed by the launcher's loop, never by a rich background thread: the
launcher forks islands with a `preexec_fn`, which should not race with other threads.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence, TextIO

from launcher.plan import format_cores


@dataclass(frozen=True)
class Row:
    """One island as the launcher sees it."""

    island: str
    state: str  # waiting, starting (no heartbeat of its own yet), running, finished, stopped, failed
    generation: int | None = None
    generations: int | None = None
    best: float | None = None  # best-ever fitness
    evals_per_sec: float | None = None
    diversity: float | None = None
    restarts: int = 0
    cores: tuple[int, ...] = ()


def _fmt(x: float | None, spec: str = ".6g") -> str:
    return "-" if x is None else format(x, spec)


def headline(rows: Sequence[Row], elapsed: float) -> str:
    """One line for the whole archipelago."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    states = ", ".join(f"{counts[s]} {s}" for s in ("starting", "running", "waiting", "finished", "stopped", "failed") if counts.get(s))
    gens = [r.generation for r in rows if r.generation is not None]
    total = next((r.generations for r in rows if r.generations is not None), None)
    bests = [(r.best, r.island) for r in rows if r.best is not None]
    best = max(bests) if bests else None
    rate = sum(r.evals_per_sec or 0.0 for r in rows if r.state == "running")
    restarts = sum(r.restarts for r in rows)
    m, s = divmod(int(elapsed), 60)
    h, m = divmod(m, 60)
    parts = [f"[{h:d}:{m:02d}:{s:02d}] {states or 'no islands'}"]
    if gens:
        parts.append(f"gen {min(gens)}-{max(gens)}" + (f"/{total}" if total is not None else ""))
    if best is not None:
        parts.append(f"best {best[0]:.6g} ({best[1]})")
    parts.append(f"{rate:,.0f} evals/s")
    parts.append(f"restarts {restarts}")
    return " | ".join(parts)


class PlainView:
    """Periodic one-line reports and every event, for logs and pipes."""

    def __init__(self, out: TextIO | None = None, every_s: float = 10.0) -> None:
        self.out = out or sys.stdout
        self.every_s = every_s
        self._last = float("-inf")

    def message(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def update(self, rows: Sequence[Row], elapsed: float, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._last = now
            self.message(headline(rows, elapsed))

    def close(self) -> None:
        pass


class LiveView:
    """A rich table, one row per island, redrawn by `update`."""

    def __init__(self, every_s: float = 0.5, console: Any = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console()
        self.every_s = every_s
        self._last = float("-inf")
        self.live = Live(console=self.console, auto_refresh=False, transient=False,
                         vertical_overflow="ellipsis")
        self._started = False  # started on first use, so an early error prints only itself

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self.live.start()

    def message(self, text: str) -> None:
        self._start()
        self.live.console.print(text, markup=False, highlight=False)

    def update(self, rows: Sequence[Row], elapsed: float, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.every_s:
            self._start()
            self._last = now
            self.live.update(self._table(rows, elapsed), refresh=True)

    def _table(self, rows: Sequence[Row], elapsed: float):
        from rich.table import Table
        from rich.text import Text

        styles = {"running": "green", "waiting": "yellow", "failed": "bold red", "finished": "cyan", "stopped": "magenta"}
        table = Table(title=headline(rows, elapsed), title_justify="left", expand=False)
        for name, justify in (("island", "left"), ("state", "left"), ("generation", "right"), ("best", "right"),
                              ("evals/s", "right"), ("diversity", "right"), ("restarts", "right"), ("core", "right")):
            table.add_column(name, justify=justify)
        for r in rows:
            gen = "-" if r.generation is None else f"{r.generation}/{r.generations}"
            table.add_row(r.island, Text(r.state, style=styles.get(r.state, "")), gen, _fmt(r.best),
                          _fmt(r.evals_per_sec, ",.0f"), _fmt(r.diversity, ".3g"), str(r.restarts),
                          format_cores(r.cores))
        return table

    def close(self) -> None:
        if self._started:
            self.live.stop()


def make_view(live: bool | None = None, every_s: float | None = None) -> PlainView | LiveView:
    """A live table when stdout is a terminal (or `live`), plain periodic lines otherwise."""
    if live is None:
        live = sys.stdout.isatty()
    if live:
        return LiveView(every_s if every_s is not None else 0.5)
    return PlainView(every_s=every_s if every_s is not None else 10.0)
