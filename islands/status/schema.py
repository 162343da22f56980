"""The documented JSON schema of `islands status --json` (JSON Schema 2020-12).

This dict is the documentation of the report: every field is described here (an island
entry's recorded fields from their declaration in `islands.status.record.IslandStatus`), and
`additionalProperties: false` makes the tests fail if the report grows a field this schema
does not describe. `islands status --schema` prints it. `SCHEMA_VERSION` changes whenever a
field is removed, renamed or changes meaning; a consumer should check it first.

Conventions: fitness is maximised (a minimisation benchmark reports -f(x)); null means
"not known" (no status yet, a corrupt file, a non-finite number); times are Unix seconds of
the machine that wrote them.
"""
from __future__ import annotations

from dataclasses import Field
from typing import Any

from islands.status.tuning import SCHEMA as TUNING
from islands.status.record import MIGRATION_COUNTERS, SHOWN, Migration, counter_help

# 2: the lineage curve counts every island at its latest origins (not only those sampled in a
# bin) and the takeover warning is only for a takeover before the target (after it: a note).
# 3: the migration matrix is sparse (`flows`, `flows_total`); its dense `counts` only with
# --full-matrix (`build_report(full_matrix=True)`): N x N is 15 MB of JSON at 1,024 islands.
SCHEMA_VERSION = 3

STATES = ("running", "finished", "stopped", "stale", "dead", "failed", "pending", "requeued", "unreadable")
STATE_HELP = {
    "running": "status says running and the island is alive: its pid is alive on this host, or "
               "(on another host) its heartbeat is recent; or a newer process holds the island's "
               "lease (fresh on another host, a live pid here) but has written no status yet",
    "finished": "reached its generations, its target or its stagnation limit",
    "stopped": "stopped on request (Ctrl+C / SIGTERM) after a checkpoint; rerun to resume",
    "stale": "status says running but no heartbeat for longer than the threshold and no live "
             "process is known (another host, or a live pid that has gone silent: hung?); or its "
             "SLURM task runs on a host SLURM cannot reach (lost: see note)",
    "dead": "status says running, on this host, but its process is gone (killed or crashed, "
            "or its pid now belongs to another process)",
    "failed": "the launcher gave up restarting it",
    "pending": "no status file yet: not started, or still starting; or its SLURM task waits in the queue",
    "requeued": "its SLURM task requeued itself (time limit) or was requeued, and waits to run again",
    "unreadable": "its status file is corrupt or belongs to another run (see note)",
}

_num = {"type": ["number", "null"]}
_int = {"type": ["integer", "null"]}
_str = {"type": ["string", "null"]}
_count = {"type": "integer", "minimum": 0}


def _obj(props: dict[str, Any], description: str = "", required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": False,
    }


def _d(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**schema, "description": description}


_ISLAND_ID = {"type": "string", "pattern": "^island-[0-9]{2,}$"}

LINEAGE = _obj(
    {
        "effective_origins": _d(_num, "effective number of origins of the whole archipelago: exp of the "
                                      "Shannon entropy of the origin island over all individuals of the islands' "
                                      "latest statuses (k islands whose lineages all survive equally: k; a "
                                      "takeover: near 1); null before any island reported"),
        "islands_counted": _d(_count, "islands whose status carries origin counts"),
        "individuals": _d(_count, "individuals counted"),
        "origins": _d({"type": "object", "propertyNames": {"pattern": "^island-[0-9]{2,}$"},
                       "additionalProperties": _count}, "individuals per origin island"),
        "dominant_origin": _d({"oneOf": [{"type": "null"}, _ISLAND_ID]}, "the origin holding the most individuals"),
        "dominant_share": _d(_num, "its share of all individuals counted"),
        "warning": _d(_str, "set when one origin holds more than half of the archipelago (a takeover, two or "
                            "more islands counted) and it began before any island reached the target: trouble"),
        "note": _d(_str, "set instead of the warning when the takeover began once an island had reached the "
                         "target: the run converged on a solution it had found"),
        "takeover": _d({"oneOf": [{"type": "null"}, _obj({
            "origin": _ISLAND_ID,
            "share": {"type": "number"},
            "kind": _d({"enum": ["before-target", "after-target"]}, "trouble, or convergence on a reached target"),
            "generation": _d(_int, "generation from which the takeover holds on the curve (over_time)"),
            "target_island": _d({"oneOf": [{"type": "null"}, _ISLAND_ID]}, "the first island to reach the "
                                "target (status reason target, or best_ever >= its target); null: none yet"),
            "target_generation": _d(_int, "the generation it reached it at (its best_ever_generation)"),
            "target": _d(_num, "the target the islands record (null: none)"),
        })]}, "the takeover and its verdict; null without one"),
        "over_time": _d({"type": "array", "items": _obj({
            "generation": _d({"type": "integer"}, "mean generation of the samples taken in the bin"),
            "time": _d(_num, "the latest Unix time among those samples: when the point's counts were all "
                               "known (null: not recorded)"),
            "effective_origins": {"type": "number"},
            "dominant_share": _num,
            "islands": _d(_count, "islands counted: every island that had reported by the bin, each with its "
                                  "latest sample up to it"),
            "carried": _d(_count, "of those, islands whose latest sample is from an earlier bin (ended, or "
                                  "sampling less often): carried forward"),
        })}, "archipelago effective origins over generations from the histories' sampled origin counts, each "
             "island at its latest known origins (like with like: an island that ended still counts)"),
    },
    "lineage diversity: how many islands' lineages survive (docs/DESIGN.md, \"Diversity is a figure\")",
)

