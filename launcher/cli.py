"""`islands launch`: the click command, a thin adapter over `launcher.session.launch`.

Registered as a plug-in command of `islands` (entry point group `islands.commands`).
Exit codes: 0 every island finished; 1 an island failed (or a run-directory error);
2 bad input or a contradiction of the run manifest (nothing started); 4 another launcher
already runs this run directory; 128+N stopped by signal N (130 for Ctrl+C).
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from islands.cli import (ALLOW_SHARED_ENV, FiniteFloat, Int64, allow_nonempty_option, config_from_options,
                         guarded, new_run_dir, run_dir_option, run_options)
from islands.exit_codes import EXIT_ERROR
from islands.runs import check_memory, check_run_dir
from launcher.errors import PlanError
from launcher.session import LaunchRequest
from launcher.supervise import RestartPolicy

_POLICY = RestartPolicy()  # the defaults below are the library's, never restated here
MAX_ISLANDS = 4096  # far beyond any machine's cores; a typo like -n 1000000000 must not plan for an hour


@click.command()
@click.option("-n", "--islands", "n_islands", type=Int64(max=MAX_ISLANDS), default=None,
              help="Number of islands (default: one per available core; on resume: the recorded number).")
@run_dir_option
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
                   "Must exceed your slowest generation.")
@click.option("--grace", type=FiniteFloat(), default=LaunchRequest.grace_s, show_default=True,
              help="Seconds islands get to checkpoint and stop after Ctrl+C before they are killed.")
@click.option("--progress-every", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Seconds between progress reports (default: 0.5 on a terminal, 10 otherwise).")
@click.option("--plain", is_flag=True, help="Plain progress lines even on a terminal.")
@click.option("--allow-shared-run", is_flag=True,
              help="Accept a run directory or manifest that other users can write (whoever "
                   "can write the manifest can run code in every island).")
@click.option("--no-fork-server", is_flag=True,
              help="Start every island as a fresh process instead of forking it from a template that "
                   "imported torch once (also ISLANDS_NO_FORK_SERVER=1).")
@run_options
@guarded
def launch(n_islands: int | None, run_dir: Path | None, allow_nonempty: bool, cores: str | None, device: str | None,
           vary: tuple[str, ...], max_restarts: int, hang_timeout: float, grace: float,
           progress_every: float | None, plain: bool, allow_shared_run: bool, no_fork_server: bool,
           **options: Any) -> None:
    """Start N islands, one per core, supervise them and resume them when run again.

    Each island is its own `islands evolve` process pinned to one core with one thread, its
    output in RUN_DIR/islands/island-XX/island.log. Crashed or hung islands are restarted
    from their checkpoint; Ctrl+C checkpoints every island and stops (a second Ctrl+C kills
    them). Without --run-dir a new run gets a new folder (printed); to resume, run the same
    command with --run-dir naming it; finished islands are not rerun.
    """
    from launcher.progress import make_view
    from launcher.session import launch as run_launch

    if cores is not None and not cores.strip():
        raise PlanError("--cores '' names no core (leave the option out to use every core)")
    config, explicit = config_from_options(options)
    root = run_dir or new_run_dir(config.problem)
    check_memory(config)
    check_run_dir(root, allow_nonempty)
    request = LaunchRequest(
        root=root, config=config, explicit=explicit, islands=n_islands, cores=cores, device=device,
        vary=tuple(vary), policy=RestartPolicy(max_restarts=max_restarts, hang_timeout_s=hang_timeout),
        grace_s=grace, resume_hint=_resume_hint(root), allow_shared_run=allow_shared_run,
        fork_server=not no_fork_server,
    )
    if allow_shared_run:
        os.environ[ALLOW_SHARED_ENV] = "1"  # the islands it starts inherit the consent
    view = make_view(live=False if plain else None, every_s=progress_every)
    try:
        result = run_launch(request, view)
    finally:
        view.close()
    if result.state == "finished":
        return
    if result.signal is not None:
        sys.exit(128 + result.signal)
    sys.exit(EXIT_ERROR)


def _resume_hint(root: Path) -> str:
    """The command line that resumes this run: the one typed, with the run directory made explicit."""
    args = sys.argv[1:]
    if "--run-dir" not in args and not any(a.startswith("--run-dir=") for a in args):
        args += ["--run-dir", str(root)]
    return shlex.join(["islands", *args])
