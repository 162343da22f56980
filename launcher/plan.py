"""Planning an archipelago: island ids, cores, GPUs and per-island hyperparameters.

Everything here is pure (the machine's cores and GPUs are passed in), so a plan can be
checked before anything is started: every bad input raises `PlanError` with one line that
quotes the option. The plan is printed before the islands start and recorded in the run
manifest (`Plan.manifest_fields`).
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import psutil

from islands import budget
from islands.config import RunConfig, island_id
from islands.errors import ConfigError
from islands.tuning import space
from islands.tuning.space import VarySpec, _value, sample_overrides  # noqa: F401  (the plan's --vary)
from launcher.errors import PlanError

THREADS_PER_ISLAND = 1


# -- cores ----------------------------------------------------------------------------------
def available_cores() -> tuple[int, ...]:
    """Cores this process may run on (its own affinity, which may be narrower than the machine)."""
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(psutil.cpu_count() or 1))


def parse_cores(spec: str, available: Sequence[int]) -> tuple[int, ...]:
    """`"0-3,6"` -> (0, 1, 2, 3, 6), refusing cores that are not in `available`.

    Only cores up to the highest available one are ever expanded, so a range like
    0-99999999 costs nothing before it is refused (like -n, it is bounded by the machine).
    """
    top = max(available, default=-1)
    shown = _short(spec)
    cores: set[int] = set()
    beyond: list[str] = []  # parts past the highest available core: named, never expanded
    for part in spec.replace(" ", "").split(","):
        lo, dash, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise PlanError(f"--cores {shown!r}: {_short(part)!r} is not a core number or a range like 0-3") from None
        if a < 0 or b < a:
            raise PlanError(f"--cores {shown!r}: {_short(part)!r} is not a valid range (want LOW-HIGH with 0 <= LOW <= HIGH)")
        if b > top:
            first = max(a, top + 1)
            beyond.append(str(first) if first == b else f"{first}-{b}")
        cores.update(range(a, min(b, top) + 1))
    missing = ",".join(x for x in (format_cores(sorted(cores - set(available))), *beyond) if x)
    if missing:
        raise PlanError(
            f"--cores {shown!r}: core(s) {_short(missing)} do not exist or are not available "
            f"to this process (available: {format_cores(available)})"
        )
    return tuple(sorted(cores))


def _short(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters for a one-line message."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def format_cores(cores: Sequence[int]) -> str:
    """(0, 1, 2, 3, 6) -> "0-3,6"."""
    out: list[str] = []
    ordered = sorted(set(cores))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


# -- devices --------------------------------------------------------------------------------
def visible_gpus() -> list[str]:
    """Ids (for CUDA_VISIBLE_DEVICES) of the GPUs this process can use; [] without CUDA."""
    import torch  # lazy: --device cuda only; the launcher never loads torch (docs/DESIGN.md, "Layers")

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [s.strip() for s in env.split(",") if s.strip()] if env else [str(i) for i in range(count)]
    return ids[:count]


def assign_devices(n: int, device: str, gpus: Sequence[str] | None) -> list[tuple[str, str | None]]:
    """(device for the child, CUDA_VISIBLE_DEVICES or None) for each of `n` islands.

    `cuda` spreads islands over every GPU round-robin; `cuda:N` puts them all on GPU N. Each
    child sees only its GPU, as `cuda:0`.
    """
    if device == "cpu":
        return [("cpu", None)] * n
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise PlanError(f"--device {device!r}: expected cpu, cuda or cuda:N")
    if not gpus:
        raise PlanError(f"--device {device!r}: CUDA is not available on this machine")
    if index:
        if int(index) >= len(gpus):
            raise PlanError(f"--device {device!r}: GPU {index} does not exist ({len(gpus)} visible)")
        return [("cuda:0", gpus[int(index)])] * n
    return [("cuda:0", gpus[i % len(gpus)]) for i in range(n)]


# -- --vary ---------------------------------------------------------------------------------
DEFAULT_POPULATION = "the algorithm's default"




def parse_vary(text: str) -> VarySpec:
    """Parse and check one `--vary` value (`islands.tuning.space`); PlanError quoting it."""
    try:
        return space.parse_vary(text)
    except ConfigError as e:
        raise PlanError(str(e)) from None


def check_overrides(config: RunConfig, overrides: Mapping[str, Mapping[str, Any]], specs: Sequence[VarySpec]) -> None:
    """Every island's settings (and both ends of every range) must make a valid config."""
    for spec in specs:
        if spec.values is not None:
            for v in spec.values:  # every value, so the error never depends on the island count
                try:
                    config.with_overrides({spec.name: v})
                except (ConfigError, TypeError) as e:
                    raise PlanError(f"--vary {spec}: {e}") from None
            continue
        for u in (0.0, 1.0):  # both ends of the range, so the error never depends on the draw
            try:
                config.with_overrides({spec.name: _value(spec, u)})
            except ConfigError as e:
                raise PlanError(f"--vary {spec}: {e}") from None
    for isl, values in overrides.items():
        try:
            config.with_overrides(values)
        except (ConfigError, TypeError) as e:
            raise PlanError(f"--vary for {isl}: {e}") from None


