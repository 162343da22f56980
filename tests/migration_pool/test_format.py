"""Tests of the envelope, the value codec and the migrant batch schema."""
from __future__ import annotations

import math
import pathlib
import random
import re
import struct
import sys
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from migration_pool.errors import FormatError
from migration_pool.batches import SCHEMA_VERSION, MigrantBatch, decode_batch, encode_batch
from migration_pool.format import HEADER_SIZE, KINDS, MAX_FILE_BYTES, decode, encode
from migration_pool.island_ids import ISLAND_ID_RE
from migration_pool.values import DECODE_BYTES_PER_BYTE, DTYPES, MAX_DEPTH
from support.factories import migrant_batch

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "corpus"
sys.path.insert(0, str(CORPUS))
import make_corpus  # noqa: E402


def same(orig, got) -> bool:
    """Exact equality of an encoded value and its decoding (bits of floats included)."""
    if isinstance(orig, np.ndarray):
        native = np.dtype(orig.dtype.name)
        return (type(got) is np.ndarray and got.dtype == native and got.shape == orig.shape
                and got.tobytes() == orig.astype(native).tobytes())
    if isinstance(orig, dict):
        return (type(got) is dict and list(orig) == list(got)
                and all(same(orig[k], got[k]) for k in orig))
    if isinstance(orig, (list, tuple)):
        return type(got) is list and len(orig) == len(got) and all(map(same, orig, got))
    if isinstance(orig, float):
        return type(got) is float and struct.pack("<d", orig) == struct.pack("<d", got)
    return type(got) is type(orig) and got == orig


def make_batch(k: int = 3, gene_shape=(4,), dtype="float32", **changes) -> MigrantBatch:
    fields = dict(
        genomes=np.arange(k * math.prod(gene_shape), dtype=dtype).reshape(k, *gene_shape),
        fitness=np.linspace(-1.0, 1.0, k), origin=tuple(f"island-{i:02d}" for i in range(k)),
        birth=np.arange(k, dtype=np.int64), lineage=np.arange(100, 100 + k, dtype=np.int64),
    )
    fields.update(changes)
    return migrant_batch(fields.pop("genomes"), **fields)


def same_batch(a: MigrantBatch, b: MigrantBatch) -> bool:
    return all(same(getattr(a, f), getattr(b, f)) if f != "origin" else np.array_equal(a.origin, b.origin)
               for f in MigrantBatch.__dataclass_fields__)


# ----------------------------------------------------------------------------- envelope

def test_envelope_layout_matches_the_documentation():
    data = encode("status", {"a": 1})
    magic, version, flags, kind, length, crc = struct.unpack_from("<4sHH12sQI", data)
    assert HEADER_SIZE == 32
    assert (magic, version, flags) == (b"ISLD", 1, 0)
    assert kind == b"status" + b"\0" * 6
    assert length == len(data) - 32
    assert crc == zlib.crc32(data[32:], zlib.crc32(data[:28]))
    assert make_corpus.envelope(data[32:], kind=b"status") == data  # independent packer agrees


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_round_trips_and_is_checked(kind):
    data = encode(kind, {"x": [1, 2.5, "s", b"b", None, True]})
    assert decode(data, kind) == {"x": [1, 2.5, "s", b"b", None, True]}
    other = next(k for k in sorted(KINDS) if k != kind)
    with pytest.raises(FormatError, match=f"file kind '{kind}' is not the expected '{other}'"):
        decode(data, other)


def test_unknown_kind_is_refused_both_ways():
    with pytest.raises(FormatError, match="unknown kind"):
        encode("pickle", {})
    with pytest.raises(FormatError, match="unknown kind"):
        decode(encode("status", {}), "pickle")
    assert KINDS == {"migrants", "checkpoint", "manifest", "status", "champion", "launcher", "target", "evaluation", "lease",
                     "segments", "summary", "basins", "obs_stats"}


def test_size_cap_boundary():
    data = encode("status", {"blob": b"x" * 1000})
    assert decode(data, "status", max_bytes=len(data))["blob"] == b"x" * 1000
    with pytest.raises(FormatError, match="exceeds the cap"):
        decode(data, "status", max_bytes=len(data) - 1)
    assert MAX_FILE_BYTES == 256 * 1024 * 1024


