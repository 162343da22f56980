"""Island ids: the one rule for spelling an island (`island-07`) and its number.

Every id becomes a path component (`islands/<id>/`, `pool/<id>/`) and comes from manifests,
command lines, directory listings and migrant files that other processes wrote, so the rule
is strict: the word island, a dash, then exactly two digits below 100 ("island-03") and no
leading zero above ("island-100", never "island-0100"), at most MAX_ISLAND_DIGITS digits.
One spelling per number means two ids never share a lineage number, and the number is small
enough for a u32 field of a packed batch. Inside a process the pool hands ids over as
numbers where it can (the origins of a decoded migrant batch); files keep the spelling.
"""
from __future__ import annotations

import re

from migration_pool.errors import FormatError

MAX_ISLAND_DIGITS = 6
# The most islands one run may plan (`islands launch -n`): far beyond any machine's cores, and
# the island count the format's bounds are sized for (`format.ISLAND_UNITS`).
MAX_ISLANDS = 4096
ID_LIMIT = 10 ** MAX_ISLAND_DIGITS  # island numbers are 0 <= n < ID_LIMIT
# Anchored with \Z and [0-9]: "$" would accept a trailing newline and \d non-ASCII digits.
ISLAND_ID_RE = re.compile(r"^island-(?:[0-9]{2}|[1-9][0-9]{2,%d})\Z" % (MAX_ISLAND_DIGITS - 1))
PREFIX = "island-"


def island_id(number: int) -> str:
    """The canonical id of island `number` (island-07, island-100)."""
    return f"{PREFIX}{number:02d}"


def valid_island_id(value: object) -> bool:
    """Whether `value` is a str spelled as a canonical island id."""
    return isinstance(value, str) and ISLAND_ID_RE.match(value) is not None


def check_island_id(value: object, field: str = "island id") -> str:
    """`value` if it is a canonical island id; FormatError naming `field` otherwise."""
    if not valid_island_id(value):
        raise FormatError(f"{field} {value!r} is not an island id like 'island-03'")
    return value  # type: ignore[return-value]


def island_number(value: object, field: str = "island id") -> int:
    """The number of a canonical island id (`island-03` -> 3); FormatError if it is not one."""
    return int(check_island_id(value, field)[len(PREFIX):])
