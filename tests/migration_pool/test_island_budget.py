"""The decoding budget of files that list every island (manifest, launcher state): a fixed
allowance for MAX_ISLANDS islands on top of the payload's own, still refusing a hostile file
and still bounding the memory a decode may take."""
from __future__ import annotations

import struct
import tracemalloc

import pytest

from migration_pool import format as fmt
from migration_pool.errors import FormatError
from migration_pool.island_ids import MAX_ISLANDS
from migration_pool.values import CONTAINER_UNITS, DECODE_BYTES_PER_BYTE, DECODE_BYTES_PER_UNIT

EXTRA = fmt.ISLAND_UNITS["manifest"] * MAX_ISLANDS


def _array(n: int) -> bytes:
    return b"\xdd" + struct.pack(">I", n)  # msgpack array32 header


def one_entry_maps(n: int) -> bytes:
    """A body {"a": [{"a": 0} x n]}: 4 bytes and CONTAINER_UNITS + 2 units per map."""
    return b"\x81\xa1a" + _array(n) + b"\x81\xa1a\x00" * n


def negative_ints(n: int) -> bytes:
    """A body {"a": [-20 x n]}: 1 byte, 1 unit and a fresh int object per element."""
    return b"\x81\xa1a" + _array(n) + b"\xec" * n


def units_limit(payload: bytes, kind: str) -> int:
    return len(payload) // 4 + 4096 + fmt.ISLAND_UNITS.get(kind, 0) * MAX_ISLANDS


def peak_of(data: bytes, kind: str) -> tuple[int, object]:
    tracemalloc.start()
    try:
        try:
            result: object = fmt.decode(data, kind)
        except FormatError as e:
            result = e
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("make, units", [(one_entry_maps, CONTAINER_UNITS + 2), (negative_ints, 1)])
def test_a_hostile_manifest_past_the_allowance_is_refused_and_costs_bounded_memory(make, units):
    # The largest count the budget admits, found by growing n until the budget is exceeded.
    n = 1
    while (CONTAINER_UNITS + 1 + units * 2 * n) <= units_limit(make(2 * n), "manifest"):
        n *= 2
    hostile = fmt.envelope("manifest", make(2 * n))  # past the allowance: refused
    peak, result = peak_of(hostile, "manifest")
    assert isinstance(result, FormatError)
    assert "containers and elements" in str(result) or "max_array_len" in str(result)  # or at its header
    bound = DECODE_BYTES_PER_BYTE * len(hostile) + (1 << 20) + EXTRA * DECODE_BYTES_PER_UNIT
    assert peak <= bound, f"{peak} bytes > {bound}"
    # Within the allowance it decodes (the allowance is real), within the same bound.
    fine = fmt.envelope("manifest", make(n))
    peak, result = peak_of(fine, "manifest")
    assert isinstance(result, dict) and len(result["a"]) == n
    assert peak <= DECODE_BYTES_PER_BYTE * len(fine) + (1 << 20) + EXTRA * DECODE_BYTES_PER_UNIT
    # A kind without the allowance refuses the same bytes.
    with pytest.raises(FormatError, match="containers and elements|max_array_len"):
        fmt.decode(fmt.envelope("status", make(n)), "status")


def test_the_16_mib_array_of_empty_maps_is_still_refused_at_its_header():
    size = 16 << 20
    data = fmt.envelope("manifest", b"\x81\xa1a" + _array(size) + b"\x80" * size)
    peak, result = peak_of(data, "manifest")
    assert isinstance(result, FormatError) and "max_array_len" in str(result) and peak < (1 << 20)
