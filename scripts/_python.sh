# Sourced by the scripts: picks the Python to use and installs the project into it.
#
# Uses python3 directly, or a virtual environment in .venv when the system Python is
# marked externally managed (PEP 668), so a fresh machine with only python3, pip and git works.
# Installing is skipped when nothing it depends on changed since the last install.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"

if "$PY" -c 'import os, sys, sysconfig; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) and sys.prefix == sys.base_prefix else 1)'; then
  [ -x "$ROOT/.venv/bin/python" ] || "$PY" -m venv "$ROOT/.venv"
  PY="$ROOT/.venv/bin/python"
fi

setup_project() {
  local stamp="$ROOT/.setup-stamp" want
  if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    # tests/system/test_launcher_screen.py drives `islands launch` on a terminal through tmux (skipped without it)
    echo "setup: installing tmux" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux; } >/dev/null 2>&1 \
      || echo "setup: could not install tmux; the launch screen test will be skipped" >&2
  fi
  want="$("$PY" -c 'import sys; print(sys.executable)') $(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | cksum)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
     && "$PY" -c 'import importlib.util, sys, torch, islands.cli, pytest, hypothesis, gymnasium
sys.exit(importlib.util.find_spec("pygame") is None)' 2>/dev/null; then
    return 0
  fi
  if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "setup: installing torch==2.13.0 (CPU build)" >&2
    "$PY" -m pip install --quiet torch==2.13.0
  fi
  echo "setup: installing islands and its test and gym extras (gymnasium, its renderer pygame)" >&2
  "$PY" -m pip install --quiet -e "$ROOT[test,gym]"
  echo "$want" > "$stamp"
}
