"""islands: file-coordinated island-model evolution with PyTorch.

The library API: `islands.runs.evolve` runs one island (also on a fitness function or
`Problem` given as a Python object), `launcher.session.launch` an archipelago,
`islands.results.open_run` reads a run's results, `islands.problems.make_problem` builds a
problem, `islands.algorithms.make_algorithm` an algorithm. Importing this package
does not import torch, so a process can limit its threads first (`islands.threads`).

What is here (docs/DESIGN.md, "Layers": `launcher -> islands -> migration_pool`):

    problems/          what an island optimises: benchmarks, network tasks, gymnasium, plug-ins
    algorithms/        the search algorithms, chosen by name (`--algorithm`)
    operators.py       genetic operators as pure tensor functions
    nets.py            fixed-topology networks for "pure" neuroevolution
    config.py          the frozen, validated settings of a run and of one island
    manifest.py        the run's manifest as a record: what every island agrees on (no torch)
    runs.py            starting or joining a run, and `evolve`, the library form of one island
    island.py          the island process: the epoch loop around the pure algorithm core
    events.py          what the loop emits (generation, migration, checkpoint, target, end)
    recorders.py       what observes it and writes: history, checkpointer, heartbeat, target marker
    population.py      the `Population` view of an algorithm's individuals, and genome kinds
    policies.py        migration policies on that view: select emigrants, screen, replace
    figures.py         diversity, foreign share, origins, centroid, best and mean, from the view
    migration.py       the island's migration step: publish, read neighbours, adopt immigrants
    checkpoint.py      what a checkpoint holds, and resuming from it
    stopping.py        stopping an island by signal (Ctrl+C, SIGTERM, a time-limit warning)
    threads.py         one compute thread per island process, set before torch loads
    island_template.py the pre-imported template the launcher forks CPU islands from
    plancheck.py       building every planned island's settings once, before a launch starts
    scheduler_state.py what SLURM says about a run's tasks (read by status and the launcher)
    status/            the island's observable record and the `islands status` report
    results.py         a run's history, champion and policy as plain data
    evaluate.py        the champion on starts it never trained on
    errors.py          the engine's exceptions; exit_codes.py: the commands' exit codes (no torch)
    cli.py             the `islands` command (thin); with cli_errors.py (error -> exit code),
                       cli_types.py (option types), cli_run_dir.py (the run directory options),
                       draw.py, export_cli.py, evaluate_cli.py (the built-in subcommands)
"""

__version__ = "0.1.0"
