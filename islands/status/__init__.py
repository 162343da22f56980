"""The island's observable state, and the `islands status` report built from it.

    record.py    IslandStatus (status.isld), HistoryLine (history.jsonl), Migration counters,
                 the champion rule and the tolerant number helpers: what an island records
    liveness.py  whether a recorded pid still names its writer (the one rule)
    metrics.py   pure measures of a run: health, diversity, migration flows
    schema.py    the JSON schema of `islands status --json`
    report.py    `build_report`: reads the run directory into the documented report
    plot.py      `--plot`: fitness and diversity curves (matplotlib)
    cli.py       the `islands status` click command

Importing this package imports nothing: torch never, click only through cli.py.
"""
