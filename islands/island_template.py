"""A pre-imported island template: imports torch and islands once, then forks each island.

Why: an island spends ~2.3 s of CPU importing torch and islands before its first generation;
20 islands on 2 cores spend their first ~25 s doing only that, and 40 short runs were
start-up-bound (README, "Start-up"). The launcher (which never imports torch itself) starts this
module once as `python -m islands.island_template`, with the islands' thread limits in its
environment, and asks it over a pipe for each island. Each forked island is still its own
process: its own process group, CPU affinity, parent-death signal (on this template, which
itself dies with the launcher), log file, environment, working directory and argv, and it
runs the same `islands evolve` entry point a fresh process runs (results are bit-identical:
tests/launcher/test_forkserver.py).

The protocol, one JSON object per line. Launcher -> template (our stdin):
  {"op": "spawn", "argv": [...], "env": {...}, "cwd": D, "log": PATH | {"run_dir": D, "island": I},
   "cores": [...], "pdeathsig": B,
   "stdin": PATH, "stderr": PATH}          argv: `python -m islands ...` or `-m islands.plancheck`;
                                           stdin /dev/null and stderr the log unless given
  {"op": "signal", "pid": P, "sig": S}     signal P's process group unless P was reaped already
  {"op": "ping", "n": N}                   answered at once, after every earlier request
Template -> launcher (our stdout):
  {"op": "ready", "pid": P, "threads": T}  once imported (T: the template's OS threads, 1)
  {"op": "spawned", "pid": P, "pgid": P} | {"op": "spawned", "error": "..."}  one per spawn, in order;
                                           pgid: P leads its own process group (made before this
                                           reply), null if it could not
  {"op": "pong", "n": N}
  {"op": "exit", "pid": P, "code": C}      C as subprocess reports it (negative: a signal), once per pid
Only this template reaps its children, and it handles requests one at a time, so a signal
request for a reaped pid is dropped and never reaches a stranger that reused the pid. The
launcher knows each island's pid and group, so it can kill them itself (an island it has not
seen reported cannot have been reaped) and watch them when the template stops answering its
pings (stopped, hung). On EOF (the launcher closed the pipe or died) it SIGKILLs whatever
children remain (those spawned with a parent-death signal: all but a test's) and exits.

Before forking no torch thread pool may exist (fork copies only the calling thread): the
template sets one intra-op and one inter-op thread and runs no torch operation; "ready"
reports its thread count so the launcher can refuse a template that has more than one.
"""
from __future__ import annotations

import atexit
import ctypes
import importlib
import json
import os
import random
import selectors
import signal
import sys
import traceback
from typing import Any

from islands.threads import limit_env

limit_env()  # before torch loads (the launcher already set them; a direct run is safe too)

# What an island imports before its first generation (checked with sys.modules after a run).
PRELOAD = ("torch", "numpy.ma", "numpy.random", "islands.cli", "islands.island", "islands.runs", "islands.migration",
           "islands.checkpoint", "islands.plancheck", "islands.operators", "islands.algorithms",
           "islands.algorithms.vector", "islands.algorithms.ga", "islands.algorithms.cmaes", "islands.algorithms.de",
           "islands.algorithms.es", "islands.problems", "islands.status.record", "islands.policies")


def preload() -> None:
    """Import what every island needs before its first generation, and pin torch to one thread."""
    for name in PRELOAD:
        importlib.import_module(name)
    from islands.island import limit_torch_threads  # lazy: loads torch, after main() moved the protocol off fd 1

    limit_torch_threads()


_PRCTL: Any = None
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _arm_pdeathsig(parent: int) -> None:
    """SIGKILL this child when the template dies (the template dies with the launcher)."""
    if _PRCTL(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL), ctypes.c_ulong(0), ctypes.c_ulong(0),
              ctypes.c_ulong(0)) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the template died between fork and prctl
        os.kill(os.getpid(), signal.SIGKILL)


def set_cmdline(argv: list[str]) -> bool:
    """Make /proc/PID/cmdline (ps, psutil, pgrep -f) show the island's own command line.

    The kernel reads it from the process's original argv area; the launcher pads the
    template's argv so every island's fits there (trailing NULs show as empty arguments).
    """
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # fields 48 and 49: arg_start, arg_end
    except (OSError, IndexError, ValueError):
        return False
    data = b"\0".join(a.encode() for a in argv) + b"\0"
    if not 0 < len(data) <= end - start:
        return False
    ctypes.memmove(start, data + b"\0" * (end - start - len(data)), end - start)
    return True


