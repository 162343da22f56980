"""Tests of islands.problems: the built-in benchmarks, the Problem type and the registry."""
from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from islands.errors import ConfigError, ProblemNotFound
from islands.problems import Problem, builtin_names, describe_all, make_problem
from islands.problems.benchmarks import SCHWEFEL_C, SCHWEFEL_X

TESTS_DIR = Path(__file__).resolve().parents[2]  # tests/, which holds plugin_fixture/
BUILTINS = ["ackley", "griewank", "rastrigin", "rosenbrock", "schwefel", "sphere"]
CONTROL = ["cartpole", "double_pole", "double_pole_nv", "xor"]  # tested in test_control.py
# Ill-conditioned, rotated and deceptive landscapes, tested in test_rotated.py.
LANDSCAPES = ["bent_cigar", "ellipsoid", "lunacek", "rotated_ellipsoid", "rotated_rastrigin", "rotated_schwefel"]
DTYPES = [torch.float32, torch.float64]
# Documented in benchmarks.py: fitness at optimum_x is exactly the optimum, 0.0, in
# both dtypes (the formulas are arranged so rounding cannot leave a residue).
AT_OPTIMUM_TOL = {torch.float32: 0.0, torch.float64: 0.0}

# The standard domains and default targets the task asks for.
DOMAINS = {
    "sphere": (-5.12, 5.12),
    "rastrigin": (-5.12, 5.12),
    "ackley": (-32.768, 32.768),
    "rosenbrock": (-5.0, 10.0),
    "griewank": (-600.0, 600.0),
    "schwefel": (-500.0, 500.0),
}


def fit(name: str, rows: list[list[float]], dtype: torch.dtype = torch.float64, **params) -> list[float]:
    problem = make_problem(name, dim=len(rows[0]), **params)
    return problem.evaluate(torch.tensor(rows, dtype=dtype)).tolist()


# --------------------------------------------------------------------------- built-ins


def test_builtin_names_are_the_benchmarks_and_the_control_tasks() -> None:
    assert builtin_names() == sorted(BUILTINS + LANDSCAPES + CONTROL)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("dim", [2, 3, 10, 64])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fitness_at_known_optimum_equals_optimum(name: str, dim: int, dtype: torch.dtype) -> None:
    problem = make_problem(name, dim)
    point = problem.optimum_point(dtype=dtype)
    assert point is not None and point.shape == (dim,) and point.dtype == dtype
    lower, upper = problem.bounds(dtype=dtype)
    assert bool(((point >= lower) & (point <= upper)).all())
    value = problem.evaluate(point[None, :])
    assert problem.optimum == 0.0
    assert abs(value.item() - problem.optimum) <= AT_OPTIMUM_TOL[dtype]


@pytest.mark.parametrize("name", [n for n in BUILTINS if n != "rosenbrock"])
def test_dimension_one_works(name: str) -> None:
    problem = make_problem(name, 1)
    assert problem.evaluate(problem.optimum_point()[None, :]).item() == 0.0


@pytest.mark.parametrize("name", BUILTINS)
def test_domain_and_default_target(name: str) -> None:
    problem = make_problem(name, 4)
    assert (problem.name, problem.dim) == (name, 4)
    assert (problem.lower, problem.upper) == DOMAINS[name]
    assert problem.solved_at == (-1e-8 if name == "sphere" else -1e-4)
    assert problem.genome_kind == "vector" and problem.description


# Hand-computed values, straight from the textbook formulas with concrete numbers.


def test_sphere_by_hand() -> None:
    assert fit("sphere", [[1.0, 2.0, 3.0], [-0.5, 0.5, 0.0]]) == [-14.0, -0.5]


def test_rastrigin_by_hand() -> None:
    # -(20 + 1 - 10cos(2pi) + 4 - 10cos(4pi)) = -5
    assert fit("rastrigin", [[1.0, 2.0]]) == pytest.approx([-5.0], abs=1e-12)
    # -(10 + 0.25 - 10cos(pi)) = -20.25, and with A = 1: -(1 + 0.25 - cos(pi)) = -2.25
    assert fit("rastrigin", [[0.5]]) == pytest.approx([-20.25], abs=1e-12)
    assert fit("rastrigin", [[0.5]], a=1) == pytest.approx([-2.25], abs=1e-12)
    assert fit("rastrigin", [[0.5]], a="5") == pytest.approx([-10.25], abs=1e-12)


