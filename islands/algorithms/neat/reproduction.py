"""NEAT reproduction on packed populations: offspring per species, crossover, mutation.

Per species (a handful of Python iterations) only the bookkeeping happens: how many
children, which parents. The genetic operators then act on all children at once through the
flat gene arrays: crossover is one sorted join of the two parents' connection keys, weight
mutation one masked normal draw, add-node and add-connection a few array operations over the
children that mutate (add-connection checks feed-forward cycles with a batched transitive
closure). Every random draw comes from the numpy generator passed in, with sizes that depend
only on the population, so a seed determines the run.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from islands.algorithms.neat.config import NeatConfig
from islands.algorithms.neat.genome import Genomes, build, local_index, owners
from islands.algorithms.neat.innovation import split_id
from islands.algorithms.neat.speciation import Species

MAX_SPLIT_RETRIES = 64


def clean_fitness(fitness: np.ndarray) -> np.ndarray:
    """Fitness with NaN and -inf replaced by the worst finite value (NaN ranks worst)."""
    f = np.asarray(fitness, dtype=np.float64)
    finite = np.isfinite(f)
    if not finite.any():
        return np.zeros_like(f)
    return np.where(finite, f, f[finite].min())


def offspring_counts(fitness: np.ndarray, row: np.ndarray, species: Species, generation: int,
                     size: int, cfg: NeatConfig) -> tuple[Species, np.ndarray]:
    """Update species records and share `size` children among species by adjusted fitness.

    Fitness sharing: each genome's fitness, scaled to [0, 1] over the population, is divided
    by its species' size, so a species earns the mean of its members' scaled fitness. Species
    that have not improved for `cfg.stagnation` generations earn nothing, except the
    `cfg.species_elitism` best ones. Shares are rounded by largest remainder to sum to `size`.
    """
    f = clean_fitness(fitness)
    s = len(species)
    top = np.full(s, -np.inf)
    np.maximum.at(top, row, f)
    rose = top > species.best
    species = dataclasses.replace(species, best=np.where(rose, top, species.best),
                                  improved=np.where(rose, generation, species.improved))
    stagnant = generation - species.improved >= cfg.stagnation
    stagnant[np.argsort(-species.best, kind="stable")[: cfg.species_elitism]] = False
    span = f.max() - f.min()
    scaled = (f - f.min()) / span if span > 0 else np.ones_like(f)
    members = np.bincount(row, minlength=s).astype(np.float64)
    share = np.bincount(row, weights=scaled, minlength=s) / np.maximum(members, 1.0)
    share = np.where(stagnant, 0.0, share)
    if share.sum() <= 0:
        share = np.where(stagnant, 0.0, members)
    quota = size * share / share.sum()
    counts = np.floor(quota).astype(np.int64)
    extra = size - int(counts.sum())
    counts[np.argsort(-(quota - counts), kind="stable")[:extra]] += 1
    return species, counts


def choose_parents(fitness: np.ndarray, row: np.ndarray, counts: np.ndarray, cfg: NeatConfig,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(elites, first parents, second parents, crossover flags) for the next generation.

    Each species with at least `elite_min_size` members passes its champion on unchanged;
    its other children come from its best `survival` share. The first parent is the fitter.
    """
    f = clean_fitness(fitness)
    elites, pa, pb = [], [], []
    for s in np.flatnonzero(counts):  # species, not genomes
        members = np.flatnonzero(row == s)
        members = members[np.argsort(-f[members], kind="stable")]
        n_elite = 1 if members.size >= cfg.elite_min_size else 0
        keep = members[: max(min(2, members.size), math.ceil(cfg.survival * members.size))]
        kids = int(counts[s]) - n_elite
        elites.extend(members[:n_elite].tolist())
        pa.append(rng.choice(keep, kids))
        pb.append(rng.choice(keep, kids))
    pa_, pb_ = np.concatenate(pa).astype(np.int64), np.concatenate(pb).astype(np.int64)
    inter = rng.random(pa_.size) < cfg.interspecies_rate
    pb_ = np.where(inter, rng.integers(0, f.size, pa_.size), pb_)
    swap = f[pb_] > f[pa_]
    pa_, pb_ = np.where(swap, pb_, pa_), np.where(swap, pa_, pb_)
    cross = (rng.random(pa_.size) < cfg.crossover_rate) & (pa_ != pb_)
    return np.asarray(elites, dtype=np.int64), pa_, pb_, cross


