"""The SLURM options of `islands launch --backend slurm`, and `islands slurm-script`.

Thin: options become a `SlurmOptions` (checked there) and a `LaunchRequest`; the work is in
`launcher.slurm`. `islands slurm-script` is registered as a plug-in command (entry point
`islands.commands`), like `islands launch`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from islands.cli import (ALLOW_SHARED_ENV, Int64, allow_nonempty_option, config_from_options, guarded,
                         new_run_dir, run_dir_option, run_options)
from islands.exit_codes import EXIT_ERROR
from islands.runs import check_memory, check_run_dir
from launcher.errors import PlanError
from launcher.sbatch import PATTERNS, SlurmOptions
from launcher.session import LaunchRequest
from launcher.supervise import RestartPolicy

SLURM_FLAGS = ("partition", "time", "account", "sbatch_args", "pattern", "warn_before", "max_requeues", "detach")


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
                     help="array (default): one array task per island; step: one job, srun -n N."),
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
                 max_requeues: int | None) -> SlurmOptions:
    d = SlurmOptions()
    return SlurmOptions(pattern=pattern or d.pattern, partition=partition, time=time, account=account,
                        sbatch_args=tuple(sbatch_args), warn_s=d.warn_s if warn_before is None else warn_before,
                        max_requeues=d.max_requeues if max_requeues is None else max_requeues,
                        device=device or "cpu")


def given_slurm_options(values: dict[str, Any]) -> list[str]:
    """The SLURM-only options the user typed (refused without --backend slurm)."""
    return ["--" + k.replace("_", "-").replace("sbatch-args", "sbatch-arg") for k in SLURM_FLAGS
            if values.get(k) not in (None, (), False)]


def run_slurm(request: LaunchRequest, opts: SlurmOptions, detach: bool, plain: bool,
              progress_every: float | None) -> None:
    """`islands launch --backend slurm`, from checked options to the exit code."""
    from launcher.progress import make_view
    from launcher.slurm import SlurmLaunch

    if request.allow_shared_run:
        os.environ[ALLOW_SHARED_ENV] = "1"
    view = make_view(live=False if plain else None, every_s=progress_every)
    try:
        result = SlurmLaunch(request, opts, view).run(detach=detach)
    finally:
        view.close()
    if result.state in ("finished", "submitted", "detached"):
        return
    if result.signal is not None:
        sys.exit(128 + result.signal)
    sys.exit(EXIT_ERROR)


@click.command("slurm-script")
@click.option("-n", "--islands", "n_islands", type=Int64(max=4096), default=None,
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
    SLURM_ARRAY_TASK_ID (pattern array) or SLURM_PROCID (pattern step).
    """
    from launcher.slurm import script_text

    slurm = {k: options.pop(k) for k in SLURM_FLAGS if k in options}
    opts = make_options(device, slurm.get("pattern"), slurm.get("partition"), slurm.get("time"),
                        slurm.get("account"), slurm.get("sbatch_args", ()), slurm.get("warn_before"),
                        slurm.get("max_requeues"))
    config, explicit = config_from_options(options)
    root = run_dir or new_run_dir(config.problem)
    check_memory(config)
    check_run_dir(root, allow_nonempty)
    request = LaunchRequest(root=root, config=config, explicit=explicit, islands=n_islands, device=device,
                            vary=tuple(vary), allow_shared_run=allow_shared_run, policy=RestartPolicy())
    click.echo(script_text(request, opts), nl=False)
    if run_dir is None:
        click.echo(f"run directory {root}", err=True)


def refuse_local_only(cores: str | None, device: str | None) -> None:
    if cores is not None:
        raise PlanError("--cores applies to local launches; under SLURM the scheduler picks the cores")
    if device is not None and device not in ("cpu", "cuda"):
        raise PlanError(f"--device {device!r}: under SLURM use cpu or cuda (SLURM gives each task its GPU)")

