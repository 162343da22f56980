"""`islands export RUN`: the champion (and its network) out of a run, in an open format.

npz (numpy's zip of .npy arrays, read with `np.load(path)` and no pickle) or json. Keys:
`genome` (vector problems and `pure`), or `genome_nodes`, `genome_conn_in`, ... (NEAT);
`fitness`, `island`, `generation`, `run_id`, `problem`, `algorithm`, `dim`; the settings that
rebuild it: `problem_params` and `algorithm_params` (the island's `--param` / `--algo-param`
values with its `--vary` overrides: a JSON object in json, its JSON text in npz),
`population` and `dtype` (-1 and "" in npz where the default applies); and for network
tasks `network_*` (see `islands.results.RunResults.network`: MLP layer sizes, activation and
`network_weights_<i>` / `network_biases_<i>`; NEAT nodes, node kinds, connections, steepness).
Never pickle: every value is a number, a string, or an array of numbers or strings.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import click
import numpy as np

from islands.errors import IslandsError
from islands.exit_codes import EXIT_ERROR, EXIT_USAGE
from islands.results import open_run
from migration_pool.errors import PoolError

FORMATS = ("npz", "json")


def export_fields(res: Any, island: str | None = None) -> dict[str, Any]:
    """The exported champion as a flat map of names to numbers, strings and numpy arrays."""
    champ = res.champion(island)
    cfg = res.island_config(champ.island)
    out: dict[str, Any] = {
        "fitness": float(champ.fitness), "island": champ.island,
        "generation": -1 if champ.generation is None else int(champ.generation),
        "run_id": res.run_id, "problem": cfg.problem, "algorithm": cfg.algorithm, "dim": int(cfg.dim),
        "problem_params": dict(cfg.problem_params), "algorithm_params": dict(cfg.algorithm_params),
        "population": cfg.population, "dtype": cfg.dtype,
    }
    if isinstance(champ.genome, Mapping):
        out["genome_kind"] = "neat"
        for k, v in champ.genome.items():
            out[f"genome_{k}"] = np.asarray(v)
    else:
        out["genome_kind"] = "vector"
        out["genome"] = np.asarray(champ.genome)
    net = res.network(island)  # the same genome as above: the champion file, or that island's best
    if net is not None:
        for k, v in net.items():
            if isinstance(v, list):  # per-layer arrays of an MLP
                for i, a in enumerate(v):
                    out[f"network_{k}_{i}"] = np.asarray(a)
            else:
                out[f"network_{k}"] = v
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


NPZ_NONE = {"population": -1}  # npz has no None: what stands for "the default" (else "")


def _npz_value(key: str, v: Any) -> Any:
    """npz holds arrays only: a map as its JSON text (never pickle), None as NPZ_NONE says."""
    if isinstance(v, Mapping):
        return json.dumps(dict(v), sort_keys=True)
    return NPZ_NONE.get(key, "") if v is None else v


def write_export(fields: Mapping[str, Any], path: Path, fmt: str) -> None:
    """Write `fields` as npz (0-d arrays for scalars and strings) or as a json object, into
    `path`'s folder, which must exist (no folder is ever created: see `missing_folder`)."""
    tmp = path.with_name(path.name + ".part")
    if fmt == "npz":
        arrays = {k: np.asarray(_npz_value(k, v)) for k, v in fields.items()}
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    else:
        tmp.write_text(json.dumps({k: _jsonable(v) for k, v in fields.items()}, indent=1) + "\n")
    tmp.replace(path)


def missing_folder(out: Path) -> str | None:
    """Why `out`'s folder cannot take the file (it does not exist, or is not a folder), else None.

    An export never creates folders: a typo in --out must not leave a tree of them anywhere.
    """
    parent = out.parent
    if parent.is_dir():
        return None
    what = "is not a folder" if parent.exists() or parent.is_symlink() else "does not exist"
    return f"cannot write {out}: its folder {parent} {what} (an export creates no folders)"


@click.command("export")
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--island", default=None, help="Export this island's best genome (default: the run's champion).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="npz", show_default=True,
              help="npz (numpy, no pickle) or json.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (default: RUN/champion.npz or RUN/champion.json).")
def export(run: Path, island: str | None, fmt: str, out: Path | None) -> None:
    """Write the champion of RUN (and, for network tasks, its network) as npz or json."""

    def fail(message: str, code: int) -> None:
        click.echo(f"error: {message}", err=True)
        raise SystemExit(code)

    why = missing_folder(out) if out is not None else None
    if why is not None:
        fail(why, EXIT_USAGE)
    try:
        res = open_run(run)
        if island is not None and island not in res.islands():
            fail(f"{run} has no island {island!r} (islands: {', '.join(res.islands()) or 'none'})", EXIT_USAGE)
        fields = export_fields(res, island)
    except (IslandsError, PoolError) as e:  # no run, a bad manifest, no champion yet
        fail(str(e), EXIT_ERROR)
    target = out or run / f"champion.{fmt}"
    try:
        write_export(fields, target, fmt)
    except OSError as e:
        fail(f"cannot write {target}: {e.strerror or e}", EXIT_ERROR)
    click.echo(f"champion of {fields['island']} (fitness {fields['fitness']:.6g}) written to {target}")