def test_ackley_by_hand() -> None:
    # x = (1, 1): sqrt(mean x^2) = 1, mean cos(2pi) = 1 -> 20(1 - e^-0.2)
    assert fit("ackley", [[1.0, 1.0]]) == pytest.approx([-20 * (1 - math.exp(-0.2))], abs=1e-12)
    # x = (0.5, -0.5): r = 0.5, cos(+-pi) = -1 -> -20e^-0.1 - e^-1 + 20 + e
    expected = -(-20 * math.exp(-0.1) - math.exp(-1) + 20 + math.e)
    assert fit("ackley", [[0.5, -0.5]]) == pytest.approx([expected], abs=1e-12)


def test_rosenbrock_by_hand() -> None:
    # (1,2): 100(2-1)^2 + 0 = 100; (0,0,0): 1 + 1 = 2; (-1,1): 0 + 2^2 = 4
    assert fit("rosenbrock", [[1.0, 2.0], [-1.0, 1.0]]) == [-100.0, -4.0]
    assert fit("rosenbrock", [[0.0, 0.0, 0.0]]) == [-2.0]


def test_griewank_by_hand() -> None:
    # (pi, 0): 1 + pi^2/4000 - cos(pi)cos(0) = 2 + pi^2/4000
    # (0, sqrt2 pi): 1 + 2pi^2/4000 - cos(0)cos(pi) = 2 + 2pi^2/4000
    got = fit("griewank", [[math.pi, 0.0], [0.0, math.sqrt(2) * math.pi]])
    assert got == pytest.approx([-(2 + math.pi**2 / 4000), -(2 + 2 * math.pi**2 / 4000)], abs=1e-12)


def test_schwefel_by_hand() -> None:
    # (0,): 418.9829 - 0; (100, 0): 2 * 418.9829 - 100 sin(10)
    got = fit("schwefel", [[0.0]])
    assert got == pytest.approx([-418.9829], abs=1e-4)
    got = fit("schwefel", [[100.0, 0.0]])
    assert got == pytest.approx([-(2 * SCHWEFEL_C - 100 * math.sin(10))], abs=1e-9)
    # The optimum location is the textbook 420.9687...
    assert SCHWEFEL_X == pytest.approx(420.9687, abs=1e-4)


def test_schwefel_outside_domain_is_not_clamped() -> None:
    # 700 sin(sqrt 700) ~ 679 > 418.98: f is really negative out there; the in-domain
    # rounding clamp must not hide that (it would flatter unclipped genomes).
    expected = -(SCHWEFEL_C - 700 * math.sin(math.sqrt(700)))
    assert expected > 200
    assert fit("schwefel", [[700.0]]) == pytest.approx([expected], abs=1e-9)


def test_schwefel_float32_rounding_near_optimum_never_beats_it() -> None:
    # Every float32 within 0.05 of x*: about 8% of them round the per-gene gap
    # C - x sin(sqrt x) below zero (checked here, so the test sees the case); the
    # in-domain clamp must keep fitness <= optimum for all of them.
    x = torch.linspace(SCHWEFEL_X - 0.05, SCHWEFEL_X + 0.05, 20001, dtype=torch.float64).float()
    raw_gap = SCHWEFEL_C - x * torch.sin(torch.sqrt(x))
    assert int((raw_gap < 0).sum()) > 100
    fitness = make_problem("schwefel", 1).evaluate(x[:, None])
    assert float(fitness.max()) == 0.0


