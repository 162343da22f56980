"""A budget is a budget, seen from the command line: `--max-evaluations` is the run's total, split
over its islands, and without `--generations` it is the only limit; options that cannot work
together exit 2 with one line and write nothing."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from islands import budget_share
from islands.exit_codes import EXIT_USAGE
from islands.status.reader import open_run
from support.procs import child_env

pytestmark = pytest.mark.timeout(300)

CMAES = ["--problem", "rastrigin", "--dim", "10", "--algorithm", "cmaes", "--target", "1"]  # never reached
LAMBDA = 10  # CMA-ES's default population at D=10 (4 + 3 ln 10); IPOP restarts double it at most twice here


def islands(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "islands", *args], env=child_env(), capture_output=True,
                          text=True, timeout=timeout, start_new_session=True)


def test_evolve_spends_the_whole_budget_instead_of_stopping_at_200_generations(tmp_path):
    out = islands("evolve", "island-00", "--run-dir", str(tmp_path), *CMAES, "--max-evaluations", "5000", "--quiet")
    assert out.returncode == 0, out.stderr
    status = open_run(tmp_path).status("island-00")
    assert status.reason == "evaluations"
    assert 5000 <= status.evaluations < 5000 + 4 * LAMBDA  # at most one (restarted, larger) generation over
    assert status.generation > 200 and status.generations is None
    assert f"{status.evaluations} evaluations" in out.stdout  # the line reports what it spent


def test_launch_splits_the_budget_over_its_islands_and_shows_it(tmp_path):
    out = islands("launch", "-n", "2", "--run-dir", str(tmp_path), *CMAES, "--max-evaluations", "4000",
                  "--plain", "--progress-every", "60")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "budget 4,000 evaluations (2,000 per island), no generation limit" in out.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    spent = {isl: v["evaluations"] for isl, v in summary["islands"].items()}
    assert all(2000 <= n < 2000 + 4 * LAMBDA for n in spent.values()), spent
    assert {v["reason"] for v in summary["islands"].values()} == {"evaluations"}
    assert summary["evaluation_budget"] == 4000
    assert f"{sum(spent.values()):,} in total of a budget of 4,000" in out.stdout
    run = open_run(tmp_path)
    assert (run.config.evaluation_budget, run.config.max_evaluations, run.config.generations) == (4000, 2000, None)
    # The same command resumes the finished run: the typed total agrees with the recorded share.
    again = islands("launch", "-n", "2", "--run-dir", str(tmp_path), "--max-evaluations", "4000", "--plain")
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_mixed_launch_shares_its_budget_by_progress_and_spends_no_more_than_it(tmp_path):
    budget = 30000
    out = islands("launch", "-n", "3", "--run-dir", str(tmp_path), "--problem", "ellipsoid", "--dim", "10",
                  "--vary", "algorithm=cmaes,de,ga", "--target", "1", "--max-evaluations", str(budget), "--plain",
                  "--progress-every", "60")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"budget {budget:,} evaluations shared by progress" in out.stdout  # --budget-share auto, mixed
    run = open_run(tmp_path)
    assert run.config.budget_share == "progress"
    statuses = [run.status(i) for i in ("island-00", "island-01", "island-02")]
    assert {s.reason for s in statuses} == {"evaluations"}
    spent = sum(s.evaluations for s in statuses)
    # Over by a generation each, or by what two islands checking at the same instant both took
    # from the same free part (a file is no compare-and-swap): a few percent at most.
    assert budget <= spent <= budget * 1.05, spent
    assert all(s.budget_weight is not None and budget_share.FLOOR <= s.budget_weight <= 1.0 for s in statuses)
    # Each final status holds the weight of that island's last check; the leader then was 1.0, but
    # the islands end at different moments, so the final weights need not include it exactly.
    assert max(s.budget_weight for s in statuses) >= 0.5
    # Not an even split: the islands that improved faster per evaluation spent more of the budget.
    parts = sorted(s.evaluations for s in statuses)
    assert parts[-1] > budget / 3 + 100, parts
    shown = islands("status", "--run-dir", str(tmp_path))
    assert shown.returncode == 0 and "shared by progress" in shown.stdout, shown.stdout
    header = next(line for line in shown.stdout.splitlines() if line.startswith("island "))
    assert " budget " in header and re.search(r"\bw[01]\.\d\d\b", shown.stdout), shown.stdout


@pytest.mark.parametrize("args, message", [
    (["--max-evaluations", "5"], "--max-evaluations 5 is less than one generation (population 10)"),
    (["-n", "4", "--max-evaluations", "30"], "--max-evaluations 30 gives each island 7 evaluations, less than one "
                                             "generation (population 10)"),
    (["-n", "2", "--max-evaluations", "4000", "--max-evaluations-per-island", "1000"],
     "--max-evaluations 4000 gives each of the 2 island(s) 2000 evaluations, but --max-evaluations-per-island "
     "says 1000: give one of them"),
    (["-n", "3", "--max-evaluations", "2"], "--max-evaluations 2 is less than one evaluation for each of 3 islands"),
    (["-n", "2", "--budget-share", "progress", "--generations", "5"],
     "--budget-share progress shares the run's budget: give it with --max-evaluations"),
])
def test_budgets_that_cannot_work_exit_2_and_write_nothing(tmp_path, args, message):
    run = tmp_path / "run"
    command = ["launch", *args] if args[0] == "-n" else ["evolve", "island-00", *args]
    out = islands(*command, "--run-dir", str(run), *CMAES[:6], "--no-fork-server" if args[0] == "-n" else "--quiet")
    assert out.returncode == EXIT_USAGE, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), lines
    assert not run.exists()
