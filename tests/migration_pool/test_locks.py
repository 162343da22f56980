"""The run's locks: exclusion and lifecycle, each with a negative control.

The manifest lock is the only lock of a run (migration needs none) and `IslandFiles.claim` keeps
one live process per island id; both are flocks, so the kernel releases them when the
holder dies, whatever the way it dies.
"""
from __future__ import annotations

import json
import os
import signal

import pytest
from filelock import Timeout

from migration_pool.errors import IslandBusy
from migration_pool.rundir import RunDir
from support.procs import alive, result, wait_for


# ----------------------------------------------------------------------------- exclusion

HOLDER = r"""
import contextlib, json, os, sys, time
from migration_pool.rundir import RunDir

root, name, holds, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rd = RunDir(root)
if mode == "nolock":  # negative control: the same read-modify-write without the lock
    rd._lock = lambda: contextlib.nullcontext()
spans = []

def change(manifest):
    start = time.monotonic_ns()  # one system-wide clock for every process
    manifest = dict(manifest, count=manifest["count"] + 1)
    time.sleep(0.0005)  # a critical section long enough to be caught overlapping
    spans.append((start, time.monotonic_ns()))
    return manifest

open(os.path.join(root, f"ready-{name}"), "w").close()
while not os.path.exists(os.path.join(root, "go")):  # the start line; result() bounds the wait
    time.sleep(0.001)
for _ in range(holds):
    rd.update_manifest(change)
print(json.dumps(spans))
"""


def contend(tmp_path, reaper, mode: str, procs: int = 4, holds: int = 60) -> tuple[list, int]:
    rd = RunDir(tmp_path)
    rd.create_or_read_manifest(lambda: {"count": 0})
    children = [reaper.python(HOLDER, str(tmp_path), str(i), str(holds), mode) for i in range(procs)]
    wait_for(lambda: all((tmp_path / f"ready-{i}").exists() for i in range(procs)), what="holders")
    (tmp_path / "go").touch()
    spans = sorted(s for child in children for s in result(child, timeout=120))
    assert len(spans) == procs * holds
    overlaps, latest_end = 0, 0
    for start, end in spans:
        overlaps += start < latest_end
        latest_end = max(latest_end, end)
    return spans, overlaps


@pytest.mark.timeout(150)
def test_manifest_lock_excludes_4_processes_x_60_holds(tmp_path, reaper):
    spans, overlaps = contend(tmp_path, reaper, "lock")
    assert overlaps == 0
    assert RunDir(tmp_path).read_manifest()["count"] == 240  # and no update was lost


@pytest.mark.timeout(150)
def test_control_without_the_lock_the_holds_overlap(tmp_path, reaper):
    spans, overlaps = contend(tmp_path, reaper, "nolock")
    assert overlaps > 0


# ----------------------------------------------------------------------------- lifecycle

SLEEP_HOLDING = r"""
import os, sys, time
from migration_pool.rundir import RunDir
root, what = sys.argv[1], sys.argv[2]
rd = RunDir(root)
marker = os.path.join(root, "holding")
def hold(manifest):
    open(marker, "w").close()
    time.sleep(600)  # the holding: until the test kills it
    return manifest
if what == "manifest":
    rd.update_manifest(hold)
else:
    lock = rd.island("island-00").claim()
    hold(None)
"""


@pytest.mark.timeout(60)
def test_a_sigkilled_manifest_lock_holder_releases_it(tmp_path, reaper):
    rd = RunDir(tmp_path)
    rd.create_or_read_manifest(lambda: {"count": 0})
    holder = reaper.python(SLEEP_HOLDING, str(tmp_path), "manifest")
    wait_for((tmp_path / "holding").exists, what="the holder")
    with pytest.raises(Timeout):  # control: held while the holder lives
        rd.manifest_lock(timeout=0.2).acquire()
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    with rd.manifest_lock(timeout=10):  # no stale lock to break by hand
        pass
    assert rd.update_manifest(lambda m: dict(m, count=m["count"] + 1))["count"] == 1


@pytest.mark.timeout(60)
def test_a_sigkilled_island_releases_its_claim(tmp_path, reaper):
    rd = RunDir(tmp_path)
    holder = reaper.python(SLEEP_HOLDING, str(tmp_path), "claim")
    wait_for((tmp_path / "holding").exists, what="the holder")
    with pytest.raises(IslandBusy, match="island-00 is already running"):
        rd.island("island-00").claim()  # two processes with one island id are refused
    other = rd.island("island-01").claim()  # another island is free
    other.release()
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    rd.island("island-00").claim().release()


FORKER = r"""
import fcntl, json, os, subprocess, sys, time
from migration_pool.rundir import RunDir
root, mode = sys.argv[1], sys.argv[2]
rd = RunDir(root)
if mode == "claim":
    lock = rd.island("island-00").claim()
else:  # negative control: a bare flock on the same file, which a forked child does inherit
    fd = os.open(rd.island("island-00").dir / ".claim", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
forked = os.fork()
if forked == 0:  # a bare fork: the child shares the parent's open file descriptions
    time.sleep(600)  # lives on (holding what it inherited) until the test kills it
    os._exit(0)
execd = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # fork + exec
with open(os.path.join(root, "pids.tmp"), "w") as f:
    json.dump([forked, execd.pid], f)
os.rename(os.path.join(root, "pids.tmp"), os.path.join(root, "pids"))
time.sleep(600)  # the holding: until the test kills it
"""


def kill_holder_keep_children(tmp_path, reaper, mode: str) -> list[int]:
    RunDir(tmp_path).ensure("island-00")
    holder = reaper.python(FORKER, str(tmp_path), mode, stdout=None)
    wait_for((tmp_path / "pids").exists, what="the holder's children")
    children = json.loads((tmp_path / "pids").read_text())
    reaper.extra_groups.append(holder.pid)  # its children outlive it: kill them at teardown
    os.kill(holder.pid, signal.SIGKILL)  # the holder only, not its group
    holder.wait()
    assert all(alive(pid) for pid in children)
    return children


@pytest.mark.timeout(60)
def test_a_claim_is_not_inherited_by_forked_or_spawned_children(tmp_path, reaper):
    kill_holder_keep_children(tmp_path, reaper, "claim")
    RunDir(tmp_path).island("island-00").claim().release()  # free although the holder's children live


@pytest.mark.timeout(60)
def test_control_an_inherited_bare_flock_outlives_its_holder(tmp_path, reaper):
    children = kill_holder_keep_children(tmp_path, reaper, "bare")
    with pytest.raises(IslandBusy):  # the forked child still holds the lock: the test can see it
        RunDir(tmp_path).island("island-00").claim()
    os.kill(children[0], signal.SIGKILL)
    wait_for(lambda: not alive(children[0]), what="the forked child to die")
    RunDir(tmp_path).island("island-00").claim().release()
