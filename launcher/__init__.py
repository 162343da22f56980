"""launcher: spawn, pin and supervise the islands of a run (`islands launch`).

    plan.py       cores, GPUs, island ids and --vary values: what runs where (pure)
    spawn.py      one island process: own process group, parent-death signal, affinity, log
    supervise.py  the restart policy and hang detection, driven by a clock passed in (pure)
    session.py    `launch(LaunchRequest)`: the supervision loop, signals, resume
    progress.py   the live table or plain progress lines
    summary.py    the champion and summary.json
    cli.py        the click command, registered through the `islands.commands` entry point

The launcher opens no run-directory file itself: `migration_pool.rundir.RunDir` does.
"""