def test_errors_carry_the_path():
    with pytest.raises(FormatError) as info:
        decode(b"", "status", path="/run/x.status")
    assert info.value.path == "/run/x.status"
    assert str(info.value).startswith("/run/x.status: ")
    with pytest.raises(FormatError) as info:
        decode_batch(encode_batch(make_batch()), run_id="other", path="/run/m")
    assert info.value.path == "/run/m" and "run id 'run-a' is not this run's 'other'" in str(
        info.value)


# ----------------------------------------------------------------------------- values

@pytest.mark.parametrize("value", [2**64 - 1, -(2**63), 0, -1, 2**63])
def test_integers_at_the_64_bit_edges_round_trip(value):
    assert same(value, decode(encode("status", {"v": value}), "status")["v"])


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 10**30, [1, {"x": 2**70}]])
def test_integers_beyond_64_bits_raise_on_encode(value):
    with pytest.raises(FormatError, match="64 bits"):
        encode("status", {"v": value})


@pytest.mark.parametrize("body", [
    {"v": {1, 2}}, {"v": object()}, {"v": 1j}, {1: "int key"}, {"v": {b"k": 1}},
    {"v": {None: 1}}, {"v": np.zeros(2, complex)}, {"v": np.array(["s"])},
    {"v": np.array([None])}, {"v": np.zeros(2, "datetime64[s]")},
    {"v": np.ma.masked_array([1, 2], mask=[0, 1])}, {"v": np.zeros((1,) * 9)},
], ids=lambda b: re.sub(r" at 0x[0-9a-f]+", "", repr(b))[:40])  # no address: the same id in every xdist worker
def test_unsupported_values_raise_format_error_on_encode(body):
    with pytest.raises(FormatError):
        encode("status", body)


def test_body_must_be_a_dict():
    with pytest.raises(FormatError, match="body must be a dict"):
        encode("status", [1, 2])  # type: ignore[arg-type]


def nested(depth: int) -> dict:
    """A body whose deepest container is at ``depth`` (the body itself is depth 1)."""
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    return {"v": value}


def test_nesting_limit_is_exact():
    assert decode(encode("status", nested(MAX_DEPTH)), "status") == nested(MAX_DEPTH)
    with pytest.raises(FormatError, match="nesting"):
        encode("status", nested(MAX_DEPTH + 1))
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(FormatError, match="nesting"):
        encode("status", {"v": cyclic})


def test_arrays_any_layout_come_back_native_contiguous_and_writable():
    base = np.arange(24, dtype=">i4").reshape(4, 6)
    body = {"strided": base[:, ::2], "fortran": np.asfortranarray(base), "zero_d": np.array(7.5),
            "empty": np.zeros((3, 0, 2), "u2"), "bools": np.array([[True, False]])}
    got = decode(encode("checkpoint", body), "checkpoint")
    assert same(body, got)
    for name, arr in got.items():
        assert arr.flags.writeable and arr.flags.c_contiguous and arr.flags.owndata, name
        assert arr.dtype.isnative, name
    got["strided"][0, 0] = 99  # writable copy
    assert got["strided"][0, 0] == 99


def test_numpy_scalars_and_tuples_decode_as_python_values():
    got = decode(encode("status", {"i": np.int64(-5), "u": np.uint64(2**64 - 1),
                                   "f": np.float32(0.5), "b": np.bool_(True), "t": (1, (2,))}),
                 "status")
    assert same(got, {"i": -5, "u": 2**64 - 1, "f": 0.5, "b": True, "t": [1, [2]]})


scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
           | st.text() | st.binary())
arrays = st.builds(
    lambda name, order: np.dtype(name).newbyteorder(order), st.sampled_from(sorted(DTYPES)),
    st.sampled_from("<>"),
).flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                                      max_side=4)))
values = st.recursive(
    scalars | arrays,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=16,
)


@given(st.dictionaries(st.text(max_size=8), values, max_size=6), st.sampled_from(sorted(KINDS)))
def test_round_trip_of_arbitrary_bodies(body, kind):
    assert same(body, decode(encode(kind, body), kind))


@given(st.integers(min_value=2**64) | st.integers(max_value=-(2**63) - 1))
def test_round_trip_refuses_every_int_beyond_64_bits(value):
    with pytest.raises(FormatError):
        encode("status", {"v": [value]})


# ----------------------------------------------------------------------------- batches

