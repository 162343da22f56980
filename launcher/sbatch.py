"""The SLURM batch script of a run: options checked up front, the script rendered as text.

Pure (no SLURM, no files): `SlurmOptions` refuses bad input with one line quoting the option
(PlanError, exit 2), and `render` returns what `islands slurm-script` prints and what
`islands launch --backend slurm` writes to RUN/slurm/job.sbatch and submits.

Time limits: the job asks SLURM for a warning signal `--signal=B:USR1@WARN` that reaches the
batch shell only. The script traps it, sends the island(s) one SIGTERM (the island finishes
its generation, checkpoints and exits), then requeues the task itself with
`scontrol requeue JOB_TASK` while SLURM_RESTART_COUNT is below the requeue budget; the
requeued task resumes from the checkpoint. The shell ignores SIGTERM itself: `scancel` and
the time limit signal every process of the job, so the island already gets its own.

How sbatch reads the `#SBATCH` lines decides what may go into them: it collects them up to the
first command line, splits each at white space (reading quotes, backslashes and `#` itself) and
parses the words with getopt_long, where any unambiguous prefix of a long option is that option
and short options cluster (`-vo FILE` is `-v -o FILE`). So every value is one printable word,
the time limit is written only in the exact form `parse_time` read, and `--sbatch-arg` may name
no option the script owns, not even abbreviated or inside a cluster.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Mapping, Sequence

from islands.exit_codes import EXIT_STOPPED
from islands.manifest import valid_run_id
from islands.scheduler_state import INDICES_ENV
from launcher.errors import PlanError
from launcher.plan import format_cores  # "0-2,5": also sbatch's --array syntax
from migration_pool.island_ids import valid_island_id

PATTERNS = ("array", "step", "node")
ENDED_MARK = "islands: task ended:"  # the batch script's last line, when it was not killed
_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,64}\Z")
_TIME = re.compile(r"^(?:([0-9]+)-)?([0-9]+)(?::([0-9]+))?(?::([0-9]+))?\Z")  # [0-9]: \d takes any digit
# Options the script sets itself: given again through --sbatch-arg they would contradict it.
_OWNED = ("--array", "--output", "--error", "--signal", "--ntasks", "--cpus-per-task", "--gpus-per-task",
          "--wrap", "--parsable", "--test-only", "--chdir", "--open-mode", "--requeue", "--no-requeue",
          "--partition", "--time", "--account")
_OWNED_SHORT = {"a": "--array", "o": "--output", "e": "--error", "n": "--ntasks", "c": "--cpus-per-task",
                 "p": "--partition", "t": "--time", "A": "--account", "D": "--chdir"}  # their one-letter forms
_EXACT = ("--gpus",)  # real sbatch options that are also prefixes of owned ones: getopt takes an exact name
_SHORT_WITH_VALUE = "ABCDFGJLMNSabcdeikmnopqtwx"  # sbatch's short options that take a value (-k an optional one)
_LONG_NAME = re.compile(r"^--[A-Za-z][A-Za-z0-9-]*\Z")
_SBATCH_SYNTAX = re.compile(r"[\s\"'\\#]")  # what sbatch's #SBATCH line splitter reads itself
_UNSAFE_PATH = re.compile(r"[\s%\\\"'$`]")


def parse_time(text: str) -> int:
    """SLURM's time formats -> minutes (rounded up): M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    m = _TIME.match(text)
    if not m:
        raise PlanError(f"--time {text!r}: expected minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]")
    days, a, b, c = m.groups()
    if days is not None:  # D-H[:M[:S]]
        secs = int(days) * 86400 + int(a) * 3600 + int(b or 0) * 60 + int(c or 0)
    elif c is not None:
        secs = int(a) * 3600 + int(b) * 60 + int(c)
    elif b is not None:
        secs = int(a) * 60 + int(b)
    else:
        secs = int(a) * 60
    if secs <= 0:
        raise PlanError(f"--time {text!r}: the time limit must be longer than zero")
    return -(-secs // 60)


@dataclass(frozen=True)
class SlurmOptions:
    """How the run's islands are submitted; every field checked on construction."""

    pattern: str = "array"
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    sbatch_args: tuple[str, ...] = ()
    warn_s: int = 120  # seconds before the time limit the batch shell gets USR1 (0: no warning)
    max_requeues: int = 3  # self-requeues on a time limit, per task
    device: str = "cpu"
    nodes: int | None = None  # pattern node: how many whole nodes the islands are spread over

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise PlanError(f"--pattern {self.pattern!r}: expected array, step or node")
        if (self.nodes is not None) != (self.pattern == "node"):
            raise PlanError("--pattern node needs --nodes N (the nodes to spread the islands over)"
                            if self.pattern == "node" else "--nodes is for --pattern node")
        if self.nodes is not None and not 1 <= self.nodes <= 65535:
            raise PlanError(f"--nodes {self.nodes}: expected 1 to 65535")
        if self.pattern == "node" and self.device == "cuda":
            raise PlanError("--pattern node runs CPU islands; use --pattern array or step with --device cuda")
        for flag, value in (("--partition", self.partition), ("--account", self.account)):
            if value is not None and not _NAME.match(value):
                raise PlanError(f"{flag} {value!r}: expected a SLURM name (letters, digits, _ . + -)")
        if self.time is not None:
            parse_time(self.time)
        if not 0 <= self.warn_s <= 65535:
            raise PlanError(f"--warn-before {self.warn_s}: expected 0 to 65535 seconds")
        if self.max_requeues < 0:
            raise PlanError(f"--max-requeues {self.max_requeues}: must be at least 0")
        if self.device not in ("cpu", "cuda"):
            raise PlanError(f"--device {self.device!r}: under SLURM use cpu or cuda (SLURM gives each task its GPU)")
        for arg in self.sbatch_args:
            check_sbatch_arg(arg)


def owned_option(arg: str) -> str | None:
    """Why `arg` sets an option the script owns, spelled out, abbreviated (`--outp`) or in a
    cluster of short options (`-vo`); None if it sets none."""
    if arg.startswith("--"):
        name = arg.split("=", 1)[0]
        if name in _OWNED:
            return f"{name} is set by islands"
        owned = [o for o in _OWNED if o.startswith(name)]
        if owned and len(name) > 2 and name not in _EXACT:
            return f"{name} abbreviates {' or '.join(owned)}, which islands sets"
        return None
    for letter in arg[1:]:  # a cluster: letters up to the first that takes a value (the rest is that value)
        if letter in _OWNED_SHORT:
            return f"-{letter} is set by islands (it is {_OWNED_SHORT[letter]})"
        if letter in _SHORT_WITH_VALUE:
            return None
    return None


def check_sbatch_arg(arg: str) -> None:
    """PlanError unless `arg` is one sbatch option, one printable word that sets no option the
    script owns (see the module docstring)."""
    hint = "(use its own option, or `islands slurm-script` and edit the file)"
    if not arg.startswith("-") or not arg.isprintable():
        raise PlanError(f"--sbatch-arg {arg!r}: expected one sbatch option like --qos=long or --mem=4G, "
                        "printable, on one line")
    owned = owned_option(arg)
    if owned is not None:
        raise PlanError(f"--sbatch-arg {arg!r}: {owned} {hint}")
    if arg in ("-", "--") or (arg.startswith("--") and not _LONG_NAME.match(arg.split("=", 1)[0])):
        raise PlanError(f"--sbatch-arg {arg!r}: expected one sbatch option like --qos=long or --mem=4G")
    if _SBATCH_SYNTAX.search(arg):
        raise PlanError(f"--sbatch-arg {arg!r}: sbatch splits #SBATCH lines at spaces and reads quotes, "
                        f"backslashes and # itself; give one option without them {hint}")


def check_path(root: str) -> None:
    """Refuse a run directory (or working directory) that #SBATCH lines would split or sbatch
    would expand (%j, %A, ... in --output and --chdir), or that is not printable."""
    if _UNSAFE_PATH.search(root) or not root.isprintable():
        raise PlanError(f"--run-dir {root!r}: under SLURM the run directory's path must not contain "
                        "spaces, quotes, %, $, backslashes or control characters (sbatch cannot quote them)")


def render(opts: SlurmOptions, *, run_dir: str, run_id: str, indices: Sequence[int], planned: Sequence[str],
           python: str, cwd: str, env: Mapping[str, str]) -> str:
    """The batch script that runs `planned[i]` for each i of `indices`.

    `env` supplies PYTHONPATH (exported when set, so tasks import the same code as this
    process) ; `python` is this interpreter, so tasks use the same installation (a cluster's
    shared filesystem is assumed, as for the run directory).
    """
    if not indices:
        raise PlanError("no island left to submit")
    if not valid_run_id(run_id):  # the manifest's decoder refuses these already; a script never takes one
        raise PlanError(f"run id {ascii(run_id)[:80]} is not a run id: refusing to write it into a batch script")
    if not all(valid_island_id(planned[i]) for i in indices):
        raise PlanError("a planned island id is not canonical: refusing to write it into a batch script")
    check_path(run_dir)
    check_path(cwd)
    array = opts.pattern == "array"
    head = ["#!/bin/bash",
            f"# islands run {run_id} in {run_dir}: {len(indices)} of {len(planned)} planned island(s), "
            f"pattern {opts.pattern}.",
            "# Written by `islands launch --backend slurm` (or `islands slurm-script`); submitting it again",
            "# resumes every listed island from its checkpoint. Islands: "
            + " ".join(f"{i}={planned[i]}" for i in indices),
            f"#SBATCH --job-name=islands-{run_id[:8]}"]
    per_node = -(-len(indices) // opts.nodes) if opts.nodes else 1  # pattern node: a core per island
    if array:
        head += [f"#SBATCH --array={format_cores(indices)}", "#SBATCH --ntasks=1",
                 f"#SBATCH --output={run_dir}/slurm/%A_%a.out"]
    elif opts.pattern == "node":
        head += [f"#SBATCH --nodes={opts.nodes}", "#SBATCH --ntasks-per-node=1",
                 f"#SBATCH --output={run_dir}/slurm/%j.out"]
    else:
        head += [f"#SBATCH --ntasks={len(indices)}", f"#SBATCH --output={run_dir}/slurm/%j.out"]
    head += [f"#SBATCH --cpus-per-task={per_node}"]
    if opts.device == "cuda":
        head += ["#SBATCH --gpus-per-task=1"]
    head += ["#SBATCH --open-mode=append", "#SBATCH --requeue", f"#SBATCH --chdir={cwd}"]
    if opts.warn_s:
        head += [f"#SBATCH --signal=B:USR1@{opts.warn_s}"]
    for flag, value in (("partition", opts.partition), ("time", opts.time), ("account", opts.account)):
        if value is not None:
            head += [f"#SBATCH --{flag}={value}"]
    head += [f"#SBATCH {arg}" for arg in opts.sbatch_args]
    evolve = f"{shlex.quote(python)} -m islands evolve --slurm --run-dir {shlex.quote(run_dir)}"
    body = ["", "set -u", "export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"]
    if env.get("PYTHONPATH"):
        body += [f"export PYTHONPATH={shlex.quote(env['PYTHONPATH'])}"]
    if array:
        task, run = '"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"', f"{evolve} &"
    else:
        body += [f"export {INDICES_ENV}={','.join(str(i) for i in indices)}"]
        task = '"$SLURM_JOB_ID"'
        run = f"srun --ntasks={len(indices)} --cpus-per-task=1 --cpu-bind=cores {evolve} &"
        if opts.pattern == "node":  # one node-local launcher per node forks its slice (launcher.node_launch)
            run = (f"srun --ntasks-per-node=1 --cpus-per-task={per_node} --cpu-bind=cores "
                   f"{shlex.quote(python)} -m launcher.node_launch {shlex.quote(run_dir)} &")
    body += [
        f"MAX_REQUEUES={opts.max_requeues}",
        f"EXIT_STOPPED={EXIT_STOPPED}",
        "warned=0",
        "child=",
        "# The time-limit warning (USR1, to this shell only): one SIGTERM makes the island checkpoint and stop.",
        'on_warning() { warned=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; }',
        "trap on_warning USR1",
        "# scancel and the time limit signal every process of the job: the island gets its own SIGTERM.",
        "trap ':' TERM",
        run,
        "child=$!",
        'while kill -0 "$child" 2>/dev/null; do wait "$child"; done',
        'wait "$child"; rc=$?',
        'if [ "$warned" = 1 ] && { [ "$rc" = 0 ] || [ "$rc" = "$EXIT_STOPPED" ]; }; then',
        '    used=${SLURM_RESTART_COUNT:-0}',
        '    if [ "$used" -lt "$MAX_REQUEUES" ]; then',
        f'        echo "islands: time limit near; checkpointed, requeueing {task.strip(chr(34))} '
        '(requeue $((used + 1)) of $MAX_REQUEUES)"',
        f"        scontrol requeue {task} && exit 0",
        "    else",
        '        echo "islands: time limit near; checkpointed; requeue budget ($MAX_REQUEUES) spent, not requeued"',
        "    fi",
        "fi",
        "# The launcher tells a task that ended by itself from one that was killed (no such line): dead.",
        f'echo "{ENDED_MARK} {task.strip(chr(34))} exit $rc"',
        'exit "$rc"',
    ]
    return "\n".join(head + body) + "\n"
