"""When to restart an island, and when to give up: a pure policy driven by a clock passed in.

`IslandWatch` holds one island's restart bookkeeping and never reads the clock, the disk or
a process itself: the launcher feeds it times (its own monotonic clock), exit codes and
heartbeats, and acts on the `Decision`s it returns. Tests drive it with a fake clock.

The rules (docs/DESIGN.md, "Restart policy"):

- exit 0 (finished) and EXIT_STOPPED (stopped by a signal, checkpointed: someone stopped it
  on purpose) are never restarted, nor are the configuration error codes of
  `islands.exit_codes.NO_RESTART`: restarting cannot fix a bad option;
- any other exit (a non-zero code or a signal) is a crash and is restarted after a capped
  exponential backoff with jitter, while the island has crashed at most `max_restarts`
  times within `window_s`; a run that stayed up `healthy_s` clears that count;
- an exit before the island has "started" (written a heartbeat, or lived `start_threshold_s`)
  is a start failure; `start_failures` of them in a row give up at once, so a bad
  configuration never becomes a restart storm;
- an island whose heartbeat counter has not advanced for `hang_timeout_s` on the launcher's
  own monotonic clock is hung (before its first heartbeat: for the longer of that and
  `startup_s`): the launcher kills it and the exit counts as a crash. The counter is
  compared, never file times, which may come from another host's clock.
"""
from __future__ import annotations

import enum
import random
import signal
from collections import deque
from dataclasses import dataclass
from typing import Hashable

from islands.exit_codes import EXIT_STOPPED, MEANING, NO_RESTART
from launcher.errors import PlanError


@dataclass(frozen=True)
class RestartPolicy:
    """Limits of the restart policy; see the module docstring for how they combine."""

    max_restarts: int = 5
    window_s: float = 3600.0
    healthy_s: float = 300.0
    backoff_s: float = 1.0
    backoff_cap_s: float = 60.0
    start_failures: int = 3
    start_threshold_s: float = 30.0
    hang_timeout_s: float = 900.0  # 0 disables hang detection
    startup_s: float = 120.0  # before its first heartbeat an island may take this long (imports, CUDA)

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise PlanError(f"--max-restarts must be >= 0, got {self.max_restarts}")
        if self.hang_timeout_s < 0:
            raise PlanError(f"--hang-timeout must be >= 0 seconds, got {self.hang_timeout_s}")
        if self.start_failures < 1 or self.backoff_s <= 0 or self.backoff_cap_s < self.backoff_s:
            raise PlanError("restart policy: need start_failures >= 1 and 0 < backoff_s <= backoff_cap_s")


class Action(enum.Enum):
    RESTART = "restart"
    DONE = "done"  # exited 0 or EXIT_STOPPED: finished, or stopped on purpose
    FAIL = "fail"  # gave up


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float = 0.0  # seconds before the restart
    reason: str = ""


def describe_exit(code: int) -> str:
    """'exit 3 (unusable checkpoint)', 'signal 9 (SIGKILL)'."""
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    meaning = MEANING.get(code)
    return f"exit {code}" + (f" ({meaning})" if meaning else "")


class IslandWatch:
    """Restart and hang bookkeeping of one island. States: waiting, running, finished,
    stopped, failed. Times are the launcher's monotonic clock, in seconds."""

    def __init__(self, island: str, policy: RestartPolicy, rng: random.Random | None = None) -> None:
        self.island, self.policy = island, policy
        self.rng = rng or random.Random()
        self.state = "waiting"
        self.starts = 0
        self.hangs = 0
        self.start_failures = 0  # in a row
        self.crashes: deque[float] = deque()  # times of crashes inside the window
        self.restart_at = 0.0
        self.reason = ""
        self.last_exit: int | None = None
        self._started_at = 0.0
        self._beat: Hashable = None
        self._progress_at = 0.0
        self._saw_beat = False

    @property
    def restarts(self) -> int:
        return max(0, self.starts - 1)

    # -- the launcher reports -------------------------------------------------------------
    def started(self, now: float) -> None:
        """A new incarnation of the island was spawned."""
        self.state, self.starts = "running", self.starts + 1
        self._started_at = self._progress_at = now
        self._beat, self._saw_beat = None, False

    def beat(self, key: Hashable, now: float) -> None:
        """A heartbeat of the current incarnation (e.g. its pid and status `beat` counter)."""
        if key != self._beat:
            self._beat, self._progress_at, self._saw_beat = key, now, True

    def hung(self, now: float) -> bool:
        """True when the running island's heartbeat has not advanced for the hang timeout."""
        limit = self.policy.hang_timeout_s
        if not self._saw_beat:
            limit = max(limit, self.policy.startup_s) if limit > 0 else 0
        return self.state == "running" and limit > 0 and now - self._progress_at > limit

    def hang(self) -> None:
        """The launcher is killing this island as hung; its exit follows as a crash."""
        self.hangs += 1

    def due(self, now: float) -> bool:
        """Waiting and its backoff delay has passed: start it now."""
        return self.state == "waiting" and now >= self.restart_at

    def exited(self, code: int, now: float, finished: bool) -> Decision:
        """The current incarnation exited with `code` (negative: killed by that signal)."""
        p = self.policy
        self.last_exit = code
        uptime = now - self._started_at
        if code == 0 or code == EXIT_STOPPED:
            self.state = "finished" if finished else "stopped"
            self.reason = ("" if finished else "exited 0 before finishing (stopped on purpose)" if code == 0
                           else f"stopped by a signal before finishing ({describe_exit(code).split(' (')[0]})")
            return Decision(Action.DONE, reason=self.reason)
        if code in NO_RESTART:
            return self._fail(f"{describe_exit(code)} is not restarted")
        if uptime >= p.healthy_s:  # a long healthy run earns a fresh budget
            self.crashes.clear()
            self.start_failures = 0
        began = self._saw_beat or uptime >= p.start_threshold_s
        self.start_failures = 0 if began else self.start_failures + 1
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > p.window_s:
            self.crashes.popleft()
        if self.start_failures >= p.start_failures:
            return self._fail(f"{describe_exit(code)}: failed at start {self.start_failures} time(s) in a row")
        if len(self.crashes) > p.max_restarts:
            return self._fail(f"{describe_exit(code)}: crashed {len(self.crashes)} time(s) within "
                              f"{p.window_s:g} s (--max-restarts {p.max_restarts})")
        delay = self._backoff(len(self.crashes))
        self.state, self.restart_at = "waiting", now + delay
        self.reason = f"{describe_exit(code)} after {uptime:.1f} s"
        return Decision(Action.RESTART, delay, self.reason)

    def _backoff(self, n: int) -> float:
        """Equal jitter: half the capped exponential step, plus up to half again at random.

        Each step's smallest value is the previous step's largest, so delays never shrink
        while crashes repeat, yet restarts of many islands do not fall in step.
        """
        step = min(self.policy.backoff_cap_s, self.policy.backoff_s * 2.0 ** (n - 1))
        return step / 2 + self.rng.uniform(0.0, step / 2)

    def _fail(self, reason: str) -> Decision:
        self.state, self.reason = "failed", reason
        return Decision(Action.FAIL, reason=reason)

    def stopped(self, code: int) -> None:
        """The island exited while the launcher was stopping: never restarted."""
        self.last_exit = code
        if self.state not in ("finished", "failed"):
            self.state = "stopped"

    def snapshot(self) -> dict[str, object]:
        """Bookkeeping for the launcher state file."""
        return {"state": self.state, "restarts": self.restarts, "hangs": self.hangs,
                "start_failures": self.start_failures, "last_exit": self.last_exit, "reason": self.reason}
