"""Results out: `islands export`, `islands.results.open_run` and `load_policy` on real runs."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from islands.algorithms.neat import NeatAlgorithm, NeatConfig
from islands.algorithms.neat import genome as gn
from islands.cli import main
from islands.config import RunConfig
from islands.errors import IslandsError
from islands.problems import make_problem
from islands.results import HISTORY_KEYS, NoChampion, load_policy, open_run
from islands.runs import evolve
from migration_pool.rundir import RunDir
from support.factories import QUIET, grown_neat_run, small_config

XOR_IN = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


@pytest.fixture(scope="module")
def ga_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ga")
    for island in ("island-00", "island-01"):
        evolve(island, root, small_config(generations=15), **QUIET)
    return root


@pytest.fixture(scope="module")
def neat_run(tmp_path_factory):
    return grown_neat_run(tmp_path_factory.mktemp("neat"))


def _export(root, *args):
    return CliRunner().invoke(main, ["export", str(root), *args], catch_exceptions=False)


def test_evolve_only_run_champion_is_the_best_islands_best_ever(ga_run, tmp_path):
    statuses = {i: RunDir(ga_run).island(i).read_status() for i in ("island-00", "island-01")}
    best = max(statuses, key=lambda i: statuses[i]["best_ever"])
    # No launcher, yet the run has its champion file, written as the launcher writes it.
    written = RunDir(ga_run).read_champion()
    assert written["island"] == best and written["fitness"] == statuses[best]["best_ever"]
    assert written["run_id"] == open_run(ga_run).run_id and written["problem"] == "rastrigin"
    np.testing.assert_array_equal(written["genome"], statuses[best]["best_genome"])
    # Without the file (a run from before), the champion comes from the statuses.
    shutil.copytree(ga_run, tmp_path / "copy")
    (tmp_path / "copy" / "champion.isld").unlink()
    run = open_run(tmp_path / "copy")
    genome, fitness, island = run.champion()
    assert island == best and fitness == statuses[best]["best_ever"]
    np.testing.assert_array_equal(genome, statuses[best]["best_genome"])
    other = "island-01" if best == "island-00" else "island-00"
    assert run.champion(other).island == other
    assert run.config.problem == "rastrigin"


def test_a_launchers_champion_file_is_preferred_and_plain_vectors_have_no_policy(tmp_path):
    evolve("island-00", tmp_path, small_config(generations=3), **QUIET)
    from launcher.summary import champion_record
    from islands.status.record import IslandStatus

    run = open_run(tmp_path)
    status = IslandStatus.from_body(RunDir(tmp_path).island("island-00").read_status())
    RunDir(tmp_path).write_champion(champion_record(status, "rastrigin", 8, run.run_id) | {"fitness": 1.5})
    assert open_run(tmp_path).champion().fitness == 1.5  # the file, not the status
    # A file an island has since beaten (a resumed run, still running) gives way to the status.
    RunDir(tmp_path).write_champion(champion_record(status, "rastrigin", 8, run.run_id) | {"fitness": -1e9})
    assert open_run(tmp_path).champion().fitness == status.best_ever
    with pytest.raises(IslandsError, match="not a network task"):
        load_policy(tmp_path)


def test_export_npz_and_json_hold_the_recorded_champion(ga_run, tmp_path):
    genome, fitness, island = open_run(ga_run).champion()
    r = _export(ga_run, "--out", str(tmp_path / "c.npz"))
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["genome"], genome)
        assert float(z["fitness"]) == fitness and str(z["island"]) == island
        assert str(z["problem"]) == "rastrigin" and "network_kind" not in z.files
    r = _export(ga_run, "--format", "json", "--island", "island-01", "--out", str(tmp_path / "c.json"))
    assert r.exit_code == 0, r.output
    body = json.loads((tmp_path / "c.json").read_text())
    g1, f1, _ = open_run(ga_run).champion("island-01")
    assert body["island"] == "island-01" and body["fitness"] == f1
    np.testing.assert_array_equal(np.asarray(body["genome"], dtype=np.asarray(g1).dtype), g1)


def test_export_refuses_what_is_not_there(ga_run, tmp_path):
    r = CliRunner().invoke(main, ["export", str(ga_run), "--island", "island-07"])
    assert r.exit_code == 2 and "island-07" in r.output and r.output.count("\n") == 1
    r = CliRunner().invoke(main, ["export", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and r.output.startswith("error:") and not (tmp_path / "nothing").exists()
    empty = tmp_path / "empty"
    evolve("island-00", empty, small_config(generations=0), **QUIET)
    try:
        open_run(empty).champion()
    except NoChampion:
        pass  # zero generations may record no best genome; then the export says so
    else:
        assert _export(empty).exit_code == 0


def test_history_rows_are_flat_and_uniform(ga_run):
    rows = open_run(ga_run).history()
    assert [r["generation"] for r in rows if r["island"] == "island-01"] == list(range(16))  # 0 = initial
    assert all(tuple(r) == HISTORY_KEYS for r in rows)
    assert all(not isinstance(v, (dict, list, tuple)) for r in rows for v in r.values())
    assert {r["island"] for r in rows} == {"island-00", "island-01"}
    last = [r for r in rows if r["island"] == "island-00"][-1]
    assert last["generation"] == 15 and last["best_ever"] == RunDir(ga_run).island("island-00").read_status()["best_ever"]


def test_neat_xor_champion_exported_and_loaded_gives_the_islands_outputs(neat_run, tmp_path):
    genome, fitness, island = open_run(neat_run).champion()
    assert set(genome) == set(gn.RECORD_FIELDS)
    # The island's own network: the recorded genome compiled the way the algorithm compiles.
    own = NeatAlgorithm(make_problem("xor"), NeatConfig()).compile(gn.from_records([genome]))
    own.reset(4)
    expected = own(XOR_IN[None])[0]
    policy = load_policy(neat_run)
    assert torch.equal(policy(XOR_IN), expected)
    assert policy(XOR_IN).shape == (4, 1) and policy(XOR_IN[3]).shape == (1,)
    assert float(make_problem("xor").task.evaluate(policy, torch.device("cpu"))[0]) == pytest.approx(fitness)

    r = _export(neat_run, "--out", str(tmp_path / "x.npz"))
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        for k in gn.RECORD_FIELDS:
            np.testing.assert_array_equal(z[f"genome_{k}"], genome[k])
        assert str(z["network_kind"]) == "neat" and float(z["network_steepness"]) == NeatConfig().steepness
        kinds = list(z["network_node_kind"])
        assert kinds[:4] == ["input", "input", "bias", "output"]
        assert ("hidden" in kinds) == (len(genome["nodes"]) > 4)
        # The exported structure alone rebuilds the same network.
        rebuilt = {k: z[f"genome_{k}"] for k in gn.RECORD_FIELDS}
    again = NeatAlgorithm(make_problem("xor"), NeatConfig()).compile(gn.from_records([rebuilt]))
    again.reset(4)
    assert torch.equal(again(XOR_IN[None])[0], expected)


def test_pure_cartpole_champion_replays_to_its_recorded_fitness(tmp_path):
    cfg = RunConfig(problem="cartpole", algorithm="pure", population=16, generations=4, seed=2,
                    problem_params={"max_steps": 200, "episodes": 2, "fresh": 0}, checkpoint_seconds=0)
    evolve("island-00", tmp_path, cfg, **QUIET)
    run = open_run(tmp_path)
    genome, fitness, _ = run.champion()
    problem = run.problem()
    policy = load_policy(run)
    replay = float(problem.task.evaluate(policy, torch.device("cpu"))[0])
    assert replay == pytest.approx(fitness, abs=1e-6)
    assert float(problem.fn(torch.as_tensor(genome)[None])[0]) == pytest.approx(fitness, abs=1e-6)
    obs = torch.zeros((3, 4))
    assert policy(obs).shape == (3, 1) and bool(((policy(obs) > 0) & (policy(obs) < 1)).all())

    # The champion file and both exports carry the settings that rebuild it without the manifest.
    written = RunDir(tmp_path).read_champion()
    assert written["problem_params"] == dict(cfg.problem_params) and written["algorithm"] == "pure"
    assert written["population"] == 16 and written["dtype"] is None
    r = _export(tmp_path, "--format", "json")
    assert r.exit_code == 0, r.output
    body = json.loads((tmp_path / "champion.json").read_text())
    assert body["problem_params"] == dict(cfg.problem_params) and body["algorithm_params"] == {}
    rebuilt = make_problem(body["problem"], body["dim"], **body["problem_params"])
    again = float(rebuilt.fn(torch.as_tensor(body["genome"], dtype=torch.float64)[None])[0])
    assert again == pytest.approx(fitness, abs=1e-6)
    assert _export(tmp_path, "--out", str(tmp_path / "c.npz")).exit_code == 0
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert json.loads(str(z["problem_params"])) == dict(cfg.problem_params)
        assert int(z["population"]) == 16 and str(z["dtype"]) == ""
    assert body["network_kind"] == "mlp" and body["network_layer_sizes"] == [4, 4, 1]
    w0, b0 = np.asarray(body["network_weights_0"]), np.asarray(body["network_biases_0"])
    w1, b1 = np.asarray(body["network_weights_1"]), np.asarray(body["network_biases_1"])
    x = np.random.default_rng(0).normal(size=(5, 4))
    by_hand = 1 / (1 + np.exp(-(np.tanh(x @ w0 + b0) @ w1 + b1)))
    np.testing.assert_allclose(by_hand, policy(torch.as_tensor(x, dtype=torch.float32)).numpy(), atol=1e-5)


def test_export_refuses_an_out_path_whose_folder_is_missing(ga_run, tmp_path):
    """`--out` never creates folders: a missing (or non-folder) parent is one line, exit 2, nothing made."""
    import subprocess
    import sys

    from support.procs import child_env

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out in (tmp_path / "missing" / "deeper" / "x.npz", a_file / "x.npz"):
        r = subprocess.run([sys.executable, "-m", "islands", "export", str(ga_run), "--out", str(out)],
                           env=child_env(), capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and str(out.parent) in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""
    assert not (tmp_path / "missing").exists() and a_file.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_history_frame_is_the_history_as_a_dataframe(ga_run):
    pandas = pytest.importorskip("pandas", reason="pandas not installed (the islands[pandas] extra)")
    run = open_run(ga_run)
    df = run.history_frame()
    assert isinstance(df, pandas.DataFrame) and tuple(df.columns) == HISTORY_KEYS
    rows = run.history()
    assert len(df) == len(rows) and list(df["island"]) == [r["island"] for r in rows]
    assert list(df["evaluations"]) == [r["evaluations"] for r in rows]  # None (diversity) is NaN there
    assert df.groupby("island")["best_ever"].max().to_dict() == {
        i: RunDir(ga_run).island(i).read_status()["best_ever"] for i in ("island-00", "island-01")}
    assert list(run.history_frame("island-01")["generation"]) == list(range(16))


def test_history_frame_without_pandas_names_the_extra(ga_run, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(IslandsError, match=r"islands\[pandas\]") as e:
        open_run(ga_run).history_frame()
    assert "\n" not in str(e.value)
