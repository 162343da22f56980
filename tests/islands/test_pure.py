"""Pure neuroevolution: batched MLPs, and the GA on network weights solving cart-pole."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

from islands.algorithms import make_algorithm
from islands.config import RunConfig
from islands.errors import ConfigError
from islands.nets import MLP, MLPSpec, parse_layers
from islands.problems import make_problem
from islands.runs import evolve
from migration_pool.rundir import RunDir

QUIET = dict(log=lambda _m: None)


@pytest.mark.parametrize("given, sizes", [
    (8, (8,)), ("8", (8,)), ("16, 4", (16, 4)), ("", ()), (0, ()), ([3, 2], (3, 2)), ("5;5", (5, 5)),
])
def test_parse_layers(given, sizes):
    assert parse_layers(given) == sizes


def test_spec_dim_counts_weights_and_biases():
    assert MLPSpec((4, 8, 1)).dim == 5 * 8 + 9 * 1
    assert MLPSpec((2, 1)).dim == 3
    for bad in [(4,), (4, 0, 1)]:
        with pytest.raises(ConfigError):
            MLPSpec(bad)
    with pytest.raises(ConfigError, match="activation"):
        MLPSpec((2, 1), "swish")


def test_batched_forward_equals_one_network_at_a_time():
    spec = MLPSpec((3, 5, 4, 2), "tanh")
    gen = torch.Generator().manual_seed(0)
    genomes = torch.randn((7, spec.dim), generator=gen, dtype=torch.float64)
    obs = torch.randn((7, 6, 3), generator=gen, dtype=torch.float64)
    got = MLP(spec, genomes)(obs)
    assert got.shape == (7, 6, 2)
    for p in range(7):  # the layout documented in MLPSpec, unpacked by hand
        g, x, at = genomes[p], obs[p], 0
        for i, (a, b) in enumerate(zip(spec.sizes, spec.sizes[1:])):
            w = g[at : at + a * b].reshape(a, b)
            bias = g[at + a * b : at + a * b + b]
            at += a * b + b
            x = x @ w + bias
            x = torch.sigmoid(x) if i == 2 else torch.tanh(x)
        torch.testing.assert_close(got[p], x)


def test_pure_needs_a_network_task():
    with pytest.raises(ConfigError, match="not a network task"):
        make_algorithm(RunConfig(algorithm="pure", problem="rastrigin"), make_problem("rastrigin"))
    algo = make_algorithm(RunConfig(algorithm="pure", problem="cartpole"), make_problem("cartpole"))
    assert algo.genome_kind == "vector"


def test_pure_mode_solves_cartpole(tmp_path):
    # Seeds 0-9 solve it at generations 7-24, and every champion scores 500 on the unseen starts.
    cfg = RunConfig(problem="cartpole", algorithm="pure", population=50, generations=35, seed=1)
    result = evolve("island-00", tmp_path, cfg, **QUIET)
    assert result.reason == "target" and result.best == 500.0
    # Trained on 10 noisy starts a generation, the champion balances on 100 starts it never
    # saw, without noise (gymnasium's CartPole-v1 task): its mean return is above gymnasium's
    # reward threshold of 475 (a random network's is about 9).
    champion = RunDir(tmp_path).island("island-00").read_status()["best_genome"]
    unseen = make_problem("cartpole", episodes=100, noise=0, fresh=0, seed=12345)
    assert unseen.evaluate(torch.as_tensor(champion, dtype=torch.float32)[None]).item() >= 475.0
    history = RunDir(tmp_path).island("island-00").read_history()
    assert history[0]["best"] < 500.0  # it was evolved, not drawn at random


def test_pure_cartpole_from_the_command_line(tmp_path, spawn):
    proc = spawn(
        "import sys; from islands.cli import main; sys.argv[0] = 'islands'; main()",
        "evolve", "island-00", "--run-dir", str(tmp_path), "--algorithm", "pure",
        "--problem", "cartpole", "--param", "hidden=6", "--population", "40",
        "--generations", "80", "--seed", "2",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out.decode()
    status = RunDir(tmp_path).island("island-00").read_status()
    assert (status["state"], status["reason"], status["best_ever"]) == ("finished", "target", 500.0)
    assert np.asarray(status["best_genome"]).shape == (make_problem("cartpole", hidden=6).dim,)
