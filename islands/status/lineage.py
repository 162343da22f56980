"""Lineage diversity: how many islands' lineages survive (docs/DESIGN.md, "Diversity is a figure").

Every individual carries the number of the island where its lineage began (its origin). The
effective number of origins of a set of individuals is exp(H), H the Shannon entropy of their
origin distribution: k origins of equal size give k, one origin gives 1, and an origin holding
a sliver of the individuals counts for little. It is the figure that says whether migration
has let one island's lineage take the archipelago over, which a plain count of surviving
origins hides (a takeover leaves a few stragglers of every origin for a long time).

Over time, every island counts at every point with its latest known origins (an island that
has ended stays at its last sample), so the curve compares the same islands from start to end.
Within one island the figure that says something is its largest lineage and that lineage's
share (`island_lineage`): islands are usually all of one lineage, so the effective number of
origins inside one is 1 almost everywhere, while "island-07's lineage holds all of island-03"
is what a takeover looks like from the island's side.

A takeover is trouble when it happens before the run reached its target (the archipelago lost
its other lineages while it still had work to do); once an island has reached the target, one
lineage spreading is the run converging on a solution (`takeover_verdict`).

Pure functions on plain counts and records, no torch and no numpy: the launcher's summary
uses them too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence, TypeVar

K = TypeVar("K")

TAKEOVER_SHARE = 0.5  # an origin holding more than this share of the archipelago is a takeover


def effective_origins(counts: Mapping[Any, int]) -> float:
    """exp of the Shannon entropy of the origin distribution; 0.0 for no individuals."""
    total = sum(n for n in counts.values() if n > 0)
    if total <= 0:
        return 0.0
    h = -sum(n / total * math.log(n / total) for n in counts.values() if n > 0)
    return math.exp(h)


def dominant(counts: Mapping[K, int]) -> tuple[K | None, float | None]:
    """The origin holding the most individuals (the first on ties) and its share; (None, None) if empty."""
    total = sum(n for n in counts.values() if n > 0)
    if total <= 0:
        return None, None
    key = max(counts, key=lambda k: counts[k])
    return key, counts[key] / total


def dominant_share(counts: Mapping[Any, int]) -> float | None:
    """The share of individuals whose lineage began on the most common origin; None if empty."""
    return dominant(counts)[1]


def pooled(per_island: Iterable[Mapping[K, int]]) -> dict[K, int]:
    """The origin counts of the whole archipelago: the islands' counts summed per origin."""
    out: dict[K, int] = {}
    for counts in per_island:
        for k, n in counts.items():
            if n > 0:
                out[k] = out.get(k, 0) + n
    return out


def takeover(counts: Mapping[K, int], contributors: int) -> tuple[K | None, float | None]:
    """The origin that took the archipelago over (and its share), or (None, None).

    Only with two or more islands counted: a lone island (or the first to report) is all of
    one origin by construction. The share must also exceed 1.5x an even share (1/islands):
    of two islands of 8 and 10, the larger holds 56% without any migrant having spread.
    """
    key, share = dominant(counts)
    if contributors < 2 or share is None or share <= max(TAKEOVER_SHARE, 1.5 / contributors):
        return None, None
    return key, share


def origin_names(known: Sequence[str]) -> dict[int, str]:
    """Island number -> the first id among `known` with that number."""
    ids: dict[int, str] = {}
    for island in known:
        tail = island.rsplit("-", 1)[-1]
        if tail.isdigit():
            ids.setdefault(int(tail), island)
    return ids


def name_origins(counts: Mapping[int, int], known: Mapping[int, str] | Sequence[str]) -> dict[str, int]:
    """Counts keyed by island id: the id among `known` (ids, or `origin_names` of them, which a
    reader of many islands builds once) with that number, else `island-NN`."""
    ids = known if isinstance(known, Mapping) else origin_names(known)
    return {ids.get(n, f"island-{n:02d}"): c for n, c in sorted(counts.items())}


def island_lineage(counts: Mapping[K, int]) -> tuple[K | None, float | None]:
    """One island's largest lineage (its origin) and its share of the island's population;
    (None, None) for an island with no counts. Its own number with 1.0: untouched by migrants;
    another island's: that island's lineage has taken this one over (in part or wholly)."""
    return dominant(counts)


