"""Compiling a population of NEAT genomes into one padded tensor program.

Every genome becomes two dense blocks, padded to the population's largest genome:
`w_in [G, H, I]` (from the I = inputs + bias nodes into the H = outputs + hidden nodes) and
`w_hh [G, H, H]` (among those). A node's row is its position in its genome's node list
(inputs, bias, outputs first, since their ids are smallest); padding rows and columns are
zero and never read. Disabled connections are zero. The sigmoid's steepness is folded into
the weights. One activation of every network on every episode is then

    pre = w_in @ [x; 1]              (once per call)
    h   = sigmoid(pre + w_hh @ h)    (`depth` times feed-forward, once if recurrent)

with `torch.bmm`/`baddbmm` over the population: no loop over genomes or neurons.

Feed-forward: `depth` is the longest path in any genome (an input is depth 0, every other
node at least 1), so after `depth` synchronous updates every node holds exactly the value of
evaluating the graph in topological order, whatever the starting `h`. Recurrent: each call
is one synchronous step from the previous values (zero after `reset`), like neat-python's
RecurrentNetwork, so a signal needs several calls to cross several hidden nodes.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from islands.algorithms.neat.genome import Genomes, local_index, owners


def depths(g: Genomes, n_fixed_in: int) -> np.ndarray:
    """Longest-path depth of every node (flat, like `g.node_id`) over enabled connections.

    Inputs and bias (the first `n_fixed_in` nodes of each genome) are 0, every other node
    >= 1. Raises ValueError if some genome has a cycle among enabled connections.
    """
    own_n = owners(g.node_off)
    local = np.arange(g.node_id.size) - g.node_off[own_n]
    depth = np.where(local < n_fixed_in, 0, 1).astype(np.int64)
    on = g.enabled
    own_c = owners(g.conn_off)[on]
    src = local_index(g, own_c, g.conn_in[on]) + g.node_off[own_c]
    dst = local_index(g, own_c, g.conn_out[on]) + g.node_off[own_c]
    limit = int(g.node_counts().max(initial=0)) + 1
    for _ in range(limit):  # Bellman-Ford on all genomes at once; rounds = longest path
        new = depth.copy()
        np.maximum.at(new, dst, depth[src] + 1)
        if np.array_equal(new, depth):
            return depth
        depth = new
    raise ValueError("a genome has a cycle among its enabled connections")


class CompiledNets:
    """A population of NEAT networks as padded tensors; follows the `Policy` protocol."""

    def __init__(self, g: Genomes, n_in: int, n_out: int, *, recurrent: bool, steepness: float,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        self.size, self.n_in, self.n_out, self.recurrent = len(g), n_in, n_out, recurrent
        self.device, self.dtype = torch.device(device), dtype
        fixed_in = n_in + 1
        width = max(int(g.node_counts().max(initial=0)), fixed_in + n_out)
        hid = width - fixed_in
        own = owners(g.conn_off)
        on = g.enabled
        src = local_index(g, own, g.conn_in)[on]
        dst = local_index(g, own, g.conn_out)[on] - fixed_in
        own, w = own[on], g.weight[on].astype(np.float64) * steepness
        if (dst < 0).any() or (src < 0).any():
            raise ValueError("a connection leads into an input or refers to a missing node")
        from_in = src < fixed_in
        w_in = np.zeros((self.size, hid, fixed_in))
        w_in[own[from_in], dst[from_in], src[from_in]] = w[from_in]
        w_hh = np.zeros((self.size, hid, hid))
        w_hh[own[~from_in], dst[~from_in], src[~from_in] - fixed_in] = w[~from_in]
        w_in = torch.as_tensor(w_in, dtype=dtype).to(self.device)
        self.w_x, self.bias = w_in[:, :, :n_in], w_in[:, :, n_in:]  # the bias node's column
        self.w_hh = torch.as_tensor(w_hh, dtype=dtype).to(self.device)
        self.depth = 1 if recurrent else int(depths(g, fixed_in).max(initial=1))
        self.h: Tensor | None = None

    def reset(self, batch: int) -> None:
        self.h = torch.zeros((self.size, self.w_hh.shape[1], batch), device=self.device, dtype=self.dtype)

    def __call__(self, obs: Tensor) -> Tensor:
        """Outputs `[G, B, n_out]` in (0, 1) for observations `[G, B, n_in]`."""
        pre = torch.baddbmm(self.bias, self.w_x, obs.to(self.dtype).transpose(1, 2))  # [G, H, B]
        if self.recurrent:
            if self.h is None or self.h.shape[2] != pre.shape[2]:
                self.reset(pre.shape[2])
            h = self.h = torch.sigmoid(torch.baddbmm(pre, self.w_hh, self.h))
        else:
            h = torch.sigmoid(pre)  # the first update from h = 0
            for _ in range(self.depth - 1):
                h = torch.sigmoid(torch.baddbmm(pre, self.w_hh, h))
        return h[:, : self.n_out, :].transpose(1, 2)
