"""An island's side of `--budget-share progress`: meter its progress, read the others', wait its turn.

The rule is `islands.budget_share` (weights from progress per evaluation, allowances from the
run's total and a pace relative to the better-improving islands); this is the island loop's
shell around it. After each generation the island
adds its evaluations and best-ever to its `RateMeter` and publishes the rate and its weight in
its status (`Progress.progress_rate`, `Progress.budget_weight`, copied to the heartbeat by
name). Every CHECK_S seconds (longer in a run of more than ISLANDS_PER_S islands, so the
reads per second stay bounded however many islands share a filesystem), and whenever it
reaches the allowance it last took, it reads the other islands' statuses through the run
directory (every POLL_S, stretched likewise, while it waits): their evaluations, rates and whether they
are live (running, and seen spending within the last LIVE_S seconds: a killed, hung or
long-waiting island stops holding budget for the others until it spends again). A planned
island without a status yet is live with nothing spent for its first LIVE_S, so the first
island to start does not take the whole total.

Its allowance is its weighted part, but never more than its pace (its weight's share of what
an island of larger weight spent; not in a synchronous run, where islands waiting at a
migration barrier spend nothing and a paced one would wait for them while they wait for its
batch), than the others leave, nor more than about
two check intervals of its own spending ahead: each island publishes the allowance it holds in
its status at once (`budget_allowed`), and an island takes only from what the others have
neither spent nor hold: the run overshoots its total by about a generation per island, or by
what two islands checking at the same instant both took from the same free part (files have
no compare-and-swap). Once the run's total is spent the island ends ("evaluations"); past its
allowance it waits, rewriting its heartbeat so the report does not call it stale and answering stop
requests at once, until an island ends and leaves it budget, its weight rises against the
others' (their rates change as they run), a better island spends (its pace rises) or the total
is spent.

Statuses are other processes' files: decoded tolerantly, and a figure that is missing,
negative or not finite counts as nothing, and an island that does not spend holds nothing
after LIVE_S (a forged status can make the others wait at most that long, and never run past
the total). What the island reads does not touch its trajectory: the same generations are
bred whatever it waits for, so a resumed island stays bit-exact; only where it ends depends on
the others, as with `--stop-when first`.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

from islands import budget_share
from islands.manifest import planned_islands
from islands.status.record import IslandStatus
from migration_pool.errors import FormatError
from migration_pool.rundir import RunDir

MAX_RATE = 1.0  # decades per evaluation: more is no measurement (a rate read from a file is capped)
CHECK_S = 1.0  # the others' statuses are read at most this often while the island runs
POLL_S = 0.25  # and this often while it waits
LIVE_S = 30.0  # an island not seen spending for this long holds no budget for itself
ISLANDS_PER_S = 50  # statuses an island reads per CHECK_S: a run of more islands checks less often


class BudgetShare:
    """One island's view of the run's shared budget (`--budget-share progress`)."""

    def __init__(self, island: str, rundir: RunDir, run_id: str, total: int, log: Callable[[str], None],
                 paced: bool = True) -> None:
        self.island, self.rundir, self.run_id, self.total, self.log = island, rundir, run_id, total, log
        self.paced = paced  # False in a synchronous run: an island at a barrier spends nothing, so a
        # paced neighbour would wait for it while it waits for the neighbour's batch (LIVE_S each event)
        self.pace = 1.0  # CHECK_S and POLL_S are stretched by this: at most ISLANDS_PER_S statuses a second
        self.meter = budget_share.RateMeter()
        self.checked = -math.inf
        self.allowed = 0.0  # its allowance at the last check: it checks again on reaching it
        self.spent_at_check = 0  # its evaluations at the last check (what it spends between checks)
        self.waiting_since: float | None = None
        self.seen: dict[str, tuple[int, float]] = {}  # island -> (evaluations, when they last changed)
        try:  # planned islands that have not written a status yet hold their part while they start
            self.planned = planned_islands(rundir.read_manifest() or {})
        except (FormatError, OSError):
            self.planned = ()

    def after_generation(self, progress: Any, stopped: Callable[[], bool],
                         beat: Callable[[], None]) -> str | None:
        """Meter the generation just recorded; "evaluations" once the run's total is spent.

        Waits here while the island is past its allowance (`beat` rewrites its heartbeat,
        `stopped` ends the wait at once and leaves the stop to the loop).
        """
        self.meter.add(progress.evaluations, progress.best_ever)
        progress.progress_rate = self.meter.rate()
        if progress.evaluations >= self.total:
            return "evaluations"
        if progress.evaluations < self.allowed and time.monotonic() - self.checked < CHECK_S * self.pace:
            return None
        while True:
            self.checked = time.monotonic()
            spent, rates, live, held = self._others()
            free = self.total - sum(held)  # what the other islands neither spent nor hold
            spent.append(progress.evaluations)
            rates.append(progress.progress_rate)
            live.append(True)
            if sum(spent) >= self.total:
                return "evaluations"
            weight = budget_share.weights(rates)
            progress.budget_weight = weight[-1]
            # It takes no more than about two check intervals of its own spending ahead: a part taken
            # whole at the first look would be held before any island's progress was measured.
            ahead = max(2 * (spent[-1] - self.spent_at_check), self.total // 100, 1)  # > 0: it can go on
            self.spent_at_check = spent[-1]
            part = budget_share.allowances(spent, weight, live, self.total)[-1]
            keep_up = budget_share.pace(len(spent) - 1, spent, weight, live, self.total) if self.paced else math.inf
            self.allowed = min(part, keep_up, free, spent[-1] + ahead)
            progress.budget_allowed = int(max(self.allowed, spent[-1]))
            beat()  # the allowance it now holds, published at once so the others leave it alone
            if spent[-1] < self.allowed:
                self._resumed(progress)
                return None
            if self.waiting_since is None:
                self.waiting_since = time.monotonic()
                self.log(f"{self.island}: waiting: it has spent its part of the run's budget ({progress.evaluations} "
                         f"of {self.total} evaluations; weight {weight[-1]:.2f} against the best-improving island's "
                         "1.00); the others hold the rest")
            if stopped():
                return None
            time.sleep(POLL_S * self.pace)  # polling other processes' files: no event to wait on

    def _resumed(self, progress: Any) -> None:
        if self.waiting_since is not None:
            self.log(f"{self.island}: going on after waiting {time.monotonic() - self.waiting_since:.1f} s "
                     f"(weight {progress.budget_weight:.2f})")
            self.waiting_since = None

    def _others(self) -> tuple[list[int], list[float], list[bool], list[int]]:
        """Evaluations, rates, liveness and budget held (a live island's allowance, at least
        what it spent) of every other planned island or island with a status."""
        spent: list[int] = []
        rates: list[float] = []
        live: list[bool] = []
        held: list[int] = []
        now = time.monotonic()
        ids = dict.fromkeys([*self.planned, *self.rundir.island_ids()])
        self.pace = max(1.0, len(ids) / ISLANDS_PER_S)
        for other in ids:
            if other == self.island:
                continue
            try:
                body = self.rundir.island(other).read_status()
            except (FormatError, OSError):
                body = None
            status = IslandStatus.from_body(body) if body else None
            if status is None or status.run_id not in (None, self.run_id):  # not started (in this run) yet
                status = IslandStatus(state="running")
            evaluations = status.evaluations if status.evaluations is not None and status.evaluations > 0 else 0
            rate = status.progress_rate
            rate = rate if rate is not None and math.isfinite(rate) and rate >= 0 else 0.0
            before, since = self.seen.get(other, (-1, now))
            if evaluations != before:
                since = now
            self.seen[other] = (evaluations, since)
            spent.append(min(evaluations, self.total))
            rates.append(min(rate, MAX_RATE))
            live.append(status.state == "running" and now - since < LIVE_S)
            allowed = status.budget_allowed if status.budget_allowed is not None and live[-1] else 0
            held.append(min(max(spent[-1], allowed), self.total))
        return spent, rates, live, held
