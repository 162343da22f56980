"""The island claim's lease: who runs an island, where, and since when it last said so.

The claim is first a `flock` on `islands/<id>/.claim`: the kernel releases it when the holder
dies, and on one host (or on a filesystem whose locks reach every host) it alone keeps a second
copy of an island out. Where flock is node-local or absent (NFS `nolock`, Lustre `localflock`,
see `migration_pool.fsinfo`), a copy started on another host would take it too. So the holder
also keeps a lease, `islands/<id>/lease.isld` (envelope "lease", written atomically): its host,
pid, scheduler job id, and a heartbeat renewed with the island's status. A claimer refuses
the island while another host's lease is fresh, and takes a stale one over with a notice.

The lease lives beside the flock file, not in it: the lock file cannot be replaced atomically
without breaking the flock (a new inode is a new lock), and a lease rewritten in place could be
read half-written. Freshness is judged from times written inside the lease (the holder's
clock) against the reader's clock, never from file mtimes, which another host's client may
cache; clocks of a cluster's hosts are assumed to agree within a few seconds (NTP), far less
than LEASE_TTL_S, so a heartbeat further ahead of the reader's clock than that is garbage and
the lease stale.

On one host the flock decides, never the lease: a claimer that got the flock takes a lease of
this host whatever it says (its holder is gone, or it was forged), and a holder whose flock
still guards the claim file rewrites a lease of this host that names someone else. Only when
the claim file was replaced (unlinked and created anew, so that a second process could flock the
new inode) does a holder yield, and only to a lease of this host whose pid is alive.
"""
from __future__ import annotations

import math
import os
import secrets
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

from migration_pool.errors import FormatError, IslandBusy

LEASE_FILE = "lease.isld"
MAX_LEASE_BYTES = 64 * 1024  # a lease is ~200 bytes: a bigger file is refused unread
LEASE_TTL_S = 60.0  # a lease not renewed for this long (or 4x the holder's longest gap) is stale
REFRESH_S = 5.0  # the holder rewrites its lease at most this often
MAX_TTL_S = 24 * 3600.0  # a lease's own ttl is capped: a hostile one must not block forever
STRETCH = 4.0  # a slow island's ttl covers this many of its longest gaps between renewals
MAX_AHEAD_S = LEASE_TTL_S  # a heartbeat further ahead of the reader's clock is no skew: stale
REUSE_SLACK_S = 2.0  # clock rounding between psutil's create_time and time.time()
OUTWAIT_POLL_S = 1.0  # how often a claimer waiting on another host's lease reads it again
TAKEOVER_WAIT_S = LEASE_TTL_S + 2 * REFRESH_S  # how long a scheduler's task waits on such a lease


def pid_alive(pid: int, started: float | None = None) -> bool:
    """Whether `pid` on this host is still the process that started at `started` (Unix time).

    A pid alone proves little: the kernel hands a dead process's pid to a newer one, and a
    killed child stays a zombie until its parent reaps it. So a pid created after `started`, or
    a zombie, counts as not alive; without `started`, any live non-zombie process with that pid
    does. A process that exists but is not ours to inspect counts as alive.
    """
    import psutil  # lazy: every island, `islands status` and `runs` import this module; few ever ask a pid
    if pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, OverflowError):
        return False
    except psutil.AccessDenied:
        return True
    return started is None or created <= started + REUSE_SLACK_S


