"""Islands forked from the pre-imported template (`islands.island_template`, `launcher.template_client`).

A forked island must be indistinguishable from a fresh `python -m islands evolve`: the same
results bit for bit for the same seed, its own process group, CPU affinity, one thread, its
own command line in ps, exit codes and signals delivered through the template, and death
when the template (and so the launcher) dies.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import psutil
import pytest

from islands.exit_codes import EXIT_STOPPED
from launcher.template_client import ForkServer, ForkServerError
from migration_pool.rundir import RunDir
from support.procs import REPO, alive, child_env, status_generation, wait_for

LAUNCH = "import sys; sys.argv[0] = 'islands'; from islands.cli import main; main()"
pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the island template is Linux-only")]


def _launch(spawn, run_dir, *extra: str) -> str:
    proc = spawn(LAUNCH, "launch", "-n", "2", "--run-dir", str(run_dir), "--problem", "rastrigin", "--dim", "6",
                 "--population", "24", "--generations", "40", "--migrate-every", "0", "--seed", "11",
                 "--target", "1e300", "--plain", *extra, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = proc.communicate(timeout=150)
    assert proc.returncode == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def _trajectory(rundir: RunDir, island: str) -> tuple[list[dict], np.ndarray]:
    lines = [{k: v for k, v in rec.items() if k != "time"} for rec in rundir.island(island).read_history()]
    return lines, np.asarray(rundir.island(island).read_status()["best_genome"])


def test_forked_islands_match_fresh_processes_bit_for_bit(tmp_path, spawn):
    _launch(spawn, tmp_path / "forked")
    _launch(spawn, tmp_path / "fresh", "--no-fork-server")
    forked, fresh = RunDir(tmp_path / "forked"), RunDir(tmp_path / "fresh")
    for island in ("island-00", "island-01"):
        assert "forked from the island template" in forked.island(island).read_log_tail(100_000)
        assert f"{island}: generations at generation 40" in forked.island(island).read_log_tail(100_000)  # its output
        assert "forked from the island template" not in fresh.island(island).read_log_tail(100_000)
        (lines_a, genome_a), (lines_b, genome_b) = _trajectory(forked, island), _trajectory(fresh, island)
        assert len(lines_a) == 41 and lines_a == lines_b
        assert genome_a.tobytes() == genome_b.tobytes()
    # islands differ from each other (their own seeds), so the comparison above could fail
    assert _trajectory(forked, "island-00")[0] != _trajectory(forked, "island-01")[0]


def _evolve_argv(run_dir) -> list[str]:
    return [sys.executable, "-m", "islands", "evolve", "island-00", "--run-dir", str(run_dir), "--quiet",
            "--problem", "slow_problem:make", "--param", "base=sphere", "--param", "delay=0.01", "--dim", "5",
            "--population", "20", "--generations", "100000", "--migrate-every", "0"]


def test_a_forked_island_is_its_own_pinned_process_and_dies_with_the_template(tmp_path):
    env = child_env()
    server = ForkServer(env, argv_room=4096)
    try:
        with pytest.raises(ForkServerError, match="only"):
            server.spawn([sys.executable, "-c", "pass"], env, str(REPO), str(tmp_path / "x.log"), (), True)
        run = tmp_path / "run"
        proc = server.spawn(_evolve_argv(run), env, str(REPO), str(tmp_path / "a.log"), (0,), True)
        wait_for(lambda: status_generation(run, "island-00") >= 2, 90, "the forked island evolving")
        p = psutil.Process(proc.pid)
        assert p.ppid() == server.proc.pid and os.getpgid(proc.pid) == proc.pid == proc.pgid  # reported by the template
        assert p.cpu_affinity() == [0] and p.num_threads() == 1
        assert p.cmdline()[:5] == [sys.executable, "-m", "islands", "evolve", "island-00"]
        assert RunDir(run).island("island-00").read_status()["torch_threads"] == 1
        proc.send_signal(signal.SIGTERM)  # through the template: checkpoint and exit 0
        assert proc.wait(timeout=60) == EXIT_STOPPED  # SIGTERM: checkpointed, stopped before finishing
        assert RunDir(run).island("island-00").read_status()["state"] == "stopped"
        proc.send_signal(signal.SIGKILL)  # reaped already: dropped, never reaches a reused pid

        again = server.spawn(_evolve_argv(run), env, str(REPO), str(tmp_path / "b.log"), (), True)
        wait_for(lambda: (RunDir(run).island("island-00").read_status() or {}).get("pid") == again.pid, 90, "the resumed island")
        created = psutil.Process(again.pid).create_time()
        server.proc.kill()  # the template dies (as it does with the launcher): its islands die too
        wait_for(lambda: not alive(again.pid, created), 10, "the island dying with its template")
        assert again.wait(timeout=10) == -signal.SIGKILL
    finally:
        server.close()


def test_a_signal_to_the_whole_job_stops_the_islands_cleanly_and_not_the_template(tmp_path):
    """scancel, a time limit or systemd signal every process: the template must survive it,
    or its islands die with it (parent-death signal) before they checkpoint."""
    env = child_env()
    server = ForkServer(env, argv_room=4096)
    try:
        run = tmp_path / "run"
        proc = server.spawn(_evolve_argv(run), env, str(REPO), str(tmp_path / "a.log"), (), True)
        wait_for(lambda: status_generation(run, "island-00") >= 2, 90, "the forked island evolving")
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP):
            os.kill(server.proc.pid, sig)  # the template first, as a job-wide signal may reach it
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == EXIT_STOPPED
        assert RunDir(run).island("island-00").read_status()["state"] == "stopped"
        assert server.proc.poll() is None  # still serving
    finally:
        server.close()


def test_the_template_is_disabled_by_its_environment_variable():
    from launcher.template_client import NO_FORK_SERVER_ENV, fork_server_wanted

    assert fork_server_wanted({}) and fork_server_wanted({NO_FORK_SERVER_ENV: "0"})
    assert not fork_server_wanted({NO_FORK_SERVER_ENV: "1"})


def test_islands_without_a_heartbeat_of_their_own_show_as_starting():
    from launcher.launch_view import Row, headline

    rows = [Row("island-00", "starting"), Row("island-01", "running", 3, 10, -1.0, 500.0)]
    assert headline(rows, 5.0).startswith("[0:00:05] starting 1/2 |")  # 1 of 2 islands has reported