# -- the plan -------------------------------------------------------------------------------
@dataclass(frozen=True)
class IslandPlan:
    island: str
    cores: tuple[int, ...]
    device: str  # what the child is told (--device)
    cuda_visible: str | None  # CUDA_VISIBLE_DEVICES for the child, None to leave it alone
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    islands: tuple[IslandPlan, ...]
    device: str  # as the user asked: cpu, cuda or cuda:N
    cores: tuple[int, ...]
    vary: tuple[VarySpec, ...] = ()
    notes: tuple[str, ...] = ()  # notices found while checking the plan (e.g. an unused --dim)
    # The effective settings per algorithm found by the check (`islands.plancheck.check`:
    # algorithm, population, target, dtype, islands); empty for a resumed run (not checked again).
    groups: tuple[Mapping[str, Any], ...] = ()

    @property
    def ids(self) -> list[str]:
        return [p.island for p in self.islands]

    def manifest_fields(self) -> dict[str, Any]:
        """The fields `new_manifest` records: islands, overrides, devices and the plan itself."""
        return {
            "islands": self.ids,
            "planned_islands": list(self.ids),  # islands.runs.PLANNED_KEY: the topology of hand-started islands
            "overrides": {p.island: dict(p.overrides) for p in self.islands if p.overrides},
            "devices": {p.island: _physical(p) for p in self.islands},
            "plan": {
                "device": self.device,
                "cores": {p.island: list(p.cores) for p in self.islands},
                "cuda_visible_devices": {p.island: p.cuda_visible for p in self.islands if p.cuda_visible is not None},
                "threads_per_island": THREADS_PER_ISLAND,
                "vary": [str(v) for v in self.vary],
                "host": socket.gethostname(),
                "groups": [dict(g) for g in self.groups],  # the settings check's, for a resumed run's plan line
            },
        }

    def setting_groups(self, config: Any) -> tuple[Mapping[str, Any], ...]:
        """The check's groups, else (a resumed run, not checked again) each island's algorithm
        and population from its overrides, those the problem decides left unknown (None)."""
        if self.groups or not any(p.overrides for p in self.islands):
            return self.groups
        cfgs = [(p.island, config.with_overrides(p.overrides)) for p in self.islands]
        return tuple({"algorithm": c.algorithm, "population": c.population, "target": c.target,
                      "target_given": c.target is not None, "dtype": c.dtype, "islands": [i]} for i, c in cfgs)

    def describe(self) -> list[str]:
        """Human lines: one header, then one line per island."""
        n, c = len(self.islands), len(self.cores)
        head = (f"plan: {n} island(s) on {c} core(s) [{format_cores(self.cores)}]"
                + (" (oversubscribed: round-robin)" if n > c else "")
                + f", {THREADS_PER_ISLAND} thread each, device {self.device}")
        if self.vary:
            head += ", varying " + ", ".join(str(v) for v in self.vary)
        lines = [head]
        for p in self.islands:
            extra = f" gpu {p.cuda_visible}" if p.cuda_visible is not None else ""
            over = " ".join(f"{k}={v}" for k, v in sorted(p.overrides.items()))
            lines.append(f"  {p.island}  core {format_cores(p.cores)}{extra}{'  ' + over if over else ''}")
        return lines


