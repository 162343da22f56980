"""Innovation identity without coordination: every island names the same gene the same way.

NEAT's paper numbers innovations with a global counter, which islands could only share
through a server. Here identity is a function of structure instead:

- Node ids: the `n_in` inputs are 0..n_in-1, the bias is n_in, the outputs follow. A hidden
  node made by splitting connection (src -> dst) gets `split_id(src, dst, k)`: a 64-bit mix
  of the three numbers mapped to [HIDDEN_BASE, 2**63). `k` is 0 for the first split of that
  connection in a genome and counts up if the genome already holds that id (the same
  connection split again after crossover re-enabled it, or a hash collision).
- A connection gene is identified by its pair (src, dst) of node ids.

So two islands that split the same connection create the same node and the same two new
connections, and a migrant's genes line up with local ones in crossover. With 63-bit ids a
collision between different splits is about n^2 / 2^64 for n distinct hidden nodes, and even
then it only makes two genes "match" that are unrelated, as in a mislabelled NEAT history.
"""
from __future__ import annotations

import numpy as np

HIDDEN_BASE = 1 << 32
_SPAN = np.uint64((1 << 63) - HIDDEN_BASE)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that spreads every input bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def split_id(src: np.ndarray, dst: np.ndarray, k: np.ndarray | int = 0) -> np.ndarray:
    """Ids (int64) of the nodes created by splitting connections src -> dst, the k-th time."""
    src = np.atleast_1d(np.asarray(src, dtype=np.int64)).astype(np.uint64)
    dst = np.atleast_1d(np.asarray(dst, dtype=np.int64)).astype(np.uint64)
    kk = np.broadcast_to(np.asarray(k, dtype=np.int64), src.shape).astype(np.uint64)
    with np.errstate(over="ignore"):  # wrapping multiplication is the point
        h = _mix(src + _GOLDEN)
        h = _mix(h ^ (dst + _GOLDEN * np.uint64(2)))
        h = _mix(h ^ (kk + _GOLDEN * np.uint64(3)))
    return (np.uint64(HIDDEN_BASE) + h % _SPAN).astype(np.int64)


def io_count(n_in: int, n_out: int) -> int:
    """Number of fixed nodes: inputs, the bias, outputs (ids 0 .. io_count-1)."""
    return n_in + 1 + n_out
