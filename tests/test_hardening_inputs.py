"""Careless input and hostile run directories (issue 17, items 5-9): every mistake ends in one
clear line and a documented exit code, and nothing is written or lost."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from islands.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# -- item 8: nonsense numbers ------------------------------------------------------------------

@pytest.mark.parametrize("command, args, option", [
    ("launch", ["--grace", "nan"], "--grace"),
    ("launch", ["--grace", "inf"], "--grace"),
    ("launch", ["--hang-timeout", "nan"], "--hang-timeout"),
    ("launch", ["--progress-every", "nan"], "--progress-every"),
    ("launch", ["--progress-every", "-1"], "--progress-every"),
    ("launch", ["--progress-every", "0"], "--progress-every"),
    ("launch", ["-n", "1000000000"], "--islands"),
    ("launch", ["--cores", ""], "--cores"),
    ("launch", ["--generations", str(2**64)], "--generations"),
    ("evolve", ["--generations", str(2**64)], "--generations"),
    ("evolve", ["--checkpoint-every", str(2**70)], "--checkpoint-every"),
    ("evolve", ["--seed", str(2**64)], "--seed"),
    ("evolve", ["--population", str(2**64)], "--population"),
    ("evolve", ["--mutation-sigma", "inf"], "--mutation-sigma"),
    ("evolve", ["--mutation-sigma", "nan"], "--mutation-sigma"),
    ("evolve", ["--migration-probability", "nan"], "--migration-probability"),
    ("evolve", ["--target", "nan"], "--target"),
])
def test_nonsense_numbers_exit_2_naming_the_option(tmp_path, command, args, option):
    run_dir = tmp_path / "run"
    head = [command, "island-00"] if command == "evolve" else [command]
    result = invoke(*head, "--run-dir", str(run_dir), "--problem", "sphere", *args)
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "Traceback" not in result.output
    assert not run_dir.exists()


def test_status_stale_after_nan_exits_2(tmp_path):
    result = invoke("status", "--run-dir", str(tmp_path), "--stale-after", "nan")
    assert result.exit_code == 2 and "--stale-after" in result.output, result.output