_MIGRATION = _obj({k: _d(_count, v) for k, v in counter_help(Migration).items()},
                  "the island's cumulative migration counters")
_KINDS = {"number": _num, "integer": _int, "string": _str, "object": {"type": "object"}}


def _shown(f: Field[Any]) -> dict[str, Any]:
    """The schema of one recorded field of the island entry, from its declaration (`record._rec`)."""
    if f.metadata["shown"] == "counters":
        return {**_MIGRATION, "description": f.metadata["help"]}
    return _d(_KINDS[f.metadata["shown"]], f.metadata["help"])


ISLAND = _obj(
    {
        "island": _d(_ISLAND_ID, "island id"),
        "state": _d({"enum": list(STATES)}, "health: " + "; ".join(f"{k}: {v}" for k, v in STATE_HELP.items())),
        "note": _d(_str, "why the state is what it is, or what is wrong (corrupt file, silence)"),
        **{f.name: _shown(f) for f in SHOWN},
        # derived by the report, not recorded by the island:
        "progress": _d(_num, "share of its work done, in [0, 1]: generation / generations or evaluations / its "
                            "evaluation budget, whichever is further; 1 once finished"),
        "restarts": _d(_count, "restarts by the launcher (0 when no launcher state is recorded)"),
        "effective_origins": _d(_num, "effective number of origins of the population: exp of the Shannon "
                                      "entropy of the islands where its individuals' lineages began (1: one "
                                      "lineage; k: k lineages of equal size)"),
        "lineage_origin": _d({"oneOf": [{"type": "null"}, _ISLAND_ID]}, "the island where the largest lineage "
                             "of this island's population began (itself: untouched by migrants; another: that "
                             "island's lineage has taken this one over)"),
        "lineage_share": _d(_num, "that lineage's share of this island's population"),
        "heartbeat_age_s": _d(_num, "seconds since the island last wrote its status"),
        "checkpoint_generation": _d(_int, "generation of its newest checkpoint file"),
        "scheduler": _d({"type": ["object", "null"]}, "SLURM's view of its latest task (runs launched with "
                        "--backend slurm, where scontrol answers): job, state (pending, requeued, running, "
                        "stopping, completed, cancelled, failed, timeout, gone), slurm_state, reason, restarts, nodes (the hosts "
                        "of a running task) and unreachable (host -> State of those SLURM cannot reach)"),
    },
    "one island",
)

CHAMPION = _obj(
    {
        "island": {"type": "string"},
        "fitness": {"type": "number"},
        "generation": _d(_int, "generation at which it was found (null from the champion file)"),
        "source": _d({"enum": ["status", "champion_file"]}, "where it was read"),
        "genome": _d({"type": ["array", "null"]}, "the genome as nested lists of numbers for vector genomes; null for structured genomes (NEAT), read those from champion.isld"),
    },
    "the best individual of the run",
)

