"""A user's problem code that fails, through every entry point, as real processes.

The problem module is written to tmp_path and found in the current folder, as a user's own
file is (`--problem mymod:factory`). Whatever it does (raise, `SystemExit(0)` in the factory,
`sys.exit(3)` at import, a fitness of the wrong shape), `islands evolve`, `islands launch` and
the Python API say so in one line naming the user's file and line, exit 2 (a bad problem:
never restarted, documented), and write nothing; `--debug` adds the full traceback.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from islands.exit_codes import EXIT_USAGE
from support.procs import child_env

USER_MODULE = '''\
import sys

import torch

from islands.problems import Problem


def raising(dim=10):
    return helper()


def helper():
    raise RuntimeError("factory exploded")


def exits(dim=10):
    raise SystemExit(0)


def bad_scale(dim=10, scale=1.0):
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return good(dim)


def good(dim=10):
    return Problem(name="good", dim=dim, lower=-1.0, upper=1.0, fn=lambda x: -(x * x).sum(dim=1))


def wrong_shape(dim=10):
    return Problem(name="wrong", dim=dim, lower=-1.0, upper=1.0, fn=lambda x: x.sum(dim=1, keepdim=True))


def fitness_raises(dim=10):
    return Problem(name="raises", dim=dim, lower=-1.0, upper=1.0, fn=crash)


def crash(x):
    raise ZeroDivisionError("fitness exploded")
'''
EXITS_AT_IMPORT = "import sys\n\nsys.exit(3)\n\n\ndef make(dim=10):\n    pass\n"
RAISES_AT_IMPORT = "x = 1\nimport no_such_module_of_the_user\n"
SYNTAX_ERROR = "def make(dim=10):\n    return dim\n\nx = = 1\n"

# (problem, the user's file, the line that failed, what the line must say)
CASES = {
    "factory raises": ("usermod:raising", "usermod.py", 'raise RuntimeError("factory exploded")',
                       "RuntimeError: factory exploded"),
    "SystemExit(0) in the factory": ("usermod:exits", "usermod.py", "raise SystemExit(0)", "sys.exit(0)"),
    "sys.exit(3) at import": ("exits_at_import:make", "exits_at_import.py", "sys.exit(3)", "sys.exit(3)"),
    "bad parameter": ("usermod:bad_scale", "usermod.py", "raise ValueError(", "scale must be > 0, got -1"),
    "import error at import": ("raises_at_import:make", "raises_at_import.py", "import no_such_module_of_the_user",
                               "ModuleNotFoundError"),
    "syntax error": ("syntax_error:make", "syntax_error.py", "x = = 1", "SyntaxError"),
    "fitness raises": ("usermod:fitness_raises", "usermod.py", 'raise ZeroDivisionError("fitness exploded")',
                       "ZeroDivisionError: fitness exploded"),
}


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "usermod.py").write_text(USER_MODULE)
    (folder / "exits_at_import.py").write_text(EXITS_AT_IMPORT)
    (folder / "raises_at_import.py").write_text(RAISES_AT_IMPORT)
    (folder / "syntax_error.py").write_text(SYNTAX_ERROR)
    return folder


def _line_of(path: Path, fragment: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


def _islands(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    environment = child_env(**(env or {}))
    if "ISLANDS_DEBUG" not in (env or {}):
        environment.pop("ISLANDS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "islands", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout, start_new_session=True)


def _assert_one_line(out: subprocess.CompletedProcess, user_dir: Path, case: str) -> str:
    _problem, file, fragment, what = CASES[case]
    where = f"{user_dir / file}:{_line_of(user_dir / file, fragment)}"
    text = out.stdout + out.stderr
    assert out.returncode == EXIT_USAGE, f"exit {out.returncode}, output:\n{text}"
    assert "Traceback" not in text, text
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    assert where in errors[0] and what in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize("case", list(CASES))
def test_evolve_names_the_users_file_and_line_and_writes_nothing(user_dir: Path, tmp_path: Path, case: str):
    run = tmp_path / "run"
    params = ["--param", "scale=-1"] if case == "bad parameter" else []
    out = _islands(user_dir, "evolve", "island-00", "--run-dir", str(run), "--problem", CASES[case][0],
                   "--dim", "3", "--generations", "2", *params)
    _assert_one_line(out, user_dir, case)
    assert not run.exists()


@pytest.mark.parametrize("case", ["factory raises", "SystemExit(0) in the factory", "sys.exit(3) at import",
                                  "fitness raises"])
def test_launch_plan_check_names_the_users_file_and_line_and_writes_nothing(user_dir: Path, tmp_path: Path,
                                                                             case: str):
    run = tmp_path / "run"
    out = _islands(user_dir, "launch", "-n", "2", "--run-dir", str(run), "--problem", CASES[case][0],
                   "--dim", "3", "--generations", "2", "--plain")
    _assert_one_line(out, user_dir, case)
    assert not run.exists()


def test_debug_shows_the_traceback_through_the_user_code(user_dir: Path, tmp_path: Path):
    where = f'File "{user_dir / "usermod.py"}", line {_line_of(user_dir / "usermod.py", "raise RuntimeError")}'
    for how in (["--debug"], []):
        out = _islands(user_dir, *how, "evolve", "island-00", "--run-dir", str(tmp_path / "run"), "--problem",
                       "usermod:raising", "--generations", "2", env=None if how else {"ISLANDS_DEBUG": "1"})
        assert out.returncode == EXIT_USAGE, out.stderr
        assert "Traceback" in out.stderr and where in out.stderr, out.stderr
        assert out.stderr.strip().splitlines()[-1].startswith("error: "), out.stderr  # the line stays last
    out = _islands(user_dir, "--debug", "launch", "-n", "2", "--run-dir", str(tmp_path / "run"), "--problem",
                   "exits_at_import:make", "--generations", "2", "--plain")
    assert out.returncode == EXIT_USAGE, out.stderr
    assert "Traceback" in out.stderr and "SystemExit: 3" in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()


PY_API = '''
import json, sys
from islands.config import RunConfig
from islands.errors import ConfigError
from islands.problems import make_problem
from islands.runs import evolve

found = {}
for problem, run in zip(sys.argv[1::2], sys.argv[2::2]):
    found[problem] = {}
    for name, call in (("make_problem", lambda: make_problem(problem, 3)),
                       ("evolve", lambda: evolve("island-00", run, RunConfig(problem=problem, dim=3, generations=2),
                                                 log=lambda m: None))):
        try:
            call()
            found[problem][name] = "no error"
        except ConfigError as e:
            found[problem][name] = str(e)
print(json.dumps(found))
'''
API_CASES = ["factory raises", "SystemExit(0) in the factory", "sys.exit(3) at import"]


def test_python_api_raises_a_config_error_naming_the_users_line(user_dir: Path, tmp_path: Path):
    """One process calls the API for each case in turn (a problem that exits the process would
    end it: the later cases would then be missing)."""
    runs = {case: tmp_path / f"run-{n}" for n, case in enumerate(API_CASES)}
    args = [a for case in API_CASES for a in (CASES[case][0], str(runs[case]))]
    out = subprocess.run([sys.executable, "-c", PY_API, *args], cwd=user_dir,
                         env=child_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip(), f"exit {out.returncode}: {out.stdout}{out.stderr}"
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert list(found) == [CASES[case][0] for case in API_CASES], found
    for case in API_CASES:
        problem, file, fragment, what = CASES[case]
        where = f"{user_dir / file}:{_line_of(user_dir / file, fragment)}"
        for name in ("make_problem", "evolve"):
            assert where in found[problem][name] and what in found[problem][name], (case, found[problem])
        assert not runs[case].exists()


@pytest.mark.parametrize("command", ["evolve", "launch"])
def test_an_existing_run_is_untouched_by_starting_it_over_with_a_broken_problem(user_dir: Path, tmp_path: Path,
                                                                                command: str):
    run = tmp_path / "run"
    ok = _islands(user_dir, "evolve", "island-00", "--run-dir", str(run), "--problem", "usermod:good",
                  "--dim", "3", "--generations", "2", "--quiet")
    assert ok.returncode == 0, ok.stderr
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    args = ["evolve", "island-00", "--fresh-run"] if command == "evolve" else ["launch", "-n", "2", "--plain", "--fresh"]
    out = _islands(user_dir, *args, "--run-dir", str(run), "--problem", "usermod:wrong_shape",
                   "--dim", "3", "--generations", "2", "--yes")
    assert out.returncode == EXIT_USAGE and "must return shape [2], got [2, 1]" in out.stderr, out.stderr
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


@pytest.mark.parametrize("command", ["evolve", "launch"])
def test_a_wrong_shape_problem_writes_nothing(user_dir: Path, tmp_path: Path, command: str):
    run = tmp_path / "run"
    args = ["evolve", "island-00"] if command == "evolve" else ["launch", "-n", "2", "--plain"]
    out = _islands(user_dir, *args, "--run-dir", str(run), "--problem", "usermod:wrong_shape", "--dim", "3",
                   "--generations", "2")
    assert out.returncode == EXIT_USAGE, out.stdout + out.stderr
    assert "fitness function must return shape [2], got [2, 1]" in out.stderr, out.stderr
    assert not run.exists(), sorted(os.listdir(run))


def test_an_installed_plugin_that_exits_at_import_is_listed_and_refused(tmp_path: Path):
    """An entry-point plug-in calling sys.exit while it loads: `islands problems` still lists every
    problem (with the reason beside it), and running it is one line naming the plug-in's file."""
    site = tmp_path / "site"
    info = site / "exiting_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: exiting-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[islands.problems]\nexiting = exiting_plugin:make\n")
    (site / "exiting_plugin.py").write_text(EXITS_AT_IMPORT)
    where = f"{site / 'exiting_plugin.py'}:{_line_of(site / 'exiting_plugin.py', 'sys.exit(3)')}"
    env = {"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    listed = _islands(tmp_path, "problems", env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("exiting "))
    assert "cannot load" in row and "sys.exit(3)" in row and where in row, row
    assert any(line.startswith("rastrigin ") for line in listed.stdout.splitlines())
    out = _islands(tmp_path, "evolve", "island-00", "--run-dir", str(tmp_path / "run"), "--problem", "exiting",
                   "--generations", "2", env=env)
    assert out.returncode == EXIT_USAGE and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and where in out.stderr and "exiting-plugin" in out.stderr, out.stderr
    assert not (tmp_path / "run").exists()


def test_an_island_joining_a_run_whose_problem_now_fails_says_so_in_one_line(user_dir: Path, tmp_path: Path):
    """No plan check when the run exists: the island builds the problem itself, and its failure
    reaches the command line as the same one line (and, with --debug, the traceback behind it)."""
    (user_dir / "flaky.py").write_text(
        "import os\n\nfrom usermod import good\n\n\ndef make(dim=10):\n"
        "    if os.environ.get('FLAKY'):\n        raise OSError('the data file is gone')\n    return good(dim)\n")
    run = tmp_path / "run"
    ok = _islands(user_dir, "evolve", "island-00", "--run-dir", str(run), "--problem", "flaky:make",
                  "--dim", "3", "--generations", "2", "--quiet")
    assert ok.returncode == 0, ok.stderr
    where = f"{user_dir / 'flaky.py'}:{_line_of(user_dir / 'flaky.py', 'raise OSError')}"
    for debug in ("", "1"):
        out = _islands(user_dir, "evolve", "island-01", "--run-dir", str(run), "--quiet",
                       env={"FLAKY": "1", "ISLANDS_DEBUG": debug})
        assert out.returncode == EXIT_USAGE, out.stdout + out.stderr
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith("error: ") and where in last and "OSError: the data file is gone" in last, last
        assert ("Traceback" in out.stderr) == bool(debug), out.stderr
        assert (f'File "{user_dir / "flaky.py"}"' in out.stderr) == bool(debug), out.stderr


LATE_FAILURE = '''\
import torch

from islands.problems import Problem

calls = 0


def make(dim=10):
    return Problem(name="late", dim=dim, lower=-1.0, upper=1.0, fn=score)


def score(x):
    global calls
    calls += 1
    if calls > 6:
        raise ArithmeticError("fitness exploded at a later generation")
    return -(x * x).sum(dim=1)
'''


@pytest.mark.parametrize("command", ["evolve", "launch"])
def test_a_fitness_failing_mid_run_is_one_line_exit_2_and_the_run_resumes(user_dir: Path, tmp_path: Path,
                                                                         command: str):
    """Past the plan check's two genomes, the user's fitness raising on a later generation was a
    traceback and exit 1 (an island exit the launcher restarts, to fail the same way again). Now
    it is the same one line naming the user's file and line and exit 2, and the run's files stay:
    the same command resumes once the code is fixed."""
    (user_dir / "late.py").write_text(LATE_FAILURE)
    run = tmp_path / "run"
    args = ["--run-dir", str(run), "--problem", "late:make", "--dim", "3", "--generations", "30",
            "--population", "8", "--checkpoint-every", "1"]
    where = f"{user_dir / 'late.py'}:{_line_of(user_dir / 'late.py', 'raise ArithmeticError')}"
    if command == "evolve":
        out = _islands(user_dir, "evolve", "island-00", *args, "--quiet")
        assert out.returncode == EXIT_USAGE, out.stdout + out.stderr
        assert "Traceback" not in out.stderr, out.stderr
        errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and where in errors[0] and "ArithmeticError" in errors[0], out.stderr
        assert "during the run" in errors[0]
    else:
        out = _islands(user_dir, "launch", "-n", "1", *args, "--plain", "--max-restarts", "3")
        text = out.stdout + out.stderr
        assert out.returncode != 0, text
        log = (run / "islands" / "island-00" / "island.log").read_text() \
            if (run / "islands" / "island-00" / "island.log").exists() else text
        assert "Traceback" not in log and where in log, log
        assert "restarting" not in text.lower(), text  # a failing problem is not restarted
    assert (run / "manifest.isld").exists()
    (user_dir / "late.py").write_text(LATE_FAILURE.replace("calls > 6", "calls > 10**9"))
    again = _islands(user_dir, "evolve", "island-00", "--run-dir", str(run), "--quiet")
    assert again.returncode == 0, again.stdout + again.stderr


def _raised_here() -> BaseException:
    """An exception whose traceback runs through this test module only."""
    def deep() -> None:
        raise ArithmeticError("ours, not the user's")

    try:
        deep()
    except ArithmeticError as e:
        return e
    raise AssertionError("deep() did not raise")


def test_a_failure_mid_run_outside_the_users_modules_goes_on_as_it_is():
    """An exception whose traceback has no frame of the user's modules (the engine failing,
    a full disk) is not blamed on the user's fitness: it is no one-line exit 2, never restarted."""
    from islands.problems.usercode import failed_mid_run

    exc = _raised_here()
    assert failed_mid_run("island-00: its fitness failed", exc, ("usermod", "other.pkg")) is None
    assert failed_mid_run("island-00: its fitness failed", exc, ()) is None
    error = failed_mid_run("island-00: its fitness failed", exc, ("usermod", __name__))
    assert error is not None and "ArithmeticError: ours, not the user's" in str(error)
    assert f"{__file__}:{_line_of(Path(__file__), 'raise ArithmeticError(' + chr(34) + 'ours')}" in str(error)


def test_a_built_in_problem_has_no_user_modules():
    """The fitness function of a built-in problem lives in islands' own subpackages: none of it
    is the user's, so its failure mid-run stays a traceback, not a one-line 'your code failed'."""
    from islands.problems import make_problem
    from islands.problems.usercode import user_modules

    sphere = make_problem("sphere", dim=3)
    assert sphere.fn.__module__.startswith("islands.")
    assert user_modules(sphere, "sphere") == ()
    assert user_modules(sphere, "islands.problems.benchmarks:sphere") == ()
    assert user_modules(sphere, "usermod:make") == ("usermod",)
