"""The run's manifest as a record: what every island of a run agrees on.

`Run` is a run as its manifest records it; `new_manifest` writes a fresh one, `run_from_manifest`
reads one back (refusing another schema), `check_against` compares a user's explicit options
with it. Joining or starting a run (locks, checks, the island loop) is `islands.runs`; this
module only models the record, so the run reader (`islands.status.reader`) can build on it.
No torch.

Every field that can reach a path, a script or a command is checked on decode: the run id
goes into the SLURM batch script and job name, so it must be a plain name (`RUN_ID_RE`); the
planned island ids are canonical (`planned_islands`); per-island devices and overrides must
have their shape. A manifest that breaks one is refused with one line (FormatError).
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from islands.config import NO_LEAD_LIMIT, RunConfig
from migration_pool.errors import FormatError, ManifestConflict
from migration_pool.island_ids import valid_island_id
from migration_pool.rundir import RunDir

MANIFEST_SCHEMA = 1
# The archipelago's island ids, written by `islands launch` (either backend) before any island
# starts: an island started by hand takes its neighbours from it from the first exchange.
# Older manifests record the same list as "islands" only.
PLANNED_KEY = "planned_islands"
# What a run id may be: a uuid's hex (what `new_manifest` writes) or any plain name of letters,
# digits, _ and - not starting with -; no shell, sbatch or path character, one line.
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
DEVICE_RE = re.compile(r"^[a-z]{1,16}(?::[0-9]{1,4})?\Z")  # cpu, cuda, cuda:1, mps


@dataclass(frozen=True)
class Run:
    """A run as recorded in its manifest."""

    root: Path
    run_id: str
    config: RunConfig
    manifest: dict[str, Any]

    def overrides(self, island: str) -> dict[str, Any]:
        return dict(self.manifest.get("overrides", {}).get(island, {}))

    def planned(self) -> tuple[str, ...]:
        return planned_islands(self.manifest)

    def device(self, island: str, default: str = "cpu") -> str:
        return self.manifest.get("devices", {}).get(island, default)


def planned_islands(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    """The planned island ids of a manifest, in their recorded order; () when none is planned.

    Tolerant: `planned_islands` first, else the older `islands` list; entries that are not
    canonical island ids (they become paths and topology inputs) and repeats are dropped, and
    a value that is not a list counts as no plan.
    """
    for key in (PLANNED_KEY, "islands"):
        value = manifest.get(key)
        if isinstance(value, (list, tuple)) and value:
            ids = (i for i in value if isinstance(i, str) and valid_island_id(i))
            return tuple(dict.fromkeys(ids))
    return ()


def new_manifest(config: RunConfig, **extra: Any) -> dict[str, Any]:
    """A fresh manifest for `config`; `extra` adds launcher fields (islands, plan, ...)."""
    return {
        "schema": MANIFEST_SCHEMA,
        "run_id": uuid.uuid4().hex,
        "created": time.time(),
        "config": config.to_dict(),
        "islands": [],
        "overrides": {},
        **extra,
    }


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping) and k not in ("problem_params", "algorithm_params"):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def flatten_config(config: RunConfig) -> dict[str, Any]:
    """Every setting of `config` as the dotted paths `check_against` compares: what a config
    given in full to the Python API (`evolve`, `LaunchRequest`) asserts about an existing run."""
    return _flatten(config.to_dict())


# Settings whose option is not their name: how a conflict names the option typed.
FLAGS = {"max_evaluations": "max-evaluations-per-island", "evaluation_budget": "max-evaluations"}


def check_against(recorded: RunConfig, explicit: Mapping[str, Any]) -> None:
    """Raise ManifestConflict for the first explicit setting that differs from the manifest.

    `explicit` maps dotted config paths ("population", "ga.mutation_sigma") to the values the
    user gave on purpose; defaults the user did not type never conflict.
    """
    flat = _flatten(recorded.to_dict())
    for path, given in explicit.items():
        have = flat.get(path)
        if isinstance(have, (list, tuple)):
            have = list(have)
        if isinstance(given, Mapping):
            given = dict(given)
        if have != given and not (isinstance(have, float) and isinstance(given, (int, float)) and float(given) == have):
            raise ManifestConflict(FLAGS.get(path, path.split(".")[-1].replace("_", "-")), have, given)


def valid_run_id(value: Any) -> bool:
    """Whether `value` is a run id that may go into a path, a script or a command line."""
    return isinstance(value, str) and RUN_ID_RE.match(value) is not None


def _check_fields(manifest: Mapping[str, Any]) -> str | None:
    """What is wrong with the fields of `manifest` that reach paths, scripts or commands."""
    run_id = manifest["run_id"]
    if not valid_run_id(run_id):
        return (f"manifest run_id {ascii(run_id)[:80]} is not a run id (1 to 64 letters, digits, _ or -, "
                "not starting with -)")
    devices, overrides = manifest.get("devices", {}), manifest.get("overrides", {})
    if not isinstance(devices, Mapping) or not all(
            isinstance(d, str) and DEVICE_RE.match(d) for d in devices.values()):
        return "manifest devices is not a map of island to device (cpu, cuda, cuda:N)"
    if not isinstance(overrides, Mapping) or not all(isinstance(o, Mapping) for o in overrides.values()):
        return "manifest overrides is not a map of island to settings"
    return None


def run_from_manifest(root: Path, manifest: dict[str, Any]) -> Run:
    """The run a manifest records; FormatError if it lacks a field, has another schema, or a
    field that reaches a path, a script or a command is malformed (`_check_fields`)."""
    path = str(RunDir(root).manifest_path)
    try:
        config = RunConfig.from_dict(_recorded_config(manifest["config"]))
        problem = _check_fields(manifest)
    except (KeyError, TypeError) as e:
        raise FormatError(f"manifest lacks a field ({e})", path) from None
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise FormatError(f"manifest schema {manifest.get('schema')!r} is not {MANIFEST_SCHEMA}", str(root))
    if problem is not None:
        raise FormatError(problem, path)
    return Run(root, manifest["run_id"], config, manifest)


def _recorded_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """A manifest's settings as its run had them: a run recorded before the migration lead
    limit existed had none (`NO_LEAD_LIMIT`), so it resumes as it started and its checkpoints
    keep their trajectory hash."""
    mig = config.get("migration") if isinstance(config, Mapping) else None
    if isinstance(mig, Mapping) and "max_lead" not in mig:
        return {**config, "migration": {**mig, "max_lead": NO_LEAD_LIMIT}}
    return config
