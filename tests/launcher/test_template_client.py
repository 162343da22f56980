"""The launcher's end of the island template protocol (`launcher.template_client`) against a
template that misbehaves (`tests/support/fake_template.py`: it reports exits twice, with wrong
codes, and can be stopped), and the /proc view of its islands (`launcher.island_pids`).
"""
from __future__ import annotations

import os
import signal
import sys
import time

import psutil
import pytest

from launcher import template_client
from launcher.island_pids import ended, kill_group, start_ticks
from launcher.template_client import ForkServer
from support.procs import REPO, alive, child_env, wait_for

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the island template is Linux-only")]
ARGV = [sys.executable, "-m", "islands", "evolve", "island-00"]  # never run: the fake only sleeps


@pytest.fixture
def fake(monkeypatch):
    """A ForkServer whose template is the fake; its children and itself are killed at teardown."""
    monkeypatch.setattr(template_client, "TEMPLATE_MODULE", "fake_template")
    servers: list[ForkServer] = []

    def start(**env: str) -> ForkServer:
        servers.append(ForkServer(child_env(**env)))
        return servers[-1]

    yield start
    for server in servers:
        os.kill(server.proc.pid, signal.SIGCONT)
        for pid in list(server.live):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        server.close()


def spawn(server: ForkServer):
    return server.spawn(ARGV, child_env(), str(REPO), os.devnull, (), False)


def reports_done(server: ForkServer) -> bool:
    server.pump(0.05)
    return 0 in server.exits  # the fake's marker after its (duplicate) reports


def test_an_exit_code_the_launcher_has_is_never_changed_by_a_later_report(fake, monkeypatch):
    monkeypatch.setattr(template_client, "PING_EVERY_S", 3600.0)  # the fake reaps only when pinged
    server = fake()
    proc = spawn(server)
    assert proc.pgid == proc.pid and proc.poll() is None
    proc.kill()  # by the launcher itself: a zombie until the fake reaps it
    assert proc.wait(timeout=10) == -signal.SIGKILL  # from /proc, before any report
    monkeypatch.setattr(template_client, "PING_EVERY_S", 0.0)
    wait_for(lambda: reports_done(server), 10, "the fake's late reports (99, then 98)")
    assert proc.poll() == -signal.SIGKILL and server.exits[proc.pid] == -signal.SIGKILL


def test_the_first_report_of_an_exit_stands(fake):
    server = fake(FAKE_TEMPLATE_CODE="7")
    proc = spawn(server)
    proc.send_signal(signal.SIGTERM)  # through the fake, which reaps it at its next ping
    wait_for(lambda: reports_done(server), 10, "the fake's reports (7, then 98)")
    assert server.exits[proc.pid] == 7 and proc.poll() == 7 and proc.wait(timeout=1) == 7


def test_a_stopped_template_is_distrusted_and_its_undelivered_signals_are_sent_directly(fake, monkeypatch):
    monkeypatch.setattr(template_client, "ANSWER_TIMEOUT_S", 1.0)
    server = fake()
    proc = spawn(server)
    ticks = start_ticks(proc.pid)
    os.kill(server.proc.pid, signal.SIGSTOP)
    proc.send_signal(signal.SIGTERM)  # queued to a template that will never read it
    assert server.answering and ended(proc.pid, ticks) == (False, None)
    started = time.monotonic()
    wait_for(lambda: (server.pump(0.05), not server.answering)[1], 10, "the template distrusted")
    assert time.monotonic() - started < 5 and "no answer within 1 s" in server.hung
    assert proc.wait(timeout=10) == -signal.SIGTERM  # delivered by the launcher, read from /proc
    with pytest.raises(template_client.ForkServerError, match="not answering"):
        spawn(server)


def test_an_island_whose_spawn_reply_came_too_late_is_killed_not_left_running(fake, monkeypatch, tmp_path):
    """A spawn the launcher gave up on (no reply within ANSWER_TIMEOUT_S) has started an island
    nobody supervises; when the late reply names it, the launcher SIGKILLs its group."""
    monkeypatch.setattr(template_client, "ANSWER_TIMEOUT_S", 0.5)
    gate = tmp_path / "answer-now"
    server = fake(FAKE_TEMPLATE_HOLD_REPLY=str(gate))
    with pytest.raises(template_client.ForkServerError, match="no reply within"):
        spawn(server)
    assert not server.answering
    template = psutil.Process(server.proc.pid)
    wait_for(lambda: template.children(), 10, "the island the template forked")
    (island,) = template.children()
    created = island.create_time()
    try:
        gate.write_text("")  # the template answers at last
        wait_for(lambda: (server.pump(0.05), not alive(island.pid, created))[1], 10,
                 "the island named by the late reply to be killed")
    finally:
        if alive(island.pid, created):
            os.killpg(island.pid, signal.SIGKILL)


def test_island_pids_follow_one_process_and_never_signal_another(reaper):
    child = reaper.start([sys.executable, "-c", "import time; time.sleep(600)"])
    ticks = start_ticks(child.pid)
    assert ticks is not None and ended(child.pid, ticks) == (False, None)
    assert not kill_group(child.pid, child.pid, ticks + 1, signal.SIGKILL)  # another process's start time
    assert alive(child.pid) and ended(child.pid, ticks + 1) == (True, None)
    assert kill_group(child.pid, child.pid, ticks, signal.SIGTERM)
    wait_for(lambda: ended(child.pid, ticks)[0], 10, "the zombie")
    assert ended(child.pid, ticks) == (True, -signal.SIGTERM)  # a zombie: its code, unreaped
    assert child.wait(timeout=5) == -signal.SIGTERM
    assert ended(child.pid, ticks) == (True, None)  # reaped: gone, code unknown
    code = reaper.start([sys.executable, "-c", "import sys; sys.exit(75)"])
    wait_for(lambda: ended(code.pid, None)[0], 30, "exit 75")
    assert ended(code.pid, None) == (True, 75)


def test_a_request_longer_than_the_pipe_waits_for_a_template_that_reads(fake):
    server = fake()
    proc = server.spawn(ARGV, child_env(BIG="x" * 300_000), str(REPO), os.devnull, (), False)  # > 64 KiB pipe
    assert server.answering and proc.poll() is None
    proc.kill()
    assert proc.wait(timeout=10) == -signal.SIGKILL
