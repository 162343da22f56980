"""The launcher's end of the island template (`islands.island_template`): start it, ask it for islands.

The template is a separate process (the launcher never imports torch) that has imported torch
and islands once; each island is forked from it instead of importing them again, which on 2
cores turned 20 islands' ~25 s of start-up into ~1 s (README, "Start-up"). The islands it
forks are supervised like spawned ones: `ForkedProc` offers the part of `subprocess.Popen`
that `launcher.spawn.Child` and the session use (pid, poll, wait, send_signal), its exit
codes come from the template (their parent) over the pipe, and signals go through the
template, which alone reaps them and so never signals a reused pid.

Disable with `islands launch --no-fork-server` or ISLANDS_NO_FORK_SERVER=1; islands with a
GPU are always spawned fresh (CUDA is initialised per process).
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Mapping, Sequence

from islands.config import island_id
from launcher.child_setup import child_command, child_env, pdeathsig_wanted, preexec
from launcher.island_pids import KILLED, ended, kill_group, start_ticks

NO_FORK_SERVER_ENV = "ISLANDS_NO_FORK_SERVER"
READY_TIMEOUT_S = 300.0  # imports on a loaded machine; the first island waits for them anyway
ANSWER_TIMEOUT_S = 10.0  # a ready template that leaves a ping or a spawn unanswered this long is not trusted
PING_EVERY_S = 1.0
WAIT_TICK_S = 0.2  # how often a wait for the template calls its `tick`
TEMPLATE_MODULE = "islands.island_template"


class ForkServerError(OSError):
    """The template could not start, died or stopped answering: spawn islands the usual way instead."""


def fork_server_wanted(env: Mapping[str, str] = os.environ) -> bool:
    return sys.platform.startswith("linux") and env.get(NO_FORK_SERVER_ENV, "") in ("", "0")


class ForkServer:
    """One template process, the islands it forked and the exit codes it reported, by pid.

    Once ready, the template is pinged every PING_EVERY_S; one that leaves a ping or a spawn
    unanswered for ANSWER_TIMEOUT_S (stopped, hung) is no longer trusted (`answering` is
    False): nothing more is sent to it, the signals it may not have delivered are sent by the
    launcher itself, and its islands are watched through /proc (`launcher.island_pids`).
    """

    def __init__(self, env: Mapping[str, str], preexec: Any = None, argv_room: int = 0) -> None:
        """`argv_room`: bytes of the longest island command line, so that each forked island
        can show its own in ps (the kernel reads it from the template's argv area)."""
        self._err = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", TEMPLATE_MODULE]
        used = sum(len(os.fsencode(a)) + 1 for a in cmd)
        cmd.append("." * max(1, argv_room - used - 1))  # padding, ignored by the template
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, env=dict(env), close_fds=True,
                                     start_new_session=preexec is None, preexec_fn=preexec)
        self._out = self.proc.stdout.fileno()  # type: ignore[union-attr]
        self._in = self.proc.stdin.fileno()  # type: ignore[union-attr]
        os.set_blocking(self._out, False)
        os.set_blocking(self._in, False)  # a template that stops reading must not block the launcher
        self._buf = b""
        self._replies: list[dict[str, Any]] = []
        self.exits: dict[int, int] = {}  # the first code reported for a pid stands
        self.live: dict[int, ForkedProc] = {}
        self.ready: dict[str, Any] | None = None
        self.dead = False
        self.hung = ""  # why the template is no longer trusted ("" while it answers)
        self._ping = 0  # the number of the last ping sent
        self._ping_at: float | None = None  # when that ping was sent, while unanswered
        self._answered_at = time.monotonic()
        self._unconfirmed: list[tuple[int, int, int]] = []  # (last ping before it, pid, signal)
        self._abandoned = 0  # spawns given up on: an island a late reply names is killed

    @property
    def answering(self) -> bool:
        return not self.dead and not self.hung

    # -- talking --------------------------------------------------------------------------
    def pump(self, timeout: float = 0.0) -> None:
        """Read whatever the template said (waiting up to `timeout` s for something), and
        ping it or stop trusting it (see the class docstring)."""
        if self.dead:
            return
        if timeout > 0:
            select.select([self._out], [], [], timeout)
        while True:
            try:
                chunk = os.read(self._out, 65536)
            except BlockingIOError:
                break
            if not chunk:
                self._died()
                break
            self._buf += chunk
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self._take(json.loads(line))
        self._check_answering()

    def _take(self, msg: dict[str, Any]) -> None:
        if msg["op"] == "exit":
            self.reported(msg["pid"], msg["code"])
        elif msg["op"] == "ready":
            self.ready, self._answered_at = msg, time.monotonic()
        elif msg["op"] == "pong":
            if msg.get("n") == self._ping:
                self._ping_at, self._answered_at = None, time.monotonic()
                self._unconfirmed = [u for u in self._unconfirmed if u[0] >= self._ping]
        elif self._abandoned:  # the reply to a spawn given up on: that island must not run
            self._abandoned -= 1
            if "pid" in msg:
                kill_group(msg.get("pgid"), msg["pid"], None, signal.SIGKILL)
        else:
            self._replies.append(msg)

    def reported(self, pid: int, code: int) -> int:
        """Record the exit `code` of `pid` unless one was recorded already; returns the one that stands."""
        code = self.exits.setdefault(pid, code)
        self.live.pop(pid, None)
        return code

    def _check_answering(self) -> None:
        if self.ready is None or not self.answering:
            return  # before "ready" the template is importing: READY_TIMEOUT_S applies
        now = time.monotonic()
        if self._ping_at is None and now - self._answered_at >= PING_EVERY_S:
            self._ping += 1
            self._ping_at = now
            self._send({"op": "ping", "n": self._ping}, raising=False)
        elif self._ping_at is not None and now - self._ping_at > ANSWER_TIMEOUT_S:
            self._distrust(f"no answer within {ANSWER_TIMEOUT_S:g} s")

    def _distrust(self, why: str) -> None:
        """Stop trusting the template: deliver the signals it may not have delivered ourselves."""
        self.hung = self.hung or why
        unconfirmed, self._unconfirmed = self._unconfirmed, []
        for _, pid, sig in unconfirmed:
            proc = self.live.get(pid)
            if proc is not None:
                proc.send_signal(sig)

    def _died(self) -> None:
        """The template is gone; its islands (dead with it, by their parent-death signal) are
        watched through /proc from now on."""
        self.dead = True
        self._unconfirmed.clear()

    def _send(self, msg: dict[str, Any], raising: bool = True) -> None:
        data = (json.dumps(msg) + "\n").encode()
        try:
            while data:
                try:
                    data = data[os.write(self._in, data):]
                except BlockingIOError:  # a pipe full of what it has not read yet: give it time
                    if not select.select([], [self._in], [], ANSWER_TIMEOUT_S)[1]:
                        raise
        except BlockingIOError:
            self._distrust("it stopped reading its requests")  # a truncated line: never send again
        except (BrokenPipeError, OSError) as e:
            self._died()
            if raising:
                raise ForkServerError(f"island template gone ({e})") from None
        if raising and not self.answering:
            raise ForkServerError(f"island template not answering ({self.hung})")

    def _wait_for(self, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.answering and (self.ready is None if what == "ready" else not self._replies):
            left = deadline - time.monotonic()
            if left <= 0:
                if what != "ready":
                    self._abandoned += 1
                    self._distrust(f"no {what} within {timeout:g} s")
                raise ForkServerError(f"island template: no {what} within {timeout:g} s")
            self.pump(min(left, 1.0))
        if self.dead:
            raise ForkServerError(f"island template exited {self.proc.wait()}: {self.error_tail()}")
        if self.hung:
            raise ForkServerError(f"island template not answering ({self.hung})")

    def wait_ready(self, tick: Callable[[], None], timeout: float = READY_TIMEOUT_S) -> None:
        """Wait (up to `timeout` s) until the template has imported torch, calling `tick` about
        every WAIT_TICK_S so that the launcher's screen says what it waits for; errors are left
        to `spawn`, which follows."""
        deadline = time.monotonic() + timeout
        while self.ready is None and self.answering and time.monotonic() < deadline:
            self.pump(WAIT_TICK_S)
            tick()

    def error_tail(self) -> str:
        self._err.seek(0)
        lines = self._err.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    # -- the launcher's requests ------------------------------------------------------------
    def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: str, log: str | Mapping[str, str],
              cores: Sequence[int], pdeathsig: bool, stdin: str | None = None, stderr: str | None = None) -> "ForkedProc":
        """Fork one island (or the plan check); raises ForkServerError if the template cannot.

        `log` (stdout, and stderr unless `stderr` is given) is a path, or {"run_dir", "island"}
        for an island's log, which the child opens through `IslandFiles.open_log`."""
        self.pump()
        if self.dead:
            raise ForkServerError(f"island template exited ({self.error_tail()})")
        if self.hung:
            raise ForkServerError(f"island template not answering ({self.hung})")
        self._wait_for("ready", READY_TIMEOUT_S)
        if (self.ready or {}).get("threads", 1) != 1:
            raise ForkServerError(f"island template runs {self.ready['threads']} threads; forking it is unsafe")  # type: ignore[index]
        self._send({"op": "spawn", "argv": list(argv), "env": dict(env), "cwd": cwd, "log": log if isinstance(log, str) else dict(log),
                    "cores": list(cores), "pdeathsig": pdeathsig, "stdin": stdin, "stderr": stderr})
        self._wait_for("reply", ANSWER_TIMEOUT_S)
        reply = self._replies.pop(0)
        if "error" in reply:
            raise ForkServerError(reply["error"])
        proc = ForkedProc(self, reply["pid"], list(argv), reply.get("pgid"))
        if reply["pid"] not in self.exits:
            self.live[reply["pid"]] = proc
        return proc

    def signal(self, pid: int, sig: int) -> None:
        """Ask the template to signal `pid`'s group (dropped if it reaped `pid` already)."""
        if pid in self.live and self.answering:
            self._unconfirmed.append((self._ping, pid, int(sig)))
            self._send({"op": "signal", "pid": pid, "sig": int(sig)}, raising=False)

    def close(self) -> None:
        """End the template (idempotent). With no island left it is killed at once; else its
        pipe is closed and it SIGKILLs the islands left, then exits (bounded: then killed)."""
        if self.proc.returncode is not None:
            return
        self.pump()
        if self.ready is None or not self.answering or not self.live:
            self.proc.kill()
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self.proc.wait(timeout=ANSWER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.pump()
        self._died()
        self.proc.stdout.close()  # type: ignore[union-attr]
        self._err.close()


def start_template(rundir: Any, n_islands: int, device: str | None) -> ForkServer | None:
    """The island template for a launch of up to `n_islands` islands; None if it cannot start.

    Its argv is padded to fit the islands' command lines, so that ps shows each forked
    island's own; it dies with the launcher (parent-death signal) unless a test disabled that.
    """
    room = max(sum(len(os.fsencode(a)) + 1 for a in child_command(i, rundir.root, device or "cpu"))
               for i in (island_id(0), island_id(max(n_islands, 1) - 1)))
    try:
        return ForkServer(child_env(os.environ), preexec(os.getpid(), (), pdeathsig_wanted()), room)
    except (OSError, subprocess.SubprocessError):
        return None  # islands start as fresh processes


class ForkedProc:
    """An island forked by the template, with the Popen methods that supervision uses.

    Its exit code is the template's report; while the template is not answering (or gone),
    or once the island is a zombie, the kernel's (/proc), so a stopped template cannot hide an
    island's death. The first code found stands.
    """

    def __init__(self, server: ForkServer, pid: int, args: list[str], pgid: int | None = None) -> None:
        self.server, self.pid, self.args = server, pid, args
        self.pgid = pid if pgid == pid else None  # its own process group; None: the template could not make one
        self.ticks = start_ticks(pid)  # not reaped before the template reports it: still this island
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.server.pump()
            code = self.server.exits.get(self.pid)
            if code is None:
                gone, code = ended(self.pid, self.ticks)
                if gone and code is None and not self.server.answering:
                    code = KILLED  # reaped by someone else: how it ended is lost
            if code is not None:
                self.returncode = self.server.reported(self.pid, code)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            if self.server.answering:
                self.server.pump(0.1)
            else:
                time.sleep(0.05)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        """Signal the island's process group: through the template (which reaps it, so never
        signals a reused pid), or, when the template is not answering, directly."""
        if self.poll() is not None:
            return
        if self.server.answering:
            self.server.signal(self.pid, sig)  # if that finds it not answering, the signal is sent directly
        else:
            kill_group(self.pgid, self.pid, self.ticks, sig)

    def kill(self) -> None:
        """SIGKILL the island's process group ourselves (past the grace period: not through a
        template that may not answer). Its pid cannot have been reused while it is unreaped."""
        if self.poll() is None:
            kill_group(self.pgid, self.pid, self.ticks, signal.SIGKILL)
