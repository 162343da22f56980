"""`islands launch` and `islands slurm-script`: click commands, thin adapters over `launcher.session`
and `launcher.slurm`.

Registered as a plug-in command of `islands` (entry point group `islands.commands`).
Exit codes: 0 every island finished; 1 an island failed (or a run-directory error);
2 bad input or a contradiction of the run manifest (nothing started); 4 another launcher
already runs this run directory; 75 stopped before every island finished (a signal, or
islands stopped one by one; checkpointed, the same command resumes); 130 a second Ctrl+C
killed the islands without a last checkpoint.
"""
from __future__ import annotations

import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from islands.cli import ALLOW_SHARED_ENV, config_from_options, logger_option, run_options
from islands.loggers import LOGGERS_ENV
from islands.cli_errors import guarded
from islands.cli_run_dir import (allow_nonempty_option, confirm_fresh, new_option, refuse_new_with_run_dir,
                                 run_dir_option, settings_run_dir, start_line, warn_about_locks, yes_option)
from islands.cli_help import GroupedCommand
from islands.cli_types import FiniteFloat, Int64
from islands.exit_codes import EXIT_ERROR, EXIT_STOPPED
from islands.tuning.tuner import check_tuner
from islands.runs import check_memory, check_run_dir
from islands.stopping import ignore_stop_signals
from launcher.errors import PlanError
from launcher.launch_view import make_view
from launcher.sbatch import PATTERNS, SlurmOptions
from launcher.request import LaunchRequest
from launcher.session import launch as run_launch
from launcher.stop_requests import StopRequests
from launcher.slurm import SlurmLaunch, script_text
from launcher.supervise import RestartPolicy
from migration_pool.island_ids import MAX_ISLANDS

_POLICY = RestartPolicy()  # the defaults below are the library's, never restated here
# MAX_ISLANDS (migration_pool.island_ids): a typo like -n 1000000000 must not plan for an hour


# -- SLURM (launcher/slurm.py): the options of --backend slurm, shared with `islands slurm-script`
SLURM_FLAGS = ("partition", "time", "account", "sbatch_args", "pattern", "nodes", "warn_before", "max_requeues",
               "detach")