GENERALISATION = _obj(
    {
        "problem": {"type": "string"},
        "island": _d({"type": "string"}, "the champion's island when it was evaluated"),
        "fitness": _d(_num, "the champion's training fitness"),
        "episodes": _d(_count, "unseen seeded starts the champion ran on"),
        "seed": _d(_count, "`islands evaluate --seed`: which set of unseen starts (seeds from 2^31 up, never "
                           "a training seed)"),
        "mean": _d(_num, "mean return over the episodes"),
        "std": _d(_num, "standard deviation of the returns"),
        "worst": _d(_num, "lowest return"),
        "threshold": _d(_num, "return at which an episode counts as solved (the environment's reward "
                              "threshold, the task's solved level, or --solved); null when unknown"),
        "solved": _d(_int, "episodes with return >= threshold; null without a threshold"),
        "solved_share": _d(_num, "solved / episodes"),
        "time": _d(_num, "when it was evaluated"),
        "current": _d({"type": "boolean"}, "false when the champion has changed since (run `islands evaluate` again)"),
    },
    "the champion on unseen starts (`islands evaluate`, run by `launch` at the end for gym:* and cartpole)",
)

_VALUE = {"type": ["number", "string", "boolean", "array", "object", "null"]}

SETTINGS = _obj(
    {
        "varied": _d({"type": "array", "items": {"type": "string"}}, "override names whose value differs between islands"),
        "confounded": _d({"type": "boolean"}, "true when migration brought part of the improvement (or may have: "
                                              "islands that do not record it): best_ever then says little of the settings"),
        "immigrant_share": _d(_num, "share of all improvement of best_ever (on the scale of rank_by's gain) that "
                                    "came right after adopting migrants; null without migration or recorded gains"),
        "rank_by": _d({"enum": ["own_log_gain", "own_gain", "best_ever"]},
                      "the median the values are ranked by: when confounded, own_log_gain on a minimisation "
                      "benchmark (every best_ever <= 0), own_gain otherwise; best_ever when not confounded"),
        "note": _d(_str, "the plain sentence on confounding (null when the scores are not confounded)"),
        "start_spread_s": _d(_num, "latest minus earliest island start (late starters adopt evolved genomes)"),
        "settings": {"type": "array", "items": _obj(
            {
                "name": {"type": "string"},
                "values": {"type": "array", "items": _obj({
                    "value": _d(_VALUE, "the override value (null: the run's default)"),
                    "islands": _d(_count, "islands with this value"),
                    "median_best_ever": _num,
                    "median_own_gain": _num,
                    "median_adopted_gain": _num,
                    "median_own_log_gain": _num,
                    "median_adopted_log_gain": _num,
                    "rank": _d(_int, "1 = best by rank_by; null when no island of it has the figure"),
                    "champion": _d({"type": "boolean"}, "the run's champion island has this value"),
                })},
                "champion_value": _d(_VALUE, "the champion island's value"),
                "best_value": _d(_VALUE, "the value ranked first"),
            },
        )},
    },
    "which setting won: per varied setting, each value's islands and scores (launch --vary)",
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://islands.invalid/status-report-v1.json",
    "title": "islands status report",
    **_obj(
        {
            "schema_version": _d({"const": SCHEMA_VERSION}, "version of this schema"),
            "generated": _d({"type": "number"}, "Unix time the report was made"),
            "host": _d({"type": "string"}, "host the report was made on (pids are checked only here)"),
            "run_dir": {"type": "string"},
            "stale_after_s": _d({"type": "number"}, "heartbeat age beyond which a silent island is stale (an island "
                                 "of another host: sooner, after 20 of its own heartbeat intervals, at least 30 s)"),
            "run": _obj(
                {
                    "run_id": _str,
                    "created": _num,
                    "problem": _str,
                    "dim": _d(_int, "the configured --dim (a problem may fix its own length: see genome_size)"),
                    "genome_size": _d(_int, "genes of the recorded best genomes: the real length, e.g. a network "
                                            "task's weight count; NEAT: its connection genes; null before any status"),
                    "genome_kind": _d({"enum": ["vector", "neat", None]}, "vector (fixed length) or neat (a graph)"),
                    "algorithm": _str,
                    "population": _int,
                    "generations": _d(_int, "each island's generation limit (null: none, an evaluation budget "
                                            "stops the islands)"),
                    "max_evaluations": _d(_int, "each island's evaluation budget (its share of the run's); null: none"),
                    "evaluation_budget": _d(_int, "the run's total evaluation budget as given (--max-evaluations); "
                                                  "null: none given, or a run planned with a per-island budget"),
                    "budget_share": _d(_str, "how the islands share the budget: even, progress (weighted by "
                                             "each island's progress per evaluation) or auto; null: not recorded"),
                    "migration": _obj({"every": _int, "topology": _str, "migrants": _int}),
                    "planned_islands": {"type": "array", "items": {"type": "string"}},
                },
                "the run's settings, from its manifest",
            ),
            "totals": _obj(
                {
                    "islands": _count,
                    "states": _d({"type": "object", "propertyNames": {"enum": list(STATES)},
                                  "additionalProperties": _count}, "islands per state"),
                    "evaluations": _count,
                    "evals_per_sec": _d({"type": "number"}, "summed over running islands"),
                    "generation_min": _int,
                    "generation_max": _int,
                    "progress": _d(_num, "mean progress over islands with a status"),
                },
            ),
            "islands": {"type": "array", "items": ISLAND},
            "archipelago": _obj(
                {
                    "champion": {"oneOf": [{"type": "null"}, CHAMPION]},
                    "generalisation": {"oneOf": [{"type": "null"}, GENERALISATION]},
                    "between_island_diversity": _d(
                        _num, "mean pairwise distance of the islands' population centroids "
                              "(genes normalised to [0, 1] by the bounds), divided by sqrt(dim): "
                              "0 when every island sits on the same point, 1 at most"),
                    "mean_diversity": _d(_num, "mean within-island diversity"),
                    "separation": _d(_num, "between_island_diversity / mean_diversity: a genotypic measure "
                                           "of how apart the islands are that needs no lineage bookkeeping; "
                                           "about sqrt(2 / population) when every island samples one population, "
                                           "well above 1 when islands search separate regions; null when "
                                           "either is unknown or within-island diversity is 0"),
                    "lineage": LINEAGE,
                    "optima": _d({"type": "array", "items": _obj({
                        "island": _str, "best": _num,
                        "radius": _d(_num, "how far its basin reaches, in genome units (0: an island's "
                                           "best-ever point)")})},
                        "the best distinct optima found, best first, when some island's restarts recorded "
                        "basins (CMA-ES; empty otherwise): an island's best-ever and the basins, merged where one "
                        "lies inside another's radius; `open_run(r).optima()` gives their centres"),
                    "mean_foreign_share": _num,
                    "migrants": _obj({k: _count for k in MIGRATION_COUNTERS if k != "events"},
                                     "migration counters summed over islands"),
                    "migration_matrix": _obj(
                        {
                            "receivers": {"type": "array", "items": {"type": "string"}},
                            "sources": {"type": "array", "items": {"type": "string"}},
                            "flows": _d({"type": "array", "items": {
                                "type": "array", "prefixItems": [{"type": "string"}, {"type": "string"}, _count],
                                "minItems": 3, "maxItems": 3}},
                                "[receiver, source, migrants] for every pair with migrants, largest first, "
                                "at most 8,192 (flows_total says how many there are)"),
                            "flows_total": _d(_count, "pairs with migrants in all (flows lists the largest)"),
                            "counts": _d({"type": "array", "items": {"type": "array", "items": _count}},
                                         "with --full-matrix only: counts[r][s], migrants receivers[r] read "
                                         "from sources[s] (N x N)"),
                        },
                        "who received from whom",
                        required=["receivers", "sources", "flows", "flows_total"],
                    ),
                    "diversity_over_time": _d({"type": "array", "items": _obj({
                        "generation": _d({"type": "integer"}, "mean generation of the samples in the bin"),
                        "mean": {"type": "number"},
                        "min": {"type": "number"},
                        "max": {"type": "number"},
                        "islands": _d(_count, "islands with a sample in the bin"),
                    })}, "within-island diversity from the histories, binned by generation"),
                },
            ),
            "settings": {"oneOf": [{"type": "null"}, SETTINGS]},
            "tuning": _d(TUNING, "a tuned run's best segments and the champion island's settings schedule (null: no segments)"),
            "notes": _d({"type": "array", "items": {"type": "string"}}, "run-level problems found while reading"),
        },
    ),
}
