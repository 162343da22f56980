"""NEAT genomes of a whole population, packed into a few flat numpy arrays.

`Genomes` stores G variable-size genomes CSR-style: node genes and connection genes of all
genomes concatenated, with offsets. Canonical order inside a genome: nodes by id (so the
inputs, bias and outputs, which have the smallest ids, come first), connections by (src, dst).
Every operator works on the flat arrays at once (take, crossover, mutation, compile) instead
of looping over genomes or genes in Python.

Genes carry no innovation numbers: identity is structural (see `innovation`). A genome's
record, for checkpoints, champions and migrants, is a dict of small arrays:
`{"nodes": int64[n], "conn_in": int64[c], "conn_out": int64[c], "weight": float32[c],
"enabled": bool[c]}`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from islands.algorithms.neat.innovation import HIDDEN_BASE, io_count

RECORD_FIELDS = ("nodes", "conn_in", "conn_out", "weight", "enabled")
WEIGHT_DTYPE = np.float32


def segments(off: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Element indices of segments `idx` of a CSR layout, concatenated, and their new offsets."""
    idx = np.asarray(idx, dtype=np.int64)
    counts = off[idx + 1] - off[idx]
    new_off = np.zeros(idx.size + 1, dtype=np.int64)
    np.cumsum(counts, out=new_off[1:])
    elems = np.arange(new_off[-1], dtype=np.int64) + np.repeat(off[idx] - new_off[:-1], counts)
    return elems, new_off


def owners(off: np.ndarray) -> np.ndarray:
    """For every element of a CSR layout, the index of its segment."""
    return np.repeat(np.arange(off.size - 1, dtype=np.int64), np.diff(off))


@dataclass(frozen=True, eq=False)
class Genomes:
    """G NEAT genomes in flat arrays (see the module docstring for the layout)."""

    node_id: np.ndarray  # int64 [N]
    node_off: np.ndarray  # int64 [G+1]
    conn_in: np.ndarray  # int64 [C]
    conn_out: np.ndarray  # int64 [C]
    weight: np.ndarray  # float32 [C]
    enabled: np.ndarray  # bool [C]
    conn_off: np.ndarray  # int64 [G+1]

    def __len__(self) -> int:
        return int(self.node_off.size - 1)

    def node_counts(self) -> np.ndarray:
        return np.diff(self.node_off)

    def conn_counts(self) -> np.ndarray:
        return np.diff(self.conn_off)

    def take(self, idx: Sequence[int] | np.ndarray) -> "Genomes":
        """The genomes at `idx` (repeats allowed), as a new packed set."""
        n, node_off = segments(self.node_off, np.asarray(idx, dtype=np.int64))
        c, conn_off = segments(self.conn_off, np.asarray(idx, dtype=np.int64))
        return Genomes(self.node_id[n], node_off, self.conn_in[c], self.conn_out[c],
                       self.weight[c], self.enabled[c], conn_off)

    def record(self, i: int) -> dict[str, np.ndarray]:
        """Genome `i` as a dict of arrays (copies)."""
        n = slice(self.node_off[i], self.node_off[i + 1])
        c = slice(self.conn_off[i], self.conn_off[i + 1])
        return {
            "nodes": self.node_id[n].copy(), "conn_in": self.conn_in[c].copy(),
            "conn_out": self.conn_out[c].copy(), "weight": self.weight[c].copy(),
            "enabled": self.enabled[c].copy(),
        }

    def records(self) -> list[dict[str, np.ndarray]]:
        return [self.record(i) for i in range(len(self))]

    def fingerprints(self) -> list[bytes]:
        """One byte string per genome that is equal exactly when the genomes are equal."""
        out = []
        for i in range(len(self)):  # migration-time only, a few hundred short byte strings
            r = self.record(i)
            out.append(b"|".join(r[f].tobytes() for f in RECORD_FIELDS))
        return out

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {prefix + f: getattr(self, f) for f in
                ("node_id", "node_off", "conn_in", "conn_out", "weight", "enabled", "conn_off")}

    @classmethod
    def from_arrays(cls, data: dict[str, Any], prefix: str = "") -> "Genomes":
        """Rebuild from `to_arrays`; raises ValueError if the arrays do not fit together."""
        get = lambda f, dt: np.ascontiguousarray(np.asarray(data[prefix + f]), dtype=dt)  # noqa: E731
        g = cls(get("node_id", np.int64), get("node_off", np.int64), get("conn_in", np.int64),
                get("conn_out", np.int64), get("weight", WEIGHT_DTYPE), get("enabled", np.bool_),
                get("conn_off", np.int64))
        g.check_layout()
        return g

    def check_layout(self) -> None:
        """Raise ValueError unless offsets, shapes and canonical order are consistent."""
        for off, size, what in ((self.node_off, self.node_id.size, "node"),
                                (self.conn_off, self.conn_in.size, "connection")):
            if off.ndim != 1 or off.size < 1 or off[0] != 0 or off[-1] != size or (np.diff(off) < 0).any():
                raise ValueError(f"{what} offsets do not describe {size} genes")
        if self.node_off.size != self.conn_off.size:
            raise ValueError("node and connection offsets count different genomes")
        c = self.conn_in.size
        if not (self.conn_out.shape == self.weight.shape == self.enabled.shape == (c,)):
            raise ValueError("connection arrays differ in length")
        if not np.isfinite(self.weight).all():
            raise ValueError("a connection weight is not finite")
        own_n, own_c = owners(self.node_off), owners(self.conn_off)
        if self.node_id.size > 1:
            step = (own_n[1:] > own_n[:-1]) | (self.node_id[1:] > self.node_id[:-1])
            if not step.all():
                raise ValueError("node ids are not unique and sorted within a genome")
        if c > 1:
            later = (own_c[1:] > own_c[:-1]) | (self.conn_in[1:] > self.conn_in[:-1]) | (
                (self.conn_in[1:] == self.conn_in[:-1]) & (self.conn_out[1:] > self.conn_out[:-1]))
            if not later.all():
                raise ValueError("connections are not unique and sorted within a genome")
        for ids in (self.conn_in, self.conn_out):
            if c and (local_index(self, own_c, ids) < 0).any():
                raise ValueError("a connection refers to a node its genome does not have")