@dataclass(frozen=True)
class TargetReach:
    """Whether, and when, the run reached its target, as the islands' status records tell.

    `target` is None when no island records one; `island` and `generation` are None while no
    island has reached it (`generation` is also None where a record does not say when).
    """

    target: float | None = None
    island: str | None = None
    generation: int | None = None
    time: float | None = None  # Unix time of the reach, where a history says (`first_reach_time`)

    @property
    def reached(self) -> bool:
        return self.island is not None


def target_reach(statuses: Mapping[str, Any]) -> TargetReach:
    """The earliest reach of the target among `statuses` (island id -> `IslandStatus`).

    An island reached it when it ended for reason "target" or its best-ever fitness is at
    least its target; it did so at the generation of that best-ever (the island stops there).
    Islands stopped because another reached it ("target-elsewhere") did not.
    """
    targets = [s.target for s in statuses.values() if getattr(s, "target", None) is not None]
    first: tuple[int, str] | None = None
    unknown_when: str | None = None
    for island, s in statuses.items():
        best, goal = getattr(s, "best_ever", None), getattr(s, "target", None)
        hit = getattr(s, "reason", None) == "target" or (goal is not None and best is not None and best >= goal)
        if not hit:
            continue
        when = getattr(s, "best_ever_generation", None)
        when = when if when is not None else getattr(s, "generation", None)
        if when is None:
            unknown_when = unknown_when or island
        elif first is None or (when, island) < first:
            first = (when, island)
    target = max(targets) if targets else None
    if first is not None:
        return TargetReach(target, first[1], first[0])
    return TargetReach(target, unknown_when, None)


def first_reach_time(reach: TargetReach, statuses: Mapping[str, Any],
                     histories: Mapping[str, Iterable[tuple[float | None, float | None]]]) -> TargetReach:
    """`reach` with the time the target was first reached, and by which island.

    Each island's (time, best_ever) history samples are judged against its own recorded
    target; an island that stopped at its target (reason "target") but whose samples do not
    show it (histories are sampled) reached it by its last heartbeat, as it stopped there.
    Unchanged when neither tells.
    """
    hits = []
    for island, s in statuses.items():
        goal = getattr(s, "target", None)
        samples = histories.get(island, ())
        first = None if goal is None else next(
            (t for t, best in samples if t is not None and best is not None and best >= goal), None)
        if first is None and getattr(s, "reason", None) == "target":
            first = getattr(s, "heartbeat", None)
        if first is not None:
            hits.append((first, island))
    if not hits:
        return reach
    at, island = min(hits)
    when = getattr(statuses.get(island), "best_ever_generation", None)
    return TargetReach(reach.target, island, when if when is not None else reach.generation, at)


def takeover_verdict(counts: Mapping[str, int], contributors: int, reach: TargetReach | None = None,
                     trend: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any] | None:
    """A takeover (one origin holding more than half of the archipelago, `takeover`) and
    whether it is trouble; None without one.

    `trend` is `over_time`'s curve: where the rule last began to hold is when the takeover
    began (None without a curve). It is "before-target" (trouble) when no island has reached
    the target, or the takeover began before one did (by wall-clock time where both are
    known, else by generation); else "after-target": the archipelago converged on a solution
    it had already found. A reached target and no curve count as "after-target".
    """
    key, share = takeover(counts, contributors)
    if key is None or share is None:
        return None
    began = _takeover_began(trend)
    reach = reach or TargetReach()
    if not reach.reached:
        fine = False
    elif began is not None and began.get("time") is not None and reach.time is not None:
        fine = began["time"] >= reach.time  # wall clock: islands of different speeds line up
    elif began is not None and reach.generation is not None:
        fine = began["generation"] >= reach.generation
    else:
        fine = True  # reached, and no curve to say the takeover came first
    return {"origin": key, "share": share, "kind": "after-target" if fine else "before-target",
            "generation": None if began is None else began["generation"], "target_island": reach.island,
            "target_generation": reach.generation, "target": reach.target}


