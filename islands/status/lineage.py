"""Lineage diversity: how many islands' lineages survive (docs/DESIGN.md, "Diversity is a figure").

Every individual carries the number of the island where its lineage began (its origin). The
effective number of origins of a set of individuals is exp(H), H the Shannon entropy of their
origin distribution: k origins of equal size give k, one origin gives 1, and an origin holding
a sliver of the individuals counts for little. It is the figure that says whether migration
has let one island's lineage take the archipelago over, which a plain count of surviving
origins hides (a takeover leaves a few stragglers of every origin for a long time).

Pure functions on plain counts, no torch and no numpy: the launcher's summary uses them too.
"""
from __future__ import annotations

import math
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


def name_origins(counts: Mapping[int, int], known: Sequence[str]) -> dict[str, int]:
    """Counts keyed by island id: the id among `known` with that number, else `island-NN`."""
    ids: dict[int, str] = {}
    for island in known:
        tail = island.rsplit("-", 1)[-1]
        if tail.isdigit():
            ids.setdefault(int(tail), island)
    return {ids.get(n, f"island-{n:02d}"): c for n, c in sorted(counts.items())}


def takeover_warning(counts: Mapping[str, int], contributors: int) -> str | None:
    """The warning shown when one origin holds more than half of the archipelago, else None."""
    key, share = takeover(counts, contributors)
    if key is None or share is None:
        return None
    return (f"warning: {key}'s lineage holds {share:.0%} of the archipelago (takeover: "
            "migrate less often, fewer migrants, or a sparser topology)")


def over_time(points: Mapping[str, Sequence[tuple[int, Mapping[int, int]]]], bins: int = 50) -> list[dict[str, Any]]:
    """The archipelago's effective origins over generations, from the islands' sampled histories.

    `points` maps an island to its (generation, origin counts) samples. Generations are cut
    into at most `bins` equal bins; in each, every island contributes its latest sample, the
    contributions are pooled, and the bin is labelled with the mean generation of those
    samples (islands sample at their own pace, so the same generation is rarely in all).
    """
    series = [[(g, c) for g, c in pts if g >= 0 and c] for pts in points.values()]
    series = [s for s in series if s]
    if not series:
        return []
    last = max(g for s in series for g, _ in s)
    width = max(1, math.ceil((last + 1) / max(1, bins)))
    per_bin: dict[int, list[tuple[int, Mapping[int, int]]]] = {}
    for s in series:
        latest: dict[int, tuple[int, Mapping[int, int]]] = {}
        for g, c in s:
            b = g // width
            if b not in latest or g >= latest[b][0]:
                latest[b] = (g, c)
        for b, sample in latest.items():
            per_bin.setdefault(b, []).append(sample)
    out = []
    for b in sorted(per_bin):
        samples = per_bin[b]
        counts = pooled(c for _, c in samples)
        out.append({"generation": round(sum(g for g, _ in samples) / len(samples)),
                    "effective_origins": effective_origins(counts),
                    "dominant_share": dominant_share(counts), "islands": len(samples)})
    return out
