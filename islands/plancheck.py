"""Checking a planned archipelago's islands before any of them starts.

`--vary algorithm=...`, `algo.KEY=...` and `param.KEY=...` give islands settings that only
the algorithm's and problem's own configs can judge, and those live beside torch code. The
launcher never loads torch (docs/DESIGN.md, "Layers"), so it runs this module once in a child
(`python -m islands.plancheck`, JSON in on stdin, JSON out on stdout) before it writes
anything: every island's effective config is built (problem and algorithm) and its problem
scores two genomes (`islands.problems.inline.check_runs`: a fitness of the wrong shape, or one
that raises, is refused here, before a manifest exists), and the first refusal is reported (an
evaluation budget below one generation of the island's population among them). A failure of the
user's problem code is one line naming the user's file and line; with ISLANDS_DEBUG (`islands
--debug`) its traceback goes to stderr, which the launcher then shows. With migration on, every island must also publish genomes of
one kind, length and dtype (the run's pool pins them), so a `param.hidden` spread that changes
the network's weight count is refused rather than left to count foreign batches as bad files.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Mapping

from islands.threads import limit_env

limit_env()  # before torch loads

from islands.algorithms import REGISTRY, resolve_dtype  # noqa: E402
from islands.budget import budget_refusal  # noqa: E402
from islands.config import RunConfig, island_number  # noqa: E402
from islands.errors import ConfigError, show_traceback  # noqa: E402
from islands.problems import make_problem  # noqa: E402
from islands.problems.inline import check_runs  # noqa: E402
from migration_pool.island_ids import valid_island_id  # noqa: E402


def dim_note(problem_name: str, dim: int, built_dim: int) -> str | None:
    """The notice for a --dim the problem's factory did not use (it fixes its own genome length)."""
    if built_dim == dim:
        return None
    return (f"note: problem {problem_name!r} fixes its own genome length ({built_dim} genes); "
            f"--dim {dim} is not used")


def check(config: Mapping[str, Any], overrides: Mapping[str, Mapping[str, Any]],
          notes: list[str] | None = None, groups: list[dict[str, Any]] | None = None) -> str | None:
    """None when every island's config builds (and genomes agree under migration), else why not.

    With `notes` (the user typed --dim), a problem that ignored the asked dimension adds a
    notice there, so the flag is never silently dropped. With `groups`, the effective settings
    that only the built problem and algorithm know (population, target, dtype) are appended
    there per algorithm, with the islands that run them, for the launcher's plan line.
    """
    base = RunConfig.from_dict(config)
    shapes: dict[tuple[Any, ...], str] = {}
    seen: dict[str, str] = {}
    found: dict[str, dict[str, Any]] = {}
    algos: dict[str, Any] = {}
    for isl in sorted(overrides) or ["(every island)"]:
        try:
            cfg = base.with_overrides(overrides.get(isl, {}))
            key = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
            if key in seen:
                found[key]["islands"].append(isl)
                continue
            problem = make_problem(cfg.problem, cfg.dim, **dict(cfg.problem_params))
            algo = check_runs(cfg, problem)  # the algorithm builds, the problem scores two genomes
            refusal = budget_refusal(cfg.max_evaluations, cfg.population or algo.default_population(),
                                     cfg.evaluation_budget)
            if refusal is not None:
                raise ConfigError(refusal)
            note = dim_note(cfg.problem, cfg.dim, problem.dim) if notes is not None else None
            if note is not None and note not in notes:  # type: ignore[operator]
                notes.append(note)  # type: ignore[union-attr]
        except (ConfigError, TypeError, ValueError) as e:
            if e.__cause__ is not None:  # the user's code failed: the traceback behind the line
                show_traceback(e)
            own = overrides.get(isl)
            return f"{isl} ({_describe(own)}): {e}" if own else str(e)
        seen[key] = isl
        dtype = str(resolve_dtype(cfg, problem)).replace("torch.", "")
        found[key] = {"algorithm": cfg.algorithm, "population": cfg.population or algo.default_population(),
                      "target": cfg.target if cfg.target is not None else problem.solved_at,
                      "target_given": cfg.target is not None, "dtype": dtype, "islands": [isl], "checked": True,
                      "dim": problem.dim}
        algos[key] = algo
        kind = REGISTRY[cfg.algorithm].genome_kind
        if kind != "vector":  # graphs of any size: the kind alone must agree
            shape: tuple[Any, ...] = (kind,)
        else:
            shape = (problem.genome_kind, problem.dim, dtype)
        shapes.setdefault(shape, isl)
    if groups is not None:
        for key, group in found.items():  # a note where these islands start at other populations (CMA-ES's ladder)
            numbers = [island_number(i) for i in group["islands"] if valid_island_id(i)]
            group["population_note"] = algos[key].population_note(group["population"], numbers)
        groups.extend(found.values())
    if base.migration.every and len(shapes) > 1:
        what = "; ".join(f"{isl}: {' '.join(map(str, s))}" for s, isl in shapes.items())
        return (f"islands would exchange genomes of different kinds or lengths ({what}); "
                "migrants cannot cross them: vary only settings that keep the genome, or use --migrate-every 0")
    return None


def _describe(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(values.items())) or "no overrides"


def main() -> int:
    request = json.load(sys.stdin)
    notes: list[str] | None = [] if request.get("dim_given") else None
    groups: list[dict[str, Any]] = []
    try:
        error = check(request["config"], request.get("overrides") or {}, notes, groups)
    except Exception as e:  # noqa: BLE001 - a plug-in problem may raise anything: report it
        show_traceback(e)
        error = f"{type(e).__name__}: {e}"
    json.dump({"error": error, "notes": notes or [], "groups": groups}, sys.stdout, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
