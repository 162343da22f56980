#!/usr/bin/env bash
# Time the README's first hour as a new user meets it: the quick start's `scripts/demo` from a
# fresh clone (its venv made and torch installed from nothing), then the tutorial's steps 1-4
# word for word in an empty folder. Prints one line per step with its wall time, and exits
# non-zero if a step fails. Run it on a quiet machine and again under load (e.g. with
# `scripts/test` running beside it) to get the README's two figures.
#
#   scripts/time_first_hour.sh [WORK_DIR]      # default: a new folder under /tmp
set -euo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d /tmp/first-hour.XXXXXX)}"
mkdir -p "$WORK"
step() {  # step NAME COMMAND...: run it, say how long it took
  local name="$1"; shift
  local t0=$SECONDS log
  log="$WORK/$(echo "$name" | tr -c 'A-Za-z0-9\n' '_').log"
  if ! "$@" >"$log" 2>&1; then
    echo "FAILED: $name (log $log)"; tail -5 "$log"; exit 1
  fi
  LAST_LOG="$log"
  printf '%-34s %4d s\n' "$name" $((SECONDS - t0))
}
echo "first hour in $WORK (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
step "clone" git clone -q "$SRC" "$WORK/islands"
cd "$WORK/islands"
# scripts/demo makes .venv; PYTHON, VIRTUAL_ENV unset so it does what a fresh shell does.
step "quick start: scripts/demo" env -u VIRTUAL_ENV -u PYTHON ISLANDS_DEMO_DIR="$WORK/demo" scripts/demo --plain
grep -E "^run .* (finished|stopped)|^champion" "$LAST_LOG" | sed 's/^/    /' || true
. .venv/bin/activate
mkdir -p "$WORK/tutorial" && cd "$WORK/tutorial"
cat > myprob.py <<'EOF'
import torch
from islands.problems import Problem


def make_problem(dim: int = 10, shift: float = 1.0) -> Problem:
    def fitness(x: torch.Tensor) -> torch.Tensor:  # genomes [P, dim] -> fitness [P]
        return -((x - shift) ** 2).sum(dim=1)      # maximised: 0 at the optimum

    return Problem(name="shifted_sphere", dim=dim, lower=-5.0, upper=5.0, fn=fitness,
                   optimum=0.0, solved_at=-1e-6)
EOF
step "tutorial 2: islands launch" islands launch -n 4 --problem myprob:make_problem --dim 20 --param shift=2.5 \
    --generations 300 --run-dir runs/mine --plain
grep -E "^run .* (finished|stopped)|^champion|generation" "$LAST_LOG" | tail -3 | sed 's/^/    /' || true
step "tutorial 3: islands status" islands status --run-dir runs/mine
step "tutorial 3: status --plot" islands status --run-dir runs/mine --plot mine.png
step "tutorial 4: islands export" islands export runs/mine --format json
step "tutorial 4: open_run (Python)" python - <<'EOF'
from islands.results import open_run

run = open_run("runs/mine")
genome, fitness, island = run.champion()
rows = run.history()
df = run.history_frame()
print(df.groupby("island")["best_ever"].max())
assert abs(float(genome.mean()) - 2.5) < 0.01, genome
EOF
echo "done (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
