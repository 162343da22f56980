"""Body values of an envelope: the msgpack value codec and its bounded decoder.

What may travel in a body (None, bool, 64-bit int, float, str, bytes, lists, maps with str
keys, numpy arrays of DTYPES) and how: arrays are msgpack ExtType code ARRAY_EXT (= 1) whose
data is::

    u8 n, n ascii bytes dtype name (see DTYPES), u8 ndim (<= MAX_NDIM),
    ndim x u64 dims, then prod(dims) * itemsize raw little-endian bytes in C order.

Dims are unsigned, so they are non-negative by construction. Nesting is limited to MAX_DEPTH
containers (the body map is depth 1). Decoding trusts nothing: every declared length is
bounded by the bytes present, containers and elements by a budget proportional to the payload
(`_Budget`), and the result is re-validated, so a hostile payload costs memory and time
bounded by a small multiple of its size. The envelope around a body is `format`.
"""
from __future__ import annotations

import math
import struct
import sys
from typing import Any

import msgpack
import numpy as np

from migration_pool.errors import FormatError

ARRAY_EXT = 1
MAX_DEPTH = 32
MAX_NDIM = 8
DTYPES: frozenset[str] = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "float32", "float64"}
)
# np.dtype.name is a Python-level property costing ~1.5 us, read a dozen times per migration
# event: the hot paths look the name up here (dtype hashing is C) and fall back to .name.
_DTYPE_NAMES: dict[np.dtype, str] = {np.dtype(n): n for n in DTYPES}
_LITTLE = sys.byteorder == "little"
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# What the decoder itself may raise on bad bytes; anything else is a bug and propagates.
DECODER_ERRORS = (msgpack.UnpackException, ValueError, TypeError, OverflowError,
                  struct.error, RecursionError)


def dtype_name(dtype: np.dtype) -> str:
    """``dtype.name``, cheaply for the dtypes the format allows."""
    name = _DTYPE_NAMES.get(dtype)
    return dtype.name if name is None else name