def os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _child(req: dict[str, Any], keep: tuple[int, ...]) -> None:
    """In the forked child: become the island described by `req`, then exit (never returns)."""
    code = 1
    try:
        os.setpgid(0, 0)
        for s in (signal.SIGCHLD, signal.SIGTERM, signal.SIGPIPE, signal.SIGUSR1, signal.SIGHUP):
            signal.signal(s, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.set_wakeup_fd(-1)
        if req.get("pdeathsig") and _PRCTL is not None:
            _arm_pdeathsig(int(req["parent"]))
        if req.get("cores") and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, req["cores"])
        for fd in keep:
            os.close(fd)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        log = req["log"]
        if isinstance(log, dict):  # an island's log: opened by its run directory's owner
            from migration_pool.rundir import RunDir  # lazy: preloaded (islands.runs), see main()

            with RunDir(log["run_dir"]).island(log["island"]).open_log() as f:
                os.dup2(f.fileno(), 1)
            log = None
        for fd, path, mode in ((0, req.get("stdin") or os.devnull, os.O_RDONLY), (1, log, flags),
                               (2, req.get("stderr") or log, flags)):
            if fd == 2 and path is None:
                os.dup2(1, 2)
            elif path is not None:
                new = os.open(path, mode, 0o644)
                os.dup2(new, fd)
                os.close(new)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        module, args = req["argv"][2], list(req["argv"])[3:]  # [python, -m, MODULE, ...]: checked before forking
        sys.argv = [sys.modules["islands.__main__"].__file__ if "islands.__main__" in sys.modules else "islands", *args]
        if sys.path and sys.path[0] == req.get("template_cwd"):
            sys.path[0] = req["cwd"]  # as `python -m` would have set it
        set_cmdline(list(req["argv"]))
        random.seed()  # a fresh process seeds these from the OS; islands use explicit generators,
        sys.modules["numpy.random"].seed()  # but a plug-in problem may draw from the global ones
        try:
            if module == "islands.plancheck":
                from islands.plancheck import main as check  # lazy: preloaded, see main()

                code = check()
            else:
                from islands.cli import main  # lazy: preloaded, see main()

                main(args=args, prog_name="islands")
                code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except KeyboardInterrupt:
            code = 128 + signal.SIGINT
        atexit._run_exitfuncs()
    except BaseException:  # noqa: BLE001 - whatever happened, the child must not return into the template
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code & 0xFF)


def _own_group(pid: int) -> int | None:
    """Make the forked child `pid` leader of its own process group now (it does so itself too;
    whichever runs first wins), so its group exists before the launcher hears of it. None if
    it is not (the launcher then signals the pid alone, never a group it does not know)."""
    try:
        os.setpgid(pid, pid)
    except OSError:  # it ran setpgid itself already, or exited (a zombie keeps its group)
        pass
    try:
        return pid if os.getpgid(pid) == pid else None
    except OSError:
        return None


def _exit_code(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def serve(inp: int = 0, out: int = 1) -> None:
    """Answer spawn and signal requests on `inp` until EOF; report exits on `out`."""
    live: dict[int, bool] = {}  # pid -> whether it dies with the launcher (its parent-death signal)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launcher stops islands itself
    # A signal to the whole job (scancel, a time limit, systemd) must reach the islands, not
    # end the template: its islands die with it (parent-death signal) before they checkpoint.
    # It ends when the launcher closes its pipe.
    for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    sel = selectors.DefaultSelector()
    sel.register(inp, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    keep = (inp, out, wake_r, wake_w, sel.fileno())
    buf = b""

    def send(msg: dict[str, Any]) -> None:
        os.write(out, (json.dumps(msg) + "\n").encode())

    def reap() -> None:
        for pid in list(live):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del live[pid]
                send({"op": "exit", "pid": pid, "code": _exit_code(status)})

    send({"op": "ready", "pid": os.getpid(), "threads": os_threads()})
    eof = False
    while not eof:
        for key, _ in sel.select(timeout=1.0):
            if key.fd == wake_r:
                try:
                    os.read(wake_r, 4096)
                except BlockingIOError:
                    pass
                continue
            chunk = os.read(inp, 65536)
            eof = not chunk
            buf += chunk
        reap()
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            req = json.loads(line)
            if req["op"] == "spawn" and (list(req["argv"])[1:2] != ["-m"] or req["argv"][2:3] not in (["islands"], ["islands.plancheck"])):
                send({"op": "spawned", "error": "the template runs only `python -m islands ...` and islands.plancheck"})
            elif req["op"] == "spawn":
                req["parent"], req["template_cwd"] = os.getpid(), os.getcwd()
                sys.stdout.flush()
                sys.stderr.flush()
                try:
                    pid = os.fork()
                except OSError as e:
                    send({"op": "spawned", "error": str(e)})
                    continue
                if pid == 0:
                    _child(req, keep)
                live[pid] = bool(req.get("pdeathsig"))
                send({"op": "spawned", "pid": pid, "pgid": _own_group(pid)})
            elif req["op"] == "ping":
                send({"op": "pong", "n": req.get("n")})
            elif req["op"] == "signal" and req["pid"] in live:
                try:
                    os.killpg(req["pid"], req["sig"])
                except ProcessLookupError:
                    pass
                except PermissionError:  # setpgid failed? the process itself, then
                    os.kill(req["pid"], req["sig"])
    # The launcher is gone: nothing supervises these islands any more. Those spawned with a
    # parent-death signal die now (as they would with the launcher); the others (only where a
    # test disabled the guard) are left running, orphans, as spawned islands would be.
    doomed = [pid for pid, dies in live.items() if dies]
    for pid in doomed:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in doomed:
        os.waitpid(pid, 0)


def main() -> None:
    """Protocol on private copies of stdin/stdout; fd 1 becomes stderr, so a stray print or
    warning (from an import, or an island before it redirects) never corrupts the protocol."""
    global _PRCTL
    inp, out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    if sys.platform.startswith("linux"):
        _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
    preload()
    serve(inp, out)
    os._exit(0)  # skip tearing torch down: seconds on a loaded machine, and nothing to flush


if __name__ == "__main__":
    main()