island_ids = st.integers(0, 10**5).map(lambda i: f"island-{i:02d}")
finite = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def batches(draw) -> MigrantBatch:
    k = draw(st.integers(0, 6))
    gene_shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    dtype = draw(st.sampled_from(["float16", "float32", "float64"]))
    return MigrantBatch(
        run_id=draw(st.text(min_size=1, max_size=20)), source=draw(island_ids),
        generation=draw(st.integers(0, 2**63 - 1)), created=draw(finite),
        # Any kind name round-trips with array genomes, except "neat", whose genomes are maps
        # (its own round trips are in test_neat_format.py).
        genome_kind=draw(st.text(min_size=1, max_size=10).filter(lambda k: k != "neat")),
        genomes=draw(hnp.arrays(dtype, (k, *gene_shape), elements={"allow_nan": False, "allow_infinity": False})),
        fitness=draw(hnp.arrays("float64", (k,), elements=finite)),
        origin=tuple(draw(st.lists(island_ids, min_size=k, max_size=k))),
        birth=draw(hnp.arrays("int64", (k,), elements=st.integers(0, 2**63 - 1))),
        lineage=draw(hnp.arrays("int64", (k,))),
    )


@given(batches())
def test_batch_round_trip_for_any_shape_dtype_and_provenance(batch):
    got = decode_batch(encode_batch(batch), run_id=batch.run_id, genome_kind=batch.genome_kind,
                       dtype=batch.genomes.dtype.name, gene_shape=batch.genomes.shape[1:])
    assert same_batch(batch, got)
    assert len(got) == len(batch) == batch.genomes.shape[0]


def test_batch_header_records_schema_and_shape():
    body = decode(encode_batch(make_batch(k=2, gene_shape=(3, 5), dtype="float16")), "migrants")
    assert body["schema"] == SCHEMA_VERSION
    assert (body["dtype"], body["gene_shape"], body["count"]) == ("float16", [3, 5], 2)
    assert (body["run_id"], body["source"], body["generation"]) == ("run-a", "island-01", 10)


def test_batch_construction_casts_safe_columns():
    b = make_batch(k=2, fitness=[1, 2], birth=np.array([0, 1], "u1"), lineage=[5, 6],
                   origin=["island-00", "island-01"], created=5)
    assert b.fitness.dtype == np.float64 and b.birth.dtype == np.int64
    assert b.origin.tolist() == [0, 1] and b.origin.dtype == np.int64 and type(b.created) is float


@pytest.mark.parametrize("changes, message", [
    ({"run_id": ""}, "run_id"), ({"genome_kind": 3}, "genome_kind"),
    ({"source": "island-1"}, "source"), ({"source": "island-01\n"}, "source"),
    ({"source": "island-\u0661\u0662"}, "source"), ({"generation": -1}, "generation"),
    ({"generation": True}, "generation"), ({"generation": 2**63}, "generation"),
    ({"created": math.nan}, "created"), ({"created": "now"}, "created"),
    ({"genomes": np.zeros((3, 4), "i4")}, "genomes"), ({"genomes": np.float32(1)}, "genomes"),
    ({"fitness": np.array([1.0, math.nan, 0.0])}, "NaN"),
    ({"fitness": np.array([1.0, -math.inf, 0.0])}, "inf"), ({"fitness": [1.0, 2.0]}, "shape"),
    ({"fitness": np.array([1j, 2, 3])}, "cast"), ({"birth": [0, -1, 2]}, "birth"),
    ({"birth": [0.0, 1.0, 2.0]}, "cast"), ({"lineage": [[1], [2], [3]]}, "shape"),
    ({"origin": ("island-00",)}, "origin"), ({"origin": "island-00"}, "origin"),
    ({"origin": ("island-00", "island-01", "x")}, "origin"),
])
def test_invalid_batches_cannot_be_built(changes, message):
    with pytest.raises(FormatError, match=message):
        make_batch(k=3, **changes)


@pytest.mark.parametrize("kwargs, message", [
    ({"run_id": "run-b"}, "run id 'run-a' is not this run's 'run-b'"),
    ({"genome_kind": "neat"}, "genome kind 'vector' is not this run's 'neat'"),
    ({"dtype": "float64"}, "genome dtype 'float32' is not this run's 'float64'"),
    ({"gene_shape": (5,)}, r"gene shape \(4,\) is not this run's \(5,\)"),
])
def test_decode_batch_checks_the_run_it_belongs_to(kwargs, message):
    data = encode_batch(make_batch())
    with pytest.raises(FormatError, match=message):
        decode_batch(data, **kwargs)
    decode_batch(data, run_id="run-a", genome_kind="vector", dtype="float32", gene_shape=(4,))


