"""Starting or joining a run: the manifest every island of a run agrees on.

`join_run` is the one place that decides the effective settings of an island: the manifest
when one exists (refusing explicit options that contradict it), otherwise the given settings,
recorded as a new manifest. `evolve` is the library form of `islands evolve`.

The launcher joins runs through this module, so it imports torch only inside `evolve`
(through `islands.island`): a launcher never loads torch (docs/DESIGN.md, "Layers").
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from islands.config import RunConfig, island_number
from islands.errors import ConfigError
from migration_pool.errors import FormatError, ManifestConflict, RunDirError
from migration_pool.rundir import RunDir

if TYPE_CHECKING:
    from islands.island import IslandResult, StopFlag
    from islands.status.record import IslandStatus

MANIFEST_SCHEMA = 1


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
        return tuple(self.manifest.get("islands", ()))

    def device(self, island: str, default: str = "cpu") -> str:
        return self.manifest.get("devices", {}).get(island, default)


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
            raise ManifestConflict(path.split(".")[-1].replace("_", "-"), have, given)


def open_run(root: str | Path) -> Run:
    """An existing run; RunDirError if `root` holds none, FormatError if its manifest is bad."""
    rundir = RunDir(root)
    manifest = rundir.read_manifest()
    if manifest is None:
        if not Path(root).exists():
            raise RunDirError(f"run directory {root} does not exist")
        raise RunDirError(f"{root} is not a run directory (no manifest)")
    return _as_run(Path(root), manifest)


def _as_run(root: Path, manifest: dict[str, Any]) -> Run:
    try:
        config = RunConfig.from_dict(manifest["config"])
        run_id = str(manifest["run_id"])
    except (KeyError, TypeError) as e:
        raise FormatError(f"manifest lacks a field ({e})", str(RunDir(root).manifest_path)) from None
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise FormatError(f"manifest schema {manifest.get('schema')!r} is not {MANIFEST_SCHEMA}", str(root))
    return Run(root, run_id, config, manifest)


def join_run(
    root: str | Path,
    config: RunConfig,
    explicit: Mapping[str, Any],
    make_manifest: Callable[[], dict[str, Any]] | None = None,
    allow_shared: bool = False,
) -> tuple[Run, bool]:
    """The run at `root`, created from `config` if it has no manifest yet.

    Returns the run and whether this call created it. Unless `allow_shared`, a run directory
    or manifest that other users can write is refused (RunDirError): its manifest decides
    what code the islands import.
    """
    rundir = RunDir(root)
    if not allow_shared:
        rundir.check_private()
    manifest, created = rundir.create_or_read_manifest(make_manifest or (lambda: new_manifest(config)))
    if not allow_shared:
        rundir.check_private()
    run = _as_run(Path(root), manifest)
    if not created:
        check_against(run.config, explicit)
    return run, created


def evolve(
    island: str,
    root: str | Path,
    config: RunConfig | None = None,
    *,
    explicit: Mapping[str, Any] | None = None,
    device: str | None = None,
    fresh: bool = False,
    allow_shared: bool = False,
    stop: StopFlag | None = None,
    log: Callable[[str], None] = print,
    on_status: Callable[[IslandStatus], None] | None = None,
) -> IslandResult:
    """Run (or resume) one island of the run at `root`, creating the run if needed."""
    island_number(island)  # validate the id before touching the disk
    config = config or RunConfig()
    run, _ = join_run(root, config, explicit or {}, allow_shared=allow_shared)
    if fresh:
        RunDir(root).reset_island(island)
    from islands.island import IslandSpec, run_island
    from islands.migration import PoolMigrator

    spec = IslandSpec(
        island=island,
        run_dir=Path(root),
        run_id=run.run_id,
        config=run.config,
        overrides=run.overrides(island),
        device=device or run.device(island),
        planned=run.planned(),
    )
    return run_island(spec, stop=stop, log=log, migrator_factory=PoolMigrator, on_status=on_status)


__all__ = ["Run", "new_manifest", "check_against", "open_run", "join_run", "evolve", "ConfigError"]
