"""Islands started by hand: a never-started neighbour is named once, a late joiner is marked."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.procs import child_env, evolve_cmd, kill_group, start, status_generation, wait_for

ARGS = ["--problem", "slow_problem:make", "--dim", "6", "--population", "20", "--seed", "4",
        "--param", "delay=0.001", "--generations", "80", "--migrate-every", "5"]


@pytest.mark.slow
def test_a_missing_neighbour_is_named_once_and_a_late_joiner_is_marked(tmp_path):
    first = start(evolve_cmd("island-01", tmp_path, *ARGS, quiet=False))
    late = None
    try:
        wait_for(lambda: status_generation(tmp_path, "island-01") >= 20, what="island-01 at generation 20")
        late = start(evolve_cmd("island-02", tmp_path, *ARGS, quiet=False))
        out1, err1 = first.communicate(timeout=120)
        out2, err2 = late.communicate(timeout=120)
    finally:
        kill_group(first)
        if late is not None:
            kill_group(late)
    assert first.returncode == 0 and late.returncode == 0, (err1, err2)
    # island-01 reads island-00 (a gap in the ring), which never started: one line, named
    text1 = out1 + err1
    assert text1.count("note: island-01 reads island-00, which has not started") == 1, text1
    assert "which has not started" not in out2 + err2  # island-02 reads island-01, running
    report = subprocess.run([sys.executable, "-m", "islands", "status", "--run-dir", str(tmp_path), "--json"],
                            env=child_env(), capture_output=True, text=True, timeout=60)
    assert report.returncode == 0, report.stderr
    entries = {e["island"]: e for e in json.loads(report.stdout)["islands"]}
    joined = entries["island-02"]["joined_at"]
    assert joined >= 20 and f"joined at gen {joined}" in entries["island-02"]["note"]
    assert entries["island-01"]["joined_at"] == 0 and "joined at" not in (entries["island-01"]["note"] or "")
    table = subprocess.run([sys.executable, "-m", "islands", "status", "--run-dir", str(tmp_path)],
                           env=child_env(**{"COLUMNS": "250"}), capture_output=True, text=True, timeout=60)
    assert f"joined at gen {joined}" in table.stdout
