"""Reading what a refused command printed.

A launch prints step lines ("checking settings (loading torch) ...") from its first second so the
screen is never blank while torch loads; a refusal that comes after them is still one error line.
Tests that check "one clear line, no traceback" read the output through here so the step lines are
allowed and everything else is not.
"""
from __future__ import annotations

import re

STEP = re.compile(r"(starting the island template|checking settings)( \(loading torch\))? \.\.\.( \d+ s)?")


def error_lines(output: str) -> list[str]:
    """The output's lines that are not blank and not launch step lines."""
    return [line for line in output.splitlines() if line.strip() and not STEP.fullmatch(line)]


def one_error_line(output: str) -> str:
    """The single 'error: ...' line of a refusal (asserts there is exactly one and no traceback)."""
    lines = error_lines(output)
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output, output
    return lines[0]