def node_keys(g: Genomes) -> tuple[np.ndarray, np.ndarray]:
    """(sorted global keys of every node, the sorted unique node ids).

    A node's key is `genome * (U + 1) + rank(id)`, U the number of distinct ids, so one
    search finds a (genome, id) pair; keys ascend because each genome's ids do. Rank U is
    left free to mean "no such id" (see `_keys_for`).
    """
    uniq = np.unique(g.node_id)
    if (len(g) + 1) * (uniq.size + 1) >= 2**62:
        raise ValueError("too many genomes and node ids to index")
    return owners(g.node_off) * (uniq.size + 1) + np.searchsorted(uniq, g.node_id), uniq


def _keys_for(keys: tuple[np.ndarray, np.ndarray], owner: np.ndarray, ids: np.ndarray) -> np.ndarray:
    uniq = keys[1]
    rank = np.searchsorted(uniq, ids)
    found = rank < uniq.size
    found[found] = uniq[rank[found]] == ids[found]
    return owner * (uniq.size + 1) + np.where(found, rank, uniq.size)


def local_index(g: Genomes, owner: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of node `ids[j]` inside genome `owner[j]`'s node list, or -1 if absent."""
    keys = node_keys(g)
    want = _keys_for(keys, owner, ids)
    pos = np.searchsorted(keys[0], want)
    hit = pos < keys[0].size
    hit[hit] = keys[0][pos[hit]] == want[hit]
    return np.where(hit, pos - g.node_off[owner], -1)


def build(count: int, node_owner: np.ndarray, node_id: np.ndarray, conn_owner: np.ndarray,
          conn_in: np.ndarray, conn_out: np.ndarray, weight: np.ndarray, enabled: np.ndarray) -> Genomes:
    """Pack loose genes (any order) of `count` genomes into canonical order."""
    n = np.lexsort((node_id, node_owner))
    c = np.lexsort((conn_out, conn_in, conn_owner))
    node_off = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(node_owner, minlength=count), out=node_off[1:])
    conn_off = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(conn_owner, minlength=count), out=conn_off[1:])
    return Genomes(node_id[n].astype(np.int64), node_off, conn_in[c].astype(np.int64),
                   conn_out[c].astype(np.int64), weight[c].astype(WEIGHT_DTYPE),
                   enabled[c].astype(np.bool_), conn_off)


def concat(parts: Sequence[Genomes]) -> Genomes:
    """The genomes of every part, in order."""
    def offs(name: str) -> np.ndarray:
        out, base = [np.zeros(1, np.int64)], 0
        for p in parts:
            off = getattr(p, name)
            out.append(off[1:] + base)
            base += int(off[-1])
        return np.concatenate(out)

    cat = lambda f: np.concatenate([getattr(p, f) for p in parts])  # noqa: E731
    return Genomes(cat("node_id"), offs("node_off"), cat("conn_in"), cat("conn_out"),
                   cat("weight"), cat("enabled"), offs("conn_off"))