def this_host() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class Lease:
    """One holder's lease. `heartbeat` and `started` are the holder's Unix times; `ttl` is
    how long after `heartbeat` the holder promises to have renewed it; `token` tells this
    holder's lease from a successor's on the same host and pid."""

    island: str
    host: str
    pid: int
    job_id: str | None
    started: float
    heartbeat: float
    ttl: float
    token: str
    beat: int = 0

    def to_body(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_body(cls, body: Any) -> Lease | None:
        """Tolerant: None for a body without a usable host, pid, heartbeat or token; other
        missing or ill-typed fields take defaults; the ttl is clipped to [0, MAX_TTL_S]."""
        if not isinstance(body, Mapping):
            return None
        host, pid, beat, token = body.get("host"), body.get("pid"), body.get("heartbeat"), body.get("token")
        if not (isinstance(host, str) and host and isinstance(token, str) and _int(pid) is not None
                and _float(beat) is not None):
            return None
        ttl = _float(body.get("ttl"))
        job = body.get("job_id")
        return cls(island=str(body.get("island") or ""), host=host[:256], pid=_int(pid) or 0,
                   job_id=str(job)[:64] if isinstance(job, (str, int)) and not isinstance(job, bool) else None,
                   started=_float(body.get("started")) or 0.0, heartbeat=_float(beat) or 0.0,
                   ttl=min(max(ttl if ttl is not None else LEASE_TTL_S, 0.0), MAX_TTL_S),
                   token=token[:64], beat=_int(body.get("beat")) or 0)

    def age(self, now: float) -> float:
        return now - self.heartbeat

    def fresh(self, now: float) -> bool:
        """Renewed within its ttl. A heartbeat further in the future than the ttl, or than
        MAX_AHEAD_S whatever the ttl, is no clock skew but garbage, and counts as stale: a lease
        can block a claim for at most MAX_AHEAD_S + MAX_TTL_S."""
        return -min(self.ttl, MAX_AHEAD_S) <= self.age(now) <= self.ttl

    def alive_here(self) -> bool:
        """Names a live process of this host (this one included) which started no later than
        the lease says (`pid_alive`: a reused pid or a
        zombie is not the holder)."""
        return self.host == this_host() and pid_alive(self.pid, self.started)

    def describe(self, now: float) -> str:
        job = f", job {self.job_id}" if self.job_id else ""
        return f"host {self.host} (pid {self.pid}{job}; lease renewed {max(0.0, self.age(now)):.0f} s ago)"


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) and abs(x) < 2**63 else None


