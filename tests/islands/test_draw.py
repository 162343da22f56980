"""`islands draw`: a NEAT champion drawn with matplotlib, and the mistakes it refuses."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from islands.cli import main
from islands.draw import layers, positions
from islands.runs import evolve
from support.factories import QUIET, grown_neat_run, small_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def neat_run(tmp_path_factory):
    return grown_neat_run(tmp_path_factory.mktemp("neat"))


def _draw(*args):
    return CliRunner().invoke(main, ["draw", *map(str, args)])


def _net(conns, hidden=(), enabled=None, inputs=2, outputs=1):
    """A network in `RunResults.network` form: inputs 0.., bias, outputs, then `hidden` ids."""
    nodes = [*range(inputs + 1 + outputs), *hidden]
    kind = ["input"] * inputs + ["bias"] + ["output"] * outputs + ["hidden"] * len(hidden)
    return {"inputs": inputs, "outputs": outputs, "nodes": np.array(nodes), "node_kind": np.array(kind),
            "conn_in": np.array([a for a, _ in conns]), "conn_out": np.array([b for _, b in conns]),
            "weight": np.linspace(-1, 1, len(conns)),
            "enabled": np.array(enabled if enabled is not None else [True] * len(conns)), "recurrent": False}


def test_nodes_are_laid_out_by_depth_with_outputs_last():
    # 0 -> 10 -> 11 -> 3 and 1 -> 3; hidden 12 reached only through a disabled connection
    net = _net([(0, 10), (10, 11), (11, 3), (1, 3), (2, 12)], hidden=(10, 11, 12),
               enabled=[True, True, True, True, False])
    col = layers(net)
    assert col == {0: 0, 1: 0, 2: 0, 10: 1, 11: 2, 12: 1, 3: 3}
    # A cycle (recurrent NEAT) falls back to the shortest path and still places every node.
    cyc = layers(_net([(0, 10), (10, 11), (11, 10), (11, 3)], hidden=(10, 11)))
    assert cyc[10] == 1 and cyc[11] == 2 and cyc[3] == 3
    pos = positions(net)
    assert {round(x) for x, _ in pos.values()} == {0, 1, 2, 3}
    assert len({p for p in pos.values()}) == len(pos)  # no two nodes on one spot


def test_a_neat_xor_champion_is_drawn_to_a_png(neat_run, tmp_path):
    out = tmp_path / "pics" / "xor.png"
    res = _draw(neat_run, "-o", out)
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"network of island-00 drawn to {out}"
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    # The default path is beside the run; the island's own best works as well.
    res = _draw(neat_run, "--island", "island-00", "--hide-disabled")
    assert res.exit_code == 0 and (neat_run / "champion.png").read_bytes().startswith(PNG_MAGIC)


def test_draw_refuses_what_it_cannot_draw(neat_run, tmp_path):
    ga = tmp_path / "ga"
    evolve("island-00", ga, small_config(generations=2), **QUIET)
    cases = [
        ((ga,), 2, "not NEAT"),
        ((neat_run, "--island", "island-07"), 2, "has no island 'island-07'"),
        ((tmp_path / "missing",), 1, "does not exist"),
    ]
    for args, code, message in cases:
        res = _draw(*args)
        assert res.exit_code == code, (args, res.output)
        assert res.output.startswith("error: ") and message in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1
    assert not (ga / "champion.png").exists()
