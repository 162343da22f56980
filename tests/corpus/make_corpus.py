"""Build the corpus of known-bad "migrants" files that tests/migration_pool/test_format.py replays.

Run ``python tests/corpus/make_corpus.py`` to (re)write the ``*.bin`` files next to this
script. The envelope is packed here independently of migration_pool.format, from the layout
documented there, so the corpus also checks that the documentation and the code agree.
Every file must be rejected by ``decode_batch`` with FormatError.
"""
from __future__ import annotations

import pathlib
import struct
import zlib

import msgpack

HERE = pathlib.Path(__file__).resolve().parent


def envelope(payload: bytes, kind: bytes = b"migrants", version: int = 1, flags: int = 0,
             length: int | None = None) -> bytes:
    """The documented 32-byte header with a correct CRC, then the payload."""
    head = struct.pack("<4sHH12sQ", b"ISLD", version, flags, kind,
                       len(payload) if length is None else length)
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


def array_ext(dtype: str, shape: tuple[int, ...], raw: bytes, ndim: int | None = None) -> bytes:
    """ExtType code 1: u8 n, dtype name, u8 ndim, ndim x u64 dims, raw bytes."""
    name = dtype.encode()
    ndim = len(shape) if ndim is None else ndim
    data = bytes([len(name)]) + name + bytes([ndim]) + struct.pack(f"<{len(shape)}Q", *shape)
    return data + raw


def batch_body(**changes: object) -> dict:
    """A valid batch body (K=2, gene shape (3,)), with fields replaced or removed (None)."""
    ext = lambda dtype, shape, raw: msgpack.ExtType(1, array_ext(dtype, shape, raw))  # noqa
    body = {
        "schema": 1, "run_id": "run-a", "source": "island-01", "generation": 7,
        "created": 1.7e9, "genome_kind": "vector", "dtype": "float32", "gene_shape": [3],
        "count": 2, "genomes": ext("float32", (2, 3), struct.pack("<6f", *range(6))),
        "fitness": ext("float64", (2,), struct.pack("<2d", 1.0, 2.0)),
        "origin": ["island-01", "island-02"],
        "birth": ext("int64", (2,), struct.pack("<2q", 0, 5)),
        "lineage": ext("int64", (2,), struct.pack("<2q", 10, 11)),
    }
    for key, value in changes.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    return body


def pack(body: object) -> bytes:
    return msgpack.packb(body, use_bin_type=True)


