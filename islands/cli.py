"""The `islands` command line: a thin adapter over the library.

Each command parses its options, calls one library function and turns the library's errors
into a one-line message and an exit code (see `islands.exit_codes`). torch is imported only inside
commands, after the thread variables are set.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from islands.threads import limit_env

limit_env()  # before anything imports torch (docs/DESIGN.md, "One thread per island")

import click  # noqa: E402

from islands import config as cfg  # noqa: E402  (no torch: settings and their choices)
from islands.algorithms import registry  # noqa: E402  (no torch: the algorithms' names and help)
from islands.cli_errors import guarded  # noqa: E402
from islands.cli_run_dir import (  # noqa: E402
    allow_nonempty_option, confirm_fresh, new_option, refuse_new_with_run_dir, run_dir_option, settings_run_dir,
    start_line, warn_about_locks, yes_option)
from islands.cli_help import GroupedCommand  # noqa: E402
from islands.cli_types import FiniteFloat, Int64  # noqa: E402
from islands.errors import DEBUG_ENV, ConfigError, IslandsError  # noqa: E402
from islands.tuning.config import TUNERS  # noqa: E402
from islands.exit_codes import EXIT_NO_FITNESS, EXIT_STOPPED, REASON_NO_FITNESS  # noqa: E402
from islands.loggers import LoggerSpec, parse_logger, specs_from_env  # noqa: E402
from islands.tuning.tuner import check_tuner  # noqa: E402
from islands.runs import check_memory, check_run_dir, evolve as run_evolve  # noqa: E402
from islands.scheduler_state import island_from_env  # noqa: E402
from islands.status.island_view import make_island_view  # noqa: E402
from islands.status.reader import open_run  # noqa: E402
from islands.stopping import StopFlag, ignore_stop_signals, install_stop_handlers  # noqa: E402
from migration_pool.errors import PoolError  # noqa: E402


# (option name, config path, click type, help). Defaults come from RunConfig; an option the
# user did not type is None here and so never contradicts an existing manifest.
ALLOW_SHARED_ENV = "ISLANDS_ALLOW_SHARED_RUN"  # set by `launch --allow-shared-run` for its islands
RUN_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--problem", "problem", str, "Problem: a built-in name (see `islands problems`) or package.module:factory."),
    ("--dim", "dim", Int64(min=1), "Genome dimension of the problem."),
    ("--algorithm", "algorithm", click.Choice(cfg.ALGORITHMS),
     registry.cli_help()),
    ("--population", "population", Int64(), registry.population_help()),
    ("--dtype", "dtype", click.Choice(cfg.DTYPES),
     "Precision of genomes and fitness (float64 benchmarks, float32 networks)."),
    ("--max-evaluations", "evaluation_budget", Int64(min=1),
     "The run's evaluation budget, split evenly over its planned islands (an island started "
     "alone gets all of it); each island stops on its share. Lifts the generation limit unless "
     "--generations is given."),
    ("--budget-share", "budget_share", click.Choice(cfg.BUDGET_SHARES),
     "How islands share --max-evaluations: even parts, or parts weighted by each island's progress per "
     "evaluation (an island improving slowly waits while the others spend). auto: progress when the "
     "islands run different algorithms (--vary algorithm=...), even otherwise."),
    ("--max-evaluations-per-island", "max_evaluations", Int64(min=1),
     "Stop each island after this many evaluations (as --max-evaluations, but per island)."),
    ("--generations", "generations", Int64(), "Generations per island (no limit under an evaluation budget "
     "unless given; given with one, the earlier limit stops the island)."),
    ("--seed", "seed", Int64(min=0), "Run seed; each island's seed derives from it and its id."),
    ("--checkpoint-every", "checkpoint_every", Int64(min=1), "Generations between checkpoints."),
    ("--checkpoint-seconds", "checkpoint_seconds", FiniteFloat(min=0),
     "A periodic checkpoint also waits until this many seconds passed since the last one "
     "(default 30; 0: by --checkpoint-every alone). A crash loses at most max(both)."),
    ("--stagnation-limit", "stagnation_limit", Int64(min=0), "Stop after this many generations without improvement (0: never)."),
    ("--target", "target", FiniteFloat(allow_inf=True), "Stop when the best fitness reaches this."),
    ("--stop-when", "stop_when", click.Choice(cfg.STOP_WHEN),
     "all: each island stops at its own target; first: the whole run stops once any island reaches it."),
    ("--migrate-every", "migration.every", Int64(min=0),
     "Generations between migrations (0: isolated)."),
    ("--migrants", "migration.migrants", Int64(min=1), "Genomes published per migration."),
    ("--topology", "migration.topology", click.Choice(cfg.TOPOLOGIES), "Who reads whom."),
    ("--emigrants", "migration.emigrants", click.Choice(cfg.EMIGRANT_POLICIES),
     "How emigrants are chosen."),
    ("--replacement", "migration.replacement", click.Choice(cfg.REPLACEMENT_POLICIES),
     "Which residents immigrants replace: worst, random (non-elite), or better (the worst, only "
     "by a better immigrant: pygmo's fair replace)."),
    ("--migration-probability", "migration.probability", FiniteFloat(0, 1, min_open=True),
     "Chance that a due migration happens, drawn reproducibly per island and generation."),
    ("--migration-start", "migration.start", Int64(min=0),
     "No migration before this generation."),
    ("--migration-min-distance", "migration.min_distance", FiniteFloat(min=0),
     "Reject an immigrant closer than this to a resident (RMS over genes, share of the box "
     "width; 0: only exact copies)."),
    ("--migration-max-lead", "migration.max_lead", Int64(min=-1),
     "Asynchronous migration: refuse a neighbour's batch published more than this many "
     "generations after this island's generation (a neighbour far ahead takes an island over; "
     "0: batches of the same event or earlier; -1: no limit). Off in a run that varies the "
     "algorithm or population, whose generations differ in cost."),
    ("--migration", "migration.mode", click.Choice(cfg.MIGRATION_MODES),
     "async: read whatever neighbours published (fastest; timing-dependent). sync: wait at each "
     "migration for each source's batch of that generation, so a run is a pure function of its "
     "seed and settings (an ended source is skipped and counted)."),
    ("--migration-timeout", "migration.sync_timeout", FiniteFloat(min=0, min_open=True),
     "With --migration sync: seconds an island waits for a source that is alive but behind "
     "(or not started) before skipping it."),
    ("--tuner", "tuner.kind", click.Choice(TUNERS),
     "How islands change the settings --vary names while the run goes on: static (never: a spread), "
     "asha (successive halving at rungs: the lagging restart with new settings), pbt (the bottom copy "
     "a top island's population and settings, then explore), tpe (asha's rungs, restarts proposed "
     "by Optuna's TPE; needs islands[optuna])."),
    ("--rung", "tuner.rung", Int64(min=1),
     "asha/tpe: generations of a segment at its first rung; the next rungs at rung*reduction^k."),
    ("--reduction", "tuner.reduction", Int64(min=2),
     "asha/tpe: a segment stays at a rung if in the top 1/reduction there."),
    ("--ready", "tuner.ready", Int64(min=1), "pbt: generations between an island's exploit decisions."),
    ("--pbt-fraction", "tuner.fraction", FiniteFloat(0, 0.5, min_open=True),
     "pbt: the bottom fraction copies from the top fraction."),
    ("--optuna-journal", "tuner.optuna_journal", click.BOOL,
     "Write RUN/optuna.journal at the end of a --vary launch (every segment or island a trial) when "
     "Optuna is installed, for optuna-dashboard; false: do not. --tuner tpe always writes it."),
    ("--tournament-size", "ga.tournament_size", Int64(min=1), "GA tournament size."),
    ("--crossover", "ga.crossover", click.Choice(cfg.CROSSOVERS), "GA crossover operator."),
    ("--crossover-rate", "ga.crossover_rate", FiniteFloat(0, 1), "Probability that a pair is recombined."),
    ("--mutation-rate", "ga.mutation_rate", FiniteFloat(0, 1), "Per-gene mutation probability."),
    ("--mutation", "ga.mutation", click.Choice(cfg.MUTATIONS),
     "GA mutation step: self-adaptive per individual or fixed."),
    ("--mutation-sigma", "ga.mutation_sigma", FiniteFloat(min=0, min_open=True), "Mutation step (initial step if self-adaptive) as a share of the box width."),
    ("--elitism", "ga.elitism", Int64(min=0), "Best individuals copied unchanged."),
    ("--bounds", "ga.bounds", click.Choice(cfg.BOUND_HANDLING), "Bound handling."),
]



# What a setting whose default is None means (the config resolves it later).
_NONE_DEFAULTS = {"population": "the algorithm's default", "dtype": "the problem's",
                  "target": "the problem's solved threshold", "max_evaluations": "no limit",
                  "evaluation_budget": "no limit", "generations": str(cfg.DEFAULT_GENERATIONS),
                  "ga.mutation_rate": "1/dim"}


def option_default(path: str) -> str:
    """The default of a dotted config path as help shows it, read from RunConfig (never restated)."""
    value: Any = cfg.RunConfig
    for part in path.split("."):  # the declared defaults, before __post_init__ resolves any
        field = {f.name: f for f in dataclasses.fields(value)}[part]
        value = field.default_factory() if field.default is dataclasses.MISSING else field.default  # type: ignore[misc]
    if value is None:
        return _NONE_DEFAULTS.get(path, "none")
    return format(value, "g") if isinstance(value, float) else str(value)


def logger_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`--logger SPEC` (repeatable), shared by `evolve` and `launch`."""
    return click.option(
        "--logger", "logger", multiple=True, metavar="KIND:FOLDER",
        help="Also send each island's generations to jsonl:FOLDER (FOLDER/<island>.jsonl), "
             "tensorboard:FOLDER (FOLDER/<island>/, needs islands[tensorboard]) or module:factory "
             "(your factory(island) returns an islands.loggers.Logger). Repeatable.")(fn)