def _takeover_began(trend: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The point of `trend` from which the takeover rule holds to its end (the first point
    where it held, if it no longer holds at the end); None if it never held."""
    first = start = None
    for p in trend:
        n, share = p.get("islands", 0), p.get("dominant_share")
        holds = n >= 2 and share is not None and share > max(TAKEOVER_SHARE, 1.5 / n)
        if holds and start is None:
            start = p
            first = start if first is None else first
        elif not holds:
            start = None
    return start if start is not None else first


ADVICE = "migrate less often, fewer migrants, or a sparser topology"


def takeover_warning(counts: Mapping[str, int], contributors: int, reach: TargetReach | None = None,
                     trend: Sequence[Mapping[str, Any]] = ()) -> str | None:
    """The warning for a takeover that is trouble (`takeover_verdict` "before-target"), else None."""
    verdict = takeover_verdict(counts, contributors, reach, trend)
    return None if verdict is None else verdict_line(verdict, warning_only=True)


def verdict_line(verdict: Mapping[str, Any] | None, warning_only: bool = False) -> str | None:
    """The line for a takeover verdict: a warning when it is trouble, a note when the run had
    reached its target first (None for that one with `warning_only`)."""
    if verdict is None:
        return None
    holds = f"{verdict['origin']}'s lineage holds {verdict['share']:.0%} of the archipelago"
    if verdict["kind"] == "after-target":
        if warning_only:
            return None
        when = f" (its generation {verdict['target_generation']})" if verdict["target_generation"] is not None else ""
        return (f"note: {holds}; it spread after {verdict['target_island']} had reached the target{when}: "
                "the run converged on a solution it had found (no takeover to worry about)")
    began = f" from generation {verdict['generation']} on" if verdict["generation"] is not None else ""
    when = f" at generation {verdict['target_generation']}" if verdict["target_generation"] is not None else ""
    if verdict["target_island"] is not None:
        why = f"before {verdict['target_island']} reached the target{when}"
    elif verdict["target"] is not None:
        why = "and no island has reached the target"
    else:
        why = "(this run has no target to tell convergence from a takeover)"
    return f"warning: {holds}{began}, {why} (takeover: {ADVICE})"


def over_time(points: Mapping[str, Sequence[tuple[Any, ...]]], bins: int = 50) -> list[dict[str, Any]]:
    """The archipelago's effective origins over generations, from the islands' sampled histories.

    `points` maps an island to its (generation, origin counts[, Unix time]) samples. Generations are cut
    into at most `bins` equal bins. At each bin every island that has reported counts with its
    latest sample up to that bin: its own sample in the bin, or one carried forward from an
    earlier bin (an island that has ended, or samples less often), so every point compares
    the same islands and a run's last points are not those of whichever island ran longest.
    A bin where no island sampled adds nothing new and is left out; a bin is labelled with
    the mean generation of the samples taken in it, and the latest time among them (where
    recorded): from then on every count of the point was known.
    """
    series = [sorted(((p[0], p[1], p[2] if len(p) > 2 else None) for p in pts if p[0] >= 0 and p[1]),
                     key=lambda x: x[0]) for pts in points.values()]
    series = [s for s in series if s]
    if not series:
        return []
    last = max(s[-1][0] for s in series)
    width = max(1, math.ceil((last + 1) / max(1, bins)))
    latest: list[tuple[int, Mapping[int, int], float | None] | None] = [None] * len(series)
    cursor = [0] * len(series)
    out = []
    for b in range(last // width + 1):
        fresh = []  # the samples of the islands that sampled in this bin (each its latest)
        for i, s in enumerate(series):
            before = cursor[i]
            while cursor[i] < len(s) and s[cursor[i]][0] // width <= b:  # bins in order: each sample in its own
                cursor[i] += 1
            if cursor[i] > before:
                latest[i] = s[cursor[i] - 1]
                fresh.append(latest[i])
        if not fresh:
            continue
        known = [x for x in latest if x is not None]
        counts = pooled(x[1] for x in known)
        times = [x[2] for x in fresh if x[2] is not None]
        out.append({"generation": round(sum(x[0] for x in fresh) / len(fresh)),  # type: ignore[index]
                    "time": max(times) if times else None,
                    "effective_origins": effective_origins(counts),
                    "dominant_share": dominant_share(counts), "islands": len(known),
                    "carried": len(known) - len(fresh)})
    return out
