"""NEAT genes, compiled networks, speciation and reproduction (no island loop)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from islands.algorithms.neat import NeatConfig
from islands.algorithms.neat import genome as gn
from islands.algorithms.neat import reproduction as rep
from islands.algorithms.neat import speciation as spc
from islands.algorithms.neat.compile import CompiledNets, depths
from islands.algorithms.neat.innovation import HIDDEN_BASE, split_id
from islands.errors import ConfigError

CFG = NeatConfig()
H1 = int(split_id(0, 3)[0])  # the node made by splitting input 0 -> output 3
H2 = int(split_id(H1, 3)[0])


def record(nodes, conns) -> dict[str, np.ndarray]:
    """A genome record from [node ids] and [(src, dst, weight, enabled)]."""
    src, dst, w, on = zip(*conns) if conns else ((), (), (), ())
    return {"nodes": np.array(nodes, np.int64), "conn_in": np.array(src, np.int64),
            "conn_out": np.array(dst, np.int64), "weight": np.array(w, np.float32),
            "enabled": np.array(on, bool)}


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-4.9 * z))


# Two inputs (0, 1), bias 2, output 3, hidden H1 and H2 (H1 -> H2 -> 3 makes depth 3).
SMALL = record([0, 1, 2, 3, H1, H2], [
    (0, 3, 5.0, False), (0, H1, 1.0, True), (1, H1, 0.5, True), (2, H1, 0.25, True),
    (H1, 3, -2.0, True), (2, 3, 0.75, True), (1, 3, 1.5, True), (H1, H2, 0.7, True), (H2, 3, 1.1, True),
])


def small_forward(a: float, b: float) -> float:
    h1 = sig(1.0 * a + 0.5 * b + 0.25)
    h2 = sig(0.7 * h1)
    return sig(-2.0 * h1 + 1.1 * h2 + 0.75 + 1.5 * b)  # 0 -> 3 is disabled


# ----------------------------------------------------------------------------- identity

def test_split_ids_are_the_same_everywhere_and_distinct_per_split():
    a = split_id([0, 0, 1, 0], [3, 3, 3, 4], [0, 1, 0, 0])
    assert a.dtype == np.int64 and (a >= HIDDEN_BASE).all() and np.unique(a).size == 4
    assert np.array_equal(a, split_id([0, 0, 1, 0], [3, 3, 3, 4], [0, 1, 0, 0]))  # no state
    assert split_id(0, 3)[0] == a[0]


def test_add_node_on_two_islands_creates_the_same_genes():
    """Different generators, same split: the same node id and connection keys."""
    g = gn.from_records([record([0, 1, 2, 3], [(0, 3, 0.5, True)])])
    cfg = NeatConfig(add_node_rate=1.0)
    one = rep.add_nodes(g, cfg, np.random.default_rng(1))
    two = rep.add_nodes(g, cfg, np.random.default_rng(2))
    for child in (one, two):
        assert child.node_id.tolist() == [0, 1, 2, 3, H1]
        keys = set(zip(child.conn_in.tolist(), child.conn_out.tolist(), child.enabled.tolist()))
        assert keys == {(0, 3, False), (0, H1, True), (H1, 3, True)}
    assert one.weight[one.conn_out == 3].tolist() == [0.5, 0.5]  # in weight 1, out the old one
    # Splitting the same connection again in the same genome takes the next id.
    again = gn.from_records([record([0, 1, 2, 3, H1], [(0, 3, 0.5, True), (0, H1, 1.0, True), (H1, 3, 0.5, True)])])
    rng = np.random.default_rng(0)
    for _ in range(20):  # until the random pick is 0 -> 3
        child = rep.add_nodes(again, cfg, rng)
        if not child.enabled[(child.conn_in == 0) & (child.conn_out == 3)].any():
            break
    assert int(split_id(0, 3, 1)[0]) in child.node_id.tolist()


# ----------------------------------------------------------------------------- compile

@pytest.mark.parametrize("a, b", [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (-0.3, 2.5)])
def test_compiled_output_equals_a_hand_computed_forward_pass(a, b):
    nets = CompiledNets(gn.from_records([SMALL]), 2, 1, recurrent=False, steepness=4.9)
    assert nets.depth == 3
    nets.reset(1)
    out = nets(torch.tensor([[[a, b]]]))
    assert out.shape == (1, 1, 1)
    assert out.item() == pytest.approx(small_forward(a, b), abs=1e-6)


def test_recurrent_networks_take_one_synchronous_step_per_call():
    loop = record(SMALL["nodes"].tolist(), list(zip(
        SMALL["conn_in"].tolist(), SMALL["conn_out"].tolist(), SMALL["weight"].tolist(),
        SMALL["enabled"].tolist())) + [(H1, H1, 0.3, True)])
    nets = CompiledNets(gn.from_records([loop]), 2, 1, recurrent=True, steepness=4.9)
    nets.reset(1)
    a, b = 1.0, 0.5
    h1 = h2 = o = 0.0
    for _ in range(4):  # every node reads the previous values, all at once
        h1, h2, o = (sig(a + 0.5 * b + 0.25 + 0.3 * h1), sig(0.7 * h1),
                     sig(-2.0 * h1 + 1.1 * h2 + 0.75 + 1.5 * b))
        assert nets(torch.tensor([[[a, b]]])).item() == pytest.approx(o, abs=1e-6)
    nets.reset(1)
    assert nets(torch.tensor([[[a, b]]])).item() == pytest.approx(sig(0.75 + 1.5 * b), abs=1e-6)


def test_a_padded_population_computes_what_each_genome_computes_alone():
    pop = evolved_population(seed=3, generations=12)
    assert pop.node_counts().min() < pop.node_counts().max()  # genomes of different sizes
    x = torch.rand((len(pop), 5, 2), generator=torch.Generator().manual_seed(0))
    together = CompiledNets(pop, 2, 1, recurrent=False, steepness=4.9)
    together.reset(5)
    got = together(x)
    for i in range(len(pop)):
        alone = CompiledNets(pop.take([i]), 2, 1, recurrent=False, steepness=4.9)
        alone.reset(5)
        torch.testing.assert_close(got[i], alone(x[i : i + 1])[0])


def test_depth_is_the_longest_enabled_path_and_cycles_are_refused():
    g = gn.from_records([SMALL])
    assert depths(g, 3).tolist() == [0, 0, 0, 3, 1, 2]  # nodes 0, 1, 2, 3, H1, H2 (sorted ids)
    cyc = record([0, 1, 2, 3, H1], [(0, H1, 1.0, True), (H1, 3, 1.0, True), (3, H1, 1.0, True)])
    with pytest.raises(ValueError, match="cycle"):
        depths(gn.from_records([cyc]), 3)


# ----------------------------------------------------------------------------- records

def test_check_record_accepts_valid_genomes_and_names_what_is_wrong():
    check = lambda r, recurrent=False: gn.check_record(  # noqa: E731
        r, 2, 1, recurrent=recurrent, max_nodes=64, max_conns=64, weight_max=8.0)
    assert check(SMALL) is None
    cases = {
        "nodes 0..3": record([0, 1, 3, H1], [(0, 3, 1.0, True)]),
        "hidden node ids": record([0, 1, 2, 3, 17], [(0, 3, 1.0, True)]),
        "missing node": record([0, 1, 2, 3], [(0, H1, 1.0, True)]),
        "into an input": record([0, 1, 2, 3], [(3, 1, 1.0, True)]),
        "twice": record([0, 1, 2, 3], [(0, 3, 1.0, True), (0, 3, 2.0, False)]),
        "finite": record([0, 1, 2, 3], [(0, 3, float("nan"), True)]),
        "beyond": record([0, 1, 2, 3], [(0, 3, 9.0, True)]),
        "cycle": record([0, 1, 2, 3, H1], [(3, H1, 1.0, True), (H1, 3, 1.0, False)]),
        "caps": record(list(range(4)) + [HIDDEN_BASE + i for i in range(70)], []),
        "fields": {"nodes": SMALL["nodes"]},
        "int64": {**SMALL, "nodes": SMALL["nodes"].astype(np.int32)},
    }
    for why, bad in cases.items():
        message = check(bad)
        assert message is not None and why in message, (why, message)
    assert check(cases["cycle"], recurrent=True) is None  # allowed when recurrent


def test_packing_round_trips_records_and_take_repeats_genomes():
    recs = [SMALL, record([0, 1, 2, 3], [(1, 3, -1.0, True), (0, 3, 0.5, False)])]
    g = gn.from_records(recs)
    g.check_layout()
    back = g.records()
    assert back[1]["conn_in"].tolist() == [0, 1]  # canonical order: by (src, dst)
    assert gn.from_records(back).fingerprints() == g.fingerprints()
    t = g.take([1, 1, 0])
    assert t.fingerprints() == [g.fingerprints()[1]] * 2 + [g.fingerprints()[0]]
    same = gn.Genomes.from_arrays(g.to_arrays())
    assert same.fingerprints() == g.fingerprints()
    broken = {**g.to_arrays(), "node_off": np.array([0, 5, 10])}
    with pytest.raises(ValueError):
        gn.Genomes.from_arrays(broken)


# ----------------------------------------------------------------------------- speciation

def test_distance_follows_the_formula():
    a = gn.from_records([record([0, 1, 2, 3], [(0, 3, 1.0, True), (1, 3, 2.0, True), (2, 3, 0.0, True)])])
    b = gn.from_records([record([0, 1, 2, 3, H1], [(0, 3, 0.5, True), (1, 3, 3.0, False), (0, H1, 1.0, True),
                                                  (H1, 3, 1.0, True)])])
    cfg = NeatConfig(c_disjoint=1.0, c_weight=0.4)
    d = spc.distances(a, b, cfg)
    # matching: (0,3) |0.5|, (1,3) |1.0| -> mean 0.75; disjoint: (2,3), (0,H1), (H1,3) = 3; N = 1.
    assert d.shape == (1, 1) and d[0, 0] == pytest.approx(3 + 0.4 * 0.75)
    assert spc.distances(a, a, cfg)[0, 0] == 0.0
    big = NeatConfig(normalize_min_genes=2)
    assert spc.distances(a, b, big)[0, 0] == pytest.approx(3 / 4 + 0.4 * 0.75)


def test_speciation_groups_close_genomes_and_keeps_ids_across_generations():
    base = record([0, 1, 2, 3], [(0, 3, 1.0, True), (1, 3, 1.0, True), (2, 3, 1.0, True)])
    far = record([0, 1, 2, 3, H1, H2], [(0, 3, 1.0, True), (0, H1, 1.0, True), (H1, 3, 1.0, True),
                                        (1, H2, 1.0, True), (H2, 3, 1.0, True)])
    g = gn.from_records([base, far, base, far, base])
    row, table, nxt = spc.speciate(g, spc.empty_species(), 3.0, 0, 0, CFG)
    assert row.tolist() == [0, 1, 0, 1, 0] and table.ids.tolist() == [0, 1] and nxt == 2
    reps = spc.next_representatives(g, row, table, CFG)
    table = spc.Species(table.ids, reps, table.best, table.improved, table.created)
    row2, table2, nxt2 = spc.speciate(g.take([1, 1, 1]), table, 3.0, nxt, 1, CFG)
    assert table2.ids.tolist() == [1] and row2.tolist() == [0, 0, 0] and nxt2 == 2


def test_offspring_follow_shared_fitness_and_stagnant_species_die():
    fitness = np.array([4.0, 4.0, 1.0, 1.0, 1.0, 1.0, np.nan, 2.5])
    row = np.array([0, 0, 1, 1, 1, 1, 1, 2])
    table = spc.Species(np.arange(3), gn.from_records([SMALL] * 3), np.array([-np.inf, -np.inf, 9.0]),
                        np.array([0, 0, 0]), np.array([0, 0, 0]))
    kept, protected = rep.offspring_counts(fitness, row, table, 20, 8, NeatConfig(stagnation=15, species_elitism=1))
    table, counts = rep.offspring_counts(fitness, row, table, 20, 8, NeatConfig(stagnation=15, species_elitism=0))
    # Species 2 had a best of 9 at generation 0 and 2.5 now: stagnant, no children, unless
    # it is protected as the species with the best record.
    assert counts.tolist()[2] == 0 and counts.sum() == 8 and protected[2] > 0 and protected.sum() == 8
    assert counts[0] > counts[1]  # mean scaled fitness 1.0 against 0.0
    assert table.best.tolist() == [4.0, 1.0, 9.0] and table.improved.tolist() == [20, 20, 0]


# ----------------------------------------------------------------------------- reproduction

def evolved_population(seed: int, generations: int, recurrent: bool = False, size: int = 40) -> gn.Genomes:
    """A population grown by the operators alone (fitness = random), for structural tests."""
    cfg = NeatConfig(recurrent=recurrent, add_node_rate=0.3, add_conn_rate=0.5)
    rng = np.random.default_rng(seed)
    g = gn.minimal(size, 2, 1, rng, 1.0)
    for _ in range(generations):
        fit = rng.random(size)
        pa, pb = rng.integers(0, size, size), rng.integers(0, size, size)
        swap = fit[pb] > fit[pa]
        pa, pb = np.where(swap, pb, pa), np.where(swap, pa, pb)
        g = rep.mutate(rep.crossover(g, pa, pb, rng.random(size) < 0.75, cfg, rng), 2, cfg, rng)
    return g


@pytest.mark.parametrize("recurrent", [False, True])
def test_operators_only_make_valid_genomes(recurrent):
    g = evolved_population(seed=11, generations=25, recurrent=recurrent)
    g.check_layout()
    assert g.node_counts().max() > 6 and g.conn_counts().max() > 8
    for r in g.records():
        assert gn.check_record(r, 2, 1, recurrent=recurrent, max_nodes=512, max_conns=8192,
                               weight_max=8.0) is None
    cycles = [gn.has_cycle(np.searchsorted(r["nodes"], r["conn_in"]), np.searchsorted(r["nodes"], r["conn_out"]),
                           r["nodes"].size) for r in g.records()]
    assert any(cycles) == recurrent  # recurrent runs do grow loops, feed-forward ones never


def test_crossover_keeps_the_fitter_structure_and_mixes_matching_weights():
    fit = record([0, 1, 2, 3, H1], [(0, 3, 1.0, False), (0, H1, 1.0, True), (H1, 3, 1.0, True),
                                    (1, 3, 1.0, True)])
    other = record([0, 1, 2, 3], [(0, 3, -1.0, True), (1, 3, -1.0, True), (2, 3, -1.0, True)])
    g = gn.from_records([fit, other])
    n = 400
    kids = rep.crossover(g, np.zeros(n, np.int64), np.ones(n, np.int64), np.ones(n, bool), CFG,
                         np.random.default_rng(0))
    own = gn.owners(kids.conn_off)
    assert (kids.conn_counts() == 4).all()  # (2, 3) of the weaker parent is not inherited
    w13 = kids.weight[(kids.conn_in == 1) & (kids.conn_out == 3)]
    assert 0.4 < (w13 == -1.0).mean() < 0.6 and set(w13.tolist()) == {1.0, -1.0}
    assert (kids.weight[kids.conn_out == H1] == 1.0).all()  # disjoint genes keep their weight
    on03 = kids.enabled[(kids.conn_in == 0) & (kids.conn_out == 3)]
    assert 0.15 < on03.mean() < 0.35  # disabled in one parent: stays off with p = 0.75
    assert own.max() == n - 1


def test_feed_forward_add_connection_never_closes_a_cycle():
    # Chain 0 -> H1 -> 3: the only new pairs are (1|2 -> H1), (1|2 -> 3) or back-edges.
    chain = record([0, 1, 2, 3, H1], [(0, H1, 1.0, True), (H1, 3, 1.0, True)])
    g = gn.from_records([chain] * 300)
    out = rep.add_conns(g, 2, NeatConfig(add_conn_rate=1.0), np.random.default_rng(0))
    new = set(zip(out.conn_in.tolist(), out.conn_out.tolist())) - {(0, H1), (H1, 3)}
    assert new and new <= {(1, H1), (2, H1), (0, 3), (1, 3), (2, 3)}
    rec = rep.add_conns(g, 2, NeatConfig(add_conn_rate=1.0, recurrent=True), np.random.default_rng(0))
    back = set(zip(rec.conn_in.tolist(), rec.conn_out.tolist()))
    assert (3, H1) in back or (H1, H1) in back or (3, 3) in back


def test_config_validates_and_parses_text():
    cfg = NeatConfig.from_params({"recurrent": "true", "add_node_rate": "0.1", "stagnation": "20"})
    assert (cfg.recurrent, cfg.add_node_rate, cfg.stagnation) == (True, 0.1, 20)
    with pytest.raises(ConfigError, match="unknown neat setting"):
        NeatConfig.from_params({"add_nod_rate": 0.1})
    with pytest.raises(ConfigError, match="add_node_rate must be in"):
        NeatConfig(add_node_rate=1.5)
    with pytest.raises(ConfigError, match="recurrent"):
        NeatConfig.from_params({"recurrent": "maybe"})