def logger_specs(texts: tuple[str, ...]) -> list[LoggerSpec]:
    """The typed --logger specs, checked (ConfigError: one line, exit 2, nothing written); none
    typed: those a launching `islands launch --logger` passed in the environment."""
    return [parse_logger(t) for t in texts] if texts else specs_from_env(os.environ)


def run_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the run-setting options shared by `evolve` and `launch`, each help with its default.

    The option itself defaults to None (an option the user did not type never contradicts a
    manifest), so the default is written into the help text rather than given to click.
    """
    for flag, path, typ, help_ in reversed(RUN_OPTIONS):
        fn = click.option(flag, type=typ, default=None, help=f"{help_}  [default: {option_default(path)}]")(fn)
    fn = click.option(
        "--param", "params", multiple=True, metavar="KEY=VALUE",
        help="Problem parameter passed to its factory (repeatable), e.g. hidden=8 for network tasks.",
    )(fn)
    fn = click.option(
        "--algorithm-param", "algorithm_params", multiple=True, metavar="KEY=VALUE",
        help="Algorithm setting (repeatable), e.g. NEAT's recurrent=true or add_node_rate=0.05.",
    )(fn)
    return fn


def config_from_options(options: dict[str, Any], vary: tuple[str, ...] = ()) -> tuple[Any, dict[str, Any]]:
    """The RunConfig for these options and the settings the user gave explicitly; a tuner
    searches the `--vary` space (`vary`), which its config records."""
    explicit: dict[str, Any] = {}
    for flag, path, _typ, _help in RUN_OPTIONS:
        value = options.get(flag.lstrip("-").replace("-", "_"))
        if value is not None:
            explicit[path] = value
    if explicit.get("tuner.kind", "static") != "static":
        explicit["tuner.space"] = list(vary)  # as the manifest records it
    for name, flag in (("params", "--param"), ("algorithm_params", "--algorithm-param")):
        pairs = _key_values(options.get(name) or (), flag)
        if pairs:
            explicit["problem_params" if name == "params" else "algorithm_params"] = pairs
    nested: dict[str, Any] = {}
    for path, value in explicit.items():
        head, _, tail = path.partition(".")
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            nested[head] = value
    try:
        return cfg.RunConfig.from_dict(nested), explicit
    except TypeError as e:
        raise ConfigError(str(e)) from None


def _key_values(items: tuple[str, ...], flag: str) -> dict[str, Any]:
    pairs = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {item!r} is not KEY=VALUE")
        pairs[key] = cfg.parse_cli_value(raw)
    return pairs




class _Commands(click.Group):
    """Built-in commands plus those registered under the `islands.commands` entry points.

    The launcher registers `launch` this way, so this package never imports the launcher
    (the dependency runs launcher -> islands), and plug-ins load only when invoked.
    """

    def _plugins(self) -> dict[str, Any]:
        return {ep.name: ep for ep in entry_points(group="islands.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        found = super().get_command(ctx, name)
        if found is None and name in (plugins := self._plugins()):
            try:
                found = plugins[name].load()
            except ImportError as e:  # a broken plug-in must not take the whole CLI down
                click.echo(f"warning: command {name!r} could not be loaded: {e}", err=True)
        return found


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="islands")
@click.option("--debug", is_flag=True, envvar=DEBUG_ENV,
              help=f"Show the traceback behind an error line, e.g. of a problem module that fails "
                   f"(also {DEBUG_ENV}=1; the islands and checks a command starts inherit it).")
def main(debug: bool) -> None:
    """Island-model evolution on many cores, coordinated through a shared directory.

    Exit codes: 0 finished; 1 error; 2 bad option, manifest conflict, or a problem whose code
    fails (its module, factory or fitness function raises or exits); 3 unusable checkpoint;
    4 already running; 75 stopped by a signal before finishing (checkpointed: run the same
    command to resume).
    """
    if debug:
        os.environ[DEBUG_ENV] = "1"  # children (islands, the plan check) show theirs too


@main.command(cls=GroupedCommand)
@click.argument("island", required=False, metavar="ISLAND")  # needed unless --slurm names it
@run_dir_option
@new_option
@allow_nonempty_option
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: the manifest's, else cpu).")
@click.option("--fresh", is_flag=True, help="Discard this island's checkpoints and history and start it over.")
@click.option("--fresh-run", is_flag=True,
              help="Start the whole run over: delete its manifest and every island's files (asks on a "
                   "terminal, else needs --yes; refused while an island of the run is alive).")
@yes_option
@click.option("--quiet", is_flag=True, help="Print only the final line.")
@click.option("--slurm", is_flag=True,
              help="Run as a SLURM task: the island is the run's planned island at SLURM_ARRAY_TASK_ID "
                   "(job array) or SLURM_PROCID (srun -n N); needs an existing run's --run-dir.")
@click.option("--allow-shared-run", is_flag=True, envvar=ALLOW_SHARED_ENV,
              help="Accept a run directory or manifest that other users can write (they can "
                   "run code in this island through the manifest's problem).")
@logger_option
@run_options
@guarded
def evolve(island: str | None, run_dir: Path | None, new: bool, allow_nonempty: bool, device: str | None, fresh: bool,
           fresh_run: bool, yes: bool, quiet: bool, slurm: bool, allow_shared_run: bool,
           logger: tuple[str, ...], **options: Any) -> None:
    """Run one island in the foreground, resuming from its checkpoint.

    ISLAND is an id like island-03 (under --slurm it comes from the task and is left out).

    With no run in RUN_DIR, this creates one from the options; otherwise it joins that run
    and refuses options that contradict it. Without --run-dir, the run lives in a folder named
    by its settings (printed), so the same command resumes it; --new starts another. Ctrl+C,
    SIGTERM or SIGUSR1 (a scheduler's time-limit warning) finishes the generation, checkpoints
    and exits 75 (stopped, not finished); repeated SIGTERMs change nothing, a second Ctrl+C
    exits at once. Run the same command again to resume.
    """
    if slurm and (fresh or fresh_run):  # every task of the job would start the run over
        raise ConfigError("--slurm runs a task of a planned run: it cannot start it over (--fresh, --fresh-run); "
                          "use a new --run-dir with `islands launch --backend slurm`")
    refuse_new_with_run_dir(new, run_dir)
    island = _island_argument(island, run_dir, slurm)
    cfg.island_number(island)
    config, explicit = config_from_options(options)
    loggers = logger_specs(logger)
    check_memory(config)
    check_tuner(config.tuner)
    root = run_dir or settings_run_dir(config, new=new)
    check_run_dir(root, allow_nonempty)
    if fresh_run:
        confirm_fresh(root, yes, "--fresh-run")
    warn_about_locks(root)
    # Imported only once the options are valid, so a bad option's one-line error does not wait
    # for torch's import.
    # lazy: islands.island loads torch; the launcher imports this module and must not (docs/DESIGN.md, "Layers")
    from islands.island import limit_torch_threads

    limit_torch_threads()
    stop = StopFlag()
    install_stop_handlers(stop)
    view = None if quiet else make_island_view(island, lambda msg: click.echo(msg, err=True), sys.stderr.isatty(),
                                               lambda: _max_evaluations(root))
    echo = (lambda _msg: None) if view is None else view.log
    if run_dir is None:
        click.echo(start_line(root, new), err=True)
    try:
        result = run_evolve(island, root, config, explicit=explicit, device=device, fresh=fresh,
                            fresh_run=fresh_run, allow_shared=allow_shared_run, stop=stop, log=echo,
                            on_status=None if view is None else view.status, loggers=loggers)
    finally:
        if view is not None:
            view.close()  # the bar stays above; the result line below is the last thing shown
    ignore_stop_signals()  # the island's work is saved: a late SIGTERM must not change the exit code
    click.echo(
        f"{result.island}: {result.reason} at generation {result.generation}, "
        f"best fitness {result.best:.6g}, {result.evaluations} evaluations"
        + (f" (resumed from generation {result.resumed_from})" if result.resumed_from is not None else "")
    )
    if result.reason == REASON_NO_FITNESS:
        click.echo(f"error: {result.island}: no finite fitness in {result.generation} generation(s) "
                   "(every value NaN or infinite), so no best genome: check the problem's fitness "
                   f"function (exit {EXIT_NO_FITNESS})", err=True)
        sys.exit(EXIT_NO_FITNESS)
    if result.reason == "stopped":
        again = "the same command"
        dropped = [flag for flag, given in (("--new", new), ("--fresh", fresh), ("--fresh-run", fresh_run)) if given]
        if dropped:  # or it would start another run, or start this one over again
            again += " without " + " and ".join(dropped)
        why = "time limit (SIGUSR1): " if stop.time_limit else ""
        click.echo(f"{why}stopped; run {again} to resume (run directory {root})")
        sys.exit(EXIT_STOPPED)



def _island_argument(island: str | None, run_dir: Path | None, slurm: bool) -> str:
    """ISLAND as given, or with --slurm the planned island this SLURM task runs."""
    if not slurm:
        if island is None:
            raise ConfigError("missing argument ISLAND (an id like island-03), or --slurm inside a SLURM task")
        return island
    if island is not None:
        raise ConfigError(f"--slurm picks the island from SLURM's task id; leave out ISLAND ({island!r})")
    root = run_dir or (Path(os.environ["ISLANDS_RUN_DIR"]) if os.environ.get("ISLANDS_RUN_DIR") else None)
    if root is None:
        raise ConfigError("--slurm needs --run-dir (the run `islands launch --backend slurm` planned)")
    return island_from_env(open_run(root).planned)


def _max_evaluations(root: Path) -> int | None:
    """The island's evaluation budget, its share of the run's (the manifest's, which the options
    may not name)."""
    try:
        return open_run(root).config.max_evaluations
    except (IslandsError, PoolError, OSError):
        return None


@main.command()
@guarded
def problems() -> None:
    """List built-in and plug-in problems, one line each."""
    from islands.problems import describe_all  # lazy: problems load torch (see `evolve`)

    rows = describe_all()
    width = max((len(name) for name, _ in rows), default=0)
    for name, text in rows:
        click.echo(f"{name:<{width}}  {text}")
    click.echo("\nA gymnasium environment: --problem gym:ENV-ID (e.g. gym:CartPole-v1; pip install 'islands[gym]')")
    click.echo("A problem of your own: --problem package.module:factory (factory(dim=..., **params) -> Problem)")


from islands.draw import draw  # noqa: E402
from islands.export_cli import export  # noqa: E402  (built in: works without reinstalling the entry points)

main.add_command(export)
main.add_command(draw)

from islands.evaluate_cli import evaluate, replay  # noqa: E402  (built in, like export)

main.add_command(evaluate)
main.add_command(replay)

from islands.status.runs_cli import runs  # noqa: E402  (built in, like export)

main.add_command(runs)

from islands.confirm_cli import confirm  # noqa: E402  (built in, like export)

main.add_command(confirm)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