def test_island_id_pattern():
    for good in ("island-00", "island-03", "island-99", "island-100", "island-127", "island-999999"):
        assert ISLAND_ID_RE.match(good), good
    # One spelling per number (island-001 and island-01 would share lineage number 1), and
    # no absurd numbers.
    for bad in ("island-3", "island-03\n", "Island-03", "island-03x", " island-03", "island-001",
                "island-000", "island-0100", "island-1000000", "island-" + "9" * 29):
        assert not ISLAND_ID_RE.match(bad), bad


# ----------------------------------------------------------------------------- fuzzing

def valid_files() -> list[bytes]:
    return [encode_batch(make_batch()), encode_batch(make_batch(k=1, gene_shape=(2, 2))),
            encode_batch(make_batch(k=0, gene_shape=(), dtype="float64"))]


def decode_or_format_error(data: bytes) -> bool:
    """True if ``data`` decoded as a valid batch, False if it raised FormatError."""
    try:
        batch = decode_batch(data)
    except FormatError:
        return False
    assert isinstance(batch, MigrantBatch) and np.isfinite(batch.fitness).all()
    return True


def test_positive_control_every_valid_file_decodes():
    for data in valid_files():
        assert decode_or_format_error(data)


def test_random_bytes_raise_only_format_error():
    rng = random.Random(8)
    header = valid_files()[0][:32]
    for i in range(3000):
        junk = rng.randbytes(rng.randrange(0, 300))
        if i % 2:  # a plausible header in front, so the checks past the magic run too
            junk = header[: rng.randrange(33)] + junk
        assert not decode_or_format_error(junk)


def test_random_payloads_in_a_valid_envelope_raise_only_format_error():
    rng = random.Random(9)
    for _ in range(2000):
        # Start with a map marker half of the time so msgpack gets past the first byte.
        payload = (b"\x8e" if rng.random() < 0.5 else b"") + rng.randbytes(rng.randrange(80))
        decode_or_format_error(make_corpus.envelope(payload))


def test_every_truncation_and_trailing_byte_is_rejected():
    for data in valid_files():
        for n in range(len(data)):
            assert not decode_or_format_error(data[:n]), n
        assert not decode_or_format_error(data + b"\0")


