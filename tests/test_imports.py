"""The layers of docs/DESIGN.md ("Layers"), checked in a fresh interpreter.

The launcher supervises islands and reads their records; it must not pay for torch (seconds
and hundreds of MB per launcher) nor for click outside its CLI module.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.procs import child_env

LAUNCHER = ["launcher.plan", "launcher.spawn", "launcher.supervise", "launcher.session", "launcher.launch_view",
            "launcher.summary", "launcher.errors", "launcher.template_client", "launcher.child_setup",
            "launcher.torch_jobs", "launcher.request", "launcher.slurm", "launcher.sbatch"]
RECORDS = ["islands.status.record", "islands.status.liveness", "islands.exit_codes", "islands.runs"]


def loaded_after(module: str) -> dict[str, bool]:
    code = (f"import json, sys; import {module}; "
            "print(json.dumps({m: m in sys.modules for m in ('torch', 'click')}))")
    out = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True, text=True,
                         timeout=120, start_new_session=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("module", LAUNCHER + RECORDS)
def test_no_torch_nor_click_outside_the_cli(module):
    assert loaded_after(module) == {"torch": False, "click": False}


def test_the_launcher_cli_needs_click_but_not_torch():
    assert loaded_after("launcher.cli") == {"torch": False, "click": True}


def test_no_import_cycle_and_every_lazy_import_says_why():
    """scripts/check_imports.py (docs/DESIGN.md, "Layers") over every module of the three packages."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "check_imports.py"
    out = subprocess.run([sys.executable, str(script), "--strict"], cwd=script.parent.parent,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