def slurm_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options that shape the batch job (shared by `launch` and `slurm-script`)."""
    for opt in reversed([
        click.option("--partition", default=None, help="SLURM partition (default: the cluster's)."),
        click.option("--time", default=None, metavar="LIMIT",
                     help="Time limit per task (SLURM formats: minutes, HH:MM:SS, D-HH:MM). Before it the "
                          "islands checkpoint and requeue themselves (see --warn-before, --max-requeues)."),
        click.option("--account", default=None, help="SLURM account to charge."),
        click.option("--sbatch-arg", "sbatch_args", multiple=True, metavar="OPTION",
                     help="An extra sbatch option, e.g. --sbatch-arg=--qos=long (repeatable)."),
        click.option("--pattern", type=click.Choice(PATTERNS), default=None,
                     help="array (default): one array task per island; step: one job, srun -n N; "
                          "node: one job of --nodes whole nodes, each forking its share of the islands."),
        click.option("--nodes", type=Int64(min=1, max=65535), default=None, metavar="N",
                     help="--pattern node: the nodes to spread the islands over (a core per island on each)."),
        click.option("--warn-before", type=Int64(min=0, max=65535), default=None, metavar="SECONDS",
                     help="Seconds before the time limit at which islands checkpoint and requeue "
                          "(--signal=B:USR1@SECONDS; default 120; 0: no warning)."),
        click.option("--max-requeues", type=Int64(min=0), default=None,
                     help="Times a task may requeue itself on a time limit (default 3)."),
    ]):
        fn = opt(fn)
    return fn


def make_options(device: str | None, pattern: str | None, partition: str | None, time: str | None,
                 account: str | None, sbatch_args: tuple[str, ...], warn_before: int | None,
                 max_requeues: int | None, nodes: int | None = None) -> SlurmOptions:
    d = SlurmOptions()
    return SlurmOptions(pattern=pattern or d.pattern, partition=partition, time=time, account=account,
                        sbatch_args=tuple(sbatch_args), warn_s=d.warn_s if warn_before is None else warn_before,
                        max_requeues=d.max_requeues if max_requeues is None else max_requeues,
                        device=device or "cpu", nodes=nodes)


def given_slurm_options(values: dict[str, Any]) -> list[str]:
    """The SLURM-only options the user typed (refused without --backend slurm)."""
    return ["--" + k.replace("_", "-").replace("sbatch-args", "sbatch-arg") for k in SLURM_FLAGS
            if values.get(k) not in (None, (), False)]


def run_slurm(request: LaunchRequest, opts: SlurmOptions, detach: bool, plain: bool,
              progress_every: float | None) -> None:
    """`islands launch --backend slurm`, from checked options to the exit code."""
    if request.allow_shared_run:
        os.environ[ALLOW_SHARED_ENV] = "1"
    if request.loggers:  # the job's tasks inherit the submitting environment
        os.environ[LOGGERS_ENV] = "\n".join(request.loggers)
    stops = StopRequests().install()  # as for a local launch: requests until the process exits
    ignore_stop_signals()
    view = make_view(live=False if plain else None, every_s=progress_every)
    try:
        result = SlurmLaunch(request, opts, view, stops=stops).run(detach=detach)
    finally:
        view.close()
        stops.restore((signal.SIGINT,))
    if result.state in ("finished", "submitted", "detached"):
        return
    sys.exit(EXIT_STOPPED if result.state == "stopped" else EXIT_ERROR)


@click.command("slurm-script", cls=GroupedCommand)
@click.option("-n", "--islands", "n_islands", type=Int64(max=MAX_ISLANDS), default=None,
              help="Number of islands (a new run needs it; on resume: the recorded number).")
@run_dir_option
@allow_nonempty_option
@click.option("--device", default=None, metavar="cpu|cuda", help="cuda asks one GPU per task (--gpus-per-task=1).")
@click.option("--vary", multiple=True, metavar="NAME=LOW:HIGH[:log]|NAME=A,B,C",
              help="Spread a setting over the islands, as for `islands launch`.")
@slurm_options
@click.option("--allow-shared-run", is_flag=True, help="Accept a run directory others can write.")
@run_options
@guarded
def slurm_script(n_islands: int | None, run_dir: Path | None, allow_nonempty: bool, device: str | None,
                 vary: tuple[str, ...], allow_shared_run: bool, **options: Any) -> None:
    """Print the sbatch script that runs this run's unfinished islands, to submit yourself.

    Takes the options of `islands launch --backend slurm`. A new run's manifest (with its
    planned islands) is written first, so every task joins one run; submit the printed script
    with `sbatch FILE`. Each task runs `islands evolve --slurm`, which takes its island from
    SLURM_ARRAY_TASK_ID (pattern array) or SLURM_PROCID (pattern step); with pattern node each
    node's task runs a node-local launcher for its share (`launcher.node_launch`).
    """
    slurm = {k: options.pop(k) for k in SLURM_FLAGS if k in options}
    opts = make_options(device, slurm.get("pattern"), slurm.get("partition"), slurm.get("time"),
                        slurm.get("account"), slurm.get("sbatch_args", ()), slurm.get("warn_before"),
                        slurm.get("max_requeues"), slurm.get("nodes"))
    config, explicit = config_from_options(options, tuple(vary))
    root = run_dir or settings_run_dir(config, _identity(n_islands, vary))
    check_memory(config)
    check_tuner(config.tuner)
    check_run_dir(root, allow_nonempty)
    request = LaunchRequest(root=root, config=config, explicit=explicit, islands=n_islands, device=device,
                            vary=tuple(vary), allow_shared_run=allow_shared_run, policy=RestartPolicy())
    click.echo(script_text(request, opts), nl=False)
    if run_dir is None:
        click.echo(start_line(root), err=True)


# Options of the local supervisor that a SLURM launch has no use for: refused when typed, so
# nobody believes they took effect.
LOCAL_ONLY = {"evaluate_episodes": "--evaluate", "no_fork_server": "--no-fork-server", "grace": "--grace",
              "hang_timeout": "--hang-timeout"}


def refuse_local_only(cores: str | None, device: str | None) -> None:
    if cores is not None:
        raise PlanError("--cores applies to local launches; under SLURM the scheduler picks the cores")
    if device is not None and device not in ("cpu", "cuda"):
        raise PlanError(f"--device {device!r}: under SLURM use cpu or cuda (SLURM gives each task its GPU)")


@click.command(cls=GroupedCommand)
@click.option("-n", "--islands", "n_islands", type=Int64(max=MAX_ISLANDS), default=None,
              help="Number of islands (default: one per available core; on resume: the recorded number).")
@run_dir_option
@new_option
@allow_nonempty_option
@click.option("--cores", default=None, metavar="LIST",
              help="Cores to pin islands to, e.g. 0-15,32-47 (default: every core this process may use). "
                   "One island per core, round-robin when islands outnumber cores.")
@click.option("--device", default=None, metavar="cpu|cuda|cuda:N",
              help="cpu (default); cuda gives each island one GPU round-robin; cuda:N puts all on GPU N.")
@click.option("--vary", multiple=True, metavar="NAME=LOW:HIGH[:log]|NAME=A,B,C",
              help="Spread a setting over the islands (recorded in the manifest); repeatable. A range is "
                   "sampled (seeded), a list is dealt round-robin. NAME: algorithm, population, a GA "
                   "setting (mutation_sigma, mutation_rate, crossover_rate, tournament_size, sbx_eta, "
                   "blx_alpha, elitism, crossover, mutation, bounds), algo.KEY (an algorithm setting, "
                   "e.g. algo.sigma0) or param.KEY (a problem parameter, e.g. param.hidden). "
                   "--algorithm-param must suit every algorithm of the run.")
@click.option("--max-restarts", type=Int64(), default=_POLICY.max_restarts, show_default=True,
              help=f"Give an island up as failed after this many crashes within {_POLICY.window_s:g} s "
                   f"({_POLICY.healthy_s:g} s without a crash resets the count).")
@click.option("--hang-timeout", type=FiniteFloat(), default=_POLICY.hang_timeout_s, show_default=True,
              help="Seconds without a heartbeat after which an island is killed and restarted "
                   f"(0: never; at least {_POLICY.startup_s:g} s before its first heartbeat). "
                   "Must exceed your slowest generation, and 5 s: on a crowded machine an island's "
                   "heartbeats may be that far apart.")
@click.option("--grace", type=FiniteFloat(), default=LaunchRequest.grace_s, show_default=True,
              help="Seconds islands get to checkpoint and stop after Ctrl+C before they are killed.")
@click.option("--progress-every", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Seconds between progress reports (default: 0.5 on a terminal, 10 otherwise).")
@click.option("--plain", is_flag=True, help="Plain progress lines even on a terminal.")
@click.option("--evaluate", "evaluate_episodes", type=Int64(min=0, max=2**20), default=LaunchRequest.evaluate_episodes,
              show_default=True,
              help="After a finished run of a gym:* or cartpole problem, run the champion on this many "
                   "unseen starts (islands evaluate); 0: skip.")
@click.option("--fresh", "--fresh-run", "fresh", is_flag=True,
              help="Start the run over: delete its manifest and every island's files first (asks on a "
                   "terminal, else needs --yes; refused while the run's launcher or islands are alive).")
@yes_option
@click.option("--allow-shared-run", is_flag=True,
              help="Accept a run directory or manifest that other users can write (whoever "
                   "can write the manifest can run code in every island).")
@click.option("--backend", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="local: processes on this machine; slurm: a SLURM job (array) over a shared run directory.")
@slurm_options
@click.option("--detach", is_flag=True, help="With --backend slurm: submit and return without watching.")
@click.option("--no-fork-server", is_flag=True,
              help="Start every island as a fresh process instead of forking it from a template that "
                   "imported torch once (also ISLANDS_NO_FORK_SERVER=1).")
@logger_option
@run_options
@guarded
def launch(n_islands: int | None, run_dir: Path | None, new: bool, allow_nonempty: bool, cores: str | None,
           device: str | None,
           vary: tuple[str, ...], max_restarts: int, hang_timeout: float, grace: float,
           progress_every: float | None, plain: bool, evaluate_episodes: int, fresh: bool, yes: bool,
           allow_shared_run: bool, backend: str, no_fork_server: bool, logger: tuple[str, ...],
           **options: Any) -> None:
    """Start N islands, one per core, supervise them and resume them when run again.

    Each island is its own `islands evolve` process pinned to one core with one thread, its
    output in RUN_DIR/islands/island-XX/island.log. Crashed or hung islands are restarted
    from their checkpoint; Ctrl+C (or SIGTERM, SIGUSR1) checkpoints every island and stops
    with exit 75 (a second Ctrl+C kills them, exit 130). Without --run-dir the run lives in a
    folder named by its settings (printed), so the same command resumes it and --new starts
    another; finished islands are not rerun.
    """
    slurm = {k: options.pop(k) for k in SLURM_FLAGS}
    if backend != "slurm" and given_slurm_options(slurm):
        raise PlanError(f"{given_slurm_options(slurm)[0]} needs --backend slurm")
    if cores is not None and not cores.strip():
        raise PlanError("--cores '' names no core (leave the option out to use every core)")
    refuse_new_with_run_dir(new, run_dir)
    config, explicit = config_from_options(options, tuple(vary))
    root = run_dir or settings_run_dir(config, _identity(n_islands, vary), new=new)
    check_memory(config)
    check_tuner(config.tuner)
    check_run_dir(root, allow_nonempty)
    warn_about_locks(root)
    said = start_line(root, new) if run_dir is None else None  # said by the launch once it is accepted
    if backend == "slurm":
        refuse_local_only(cores, device)
        ctx = click.get_current_context()
        given = [flag for name, flag in LOCAL_ONLY.items()
                 if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)]
        if given:
            raise PlanError(f"{given[0]} applies to local launches (under SLURM the batch script and "
                            "the scheduler do that job)")
        if fresh:
            raise PlanError("--fresh is for local launches; for SLURM, scancel the run's jobs and use a new --run-dir")
        opts = make_options(device, slurm["pattern"], slurm["partition"], slurm["time"], slurm["account"],
                            slurm["sbatch_args"], slurm["warn_before"], slurm["max_requeues"], slurm["nodes"])
        request = LaunchRequest(root=root, config=config, explicit=explicit, islands=n_islands, device=device,
                                vary=tuple(vary), policy=RestartPolicy(max_restarts=max_restarts),
                                resume_hint=_resume_hint(root), allow_shared_run=allow_shared_run,
                                loggers=tuple(logger), start_line=said)
        return run_slurm(request, opts, slurm["detach"], plain, progress_every)
    if fresh:
        confirm_fresh(root, yes, "--fresh")
    request = LaunchRequest(
        root=root, config=config, explicit=explicit, islands=n_islands, cores=cores, device=device,
        vary=tuple(vary), policy=RestartPolicy(max_restarts=max_restarts, hang_timeout_s=hang_timeout),
        grace_s=grace, resume_hint=_resume_hint(root), allow_shared_run=allow_shared_run,
        evaluate_episodes=evaluate_episodes, fresh=fresh, fork_server=not no_fork_server, loggers=tuple(logger),
        start_line=said,
    )
    if allow_shared_run:
        os.environ[ALLOW_SHARED_ENV] = "1"  # the islands it starts inherit the consent
    # From here to the process's exit a stop signal is a request (`launch` acts on it); as for
    # `islands evolve`, SIGTERM and SIGUSR1 stay requests after the launch and are ignored from
    # interpreter exit on, so a late repeat cannot turn exit 75 into a death by signal.
    stops = StopRequests().install()
    ignore_stop_signals()
    view = make_view(live=False if plain else None, every_s=progress_every)
    try:
        result = run_launch(request, view, stops)
    finally:
        view.close()
        stops.restore((signal.SIGINT,))  # a person's Ctrl+C ends whatever is left
    if result.state == "finished":
        return
    if result.killed:
        sys.exit(128 + signal.SIGINT)
    sys.exit(EXIT_STOPPED if result.state == "stopped" else EXIT_ERROR)


def _identity(n_islands: int | None, vary: tuple[str, ...]) -> dict[str, Any]:
    """What defines a launched run beyond its settings (for its folder's name): the island count
    and --vary, when given; a launch without them finds the run `islands evolve` made alike."""
    return {k: v for k, v in (("islands", n_islands), ("vary", list(vary))) if v}


def _resume_hint(root: Path) -> str:
    """The command line that resumes this run: the one typed, with the run directory made explicit
    and without --fresh (which would start it over again)."""
    args = [a for a in sys.argv[1:] if a not in ("--fresh", "--fresh-run", "--yes", "-y", "--new")]
    if "--run-dir" not in args and not any(a.startswith("--run-dir=") for a in args):
        args += ["--run-dir", str(root)]
    return shlex.join(["islands", *args])
