# Sourced by the scripts: picks the Python to use and installs the project into it.
#
# The project's own virtual environment .venv (made with `python3 -m venv`, git-ignored), so
# that setting up never touches another Python or re-points another checkout's editable
# install; `PYTHON=/path/to/python` or an active virtual environment (VIRTUAL_ENV) is used
# instead when given. Says in one line which it uses. A fresh machine with only python3, pip
# and git works (as root on Debian/Ubuntu, python3-venv is installed when venv lacks ensurepip).
# Installing is skipped when nothing it depends on changed since the last install.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

as_root_apt_install() {  # as_root_apt_install WHAT PACKAGE...: quiet apt-get install, root only
  local what="$1"; shift
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  echo "setup: installing $what" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null 2>&1
}

make_venv() {  # make_venv DIR: a venv with pip in DIR (an existing one without pip is repaired)
  local dir="$1" ver
  [ -x "$dir/bin/python" ] && "$dir/bin/python" -m pip --version >/dev/null 2>&1 && return 0
  echo "setup: creating the virtual environment ${dir#"$ROOT"/}" >&2
  python3 -m venv "$dir" >/dev/null 2>&1 && return 0
  # Debian and Ubuntu ship venv's ensurepip separately (python3-venv / python3.X-venv).
  ver="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  as_root_apt_install python3-venv python3-venv || as_root_apt_install "python$ver-venv" "python$ver-venv" || true
  python3 -m venv "$dir" || {
    echo "setup: could not create $dir: install python3-venv (or set PYTHON= to an interpreter to install into)" >&2
    exit 1
  }
}

if [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"; WHERE="PYTHON=$PYTHON"
elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  PY="$VIRTUAL_ENV/bin/python"; WHERE="the active virtual environment $VIRTUAL_ENV"
else
  make_venv "$ROOT/.venv"
  PY="$ROOT/.venv/bin/python"; WHERE=".venv"
fi
echo "setup: using $WHERE (python $("$PY" -c 'import platform; print(platform.python_version())'))" >&2

setup_project() {
  local stamp="$ROOT/.setup-stamp" want
  if ! command -v tmux >/dev/null 2>&1; then
    # tests/system/test_launcher_screen.py drives `islands launch` on a terminal through tmux (skipped without it)
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      as_root_apt_install tmux tmux || echo "setup: could not install tmux; the launch screen test will be skipped" >&2
    fi
  fi
  want="$("$PY" -c 'import sys; print(sys.executable)') $(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | cksum)"
  # The fast path also checks that this checkout's islands is the one imported and that the
  # `islands` command sits beside this interpreter (a --system-site-packages venv sees the
  # system's islands, possibly another checkout's).
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
     && (cd / && "$PY" -c '
import os, sys, sysconfig
import importlib.util, torch, islands.cli, pytest, xdist, hypothesis, gymnasium, pandas, tensorboard, optuna
ok = importlib.util.find_spec("pygame") is not None and os.path.dirname(os.path.dirname(os.path.realpath(islands.__file__))) == os.path.realpath(sys.argv[1])
sys.exit(0 if ok and os.access(os.path.join(sysconfig.get_path("scripts"), "islands"), os.X_OK) else 1)
' "$ROOT") 2>/dev/null; then
    return 0
  fi
  if ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "setup: installing torch==2.13.0 (CPU build)" >&2
    "$PY" -m pip install --quiet torch==2.13.0
  fi
  echo "setup: installing islands and its test, gym (gymnasium, its renderer pygame), pandas, tensorboard and optuna extras" >&2
  "$PY" -m pip install --quiet -e "$ROOT[test,gym,pandas,tensorboard,optuna]"
  # The physics engines where their wheels install (tests/islands/problems/test_gym_physics.py
  # skips, saying so, where one did not).
  for extra in mujoco box2d; do
    "$PY" -m pip install --quiet -e "$ROOT[$extra]" 2>/dev/null \
      || echo "setup: the $extra extra did not install here; its gym:* tests will be skipped" >&2
  done
  if [ ! -x "$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/islands" ]; then
    # pip skips the console script when it finds islands already installed outside this
    # environment (a --system-site-packages venv); reinstalling the project alone writes it.
    "$PY" -m pip install --quiet --force-reinstall --no-deps -e "$ROOT"
  fi
  echo "$want" > "$stamp"
}
