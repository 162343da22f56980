"""Tests of the rotated and deceptive built-ins, per-gene bounds, and float64 round trips.

Hand-checked values are computed here with numpy/math from the formulas in the module
docstrings, never by calling the problems' own helpers (only the rotation matrix and shift,
which are tested on their own for orthogonality and seeding, are read from the module).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from islands import policies
from islands.algorithms import make_algorithm
from islands.config import RunConfig
from islands.errors import ConfigError
from islands.problems import Problem, describe_all, make_problem
from islands.problems.benchmarks import SCHWEFEL_C, SCHWEFEL_X
from islands.problems.rotated import rotation_frame
from migration_pool import format as fmt
from migration_pool import batches

NEW = ["ellipsoid", "bent_cigar", "rotated_ellipsoid", "rotated_rastrigin", "rotated_schwefel", "lunacek"]
ROTATED = ["rotated_ellipsoid", "rotated_rastrigin", "rotated_schwefel", "bent_cigar"]
DTYPES = [torch.float32, torch.float64]
UNIMODAL = {"ellipsoid", "bent_cigar", "rotated_ellipsoid"}
BOXES = {
    "ellipsoid": (-5.0, 5.0), "bent_cigar": (-5.0, 5.0), "rotated_ellipsoid": (-5.0, 5.0),
    "rotated_rastrigin": (-5.12, 5.12), "rotated_schwefel": (-500.0, 500.0), "lunacek": (-5.0, 5.0),
}


def value(name: str, x: np.ndarray, dtype: torch.dtype = torch.float64, **params) -> float:
    problem = make_problem(name, dim=x.shape[0], **params)
    return problem.evaluate(torch.tensor(x[None, :], dtype=dtype)).item()


def frame(dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r, o = rotation_frame(dim, seed)
    return r.numpy(), o.numpy()


def ellipsoid_weights(dim: int) -> np.ndarray:
    return np.array([10.0 ** (6.0 * i / (dim - 1)) if dim > 1 else 1.0 for i in range(dim)])


# ----------------------------------------------------------------------------- registry


def test_new_problems_are_listed_with_their_boxes_and_targets() -> None:
    listed = dict(describe_all())
    for name in NEW:
        assert name in listed and listed[name]
        problem = make_problem(name, 5)
        assert (problem.lower, problem.upper) == BOXES[name]
        assert problem.optimum == 0.0 and problem.dtype == "float64"
        assert problem.solved_at == (-1e-8 if name in UNIMODAL else -1e-4)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("dim", [2, 3, 10, 40])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fitness_at_the_optimum_is_exactly_zero(name: str, dim: int, dtype: torch.dtype) -> None:
    problem = make_problem(name, dim)
    point = problem.optimum_point(dtype=dtype)
    lower, upper = problem.bounds(dtype=dtype)
    assert bool(((point >= lower) & (point <= upper)).all())
    got = problem.evaluate(point[None, :])
    assert got.dtype == dtype and got.item() == 0.0


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fitness_never_exceeds_the_optimum_and_batches_match_rows(name: str, dtype: torch.dtype) -> None:
    problem = make_problem(name, 6)
    lower, upper = problem.bounds(dtype=dtype)
    gen = torch.Generator().manual_seed(3)
    x = lower + (upper - lower) * torch.rand((64, 6), generator=gen, dtype=dtype)
    x[0] = problem.optimum_point(dtype=dtype)
    x[1] = problem.optimum_point(dtype=dtype) + 1e-3  # near it: tiny but never positive
    batch = problem.evaluate(x)
    assert batch.shape == (64,) and batch.dtype == dtype
    assert bool((batch <= 0.0).all()) and batch[0].item() == 0.0 and batch[1].item() < 0.0
    rows = torch.cat([problem.evaluate(x[i : i + 1]) for i in range(64)])
    # A batch may sum the matrix product in another order than one row: equal to rounding.
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(batch, rows, rtol=rtol, atol=0.0)


def test_float32_and_float64_agree() -> None:
    for name in NEW:
        problem = make_problem(name, 8)
        lower, upper = problem.bounds(dtype=torch.float64)
        x = lower + (upper - lower) * torch.rand((16, 8), generator=torch.Generator().manual_seed(1),
                                                 dtype=torch.float64)
        wide = problem.evaluate(x)
        narrow = problem.evaluate(x.float())
        assert narrow.dtype == torch.float32
        assert torch.allclose(narrow.double(), wide, rtol=1e-3), name


# ----------------------------------------------------------------------------- rotation


@pytest.mark.parametrize("dim", [1, 2, 7, 50])
def test_rotation_is_orthogonal_and_seeded(dim: int) -> None:
    r, o = rotation_frame(dim, 0)
    assert r.dtype == torch.float64 and r.shape == (dim, dim) and o.shape == (dim,)
    assert torch.allclose(r @ r.T, torch.eye(dim, dtype=torch.float64), rtol=0, atol=1e-12)
    assert bool((o.abs() <= 4.0).all())
    again, o_again = rotation_frame(dim, 0)
    assert torch.equal(r, again) and torch.equal(o, o_again)
    other, o_other = rotation_frame(dim, 1)
    assert not torch.equal(o, o_other)
    if dim > 1:
        assert not torch.allclose(r, other)


def test_rotation_seed_changes_the_landscape_but_not_the_optimum_value() -> None:
    x = torch.full((1, 5), 1.0, dtype=torch.float64)
    a = make_problem("rotated_rastrigin", 5, rotation_seed=0)
    b = make_problem("rotated_rastrigin", 5, rotation_seed="7")
    assert a.evaluate(x).item() != b.evaluate(x).item()
    assert not torch.equal(a.optimum_point(), b.optimum_point())
    assert b.evaluate(b.optimum_point()[None]).item() == 0.0


@pytest.mark.parametrize("name", ROTATED)
@pytest.mark.parametrize("bad", [-1, 2**63, "x", "1.5", 1.5, True, None])
def test_bad_rotation_seed_is_a_config_error(name: str, bad: object) -> None:
    with pytest.raises(ConfigError, match="rotation_seed"):
        make_problem(name, 4, rotation_seed=bad)


@pytest.mark.parametrize("bad", [2, "maybe", -1, 0.5])
def test_bad_rotate_flag_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="rotate"):
        make_problem("bent_cigar", 4, rotate=bad)


def test_lunacek_needs_two_genes() -> None:
    with pytest.raises(ConfigError, match="lunacek: dim"):
        make_problem("lunacek", 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible)")
def test_problems_evaluate_on_cuda_like_on_cpu() -> None:
    for name in NEW:
        problem = make_problem(name, 12)
        x = torch.rand((32, 12), generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 8 - 4
        x[0] = problem.optimum_point(dtype=torch.float64)  # the float32 default would round it
        on_gpu = problem.evaluate(x.cuda())
        assert on_gpu.device.type == "cuda" and on_gpu[0].item() == 0.0
        assert torch.allclose(on_gpu.cpu(), problem.evaluate(x), rtol=1e-10), name


# ----------------------------------------------------------------------------- hand-checked values


def test_ellipsoid_by_hand() -> None:
    x = np.array([1.0, -2.0, 0.5, 3.0])
    # weights 10^0, 10^2, 10^4, 10^6
    expected = 1.0 + 100.0 * 4.0 + 1e4 * 0.25 + 1e6 * 9.0
    assert value("ellipsoid", x) == pytest.approx(-expected, rel=1e-15)
    assert value("ellipsoid", x, torch.float32) == pytest.approx(-expected, rel=1e-6)
    assert value("ellipsoid", np.array([3.0])) == -9.0  # D = 1: weight 1


def test_bent_cigar_by_hand() -> None:
    assert value("bent_cigar", np.array([2.0, 1.0, -1.0]), rotate=0) == -(4.0 + 1e6 * 2.0)
    assert value("bent_cigar", np.array([2.0, 1.0, -1.0]), rotate="false") == -(4.0 + 1e6 * 2.0)
    r, o = frame(3)
    z = np.array([2.0, 1.0, -1.0])
    x = o + r.T @ z  # R (x - o) = z
    assert value("bent_cigar", x) == pytest.approx(-(4.0 + 2e6), rel=1e-10)
    plain = make_problem("bent_cigar", 3, rotate=0)
    assert plain.evaluate(torch.zeros((1, 3), dtype=torch.float64)).item() == 0.0


@pytest.mark.parametrize("dim", [2, 5, 9])
def test_rotated_ellipsoid_by_hand(dim: int) -> None:
    r, o = frame(dim)
    w = ellipsoid_weights(dim)
    for axis in range(dim):
        z = np.zeros(dim)
        z[axis] = 0.7
        x = o + r.T @ z  # a step of 0.7 along the axis-th principal direction
        assert value("rotated_ellipsoid", x) == pytest.approx(-w[axis] * 0.49, rel=1e-9)
    x = np.linspace(-1.0, 1.0, dim)
    z = r @ (x - o)
    assert value("rotated_ellipsoid", x) == pytest.approx(-float((w * z * z).sum()), rel=1e-12)


def test_rotated_rastrigin_by_hand() -> None:
    dim = 6
    r, o = frame(dim, seed=3)
    z = np.array([0.5, -1.0, 0.25, 0.0, 2.0, -0.1])
    x = o + r.T @ z
    expected = sum(zi * zi + 10.0 * (1.0 - math.cos(2.0 * math.pi * zi)) for zi in z)
    assert value("rotated_rastrigin", x, rotation_seed=3) == pytest.approx(-expected, rel=1e-9)
    # A lattice point of the rotated grid is a local minimum with Rastrigin's value.
    lattice = o + r.T @ np.array([1.0, 0, 0, 0, 0, 0])
    assert value("rotated_rastrigin", lattice, rotation_seed=3) == pytest.approx(-1.0, abs=1e-9)


def test_rotated_schwefel_by_hand() -> None:
    dim = 4
    r, _ = frame(dim)
    star = np.full(dim, SCHWEFEL_X)

    def gap(y: float) -> float:
        return SCHWEFEL_C - y * math.sin(math.sqrt(abs(y)))

    y = star.copy()
    y[1] = 0.0  # one gene at 0: f = C exactly
    x = star + r.T @ (y - star)
    assert value("rotated_schwefel", x) == pytest.approx(-SCHWEFEL_C, rel=1e-9)
    y = np.array([SCHWEFEL_X, -100.0, 600.0, -530.0])  # two genes beyond the domain: the wall
    x = star + r.T @ (y - star)
    expected = gap(SCHWEFEL_X) + gap(-100.0) + gap(500.0) + 100.0**2 + gap(-500.0) + 30.0**2
    assert value("rotated_schwefel", x) == pytest.approx(-expected, rel=1e-9)
    # The optimum is the plain Schwefel's, which the rotation keeps in the box.
    assert torch.equal(make_problem("rotated_schwefel", dim).optimum_point(dtype=torch.float64),
                       torch.tensor(star))


def test_rotated_schwefel_has_no_better_point_outside_the_domain_than_inside() -> None:
    # The raw formula outside [-500, 500] goes below 0 (x sin sqrt|x| > C near 713):
    # in-box genomes mapped there must not beat the optimum.
    problem = make_problem("rotated_schwefel", 10)
    x = torch.rand((4000, 10), generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1000 - 500
    assert bool((problem.evaluate(x) < 0).all())


def test_lunacek_by_hand() -> None:
    s = 1.0 - 1.0 / (2.0 * math.sqrt(22.0) - 8.2)
    mu1 = -math.sqrt((2.5**2 - 1.0) / s)
    x = np.array([1.0, -3.0])
    first = (1.0 - 2.5) ** 2 + (-3.0 - 2.5) ** 2
    second = 2.0 + s * ((1.0 - mu1) ** 2 + (-3.0 - mu1) ** 2)
    ripples = 10.0 * ((1 - math.cos(2 * math.pi * -1.5)) + (1 - math.cos(2 * math.pi * -5.5)))
    assert value("lunacek", x) == pytest.approx(-(min(first, second) + ripples), rel=1e-12)
    # Deceptive: the wide funnel's centre scores d*D plus ripples, nowhere near 0.
    d = 10
    s10 = 1.0 - 1.0 / (2.0 * math.sqrt(d + 20.0) - 8.2)
    m10 = -math.sqrt(5.25 / s10)
    far = d + 10.0 * d * (1.0 - math.cos(2.0 * math.pi * (m10 - 2.5)))
    assert value("lunacek", np.full(d, m10)) == pytest.approx(-far, rel=1e-9)


# ----------------------------------------------------------------------------- per-gene bounds


def sphere_fn(x: torch.Tensor) -> torch.Tensor:
    return 0.0 - (x * x).sum(dim=1)


def test_per_gene_bounds_are_kept_and_returned() -> None:
    problem = Problem(name="box3", dim=3, lower=(0, -1, "-10"), upper=[1, 1, 10.0], fn=sphere_fn)
    assert problem.lower == (0.0, -1.0, -10.0) and problem.upper == (1.0, 1.0, 10.0)
    lower, upper = problem.bounds(dtype=torch.float64)
    assert lower.tolist() == [0.0, -1.0, -10.0] and upper.tolist() == [1.0, 1.0, 10.0]
    mixed = Problem(name="mixed", dim=3, lower=-2.0, upper=(1, 2, 3), fn=sphere_fn)
    assert mixed.bounds()[0].tolist() == [-2.0, -2.0, -2.0] and mixed.bounds()[1].tolist() == [1, 2, 3]


@pytest.mark.parametrize(("lower", "upper", "message"), [
    ((0, -1), (1, 1, 10), "lower has 2 bounds for 3 genes"),
    ((0, -1, -10), (1, 1, 10, 4), "upper has 4 bounds for 3 genes"),
    ((0, 1, -10), (1, 1, 10), "of gene 1"),
    (0.0, (1, 1, -1), "of gene 2"),
    ((0, -1, float("nan")), (1, 1, 10), r"lower\[2\]"),
    ((0, -1, "x"), (1, 1, 10), r"lower\[2\]"),
    (None, (1, 1, 10), "lower must be"),
])
def test_bad_per_gene_bounds_are_config_errors(lower: object, upper: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Problem(name="box3", dim=3, lower=lower, upper=upper, fn=sphere_fn)


def test_ga_keeps_every_genome_inside_per_gene_bounds() -> None:
    # The optimum of this fitness lies outside the box in every gene, pulling the GA
    # against the bounds.
    problem = Problem(name="box3", dim=3, lower=(0, -1, -10), upper=(1, 1, 10),
                      fn=lambda x: (x * torch.tensor([1.0, -1.0, 1.0], dtype=x.dtype)).sum(dim=1) * 50)
    algo = make_algorithm(RunConfig(problem="box3", dim=3, population=40), problem)
    lower, upper = problem.bounds(dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    state = algo.evaluate(algo.init(40, 0, gen))
    for g in range(15):
        state = algo.evaluate(algo.step(state, g, gen))
        assert state.genomes.dtype == torch.float64
        assert bool(((state.genomes >= lower) & (state.genomes <= upper)).all())
    best = state.genomes[int(state.fitness.argmax())]
    assert best[0] > 0.5 and best[1] < 0.0 and best[2] > 5.0  # it did move towards the corner


# ----------------------------------------------------------------------------- float64 round trips


def ga_run(problem: Problem, generations: int, gen: torch.Generator, algo=None, state=None):
    algo = algo or make_algorithm(RunConfig(problem=problem.name, dim=problem.dim, population=30), problem)
    if state is None:
        state = algo.evaluate(algo.init(30, 0, gen))
    for g in range(generations):
        state = algo.evaluate(algo.step(state, g, gen))
    return algo, state


def test_float64_migrants_survive_the_pool_format_bit_for_bit() -> None:
    problem = make_problem("rotated_rastrigin", 7)
    algo, state = ga_run(problem, 3, torch.Generator().manual_seed(2))
    out = policies.emigrate(algo, state, 5, "best", torch.Generator().manual_seed(0))
    assert out.genomes.dtype == np.float64
    genomes = out.genomes.copy()
    genomes[0, 0] = 0.1 + 0.2  # a value float32 cannot hold
    batch = batches.MigrantBatch(run_id="r", source="island-00", generation=3, created=1.0,
                             genome_kind="vector", genomes=genomes, fitness=out.fitness,
                             origin=("island-00",) * 5, birth=out.birth, lineage=out.lineage)
    back = batches.decode_batch(batches.encode_batch(batch), dtype="float64", gene_shape=(7,))
    assert back.genomes.dtype == np.float64 and back.fitness.dtype == np.float64
    assert back.genomes.tobytes() == genomes.tobytes()
    assert back.fitness.tobytes() == np.asarray(out.fitness, dtype=np.float64).tobytes()
    assert back.genomes[0, 0] == 0.1 + 0.2


def test_float64_checkpoint_restores_float64_and_continues_identically() -> None:
    problem = make_problem("rotated_ellipsoid", 6)
    gen = torch.Generator().manual_seed(4)
    algo, state = ga_run(problem, 4, gen)
    assert state.genomes.dtype == torch.float64
    data = fmt.encode("checkpoint", {"state": algo.to_record(state), "rng": gen.get_state().numpy()})
    body = fmt.decode(data, "checkpoint")
    assert body["state"]["genomes"].dtype == np.float64
    _, expected = ga_run(problem, 5, gen, algo, state)

    fresh = make_algorithm(RunConfig(problem=problem.name, dim=6, population=30), problem)
    restored = fresh.from_record(body["state"])
    assert restored.genomes.dtype == torch.float64 and restored.fitness.dtype == torch.float64
    assert torch.equal(restored.genomes, state.genomes) and torch.equal(restored.step, state.step)
    gen2 = torch.Generator()
    gen2.set_state(torch.from_numpy(body["rng"]))
    _, resumed = ga_run(problem, 5, gen2, fresh, restored)
    assert torch.equal(resumed.genomes, expected.genomes)
    assert torch.equal(resumed.fitness, expected.fitness)
