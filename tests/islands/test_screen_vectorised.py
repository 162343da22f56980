"""The immigrant screen judged over the whole batch at once: copies of residents found among
the near-duplicate distances, and a batch's own repeats in one comparison, refuse exactly the
rows a row-by-row comparison refuses."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from islands.algorithms import vector_kind
from islands.algorithms.vector_kind import VectorKind, _repeats
from islands.population import Migrants, Population


def kind(dim: int, lower, upper) -> VectorKind:
    problem = SimpleNamespace(dim=dim, evaluate=lambda g: -(g * g).sum(dim=1))
    lo = torch.as_tensor(np.broadcast_to(np.asarray(lower, dtype=np.float64), (dim,)).copy())
    hi = torch.as_tensor(np.broadcast_to(np.asarray(upper, dtype=np.float64), (dim,)).copy())
    return VectorKind(problem, torch.device("cpu"), torch.float64, lo, hi)


GENE = st.sampled_from([0.0, -0.0, 1.0, -2.5, 3e7, 1e-300, 1e-160, 5e-324]) | st.floats(-4.0, 4.0)


@st.composite
def batches(draw):
    """Residents and immigrants, many of them copies (signed zeros swapped) or repeats."""
    dim, p, k = draw(st.integers(1, 6)), draw(st.integers(1, 25)), draw(st.integers(1, 12))
    residents = np.array(draw(st.lists(st.lists(GENE, min_size=dim, max_size=dim), min_size=p, max_size=p)))
    rows = []
    for _ in range(k):
        how = draw(st.sampled_from(["copy", "repeat", "near", "new"]))
        if how == "copy" or (how == "repeat" and not rows):
            row = residents[draw(st.integers(0, p - 1))].copy()
            row[row == 0] = draw(st.sampled_from([0.0, -0.0]))
        elif how == "repeat":
            row = rows[draw(st.integers(0, len(rows) - 1))].copy()
        elif how == "near":
            row = residents[draw(st.integers(0, p - 1))].copy()
            row[draw(st.integers(0, dim - 1))] = np.nextafter(row[0], np.inf)
        else:
            row = np.array(draw(st.lists(GENE, min_size=dim, max_size=dim)))
        rows.append(row)
    return residents, np.array(rows)


def brute_present(imm: np.ndarray, residents: np.ndarray) -> np.ndarray:
    return np.array([any((row == r).all() for r in residents) for row in imm])


def brute_repeats(imm: np.ndarray) -> np.ndarray:
    return np.array([any((imm[i] == imm[j]).all() for j in range(i)) for i in range(len(imm))])


@settings(max_examples=300)
@given(batches(), st.booleans())
def test_copies_found_among_the_distances_are_exactly_the_copies(batch, uniform):
    residents, imm = batch
    dim = imm.shape[1]
    upper = 5e7 if uniform else np.linspace(1.0, 5e7, dim)
    _, present = kind(dim, -5e7, upper)._nearest_resident(residents, imm)
    assert present.tolist() == brute_present(imm, residents).tolist()


def test_genes_whose_squares_overflow_are_compared_as_rows():
    residents = np.array([[1e200, 0.0], [3.0, 4.0]])
    imm = np.array([[1e200, -0.0], [3.0, 4.0], [1e200, 1.0]])
    with np.errstate(over="ignore", invalid="ignore"):  # the distances overflow, as they did before
        _, present = kind(2, -1e300, 1e300)._nearest_resident(residents, imm)
    assert present.tolist() == [True, True, False]


@settings(max_examples=200)
@given(batches(), st.booleans())
def test_a_batch_s_repeats_are_its_rows_equal_to_an_earlier_one(batch, dense):
    _, imm = batch
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vector_kind, "_DENSE_REPEATS", 1 << 30 if dense else 0)
        assert _repeats(imm).tolist() == brute_repeats(imm).tolist()


def test_the_screen_refuses_copies_repeats_near_duplicates_and_rows_out_of_the_box():
    k = kind(3, -1.0, [1.0, 1.0, 2.0])  # one gene of another width: distances are scaled
    residents = torch.tensor([[0.0, 0.5, 1.0], [-0.5, 0.0, -1.0]], dtype=torch.float64)
    pop = Population(kind=k, genomes=residents, fitness=torch.zeros(2, dtype=torch.float64),
                     origin=torch.zeros(2, dtype=torch.int64), birth=torch.zeros(2, dtype=torch.int64),
                     lineage=torch.zeros(2, dtype=torch.int64), evaluations=0)
    imm = np.array([[-0.0, 0.5, 1.0],     # a copy (signed zero)
                    [0.9, -0.9, 1.5],     # fresh
                    [0.9, -0.9, 1.5],     # a repeat of the row before
                    [-0.5, 0.001, -1.0],  # a near-duplicate at 0.05, fresh at 0
                    [0.0, 0.0, 1.5],      # fresh
                    [0.0, 1.5, 0.0]])     # out of the box
    incoming = Migrants(genomes=imm, fitness=np.zeros(6), origin=np.zeros(6, dtype=np.int64),
                        birth=np.zeros(6, dtype=np.int64), lineage=np.zeros(6, dtype=np.int64))
    assert k.screen(pop, incoming, 0.05).rows.tolist() == [1, 4]
    found = k.screen(pop, incoming, 0.0)
    assert found.rows.tolist() == [1, 3, 4]
    assert found.fitness.tolist() == [-(r * r).sum() for r in imm[[1, 3, 4]]]  # recomputed here
