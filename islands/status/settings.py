"""Which setting won: the status report's hyperparameter study of a `--vary` launch.

For each setting the islands differ in, each value gets its islands' median best-ever fitness
and median own gain. Under migration an island's best is not a function of its settings: a
good genome travels, and an island that started late adopts its neighbours' evolved genomes
at its first migration. So the island loop attributes every improvement of best_ever
(`islands.island`): after its own breeding step ("own") or right after adopting migrants
("adopted"). When migrants brought part of the improvement, the scores are confounded, the
section says so (with the immigrants' share), and values are ranked by own gain instead.

Pure functions on the report's island entries (plain dicts), no torch, no numpy.
"""
from __future__ import annotations

import json
import statistics
from typing import Any, Iterable, Mapping, Sequence

LATE_START_S = 5.0  # islands whose starts lie further apart than this are named in the note


def varied_names(islands: Sequence[Mapping[str, Any]]) -> list[str]:
    """The override names whose value differs between islands (a missing name is the default)."""
    names = sorted({k for i in islands for k in i["overrides"]})
    return [n for n in names if len({_key(i["overrides"].get(n)) for i in islands}) > 1]


def settings_section(islands: Sequence[Mapping[str, Any]], *, migration_every: int | None,
                     champion: str | None) -> dict[str, Any] | None:
    """The report's `settings` section, or None when no two islands differ in their overrides.

    `islands` are report entries (island, overrides, best_ever, own_gain, adopted_gain,
    started); `champion` is the champion's island id.
    """
    names = varied_names(islands)
    if not names:
        return None
    known = [i for i in islands if i.get("own_gain") is not None]
    own_key = "own_log_gain" if _minimising(islands, known) else "own_gain"
    adopted_key = own_key.replace("own", "adopted")
    own = sum(i[own_key] for i in known)
    adopted = sum(i.get(adopted_key) or 0.0 for i in known)
    share = adopted / (own + adopted) if own + adopted > 0 else None
    migrating = bool(migration_every)
    confounded = migrating and (adopted > 0 or not known)
    rank_by = own_key if confounded and known else "best_ever"
    starts = [i["started"] for i in islands if i.get("started") is not None]
    spread = max(starts) - min(starts) if len(starts) > 1 else None
    return {
        "varied": names,
        "confounded": confounded,
        "immigrant_share": share if migrating else None,
        "rank_by": rank_by,
        "note": _note(confounded, share, rank_by, spread, len(known), len(islands)),
        "start_spread_s": spread,
        "settings": [_setting(n, islands, rank_by, champion) for n in names],
    }


def _setting(name: str, islands: Sequence[Mapping[str, Any]], rank_by: str, champion: str | None) -> dict[str, Any]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for isl in islands:
        groups.setdefault(_key(isl["overrides"].get(name)), []).append(isl)
    values = []
    for key, members in groups.items():
        values.append({
            "value": json.loads(key),
            "islands": len(members),
            "median_best_ever": _median(i.get("best_ever") for i in members),
            "median_own_gain": _median(i.get("own_gain") for i in members),
            "median_adopted_gain": _median(i.get("adopted_gain") for i in members),
            "median_own_log_gain": _median(i.get("own_log_gain") for i in members),
            "median_adopted_log_gain": _median(i.get("adopted_log_gain") for i in members),
            "champion": champion is not None and any(i["island"] == champion for i in members),
        })
    score = f"median_{rank_by}"
    ranked = sorted((v for v in values if v[score] is not None), key=lambda v: -v[score])
    for v in values:
        v["rank"] = ranked.index(v) + 1 if v in ranked else None
    values.sort(key=lambda v: _order(v["value"]))
    champ = next((v["value"] for v in values if v["champion"]), None)
    return {"name": name, "values": values, "champion_value": champ,
            "best_value": ranked[0]["value"] if ranked else None}


def _note(confounded: bool, share: float | None, rank_by: str, spread: float | None, known: int,
          total: int) -> str | None:
    """The plain sentence on whether the scores say anything about the settings."""
    if not confounded:
        return None
    if rank_by == "best_ever":
        return ("scores may be confounded by migration (these islands do not record their own improvement); "
                "rank with care, or re-run the top settings with --migrate-every 0")
    unit = "orders of magnitude of f(x)" if rank_by == "own_log_gain" else "best_ever gained"
    text = (f"confounded: {share:.0%} of the improvement came from immigrants; ranked by own improvement "
            f"({unit} after the island's own breeding steps), not by best_ever")
    if spread is not None and spread > LATE_START_S:
        text += (f"; islands started up to {spread:.0f} s apart, and a late starter adopts its neighbours' "
                 "evolved genomes at its first migration (counted as adopted)")
    if known < total:
        text += f"; {total - known} island(s) without a recorded own gain are not ranked"
    return text


def _minimising(islands: Sequence[Mapping[str, Any]], known: Sequence[Mapping[str, Any]]) -> bool:
    """A minimisation benchmark (every best_ever <= 0) whose islands record log gains: gains are
    then compared in orders of magnitude, where a worse first population earns no extra credit."""
    bests = [i.get("best_ever") for i in islands if i.get("best_ever") is not None]
    return bool(known) and bool(bests) and all(b <= 0 for b in bests) \
        and all(i.get("own_log_gain") is not None for i in known)


def _key(value: Any) -> str:
    """A hashable, JSON-decodable key of an override value (None: the run's default)."""
    return json.dumps(value, sort_keys=True)


def _order(value: Any) -> tuple[int, float, str]:
    """Numbers by size, then everything else by text; the default (None) first."""
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def _median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(statistics.median(vals)) if vals else None


def display(value: Any) -> str:
    """A value as the table shows it (None: the run's default)."""
    if value is None:
        return "(default)"
    if isinstance(value, float):
        return format(value, ".4g")
    return str(value)