def _random_population(name: str, count: int, dim: int, seed: int) -> torch.Tensor:
    problem = make_problem(name, dim)
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(count, dim, generator=gen, dtype=torch.float64)
    return problem.lower + u * (problem.upper - problem.lower)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_equals_per_row(name: str, dtype: torch.dtype) -> None:
    problem = make_problem(name, 7)
    genomes = _random_population(name, 33, 7, seed=1).to(dtype)
    batched = problem.evaluate(genomes)
    rows = torch.cat([problem.evaluate(genomes[i : i + 1]) for i in range(genomes.shape[0])])
    assert batched.shape == (33,) and batched.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(batched, rows, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", BUILTINS)
def test_float32_agrees_with_float64(name: str) -> None:
    problem = make_problem(name, 10)
    genomes = _random_population(name, 50, 10, seed=2)
    f64 = problem.evaluate(genomes)
    f32 = problem.evaluate(genomes.float())
    assert f32.dtype == torch.float32 and f64.dtype == torch.float64
    # Compare on the float32 points themselves, so only the arithmetic differs.
    f64_of_f32 = problem.evaluate(genomes.float().double())
    torch.testing.assert_close(f32.double(), f64_of_f32, rtol=1e-5, atol=1e-3)
    assert not torch.equal(f64, torch.zeros_like(f64))


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_points_are_below_optimum(name: str, dtype: torch.dtype) -> None:
    problem = make_problem(name, 6)
    fitness = problem.evaluate(_random_population(name, 200, 6, seed=3).to(dtype))
    assert fitness.shape == (200,)
    assert bool((fitness < problem.optimum).all()), "maximisation sign: -f(x) < 0 away from x*"
    assert bool((fitness < problem.solved_at).all()), "random points must not count as solved"


@pytest.mark.parametrize("name", BUILTINS)
def test_empty_population_and_nan(name: str) -> None:
    problem = make_problem(name, 3)
    assert problem.evaluate(torch.empty(0, 3)).shape == (0,)
    genomes = torch.zeros(2, 3)
    genomes[1, 0] = float("nan")
    fitness = problem.evaluate(genomes)
    assert math.isnan(fitness[1].item()) and not math.isnan(fitness[0].item())


def _genes(name: str, dim: int) -> st.SearchStrategy[list[float]]:
    lo, hi = DOMAINS[name]
    x_star = make_problem(name, 2).optimum_point(dtype=torch.float64)[0].item()
    anywhere = st.floats(0.0, 1.0).map(lambda u: lo + u * (hi - lo))
    near_optimum = st.floats(-0.05, 0.05).map(lambda e: x_star + e)
    gene = st.one_of(anywhere, near_optimum, st.sampled_from([lo, hi, x_star]))
    return st.lists(gene, min_size=dim, max_size=dim)


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fitness_never_exceeds_optimum_in_domain(name: str, dtype: torch.dtype, data: st.DataObject) -> None:
    dim = data.draw(st.integers(2, 6))
    problem = make_problem(name, dim)
    row = torch.tensor(data.draw(_genes(name, dim)), dtype=dtype)
    lower, upper = problem.bounds(dtype=dtype)
    row = torch.minimum(torch.maximum(row, lower), upper)  # float32 rounding may step out
    assert problem.evaluate(row[None, :]).item() <= problem.optimum


# --------------------------------------------------------------------------- Problem


def _plain(**overrides) -> Problem:
    fields = dict(name="plain", dim=3, lower=-1.0, upper=1.0, fn=lambda x: -(x * x).sum(dim=1))
    fields.update(overrides)
    return Problem(**fields)


def test_bounds_shape_dtype_values() -> None:
    lower, upper = make_problem("rosenbrock", 5).bounds(device="cpu", dtype=torch.float64)
    assert lower.shape == upper.shape == (5,)
    assert lower.dtype == torch.float64 and lower.device.type == "cpu"
    assert lower.tolist() == [-5.0] * 5 and upper.tolist() == [10.0] * 5
    assert make_problem("sphere", 2).bounds()[0].dtype == torch.get_default_dtype()


def test_evaluate_rejects_bad_genomes() -> None:
    problem = make_problem("sphere", 3)
    with pytest.raises(ConfigError, match=r"shape \[P, 3\], got \[3\]"):
        problem.evaluate(torch.zeros(3))
    with pytest.raises(ConfigError, match=r"shape \[P, 3\], got \[2, 4\]"):
        problem.evaluate(torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="floating point"):
        problem.evaluate(torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ConfigError, match="torch.Tensor"):
        problem.evaluate([[0.0, 0.0, 0.0]])


def test_evaluate_checks_and_casts_the_fitness_function_output() -> None:
    wide = _plain(fn=lambda x: x.sum(dim=1, keepdim=True))
    with pytest.raises(ConfigError, match=r"must return shape \[2\], got \[2, 1\]"):
        wide.evaluate(torch.zeros(2, 3))
    as_double = _plain(fn=lambda x: x.double().sum(dim=1))
    out = as_double.evaluate(torch.ones(2, 3))
    assert out.dtype == torch.float32 and out.tolist() == [3.0, 3.0]


def test_other_genome_kinds_skip_the_vector_shape_check() -> None:
    graph = _plain(genome_kind="graph", fn=lambda g: g[:, 0, 0])
    assert graph.evaluate(torch.ones(4, 5, 2)).tolist() == [1.0] * 4


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"lower": 1.0, "upper": 1.0}, "lower bound 1.0 must be below upper bound 1.0"),
        ({"lower": float("nan")}, "lower must be a finite number"),
        ({"dim": 0}, "dim must be an integer >= 1, got 0"),
        ({"dim": 2.0}, "dim must be an integer"),
        ({"fn": "not callable"}, "fn must be callable"),
        ({"name": ""}, "non-empty"),
        ({"optimum": 0.0, "solved_at": 0.5}, "above the optimum"),
        ({"genome_kind": ""}, "genome_kind"),
    ],
)
def test_problem_validates_its_fields(overrides: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        _plain(**overrides)


def test_problem_is_frozen_and_canonical() -> None:
    problem = _plain(lower=-1, upper="2", solved_at="-0.5", optimum=0)
    assert (problem.lower, problem.upper, problem.solved_at) == (-1.0, 2.0, -0.5)
    assert isinstance(problem.lower, float) and problem.optimum_point() is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.dim = 4  # type: ignore[misc]


# --------------------------------------------------------------------------- registry


@pytest.fixture
def plugin_path(monkeypatch: pytest.MonkeyPatch):
    """Make tests/plugin_fixture importable, and forget it afterwards."""
    monkeypatch.syspath_prepend(str(TESTS_DIR))
    yield
    for mod in [m for m in sys.modules if m == "plugin_fixture" or m.startswith("plugin_fixture.")]:
        del sys.modules[mod]


def _write_dist(site: Path, dist: str, entry_points: str) -> None:
    """A real, minimal installed distribution: what pip leaves in site-packages."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[islands.problems]\n" + entry_points)


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugin_path):
    first, second = tmp_path / "site1", tmp_path / "site2"
    _write_dist(first, "islands-toy-plugin", (
        "toy = plugin_fixture.toy:make\n"
        "toy_nested = plugin_fixture.toy:Factories.nested\n"
        "toy_bad = plugin_fixture.toy:not_a_problem\n"
        "toy_broken = plugin_fixture.broken:make\n"
        "rastrigin = plugin_fixture.toy:make\n"
    ))
    # Same plug-in name later on sys.path: the first one found must win.
    _write_dist(second, "islands-other-plugin", "toy = plugin_fixture.toy:not_a_problem\n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    return first


def test_import_path_factory_gets_dim_and_params(plugin_path) -> None:
    problem = make_problem("plugin_fixture.toy:make", dim=4, scale=3.0)
    assert (problem.name, problem.dim) == ("toy", 4)
    assert problem.evaluate(torch.zeros(2, 4, dtype=torch.float64)).tolist() == [-12.0, -12.0]
    nested = make_problem("plugin_fixture.toy:Factories.nested", dim=2)
    assert nested.evaluate(torch.zeros(1, 2)).tolist() == [-4.0]


def test_entry_point_plugin(installed_plugin) -> None:
    problem = make_problem("toy", dim=3, scale=0.5)
    assert problem.name == "toy" and problem.dim == 3
    assert problem.evaluate(torch.zeros(1, 3)).tolist() == [-1.5]
    assert make_problem("toy_nested", dim=1).evaluate(torch.zeros(1, 1)).tolist() == [-2.0]
    # A built-in name shadows the plug-in of the same name.
    assert make_problem("rastrigin", dim=2).lower == -5.12


def test_describe_all_lists_builtins_and_plugins(installed_plugin) -> None:
    rows = describe_all()
    names = [name for name, _ in rows]
    assert names == sorted(names) and len(names) == len(set(names))
    assert set(BUILTINS + LANDSCAPES + CONTROL) | {"toy", "toy_nested", "toy_bad", "toy_broken"} == set(names)
    text = dict(rows)
    assert text["toy"] == "Toy plug-in: a scaled sphere centred at (1, ..., 1)."
    assert "cannot load" in text["toy_broken"] and "plug-in exploded" in text["toy_broken"]
    assert text["rastrigin"].startswith("Rastrigin")
    assert all(desc and "\n" not in desc for desc in text.values())


def test_describe_all_without_test_plugins_has_the_builtins() -> None:
    # Other installed plug-ins may appear too; the built-ins always do, with summaries.
    rows = dict(describe_all())
    assert set(BUILTINS) <= set(rows) and "toy" not in rows
    assert rows["schwefel"].startswith("Schwefel 2.26")


def _message(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, "messages are one line"
    return message


def test_unknown_name_lists_known_problems(installed_plugin) -> None:
    with pytest.raises(ProblemNotFound) as excinfo:
        make_problem("rastrign")
    message = _message(excinfo)
    assert "'rastrign'" in message and "Did you mean 'rastrigin'?" in message
    for name in BUILTINS + ["toy"]:
        assert name in message
    with pytest.raises(ProblemNotFound, match="use a colon"):
        make_problem("plugin_fixture.toy.make")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("no_such_module_xyz:make", ["no_such_module_xyz", "ModuleNotFoundError"]),
        ("plugin_fixture.toy:missing", ["has no attribute 'missing'"]),
        ("plugin_fixture.broken:make", ["cannot import module 'plugin_fixture.broken'",
                                        "RuntimeError: plug-in exploded second line"]),
        (":make", ["expected package.module:factory"]),
        ("plugin_fixture.toy:", ["expected package.module:factory"]),
    ],
)
def test_bad_import_path(plugin_path, path: str, expected: list[str]) -> None:
    with pytest.raises(ProblemNotFound) as excinfo:
        make_problem(path)
    message = _message(excinfo)
    for fragment in expected:
        assert fragment in message


def test_broken_entry_point_says_which_and_why(installed_plugin) -> None:
    with pytest.raises(ProblemNotFound) as excinfo:
        make_problem("toy_broken")
    message = _message(excinfo)
    assert "islands-toy-plugin" in message and "plug-in exploded" in message
    assert isinstance(excinfo.value.__cause__, RuntimeError)


@pytest.mark.parametrize("name", ["plugin_fixture.toy:not_a_problem", "toy_bad"])
def test_factory_returning_non_problem(installed_plugin, name: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        make_problem(name, dim=2)
    assert not isinstance(excinfo.value, ProblemNotFound)
    assert "returned builtins.dict, expected an islands.problems.Problem" in _message(excinfo)


def test_non_callable_factory(plugin_path) -> None:
    with pytest.raises(ConfigError, match="is not callable"):
        make_problem("plugin_fixture.toy:NOT_CALLABLE")


@pytest.mark.parametrize("dim", [0, -3, 2.5, True, "3", None])
@pytest.mark.parametrize("name", ["sphere", "plugin_fixture.toy:make"])
def test_bad_dim(plugin_path, name: str, dim: object) -> None:
    with pytest.raises(ConfigError, match="dim must be an integer >= 1"):
        make_problem(name, dim=dim)  # type: ignore[arg-type]


def test_rosenbrock_needs_two_dimensions() -> None:
    with pytest.raises(ConfigError, match="rosenbrock: dim must be an integer >= 2, got 1"):
        make_problem("rosenbrock", 1)


def test_parameters_are_checked(plugin_path) -> None:
    with pytest.raises(ConfigError, match="it takes: dim, solved_at"):
        make_problem("sphere", 3, a=1.0)
    with pytest.raises(ConfigError, match="it takes: dim, scale"):
        make_problem("plugin_fixture.toy:make", 3, bogus=1)
    with pytest.raises(ConfigError, match="rastrigin: a must be a finite number, got 'abc'"):
        make_problem("rastrigin", 3, a="abc")
    with pytest.raises(ConfigError, match="a must be >= 0"):
        make_problem("rastrigin", 3, a=-1)
    with pytest.raises(ConfigError, match="ackley: need a >= 0 and b > 0"):
        make_problem("ackley", 3, b=0)
    with pytest.raises(ConfigError, match="rejected its parameters: ValueError: scale must be > 0") as excinfo:
        make_problem("plugin_fixture.toy:make", 3, scale=-1.0)
    assert isinstance(excinfo.value.__cause__, ValueError)


def test_solved_at_override() -> None:
    assert make_problem("rastrigin", 3, solved_at=None).solved_at is None
    assert make_problem("rastrigin", 3, solved_at=-0.5).solved_at == -0.5
    with pytest.raises(ConfigError, match="above the optimum"):
        make_problem("sphere", 3, solved_at=1.0)


def test_positive_infinity_is_no_fitness_and_ranks_with_nan() -> None:
    values = torch.tensor([1.0, float("inf"), float("nan"), float("-inf")])
    out = _plain(fn=lambda x: values.clone()).evaluate(torch.zeros(4, 3))
    assert out[0].item() == 1.0 and math.isnan(out[1].item()) and math.isnan(out[2].item())
    assert out[3].item() == float("-inf")  # the worst real fitness stays what it is
    assert not torch.isposinf(out).any()


def test_a_target_above_a_known_optimum_is_named() -> None:
    sphere = make_problem("sphere", 3)
    assert sphere.target_note(None) is None and sphere.target_note(0.0) is None
    assert sphere.target_note(-1e-8) is None
    note = sphere.target_note(0.5)
    assert note is not None and note.startswith("--target 0.5 is above the best fitness sphere can reach (0;")
    assert _plain().target_note(1e9) is None  # no known optimum: any target
