"""launcher: spawn, pin and supervise the islands of a run (`islands launch`).

    cli.py              the click commands `launch` and `slurm-script` (entry points `islands.commands`)
    request.py          `LaunchRequest`, and the plan it resolves to (a new run's, or a resumed run's)
    session.py          `launch(request)`: the supervision loop, signals, resume
    stop_requests.py    stop signals as requests, from the start of a launch until its summary
    failures.py         why an island was given up, and what to do
    plan.py             cores, GPUs, island ids and --vary values: what runs where (pure)
    supervise.py        the restart policy and hang detection, driven by a clock passed in (pure)
    spawn.py            one island process: own process group, parent-death signal, affinity, log
    child_setup.py      every child's environment, command line and pre-exec guard
    template_client.py  the launcher's end of the island template (`islands.island_template`)
    island_pids.py      forked islands seen through /proc: same process?, ended with what code?, kill its group
    torch_jobs.py       torch work done in children: the settings check, the champion's evaluation
    launch_view.py      the live table or plain progress lines
    summary.py          the champion and summary.json
    slurm.py            the SLURM backend: submit the same islands, watch them, resubmit
    sbatch.py           its batch script: options checked up front, the script rendered as text
    node_launch.py      one node of a whole-node job (--pattern node): a local launcher for its slice
    errors.py           the launcher's exceptions

The launcher never imports torch (docs/DESIGN.md, "Layers") and opens no run-directory file
itself: `migration_pool` does.
"""
