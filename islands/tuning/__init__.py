"""Self-tuning: islands that change their own settings while the run goes on.

A tuner splits each island's life into *segments*, each run with one set of settings from the
`--vary` space (`space`). At decision points the island reads the other islands' segment records
(`segments`), decides with a pure rule (`rules`: successive halving, population-based training)
and either carries on or starts a new segment (`tuner`, the loop's side). `tpe` proposes
settings from Optuna's TPE over a journal in the run directory. No coordinator: every island
decides for itself from the files, and records why.
"""
