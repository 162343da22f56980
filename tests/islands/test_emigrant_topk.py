"""The "best" emigrants found by torch.topk are exactly the full stable sort's: the same
residents in the same order, ties in population order and NaN last, whatever the fitness."""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from islands.policies import best_by_topk, select_emigrants

# Few distinct values make ties the rule (a GA's elites and their clones), with the signed
# zeros, infinities and NaN that an ordering may treat differently.
SPECIAL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, float("inf"), float("-inf"), float("nan")])
fitness_vectors = arrays(np.float64, st.integers(1, 60), elements=SPECIAL | st.floats(-1e3, 1e3))


@settings(max_examples=400)
@given(fitness_vectors, st.integers(1, 70), st.sampled_from([torch.float64, torch.float32]))
def test_topk_emigrants_are_the_stable_sorts(fitness, k, dtype):
    t = torch.as_tensor(fitness).to(dtype)
    got = best_by_topk(t, k)
    want = select_emigrants(t.double().numpy(), k, "best")
    if got is None:  # only with NaN or -inf about: the full sort decides there
        assert (np.isnan(fitness) | (fitness == -np.inf)).any()
    else:
        assert got.dtype == np.int64 and got.tolist() == want.tolist()


def test_ties_keep_population_order_and_the_shortcut_is_taken_for_them():
    f = torch.tensor([1.0, 3.0, 2.0, 3.0, 3.0, 0.0, 2.0], dtype=torch.float64)
    assert best_by_topk(f, 2).tolist() == [1, 3]
    assert best_by_topk(f, 4).tolist() == [1, 3, 4, 2]
    assert best_by_topk(torch.tensor([0.0, -0.0, 0.0]), 2).tolist() == [0, 1]
    assert best_by_topk(torch.tensor([5.0, float("nan"), 4.0]), 2) is None  # NaN: the full sort
    assert best_by_topk(np.array([1.0, 2.0]), 1) is None and best_by_topk(f, 0) is None


def test_a_large_population_selects_through_topk_and_sends_the_same_emigrants(monkeypatch):
    from islands import policies
    from islands.algorithms import make_algorithm
    from islands.config import RunConfig
    from islands.problems.registry import make_problem

    p = policies.TOPK_FROM
    algo = make_algorithm(RunConfig(problem="sphere", dim=3, population=p), make_problem("sphere", 3))
    state = algo.evaluate(algo.init(p, 0, torch.Generator().manual_seed(1)))
    pop = algo.population(state)
    fitness = pop.fitness.clone()
    fitness[::7] = fitness.max()  # many ties at the top
    pop = type(pop)(**{**pop.__dict__, "fitness": fitness})
    used = []
    monkeypatch.setattr(policies, "best_by_topk", lambda f, k: used.append(k) or best_by_topk(f, k))
    got = policies.select(pop, 6, "best", torch.Generator())
    assert used == [6]
    want = select_emigrants(fitness.numpy(), 6, "best")
    assert got.lineage.tolist() == pop.lineage.numpy()[want].tolist()
    assert got.fitness.tolist() == fitness.numpy()[want].tolist()