def minimal(count: int, n_in: int, n_out: int, rng: np.random.Generator, std: float) -> Genomes:
    """`count` genomes with every input and the bias connected to every output (NEAT's start)."""
    io = io_count(n_in, n_out)
    src = np.tile(np.repeat(np.arange(n_in + 1), n_out), count)
    dst = np.tile(np.tile(np.arange(n_in + 1, io), n_in + 1), count)
    per = (n_in + 1) * n_out
    return build(
        count,
        np.repeat(np.arange(count), io), np.tile(np.arange(io), count),
        np.repeat(np.arange(count), per), src, dst,
        rng.normal(0.0, std, count * per), np.ones(count * per, dtype=bool),
    )


def from_records(records: Sequence[dict[str, np.ndarray]]) -> Genomes:
    """Pack records (already checked by `check_record`) into canonical order."""
    if not records:
        return minimal(0, 0, 0, np.random.default_rng(0), 1.0)
    cat = lambda f, dt: np.concatenate([np.asarray(r[f], dtype=dt) for r in records])  # noqa: E731
    n = np.array([len(r["nodes"]) for r in records])
    c = np.array([len(r["conn_in"]) for r in records])
    k = len(records)
    return build(k, np.repeat(np.arange(k), n), cat("nodes", np.int64), np.repeat(np.arange(k), c),
                 cat("conn_in", np.int64), cat("conn_out", np.int64), cat("weight", WEIGHT_DTYPE),
                 cat("enabled", np.bool_))


def check_record(rec: Any, n_in: int, n_out: int, *, recurrent: bool, max_nodes: int,
                 max_conns: int, weight_max: float) -> str | None:
    """Why `rec` is not a valid genome for this task and these settings, or None if it is.

    Checks what a genome from another island or process must satisfy before it joins a
    population: fields and dtypes, the fixed input/bias/output nodes, hidden ids in the
    hidden range, unique ids and connections, endpoints among the nodes, no connection into
    an input or the bias, finite bounded weights, sizes, and no cycle unless recurrent.
    """
    if not isinstance(rec, dict) or set(rec) != set(RECORD_FIELDS):
        got = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
        return f"fields are {got}, expected {list(RECORD_FIELDS)}"
    want = {"nodes": np.int64, "conn_in": np.int64, "conn_out": np.int64, "weight": WEIGHT_DTYPE,
            "enabled": np.bool_}
    for f, dt in want.items():
        a = rec[f]
        if not isinstance(a, np.ndarray) or a.ndim != 1 or a.dtype != dt:
            return f"{f} is not a 1-d {np.dtype(dt).name} array"
    nodes, src, dst, w = rec["nodes"], rec["conn_in"], rec["conn_out"], rec["weight"]
    if not (src.size == dst.size == w.size == rec["enabled"].size):
        return "connection arrays differ in length"
    if nodes.size > max_nodes or src.size > max_conns:
        return f"{nodes.size} nodes and {src.size} connections exceed the caps {max_nodes} / {max_conns}"
    io = io_count(n_in, n_out)
    ordered = np.sort(nodes)
    if ordered.size < io or (ordered[:io] != np.arange(io)).any():
        return f"nodes 0..{io - 1} (inputs, bias, outputs) are not all present"
    if (ordered[io:] < HIDDEN_BASE).any() or (np.diff(ordered) == 0).any():
        return "hidden node ids are out of range or repeated"
    if not np.isfinite(w).all() or (np.abs(w) > weight_max).any():
        return f"a weight is not finite or beyond +-{weight_max}"
    if not (np.isin(src, nodes).all() and np.isin(dst, nodes).all()):
        return "a connection refers to a missing node"
    if (dst <= n_in).any():
        return "a connection leads into an input or the bias"
    if np.unique(np.stack([src, dst]), axis=1).shape[1] != src.size:
        return "a connection appears twice"
    if not recurrent and has_cycle(np.searchsorted(ordered, src), np.searchsorted(ordered, dst), ordered.size):
        return "the network has a cycle but this run is feed-forward"
    return None


def has_cycle(src: np.ndarray, dst: np.ndarray, n: int) -> bool:
    """Whether the graph on nodes 0..n-1 with edges src -> dst has a cycle (Kahn, vectorised)."""
    alive = np.ones(src.size, dtype=bool)
    for _ in range(n + 1):  # each round removes every edge leaving a node with no live inputs
        indeg = np.bincount(dst[alive], minlength=n)
        free = alive & (indeg[src] == 0)
        if not free.any():
            return bool(alive.any())
        alive &= ~free
    return bool(alive.any())
