"""The island's observable record, the one reader of a run, and the `islands status` report.

    record.py       IslandStatus (status.isld), HistoryLine (history.jsonl), Migration counters,
                    the champion rule and the tolerant number helpers: what an island records,
                    each field declared once (decoder, help, whether the report shows it)
    reader.py       `open_run`: the one reader of a run directory, with its one error policy
    liveness.py     whether a recorded pid still names its writer (the one rule)
    metrics.py      pure measures of a run: health, diversity, migration flows
    lineage.py      effective number of origins: how many islands' lineages survive
    settings.py     the report's `--vary` study: which setting won
    schema.py       the JSON schema of `islands status --json` (island entry from the record)
    report.py       `build_report`: the run, read through reader.py, as the documented report
    plot.py         `--plot`: fitness and diversity curves (matplotlib)
    progress.py     how far an island or run has come, and its ETA (launcher and evolve views)
    island_view.py  what `islands evolve` shows while its island runs
    cli.py          the `islands status` click command

Importing this package imports nothing: torch never, click only through cli.py.
"""
