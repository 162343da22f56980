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
import subprocess
import sys
import tempfile
import time
from typing import Any, Mapping, Sequence

from islands.config import island_id
from launcher.child_setup import child_command, child_env, pdeathsig_wanted, preexec

NO_FORK_SERVER_ENV = "ISLANDS_NO_FORK_SERVER"
READY_TIMEOUT_S = 300.0  # imports on a loaded machine; the first island waits for them anyway


class ForkServerError(OSError):
    """The template could not start, or died: spawn islands the usual way instead."""


def fork_server_wanted(env: Mapping[str, str] = os.environ) -> bool:
    return sys.platform.startswith("linux") and env.get(NO_FORK_SERVER_ENV, "") in ("", "0")


class ForkServer:
    """One template process and the exit codes it reported, by pid."""

    def __init__(self, env: Mapping[str, str], preexec: Any = None, argv_room: int = 0) -> None:
        """`argv_room`: bytes of the longest island command line, so that each forked island
        can show its own in ps (the kernel reads it from the template's argv area)."""
        self._err = tempfile.TemporaryFile()
        cmd = [sys.executable, "-m", "islands.island_template"]
        used = sum(len(os.fsencode(a)) + 1 for a in cmd)
        cmd.append("." * max(1, argv_room - used - 1))  # padding, ignored by the template
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, env=dict(env), close_fds=True,
                                     start_new_session=preexec is None, preexec_fn=preexec)
        self._out = self.proc.stdout.fileno()  # type: ignore[union-attr]
        os.set_blocking(self._out, False)
        self._buf = b""
        self._replies: list[dict[str, Any]] = []
        self.exits: dict[int, int] = {}
        self.live: set[int] = set()
        self.ready: dict[str, Any] | None = None
        self.dead = False

    # -- talking --------------------------------------------------------------------------
    def pump(self, timeout: float = 0.0) -> None:
        """Read whatever the template said (waiting up to `timeout` s for something)."""
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
            msg = json.loads(line)
            if msg["op"] == "exit":
                self.exits[msg["pid"]] = msg["code"]
                self.live.discard(msg["pid"])
            elif msg["op"] == "ready":
                self.ready = msg
            else:
                self._replies.append(msg)

    def _died(self) -> None:
        """The template is gone: its islands died with it (parent-death signal), as SIGKILL."""
        self.dead = True
        for pid in self.live:
            self.exits.setdefault(pid, -9)
        self.live.clear()

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())  # type: ignore[union-attr]
            self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError) as e:
            self._died()
            raise ForkServerError(f"island template gone ({e})") from None

    def _wait_for(self, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.dead and (self.ready is None if what == "ready" else not self._replies):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ForkServerError(f"island template: no {what} within {timeout:g} s")
            self.pump(min(left, 1.0))
        if self.dead:
            raise ForkServerError(f"island template exited {self.proc.wait()}: {self.error_tail()}")

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
        self._wait_for("ready", READY_TIMEOUT_S)
        if (self.ready or {}).get("threads", 1) != 1:
            raise ForkServerError(f"island template runs {self.ready['threads']} threads; forking it is unsafe")  # type: ignore[index]
        self._send({"op": "spawn", "argv": list(argv), "env": dict(env), "cwd": cwd, "log": log if isinstance(log, str) else dict(log),
                    "cores": list(cores), "pdeathsig": pdeathsig, "stdin": stdin, "stderr": stderr})
        self._wait_for("reply", 60.0)
        reply = self._replies.pop(0)
        if "error" in reply:
            raise ForkServerError(reply["error"])
        self.live.add(reply["pid"])
        return ForkedProc(self, reply["pid"], list(argv))

    def signal(self, pid: int, sig: int) -> None:
        if pid in self.live and not self.dead:
            try:
                self._send({"op": "signal", "pid": pid, "sig": int(sig)})
            except ForkServerError:
                pass

    def close(self) -> None:
        """Close the pipe: the template SIGKILLs any island left and exits (idempotent).

        A template still importing is killed at once (an early error must not wait for it)."""
        if self.proc.returncode is not None:
            return
        self.pump()
        if self.ready is None:
            self.proc.kill()
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
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
    """An island forked by the template, with the Popen methods that supervision uses."""

    def __init__(self, server: ForkServer, pid: int, args: list[str]) -> None:
        self.server, self.pid, self.args = server, pid, args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.server.pump()
            self.returncode = self.server.exits.pop(self.pid, None)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            self.server.pump(0.1)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        """Signal the island's process group, through the template (which reaps it)."""
        if self.poll() is None:
            self.server.signal(self.pid, sig)
