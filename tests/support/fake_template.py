"""A stand-in for `islands.island_template` that speaks its protocol but reports exits wrongly.

Tests of the launcher's end (`launcher.template_client`) start it in the template's place
(`TEMPLATE_MODULE`). Each spawn forks a child that sleeps in its own process group; a signal
request signals that group. Children are reaped only when a ping comes, and each exit is then
reported twice, first with `FAKE_TEMPLATE_CODE` (default 99: wrong unless the launcher knew
nothing else) and again with 98, followed by an exit report for pid 0 (a marker a test can wait for).
With FAKE_TEMPLATE_HOLD_REPLY set to a path, the reply to a spawn (after the fork) waits until
that file exists: a template too slow to answer, whose late reply the launcher must handle.
"""
from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    out = sys.stdout.buffer
    children: list[int] = []

    def send(msg: dict) -> None:
        out.write((json.dumps(msg) + "\n").encode())
        out.flush()

    send({"op": "ready", "pid": os.getpid(), "threads": 1})
    for line in sys.stdin.buffer:
        req = json.loads(line)
        if req["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                os.setpgid(0, 0)
                time.sleep(600)
                os._exit(0)
            os.setpgid(pid, pid)
            children.append(pid)
            gate = os.environ.get("FAKE_TEMPLATE_HOLD_REPLY")
            while gate and not os.path.exists(gate):
                time.sleep(0.01)  # the scenario: a template that answers only once the test says so
            send({"op": "spawned", "pid": pid, "pgid": pid})
        elif req["op"] == "signal":
            os.killpg(req["pid"], req["sig"])
        elif req["op"] == "ping":
            for pid in list(children):
                done, _status = os.waitpid(pid, os.WNOHANG)
                if done:
                    children.remove(pid)
                    send({"op": "exit", "pid": pid, "code": int(os.environ.get("FAKE_TEMPLATE_CODE", "99"))})
                    send({"op": "exit", "pid": pid, "code": 98})
                    send({"op": "exit", "pid": 0, "code": 0})
            send({"op": "pong", "n": req["n"]})


if __name__ == "__main__":
    main()