def conn_keys(g: Genomes, owner: np.ndarray, src: np.ndarray, dst: np.ndarray,
              other: Genomes | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Comparable int64 keys for (owner, src, dst) triples and for every connection of `g`.

    Returns (keys of the triples, keys of g's connections, ascending). Ranks keep the
    numbers small: no overflow whatever the 63-bit node ids.
    """
    own_g = owners(g.conn_off)
    ids = np.unique(np.concatenate([g.conn_in, g.conn_out, src, dst]))
    u = ids.size + 1
    pair_g = np.searchsorted(ids, g.conn_in) * u + np.searchsorted(ids, g.conn_out)
    pair_q = np.searchsorted(ids, src) * u + np.searchsorted(ids, dst)
    pairs, inv = np.unique(np.concatenate([pair_g, pair_q]), return_inverse=True)
    v = pairs.size + 1
    return owner * v + inv[pair_g.size:], own_g * v + inv[: pair_g.size]


def find_conns(g: Genomes, owner: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Flat row of connection (src -> dst) in genome `owner`, or -1, for each query."""
    want, have = conn_keys(g, owner, src, dst)
    pos = np.searchsorted(have, want)
    hit = pos < have.size
    hit[hit] = have[pos[hit]] == want[hit]
    return np.where(hit, pos, -1)


def crossover(g: Genomes, pa: np.ndarray, pb: np.ndarray, cross: np.ndarray, cfg: NeatConfig,
              rng: np.random.Generator) -> Genomes:
    """Children with the structure of their fitter parent `pa` (its disjoint genes included).

    Where `cross`, each gene that matches one of `pb` takes either parent's weight with equal
    chance, and a gene disabled in either parent stays disabled with `cfg.disable_rate`.
    """
    child, other = g.take(pa), g.take(pb)
    own = owners(child.conn_off)
    pos = find_conns(other, own, child.conn_in, child.conn_out)
    hit = (pos >= 0) & cross[own]
    at = np.maximum(pos, 0)
    if other.weight.size == 0:
        return child
    coin = rng.random(own.size) < 0.5
    weight = np.where(hit & coin, other.weight[at], child.weight)
    either_off = hit & ~(child.enabled & other.enabled[at])
    enabled = np.where(either_off, rng.random(own.size) >= cfg.disable_rate, child.enabled)
    return dataclasses.replace(child, weight=weight.astype(child.weight.dtype), enabled=enabled)


def mutate_weights(g: Genomes, cfg: NeatConfig, rng: np.random.Generator) -> Genomes:
    own = owners(g.conn_off)
    hit = (rng.random(len(g)) < cfg.weight_mutate_rate)[own]
    fresh = hit & (rng.random(own.size) < cfg.weight_replace_rate)
    w = g.weight + (hit & ~fresh) * rng.normal(0.0, cfg.weight_power, own.size)
    w = np.where(fresh, rng.normal(0.0, cfg.weight_init_std, own.size), w)
    w = np.clip(w, -cfg.weight_max, cfg.weight_max)
    return dataclasses.replace(g, weight=w.astype(g.weight.dtype))


def add_nodes(g: Genomes, cfg: NeatConfig, rng: np.random.Generator) -> Genomes:
    """Split one random enabled connection in each chosen genome (NEAT's add-node)."""
    own = owners(g.conn_off)
    n_on = np.bincount(own[g.enabled], minlength=len(g))
    draw = rng.random(len(g))
    pick_u = rng.random(len(g))
    ok = (draw < cfg.add_node_rate) & (n_on > 0) & (g.node_counts() < cfg.max_nodes) & (
        g.conn_counts() + 2 <= cfg.max_conns)
    who = np.flatnonzero(ok)
    if who.size == 0:
        return g
    on_rows = np.flatnonzero(g.enabled)
    first = np.searchsorted(own[on_rows], who)
    row = on_rows[first + np.minimum((pick_u[who] * n_on[who]).astype(np.int64), n_on[who] - 1)]
    src, dst, w = g.conn_in[row], g.conn_out[row], g.weight[row]
    k = np.zeros(who.size, dtype=np.int64)
    new_id = split_id(src, dst, k)
    for _ in range(MAX_SPLIT_RETRIES):  # a repeated split of the same connection: next k
        taken = local_index(g, who, new_id) >= 0
        if not taken.any():
            break
        k[taken] += 1
        new_id[taken] = split_id(src[taken], dst[taken], k[taken])
    else:
        raise RuntimeError("could not find a free node id after repeated splits")
    enabled = g.enabled.copy()
    enabled[row] = False
    return build(
        len(g),
        np.concatenate([owners(g.node_off), who]), np.concatenate([g.node_id, new_id]),
        np.concatenate([own, who, who]), np.concatenate([g.conn_in, src, new_id]),
        np.concatenate([g.conn_out, new_id, dst]),
        np.concatenate([g.weight, np.ones(who.size, g.weight.dtype), w]),
        np.concatenate([enabled, np.ones(2 * who.size, dtype=bool)]),
    )


def reachability(g: Genomes, who: np.ndarray, width: int) -> np.ndarray:
    """`r[i, a, b]`: a path of >= 1 connections (enabled or not) leads from a to b in genome who[i]."""
    sub = g.take(who)
    own = owners(sub.conn_off)
    adj = np.zeros((who.size, width, width), dtype=np.float32)
    adj[own, local_index(sub, own, sub.conn_in), local_index(sub, own, sub.conn_out)] = 1.0
    reach = adj
    for _ in range(max(1, int(math.ceil(math.log2(max(width, 2)))) + 1)):  # squaring doubles path length
        nxt = np.minimum(reach + reach @ reach, 1.0)
        if np.array_equal(nxt, reach):
            break
        reach = nxt
    return reach > 0


def add_conns(g: Genomes, n_in: int, cfg: NeatConfig, rng: np.random.Generator) -> Genomes:
    """Add one new connection to each chosen genome, trying `cfg.conn_tries` random pairs.

    The target is never an input or the bias; feed-forward runs also refuse self-loops and
    any pair that would close a cycle (checked against disabled connections too, so that a
    later re-enable cannot create one).
    """
    t = cfg.conn_tries
    nodes = g.node_counts()
    draw = rng.random(len(g))
    u_src, u_dst = rng.random((len(g), t)), rng.random((len(g), t))
    weight = rng.normal(0.0, cfg.weight_init_std, len(g))
    who = np.flatnonzero((draw < cfg.add_conn_rate) & (g.conn_counts() < cfg.max_conns))
    if who.size == 0:
        return g
    fixed = n_in + 1
    n = nodes[who][:, None]
    src = np.minimum((u_src[who] * n).astype(np.int64), n - 1)
    dst = fixed + np.minimum((u_dst[who] * (n - fixed)).astype(np.int64), n - fixed - 1)
    base = g.node_off[who][:, None]
    src_id, dst_id = g.node_id[base + src], g.node_id[base + dst]
    owner = np.repeat(who, t)
    valid = (find_conns(g, owner, src_id.ravel(), dst_id.ravel()) < 0).reshape(who.size, t)
    if not cfg.recurrent:
        reach = reachability(g, who, int(n.max()))
        back = reach[np.arange(who.size)[:, None], dst, src]
        valid &= (src != dst) & ~back
    has = valid.any(axis=1)
    first = valid.argmax(axis=1)
    pick = np.flatnonzero(has)
    if pick.size == 0:
        return g
    rows = np.arange(who.size)[pick]
    return build(
        len(g), owners(g.node_off), g.node_id,
        np.concatenate([owners(g.conn_off), who[pick]]),
        np.concatenate([g.conn_in, src_id[rows, first[pick]]]),
        np.concatenate([g.conn_out, dst_id[rows, first[pick]]]),
        np.concatenate([g.weight, weight[who[pick]].astype(g.weight.dtype)]),
        np.concatenate([g.enabled, np.ones(pick.size, dtype=bool)]),
    )


def mutate(g: Genomes, n_in: int, cfg: NeatConfig, rng: np.random.Generator) -> Genomes:
    """Weight, add-node and add-connection mutations, each applied to the whole set at once."""
    return add_conns(add_nodes(mutate_weights(g, cfg, rng), cfg, rng), n_in, cfg, rng)