def cases() -> dict[str, bytes]:
    """name -> bytes of every known-bad file."""
    good = envelope(pack(batch_body()))
    ext = lambda *a, **k: msgpack.ExtType(1, array_ext(*a, **k))  # noqa: E731
    deep = b"\x81\xa1a" + b"\x91" * 2000 + b"\xc0"  # {"a": [[[...2000 deep...]]]}
    deep40 = b"\x81\xa1a" + b"\x91" * 40 + b"\xc0"  # within msgpack's stack, beyond ours
    return {
        "empty": b"",
        "header_only": good[:32],
        "truncated_half": good[: len(good) // 2],
        "truncated_last_byte": good[:-1],
        "trailing_garbage": good + b"\0",
        "bad_magic": b"ISLE" + good[4:],
        "bad_crc": good[:28] + bytes([good[28] ^ 1]) + good[29:],
        "future_version": envelope(pack(batch_body()), version=2),
        "flags_set": envelope(pack(batch_body()), flags=1),
        "wrong_kind": envelope(pack({"state": "running"}), kind=b"status"),
        "length_2_63": envelope(pack(batch_body()), length=2**63),
        "length_short": envelope(pack(batch_body()), length=10),
        "array_2_32_elements": envelope(pack(batch_body(
            genomes=ext("float32", (2**32, 3), b"\0" * 24)))),
        "array_huge_dims_product": envelope(pack(batch_body(
            genomes=ext("float32", (2**40, 2**40, 2**40), b"")))),
        "msgpack_array_2_32": envelope(b"\x81\xa1a\xdd\xff\xff\xff\xff\xc0"),
        "msgpack_str_2_32": envelope(b"\x81\xa1a\xdb\xff\xff\xff\xff" + b"x" * 8),
        "msgpack_map_2_32": envelope(b"\xdf\xff\xff\xff\xff\xa1a\x01"),
        "nesting_2000": envelope(deep),
        "nesting_40": envelope(deep40),
        "invalid_utf8_key": envelope(b"\x81\xa2\xff\xfe\x01"),
        "invalid_utf8_value": envelope(_with_raw_run_id(b"\xc3\x28")),
        "bytes_key": envelope(b"\x81\xc4\x01a\x01"),
        "int_key": envelope(b"\x81\x01\x01"),
        "duplicate_key": envelope(b"\x82\xa1a\x01\xa1a\x02"),
        "top_level_list": envelope(pack([1, 2, 3])),
        "timestamp_ext": envelope(pack({"t": msgpack.Timestamp(1, 0)})),
        "unknown_ext": envelope(pack({"x": msgpack.ExtType(99, b"abc")})),
        "array_ndim_9": envelope(pack({"x": ext("uint8", (1,) * 9, b"\0")})),
        "array_ndim_lies": envelope(pack({"x": ext("uint8", (2,), b"\0\0", ndim=3)})),
        "array_dtype_complex": envelope(pack({"x": ext("complex128", (1,), b"\0" * 16)})),
        "array_dtype_object": envelope(pack({"x": ext("object", (1,), b"\0" * 8)})),
        "array_raw_short": envelope(pack({"x": ext("int32", (4,), b"\0" * 15)})),
        "array_bool_byte_2": envelope(pack({"x": ext("bool", (2,), b"\x01\x02")})),
        "msgpack_reserved_byte": envelope(b"\x81\xa1a\xc1"),
        "nan_fitness": envelope(pack(batch_body(fitness=ext(
            "float64", (2,), struct.pack("<2d", 1.0, float("nan")))))),
        "inf_fitness": envelope(pack(batch_body(fitness=ext(
            "float64", (2,), struct.pack("<2d", float("-inf"), 1.0))))),
        "fitness_float32": envelope(pack(batch_body(fitness=ext(
            "float32", (2,), struct.pack("<2f", 1.0, 2.0))))),
        "negative_generation": envelope(pack(batch_body(generation=-1))),
        "generation_2_64": envelope(pack(batch_body(generation=2**64 - 1))),
        "bad_island_id": envelope(pack(batch_body(source="island-3"))),
        "island_id_newline": envelope(pack(batch_body(source="island-03\n"))),
        "origin_too_short": envelope(pack(batch_body(origin=["island-01"]))),
        "negative_birth": envelope(pack(batch_body(birth=ext(
            "int64", (2,), struct.pack("<2q", 0, -1))))),
        "count_disagrees": envelope(pack(batch_body(count=3))),
        "gene_shape_disagrees": envelope(pack(batch_body(gene_shape=[4]))),
        "dtype_disagrees": envelope(pack(batch_body(dtype="float64"))),
        "future_schema": envelope(pack(batch_body(schema=2))),
        "missing_field": envelope(pack(batch_body(lineage=None))),
        "unexpected_field": envelope(pack(batch_body(extra=1))),
        "genomes_int": envelope(pack(batch_body(genomes=ext("int32", (2, 3), b"\0" * 24)))),
        **{f"bomb_{shape}": crafted(shape, SMALL_BOMB) for shape in BOMBS},
    }


SMALL_BOMB = 256 * 1024  # the committed versions; tests/migration_pool/test_format.py also builds 16 MiB ones
BOMBS = ("empty_maps", "empty_maps_padded", "empty_lists_padded", "one_entry_maps",
         "negative_ints_nested")


def crafted(shape: str, size: int) -> bytes:
    """A correct envelope around a payload of about ``size`` bytes built to be costly to decode.

    Each shape is a body map {"a": [...]}: millions of 1-byte empty maps (the whole payload,
    or a fifth of it padded with a bin), empty lists, {"a": 0} maps, or 64 lists of negative
    fixints (1 byte each, a fresh 28-byte int object each in CPython).
    """
    arr = lambda n: b"\xdd" + struct.pack(">I", n)  # noqa: E731 (array32 header)
    pad = lambda n: b"\xc6" + struct.pack(">I", n) + b"\0" * n  # noqa: E731 (bin32)
    head = b"\x82\xa1b" + pad(0) + b"\xa1a"
    if shape == "empty_maps":
        return envelope(head + arr(size) + b"\x80" * size)
    if shape == "empty_maps_padded":
        return envelope(head[:1] + b"\xa1b" + pad(size - size // 5) + b"\xa1a" + arr(size // 5)
                        + b"\x80" * (size // 5))
    if shape == "empty_lists_padded":
        return envelope(head[:1] + b"\xa1b" + pad(size - size // 5) + b"\xa1a" + arr(size // 5)
                        + b"\x90" * (size // 5))
    if shape == "one_entry_maps":
        return envelope(head + arr(size // 4) + b"\x81\xa1a\x00" * (size // 4))
    if shape == "negative_ints_nested":
        return envelope(head + arr(64) + (arr(size // 64) + b"\xec" * (size // 64)) * 64)
    raise ValueError(f"unknown shape {shape!r}")


def _with_raw_run_id(raw: bytes) -> bytes:
    """A batch payload whose run_id str holds ``raw`` (not valid UTF-8)."""
    marker = "RUNIDMARK"
    packed = pack(batch_body(run_id=marker))
    return packed.replace(b"\xa9" + marker.encode(), bytes([0xA0 | len(raw)]) + raw)


def main() -> None:
    for old in HERE.glob("*.bin"):
        old.unlink()
    for name, data in cases().items():
        (HERE / f"{name}.bin").write_bytes(data)
    print(f"wrote {len(cases())} files to {HERE}")


if __name__ == "__main__":
    main()