def _float(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class Claim:
    """A held island: the flock plus the lease. `refresh()` renews the lease (called with each
    status rewrite, acting at most every REFRESH_S); `release()` gives both up. `holds()` tells
    whether the flock still guards the claim file (False once that file was replaced)."""

    def __init__(self, lock: Any, lease: Lease, write: Callable[[Lease], None],
                 read: Callable[[], Lease | None], remove: Callable[[], None],
                 holds: Callable[[], bool] = lambda: True) -> None:
        self.lock, self.lease = lock, lease
        self._write, self._read, self._remove, self._holds = write, read, remove, holds
        self._renewed = time.monotonic()
        self._longest_gap = 0.0

    def refresh(self, force: bool = False) -> None:
        """Renew the lease (best effort: an I/O error waits for the next call).

        Raises:
            IslandBusy: the lease now names another live holder: a copy of this island that
                claimed it on a host whose flock did not see ours (its lease is fresh), or a
                live process of this host that flocked a replaced claim file: this copy must stop.
        """
        mono = time.monotonic()
        gap = mono - self._renewed
        if not force and gap < REFRESH_S:
            return
        self._longest_gap = max(self._longest_gap, gap)
        self.check()
        now = time.time()
        ttl = min(MAX_TTL_S, max(LEASE_TTL_S, STRETCH * self._longest_gap))
        lease = Lease(**{**self.lease.to_body(), "heartbeat": now, "ttl": ttl, "beat": self.lease.beat + 1})
        try:
            self._write(lease)
        except OSError:
            return
        self.lease, self._renewed = lease, mono

    def check(self) -> None:
        """Raise IslandBusy if the lease now names another holder that outranks this one (see
        `refresh`); read only. Called before the island's own files are written (its history,
        its checkpoint), so a copy that lost the island writes none of them after the takeover
        it can see (an unreadable lease counts as still ours)."""
        try:
            current = self._read()
        except OSError:
            return
        now = time.time()
        if current is not None and current.token != self.lease.token and self._taken(current, now):
            raise IslandBusy(f"{self.lease.island} was claimed meanwhile by {current.describe(now)}; "
                             "stopping this copy")

    def _taken(self, current: Lease, now: float) -> bool:
        """Whether `current`, a lease not ours, names a holder that outranks this one."""
        if current.host != this_host():
            return current.fresh(now)
        return not self._holds() and current.alive_here()  # on one host the flock decides

    def release(self) -> None:
        """Remove the lease if it is still ours, then release the flock."""
        try:
            current = self._read()
            if current is not None and current.token == self.lease.token:
                self._remove()
        except OSError:
            pass
        finally:
            self.lock.release()


def take(island: str, lock: Any, *, job_id: str | None, warn: Callable[[str], None],
         read: Callable[[], Lease | None], write: Callable[[Lease], None],
         remove: Callable[[], None], holds: Callable[[], bool] = lambda: True,
         wait_s: float = 0.0) -> Claim:
    """Take the lease of `island`, whose flock `lock` the caller holds; see the module docstring.
    `holds` tells the claim later whether that flock still guards the claim file.

    A fresh lease of another host that names this process's own scheduler task (`job_id`) is
    a crashed or lost earlier run of the same task, started again by the scheduler, which runs
    one copy of a task at a time: it is taken over at once. Any other fresh lease of another
    host is waited on for up to `wait_s` seconds (a replacement started by a scheduler before
    the lease of a crashed holder went stale): taken over once it goes stale, refused as soon
    as its holder renews it (that holder lives).

    Raises:
        IslandBusy: another host's lease is fresh, or another claimer wrote its lease between
            this one's write and its read-back.
    """
    now = time.time()
    try:
        held = read()
    except FormatError as e:
        held = None
        warn(f"{island}: replacing an unreadable lease ({e})")
    if held is not None and held.host != this_host():
        if held.fresh(now) and job_id is not None and held.job_id == job_id:
            warn(f"{island}: taking over the lease of {held.describe(now)}: the same scheduler task, "
                 "started again (the scheduler runs one copy of a task at a time)")
        else:
            if held.fresh(now) and wait_s > 0:
                held = _outwait(island, held, read, wait_s, warn)
            if held is not None and held.fresh(time.time()):
                now = time.time()
                raise IslandBusy(f"{island} is already running on {held.describe(now)}; stop it first, or "
                                 f"wait {max(0.0, held.ttl - held.age(now)):.0f} s for its lease to go stale "
                                 "if that host is down")
            if held is not None:
                warn(f"{island}: taking over the stale lease of {held.describe(time.time())}")
    elif held is not None and held.fresh(now) and held.alive_here():
        warn(f"{island}: its lease names pid {held.pid} of this host, which runs, but the claim was free: "
             "taking it (on one host the flock decides; that process, if it is a copy, stops)")
    mine = new_lease(island, job_id)
    write(mine)
    try:
        back = read()
    except FormatError:
        back = None
    if back is not None and back.token != mine.token and (back.host != this_host() or not holds()):
        raise IslandBusy(f"{island} was claimed at the same moment by {back.describe(time.time())}")
    return Claim(lock, mine, write, _quiet(read), remove, holds)


def _outwait(island: str, held: Lease, read: Callable[[], Lease | None], wait_s: float,
             warn: Callable[[str], None]) -> Lease | None:
    """Watch `held` until it goes stale (returned, to be taken over), its holder renews or
    replaces it (returned: still fresh, refused) or `wait_s` runs out (returned as it is)."""
    now = time.time()
    wait = min(wait_s, max(0.0, held.ttl - held.age(now)) + 1.0)
    warn(f"{island}: its lease names {held.describe(now)}; waiting up to {wait:.0f} s for it to be renewed "
         "(the holder lives: refused) or to go stale (the holder is gone: taken over)")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(min(OUTWAIT_POLL_S, max(0.0, deadline - time.monotonic())))
        try:
            current = read()
        except FormatError:
            current = None
        if current is None:
            return None  # removed (its holder released it) or unreadable: nobody to wait for
        if (current.token, current.heartbeat, current.beat) != (held.token, held.heartbeat, held.beat):
            return current  # renewed or replaced: its holder lives
        if not current.fresh(time.time()):
            return current
    return held


def _quiet(read: Callable[[], Lease | None]) -> Callable[[], Lease | None]:
    """`read`, with a corrupt lease read as none (the holder then rewrites it)."""
    def reader() -> Lease | None:
        try:
            return read()
        except FormatError:
            return None

    return reader


def new_lease(island: str, job_id: str | None) -> Lease:
    now = time.time()
    return Lease(island=island, host=this_host(), pid=os.getpid(), job_id=job_id, started=now,
                 heartbeat=now, ttl=LEASE_TTL_S, token=secrets.token_hex(8))


def scheduler_job_id(environ: Mapping[str, str] | None = None) -> str | None:
    """The SLURM job of this process: `ARRAYJOB_TASK` for an array task, else the job id."""
    env = os.environ if environ is None else environ
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return env.get("SLURM_JOB_ID") or None
