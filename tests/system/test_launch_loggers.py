"""`islands launch --logger`: every island, forked from the template or started fresh, builds its
own logger in its own process; a bad spec is one line, exit 2, nothing written."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from islands.exit_codes import EXIT_USAGE
from support.procs import child_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

RUN = ["--problem", "sphere", "--dim", "4", "--generations", "6", "--plain", "--progress-every", "60"]


def islands(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "islands", *args], env=child_env(), capture_output=True,
                          text=True, timeout=240, start_new_session=True, cwd=cwd)


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "fresh-processes"])
def test_each_launched_island_writes_its_own_log(tmp_path, fork):
    out = islands("launch", "-n", "2", "--run-dir", "run", *RUN, "--logger", "jsonl:logs",
                  *([] if fork else ["--no-fork-server"]), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    for island in ("island-00", "island-01"):
        lines = [json.loads(x) for x in (tmp_path / "logs" / f"{island}.jsonl").read_text().splitlines()]
        gens = [x["generation"] for x in lines if x["kind"] == "generation"]
        assert gens == list(range(7)) and {x["island"] for x in lines} == {island}


def test_a_bad_logger_spec_is_refused_before_anything_starts(tmp_path):
    out = islands("launch", "-n", "2", "--run-dir", "run", *RUN, "--logger", "csv", cwd=tmp_path)
    assert out.returncode == EXIT_USAGE and out.stderr.count("\n") == 1 and "--logger" in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()
