"""`islands evaluate RUN` and `islands replay RUN`: the champion on unseen seeded starts.

Thin click layers over `islands.evaluate`: `evaluate` records the generalisation figure (mean
return, share solved) in the run; `replay` reports the return of each episode, and renders
them where gymnasium can. Both use the seeds of `--seed`, so `replay --seed S --episodes N`
gives the very returns `evaluate --seed S --episodes N` recorded.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import click

from islands.errors import ConfigError, IslandsError
from islands.exit_codes import EXIT_ERROR, EXIT_USAGE
from islands.threads import limit_env
from migration_pool.errors import PoolError

MAX_EPISODES = 2**20


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def guard(action: Callable[[], Any]) -> Any:
    """Run `action`, turning the library's errors into one line and the documented exit code."""
    try:
        return action()
    except ConfigError as e:
        _fail(str(e), EXIT_USAGE)
    except (IslandsError, PoolError) as e:  # no run, a bad manifest, no champion yet
        _fail(str(e), EXIT_ERROR)
    except OSError as e:
        _fail(f"{e.strerror or e}{f': {e.filename}' if e.filename else ''}", EXIT_ERROR)


_run_arg = click.argument("run", type=click.Path(file_okay=False, path_type=Path))
_seed_opt = click.option("--seed", type=click.IntRange(0, 2047), default=0, show_default=True,
                         help="Which set of unseen starts: --seed S uses seeds 2^31 + S * 2^20 + i, never "
                              "a training seed.")
_device_opt = click.option("--device", default="cpu", show_default=True, help="Torch device for the network.")


@click.command("evaluate")
@_run_arg
@click.option("--episodes", type=click.IntRange(1, MAX_EPISODES), default=100, show_default=True,
              help="Unseen starts to run the champion on.")
@_seed_opt
@click.option("--solved", type=float, default=None,
              help="Return at which an episode counts as solved  [default: the environment's reward "
                   "threshold, or the task's own solved level]")
@_device_opt
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
def evaluate(run: Path, episodes: int, seed: int, solved: float | None, device: str, quiet: bool) -> None:
    """Run the champion of RUN on unseen seeded starts; record mean return and share solved."""
    limit_env()
    if solved is not None and not math.isfinite(solved):
        _fail(f"--solved must be a finite number, got {solved}", EXIT_USAGE)

    def act() -> Any:
        from islands.evaluate import generalisation, record  # lazy: loads numpy (BLAS threads), so after limit_env() above
        from islands.results import open_run  # lazy: as above

        res = open_run(run)
        result = generalisation(res, episodes=episodes, seed=seed, solved=solved, device=device)
        record(res, result)
        return result

    result = guard(act)
    if not quiet:
        click.echo(result.line())


@click.command("replay")
@_run_arg
@click.option("--episodes", type=click.IntRange(1, MAX_EPISODES), default=1, show_default=True,
              help="Episodes to run (the first of `evaluate --seed`'s starts).")
@_seed_opt
@click.option("--render", type=click.Choice(["rgb", "human"]), default=None,
              help="Render each step: rgb frames (counted, not saved) or a window (needs a display).")
@_device_opt
def replay(run: Path, episodes: int, seed: int, render: str | None, device: str) -> None:
    """Run the champion policy of RUN and print the return of each episode."""
    limit_env()

    def show(i: int, s: int, total: float, frames: int) -> None:
        extra = f"  {frames} frames" if render else ""
        click.echo(f"episode {i}  seed {s}  return {total:.6g}{extra}")

    def act() -> Any:
        from islands.evaluate import replay as run_replay  # lazy: loads numpy (BLAS threads), so after limit_env() above

        return run_replay(run, episodes=episodes, seed=seed, render=render, device=device, on_episode=show)

    returns = guard(act)
    click.echo(f"mean return {sum(returns) / len(returns):.6g} over {len(returns)} episode(s)")