def pack_body(body: dict) -> bytes:
    """The msgpack bytes of a body the caller has checked (`check_value`)."""
    try:
        return msgpack.packb(body, default=_pack_default, use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as exc:  # belt and braces after check_value
        raise FormatError(f"cannot encode body: {exc}") from None


def unpack_body(payload: memoryview, extra_units: int = 0) -> dict:
    """The body map in `payload`, decoded within the budget (`extra_units` more than the
    payload's own: `format.ISLAND_UNITS`) and validated; FormatError or one of DECODER_ERRORS
    for bad bytes."""
    budget = _Budget(len(payload), extra_units)
    body = msgpack.unpackb(
        payload, raw=False, strict_map_key=True, use_list=True,
        object_pairs_hook=budget.pairs, list_hook=budget.list, ext_hook=_ext_hook,
        # Every declared length is bounded by the bytes present, and a container by the
        # element budget, so a lying header cannot make msgpack preallocate much.
        max_str_len=len(payload), max_bin_len=len(payload), max_ext_len=len(payload),
        max_array_len=budget.limit, max_map_len=budget.limit // 2,
    )
    if not isinstance(body, dict):
        raise FormatError(f"body is a {type(body).__name__}, not a map")
    _check_decoded(body, 1)
    return body


def masked(array: Any) -> bool:
    """Whether `array` is a numpy masked array, without importing numpy.ma (0.14 s in a fresh
    island): nothing can be one unless some module already imported it."""
    ma = sys.modules.get("numpy.ma")
    return ma is not None and isinstance(array, ma.MaskedArray)


def check_value(obj: Any, depth: int) -> None:
    """Refuse, before packing, anything that would not decode to an equal value."""
    if isinstance(obj, (dict, list, tuple)) and depth > MAX_DEPTH:
        raise FormatError(f"nesting deeper than {MAX_DEPTH}")
    if obj is None or isinstance(obj, (bool, float, str, bytes, bytearray)):
        return
    if isinstance(obj, int):
        if not _INT_MIN <= obj <= _INT_MAX:
            raise FormatError(f"integer {obj} does not fit in 64 bits")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise FormatError(f"map key {key!r} is a {type(key).__name__}, not a str")
            check_value(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            check_value(value, depth + 1)
    elif isinstance(obj, np.ndarray):
        if masked(obj):
            raise FormatError("masked arrays are not supported (the mask would be lost)")
        if dtype_name(obj.dtype) not in DTYPES:
            raise FormatError(f"array dtype {obj.dtype} is not one of {sorted(DTYPES)}")
        if obj.ndim > MAX_NDIM:
            raise FormatError(f"array has {obj.ndim} dims, more than {MAX_NDIM}")
    elif not isinstance(obj, (np.bool_, np.integer, np.floating)):
        raise FormatError(f"cannot encode a value of type {type(obj).__name__}")


def _pack_default(obj: Any) -> Any:
    """msgpack hook for the types it does not know: arrays and numpy scalars."""
    if isinstance(obj, np.ndarray):
        dtype = obj.dtype
        if dtype.byteorder not in "<|=" or (dtype.byteorder == "=" and not _LITTLE):
            obj = obj.astype(dtype.newbyteorder("<"))
        raw = obj.tobytes(order="C")
        name = dtype_name(dtype).encode("ascii")
        head = bytes([len(name)]) + name + bytes([obj.ndim])
        return msgpack.ExtType(ARRAY_EXT, head + struct.pack(f"<{obj.ndim}Q", *obj.shape) + raw)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> np.ndarray:
    if code != ARRAY_EXT:
        raise FormatError(f"unknown extension type {code}")
    if len(data) < 2 or len(data) < data[0] + 2:
        raise FormatError("truncated array header")
    name = data[1 : 1 + data[0]].decode("ascii", "replace")
    if name not in DTYPES:
        raise FormatError(f"array dtype {name!r} is not allowed")
    ndim = data[1 + data[0]]
    if ndim > MAX_NDIM:
        raise FormatError(f"array has {ndim} dims, more than {MAX_NDIM}")
    start = 2 + data[0]
    if len(data) < start + 8 * ndim:
        raise FormatError("truncated array shape")
    shape = struct.unpack_from(f"<{ndim}Q", data, start)
    dtype = np.dtype(name)
    raw = memoryview(data)[start + 8 * ndim :]
    # Python ints: the product cannot overflow, so a huge declared shape is just a mismatch.
    if math.prod(shape) * dtype.itemsize != len(raw):
        raise FormatError(f"array of shape {shape} and dtype {name} needs "
                          f"{math.prod(shape) * dtype.itemsize} bytes, has {len(raw)}")
    if name == "bool" and bytes(raw).translate(None, b"\0\1"):
        raise FormatError("bool array holds bytes other than 0 and 1")
    flat = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    return flat.reshape(shape).astype(dtype)  # astype copies: writable, owns its memory


# Decoding cost bound. Valid bodies hold few containers (arrays travel as one ext
# value), so a payload of S bytes may hold at most S // ELEMENT_BYTES + ELEMENT_SLACK
# "element units": each list or map costs CONTAINER_UNITS plus one unit per element (two
# per map entry). The 16 MiB "array of empty maps" bomb is refused at its header; any other
# shape is refused after at most S / 64 containers. Measured with tracemalloc over the
# crafted files (tests/migration_pool/test_format.py): peak <= DECODE_BYTES_PER_BYTE x S + 1 MiB,
# plus at most DECODE_BYTES_PER_UNIT per extra unit a kind is granted (`format.ISLAND_UNITS`).
ELEMENT_BYTES = 4
ELEMENT_SLACK = 4096
CONTAINER_UNITS = 16
DECODE_BYTES_PER_BYTE = 16
DECODE_BYTES_PER_UNIT = 64


class _Budget:
    """The msgpack hooks of one decode: count containers and elements, refuse past the limit."""

    __slots__ = ("limit", "used", "payload_bytes")

    def __init__(self, payload_bytes: int, extra_units: int = 0) -> None:
        self.limit = payload_bytes // ELEMENT_BYTES + ELEMENT_SLACK + max(0, extra_units)
        self.used = 0
        self.payload_bytes = payload_bytes

    def _charge(self, units: int) -> None:
        self.used += units
        if self.used > self.limit:
            raise FormatError(f"more than {self.limit} containers and elements for "
                              f"{self.payload_bytes} payload bytes")

    def list(self, items: list) -> list:
        self._charge(CONTAINER_UNITS + len(items))
        return items

    def pairs(self, pairs: list) -> dict:
        self._charge(CONTAINER_UNITS + 2 * len(pairs))
        return _pairs_hook(pairs)


def _pairs_hook(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise FormatError("map has duplicate keys")
    for key in result:
        if not isinstance(key, str):  # strict_map_key still lets bytes keys through
            raise FormatError(f"map key {key!r} is not a str")
    return result


_LEAVES = frozenset({type(None), bool, int, float, str, bytes, np.ndarray})


def _check_decoded(obj: Any, depth: int) -> None:
    if isinstance(obj, (dict, list)) and depth > MAX_DEPTH:
        raise FormatError(f"nesting deeper than {MAX_DEPTH}")
    if isinstance(obj, (dict, list)):
        for value in obj.values() if isinstance(obj, dict) else obj:
            if type(value) not in _LEAVES:  # exact leaf types need no call; others are judged
                _check_decoded(value, depth + 1)
    elif not (obj is None or isinstance(obj, (bool, int, float, str, bytes, np.ndarray))):
        raise FormatError(f"unexpected value of type {type(obj).__name__}")