def test_every_single_bit_flip_is_rejected():
    for data in valid_files()[:2]:
        for bit in range(len(data) * 8):
            flipped = bytearray(data)
            flipped[bit // 8] ^= 1 << (bit % 8)
            assert not decode_or_format_error(bytes(flipped)), bit


def test_bit_flips_behind_a_recomputed_crc_raise_only_format_error():
    # What the CRC cannot catch (a forged or buggy writer): the schema checks must hold.
    rng = random.Random(10)
    decoded = 0
    for data in valid_files():
        payload = data[32:]
        for _ in range(1500):
            mutated = bytearray(payload)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            decoded += decode_or_format_error(make_corpus.envelope(bytes(mutated)))
    assert decoded > 0  # flips inside genome values stay valid: the fuzzer reached the end


# Why each known-bad file must be rejected; None: the envelope and values are fine and
# only the migrant schema (decode_batch) refuses it.
EXPECTED = {
    "empty": "truncated", "header_only": "truncated", "truncated_half": "truncated",
    "truncated_last_byte": "truncated", "trailing_garbage": "trailing", "bad_magic": "magic",
    "bad_crc": "CRC", "future_version": "format version 2", "flags_set": "flags",
    "wrong_kind": "file kind 'status'", "bomb_empty_maps": "max_array_len",
    "bomb_empty_maps_padded": "containers and elements",
    "bomb_empty_lists_padded": "containers and elements",
    "bomb_one_entry_maps": "containers and elements",
    "bomb_negative_ints_nested": "containers and elements", "length_2_63": "truncated", "length_short": "trailing",
    "array_2_32_elements": "needs", "array_huge_dims_product": "needs",
    "msgpack_array_2_32": "max_array_len", "msgpack_str_2_32": "incomplete",
    "msgpack_map_2_32": "max_map_len", "nesting_2000": "StackError", "nesting_40": "nesting",
    "invalid_utf8_key": "UnicodeDecodeError", "invalid_utf8_value": "UnicodeDecodeError",
    "bytes_key": "not a str", "int_key": "map key", "duplicate_key": "duplicate",
    "top_level_list": "not a map", "timestamp_ext": "Timestamp", "unknown_ext": "extension",
    "array_ndim_9": "9 dims", "array_ndim_lies": "truncated array shape",
    "array_dtype_complex": "complex128", "array_dtype_object": "object",
    "array_raw_short": "needs 16 bytes, has 15", "array_bool_byte_2": "bool",
    "msgpack_reserved_byte": "corrupt payload",
    "nan_fitness": None, "inf_fitness": None, "fitness_float32": None,
    "negative_generation": None, "generation_2_64": None, "bad_island_id": None,
    "island_id_newline": None, "origin_too_short": None, "negative_birth": None,
    "count_disagrees": None, "gene_shape_disagrees": None, "dtype_disagrees": None,
    "future_schema": None, "missing_field": None, "unexpected_field": None, "genomes_int": None,
}


def check_known_bad(name: str, data: bytes) -> None:
    reason = EXPECTED[name]
    if reason is None:
        decode(data, "migrants")  # a well-formed file ...
        with pytest.raises(FormatError):  # ... that is not a valid migrant batch
            decode_batch(data)
    else:
        with pytest.raises(FormatError, match=reason):
            decode(data, "migrants")
        with pytest.raises(FormatError, match=reason):
            decode_batch(data)


def test_known_bad_corpus_is_rejected_for_the_right_reason():
    generated = make_corpus.cases()
    assert set(generated) == set(EXPECTED)
    on_disk = sorted(CORPUS.glob("*.bin"))
    assert {p.stem for p in on_disk} >= set(generated), "run tests/corpus/make_corpus.py"
    for path in on_disk:  # replayed as stored, even if the generator changes later
        check_known_bad(path.stem, path.read_bytes())
    for name, data in generated.items():
        check_known_bad(name, data)


@pytest.mark.parametrize("name", ["array_2_32_elements", "array_huge_dims_product",
                                  "msgpack_array_2_32", "msgpack_str_2_32", "msgpack_map_2_32",
                                  "length_2_63", "nesting_2000"])
def test_lying_lengths_do_not_allocate(name):
    data = make_corpus.cases()[name]
    tracemalloc.start()
    try:
        with pytest.raises(FormatError):
            decode_batch(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"{name} made the decoder allocate {peak} bytes"


def test_declared_length_beyond_the_cap_is_refused_before_parsing():
    data = make_corpus.envelope(b"\x80", length=MAX_FILE_BYTES + 1)
    with pytest.raises(FormatError, match="truncated"):
        decode(data, "migrants")
    big = encode("migrants", {"blob": b"x" * 5000})
    with pytest.raises(FormatError, match="exceeds the cap"):
        decode(big, "migrants", max_bytes=4096)


# ----------------------------------------------------------------------------- crafted bombs (R15)

def decode_peak(data: bytes) -> tuple[int, str]:
    """(tracemalloc peak of decoding ``data`` as a batch, the FormatError's message)."""
    tracemalloc.start()
    try:
        with pytest.raises(FormatError) as info:
            decode_batch(data)
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


def memory_bound(size: int) -> int:
    """The stated bound: decoding a file of ``size`` bytes costs at most c x size + 1 MiB."""
    return DECODE_BYTES_PER_BYTE * size + (1 << 20)


@pytest.mark.parametrize("shape", make_corpus.BOMBS)
def test_a_crafted_16_mib_envelope_costs_at_most_c_times_its_size(shape):
    data = make_corpus.crafted(shape, 16 << 20)
    started = time.perf_counter()
    peak, message = decode_peak(data)
    elapsed = time.perf_counter() - started  # reported, not asserted (tracemalloc slows it)
    assert peak <= memory_bound(len(data)), f"{shape}: {peak / len(data):.1f} x the file size"
    print(f"{shape}: peak {peak / len(data):.2f} x {len(data)} bytes, {elapsed:.2f} s: {message}")
    if shape == "empty_maps":  # the issue's bomb: refused at the array header, before any object
        assert "max_array_len" in message and peak < (1 << 20)


def test_every_corpus_file_costs_at_most_c_times_its_size():
    for path in sorted(CORPUS.glob("*.bin")):
        data = path.read_bytes()
        peak, _ = decode_peak(data)
        assert peak <= memory_bound(len(data)), f"{path.name}: {peak} bytes"


def test_the_budget_admits_large_valid_bodies():
    # Positive control: a NEAT-sized body of many small maps and a long list still decode.
    body = {"genomes": [{"nodes": np.arange(3, dtype=np.int64), "w": np.ones(2, np.float32)}
                        for _ in range(5000)], "floats": [0.5] * 20000}
    assert len(decode(encode("checkpoint", body), "checkpoint")["genomes"]) == 5000
