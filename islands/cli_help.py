"""`--help` of the long commands (`islands evolve`, `islands launch`, `islands slurm-script`)
in sections: problem, algorithm, tuning, migration, run, scheduler.

Click prints one flat option table in declaration order, where the run's problem and
algorithm options came after the launcher's and SLURM's; a section heading per kind lets a
newcomer find `--problem` first. Only the help layout changes: parsing is click's own.
"""
from __future__ import annotations

from typing import Any

import click

SECTIONS = ("Problem", "Algorithm", "Tuning", "Migration", "Run", "Scheduler")
_MEMBERS = {
    "Problem": ("problem", "params", "dim", "dtype"),
    "Tuning": ("vary", "tuner", "rung", "reduction", "ready", "pbt_fraction", "optuna_journal"),
    "Algorithm": ("algorithm", "algorithm_params", "population", "tournament_size", "crossover",
                  "crossover_rate", "mutation_rate", "mutation", "mutation_sigma", "elitism", "bounds"),
    "Migration": ("migrate_every", "migrants", "topology", "emigrants", "replacement", "migration_probability",
                  "migration_start", "migration_min_distance", "migration_max_lead", "migration", "migration_timeout"),
    "Scheduler": ("backend", "slurm", "partition", "time", "account", "sbatch_args", "pattern", "warn_before",
                  "max_requeues", "nodes", "detach"),
}
SECTION_OF = {name: section for section, names in _MEMBERS.items() for name in names}  # the rest: "Run"


class GroupedCommand(click.Command):
    """A click command whose options print under section headings (see the module docstring)."""

    def format_options(self, ctx: click.Context, formatter: Any) -> None:
        rows: dict[str, list[tuple[int, int, tuple[str, str]]]] = {s: [] for s in SECTIONS}
        for n, param in enumerate(self.get_params(ctx)):
            record = param.get_help_record(ctx)
            if record is not None:
                section = SECTION_OF.get(param.name or "", "Run")
                order = _MEMBERS.get(section, ())
                rank = order.index(param.name) if param.name in order else len(order)  # the table's order
                rows[section].append((rank, n, record))
        for section in SECTIONS:
            if rows[section]:
                with formatter.section(f"{section} options"):
                    formatter.write_dl([record for *_, record in sorted(rows[section], key=lambda r: r[:2])])