def settings_lines(config: Any, islands: int = 1, groups: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """What each island runs, defaults included, and what stops it: the evaluation budget (the
    run's, and each island's share), the generation limit, the target, the stop rule and the
    dtype. `groups` (the check's, `Plan.groups`) give the effective population, target and
    dtype per algorithm: one line when every island runs the same, else the settings the
    groups share, then one line per algorithm group with what differs (--vary algorithm=...)."""
    rows: dict[tuple[str, ...], list[str]] = {}  # the settings' words -> the islands running them
    for g in groups or [{"algorithm": config.algorithm, "population": config.population, "target": config.target,
                         "target_given": config.target is not None, "dtype": config.dtype}]:
        pop, target, given = g.get("population"), g.get("target"), g.get("target_given")
        note = f" ({g['population_note']})" if g.get("population_note") else ""
        words = (f"algorithm {g.get('algorithm')}", f"population {pop if pop is not None else DEFAULT_POPULATION}{note}",
                 ("no target (the problem has none)" if g.get("checked") else "target: the problem's") if target is None
                 else f"target {target:g}" + ("" if given else " (the problem's)"),
                 f"dtype {g.get('dtype') or 'the problem' + chr(39) + 's'}")
        rows.setdefault(words, []).extend(g.get("islands") or ())
    shared = [i for i in range(4) if len({w[i] for w in rows}) == 1]
    first = next(iter(rows))
    stop = "stop: each island at its target" if config.stop_when == "all" else "stop: the run once any island reaches its target"
    if config.stagnation_limit:
        stop += f" or after {config.stagnation_limit} generations without progress"
    dims = {g.get("dim") for g in groups} - {None}  # the problem's own (a network's weights), when checked
    head = [f"problem {config.problem}", f"dim {dims.pop() if len(dims) == 1 else config.dim}", *(first[i] for i in (0, 1) if i in shared),
            budget.describe(config, islands), *(first[i] for i in (2,) if i in shared), stop,
            *(first[i] for i in (3,) if i in shared)]
    lines = ["settings: " + ", ".join(head)]
    for words, ids in sorted(rows.items()) if len(rows) > 1 else ():
        shown = ", ".join(i.replace("island-", "") for i in ids[:6]) + (f" +{len(ids) - 6} more" if len(ids) > 6 else "")
        lines.append(f"  {', '.join(w for i, w in enumerate(words) if i not in shared)}  ({len(ids)} island(s): {shown})")
    return lines


def migration_line(mig: Any, islands: int) -> str:
    """The migration a run will do, every effective setting spelled out (defaults included)."""
    if islands < 2 or not mig.every:
        why = "a single island" if islands < 2 else "--migrate-every 0"
        return f"migration: none ({why}: islands evolve in isolation)"
    parts = [f"every {mig.every} generations", f"{mig.migrants} migrant(s)", f"topology {mig.topology}",
             f"emigrants {mig.emigrants}", f"replacement {mig.replacement}"]
    if mig.probability < 1:
        parts.append(f"probability {mig.probability:g}")
    if mig.start:
        parts.append(f"from generation {mig.start}")
    if mig.min_distance:
        parts.append(f"near-duplicates below {mig.min_distance:g} rejected")
    if getattr(mig, "mode", "async") == "sync":  # reads each source's batch of the event: no lead
        parts.append(f"synchronous (waits up to {mig.sync_timeout:g} s per source)")
    elif getattr(mig, "max_lead", -1) >= 0:
        parts.append(f"batches at most {mig.max_lead} generation(s) ahead refused" if mig.max_lead
                     else "batches from a neighbour ahead refused")
    return "migration: " + ", ".join(parts)


def _physical(p: IslandPlan) -> str:
    """The device an island uses, as `islands evolve` run by hand would name it."""
    return f"cuda:{p.cuda_visible}" if p.cuda_visible is not None and p.cuda_visible.isdigit() else p.device


def island_ids(n: int) -> list[str]:
    return [island_id(i) for i in range(n)]


def make_plan(
    islands: Sequence[str],
    cores: Sequence[int],
    device: str = "cpu",
    gpus: Sequence[str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    vary: Sequence[VarySpec] = (),
) -> Plan:
    """One core per island, round-robin over `cores` when the islands outnumber them."""
    if not islands:
        raise PlanError("-n/--islands must be at least 1")
    if not cores:
        raise PlanError("no cores to run on")
    devices = assign_devices(len(islands), device, gpus)
    overrides = overrides or {}
    plans = tuple(
        IslandPlan(isl, (cores[i % len(cores)],), dev, vis, dict(overrides.get(isl, {})))
        for i, (isl, (dev, vis)) in enumerate(zip(islands, devices))
    )
    return Plan(plans, device, tuple(cores), tuple(vary))


def plan_from_manifest(manifest: Mapping[str, Any], cores: Sequence[int], gpus: Sequence[str] | None) -> Plan:
    """The plan of a run being resumed: its islands, overrides and device, on today's cores."""
    recorded = manifest.get("plan") or {}
    vary = tuple(parse_vary(v) for v in recorded.get("vary", ()))
    device = recorded.get("device", "cpu")
    plan = make_plan(list(manifest["islands"]), cores, device, gpus, manifest.get("overrides") or {}, vary)
    return replace(plan, groups=_recorded_groups(recorded.get("groups")))


GROUP_KEYS = {"algorithm": str, "population": int, "target": float, "target_given": bool, "dtype": str,
              "checked": bool, "dim": int, "population_note": str}


def _recorded_groups(raw: Any) -> tuple[Mapping[str, Any], ...]:
    """The settings groups a manifest recorded at the run's start, each key of its expected type
    (anything else is left out: a run from before they were recorded has none, and the plan
    line then says what the config alone knows)."""
    if not isinstance(raw, list):
        return ()
    groups = []
    for g in raw:
        if not isinstance(g, Mapping):
            return ()
        kept: dict[str, Any] = {k: v for k, v in g.items() if k in GROUP_KEYS and
                                (v is None or isinstance(v, GROUP_KEYS[k]) or (GROUP_KEYS[k] is float and isinstance(v, int)))}
        ids = g.get("islands")
        if isinstance(ids, list) and all(isinstance(i, str) for i in ids):
            kept["islands"] = ids
        groups.append(kept)
    return tuple(groups)
