"""The lineage curve of a real launch compares like with like: islands that end early still
count with their last origins, so an archipelago whose lineages all survive does not read as
a takeover at the end of its curve."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from islands.status import lineage
from support.procs import child_env

pytestmark = pytest.mark.timeout(300)


def test_an_island_that_ends_early_still_counts_at_the_end_of_the_curve(tmp_path):
    # Equal budgets, populations 20 and 60: island-00 runs 150 generations, island-01 50.
    # Isolated, each keeps its own lineage: 20 and 60 individuals, exp(H(1/4, 3/4)) = 1.75
    # effective origins throughout (counting only the islands still running: 1.0 at the end).
    args = ["-n", "2", "--run-dir", str(tmp_path), "--problem", "rastrigin", "--dim", "4", "--target", "1",
            "--migrate-every", "0", "--vary", "population=20,60", "--max-evaluations", "6000",
            "--plain", "--progress-every", "60"]
    out = subprocess.run([sys.executable, "-m", "islands", "launch", *args], env=child_env(), capture_output=True,
                         text=True, timeout=240, start_new_session=True)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(subprocess.run([sys.executable, "-m", "islands", "status", "--run-dir", str(tmp_path),
                                        "--json"], env=child_env(), capture_output=True, text=True,
                                       timeout=60).stdout)
    gens = {i["island"]: i["generation"] for i in report["islands"]}
    assert gens["island-00"] > 2 * gens["island-01"]
    trend = report["archipelago"]["lineage"]["over_time"]
    assert trend[-1]["generation"] > gens["island-01"] + 10  # late points: island-01 has ended
    both = lineage.effective_origins({0: 20, 1: 60})
    assert [(p["islands"], p["effective_origins"]) for p in trend] == [(2, pytest.approx(both))] * len(trend)
    assert trend[-1]["carried"] == 1
    assert {i["island"]: (i["lineage_origin"], i["lineage_share"]) for i in report["islands"]} == \
        {"island-00": ("island-00", 1.0), "island-01": ("island-01", 1.0)}
    assert report["archipelago"]["lineage"]["warning"] is None
