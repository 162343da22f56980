"""`islands draw RUN`: a NEAT champion's network as a PNG, with matplotlib only (no graphviz).

Nodes sit in columns: inputs and the bias on the left, hidden nodes by their depth (the
longest path from an input over enabled connections, as the compiled network evaluates
them), outputs on the right. An enabled connection is blue when its weight is positive and
red when negative, its width growing with |weight|; a disabled one is a thin dashed grey line
(or left out with `--hide-disabled`); a connection back to the same or an earlier column (a
recurrent one) is curved. The network comes from `islands.results.RunResults.network`, so
the picture shows exactly what `islands export` writes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import click
import numpy as np

from islands.errors import IslandsError
from islands.exit_codes import EXIT_ERROR, EXIT_USAGE
from islands.results import open_run
from migration_pool.errors import PoolError

KIND_COLOURS = {"input": "#4c9be8", "bias": "#b0b0b0", "hidden": "#f2b134", "output": "#5cb85c"}
POSITIVE, NEGATIVE, DISABLED = "#1f5fbf", "#c8332b", "#9a9a9a"
NODE_SIZE = 520  # points^2: nodes stay round whatever the axes' aspect


def layers(net: Mapping[str, Any]) -> dict[int, int]:
    """Column of every node id: inputs and bias 0, hidden nodes their depth, outputs last.

    Depth is the longest path from an input over enabled connections; in a graph with
    cycles (recurrent NEAT) the longest path is unbounded, so the shortest path is used
    there. Hidden nodes no enabled path reaches sit in column 1.
    """
    nodes = [int(n) for n in net["nodes"]]
    kind = dict(zip(nodes, (str(k) for k in net["node_kind"])))
    on = np.asarray(net["enabled"], dtype=bool)
    edges = [(int(a), int(b)) for a, b in zip(np.asarray(net["conn_in"])[on], np.asarray(net["conn_out"])[on])
             if a in kind and b in kind and kind[b] not in ("input", "bias")]
    sources = {n for n in nodes if kind[n] in ("input", "bias")}
    depth = _longest(nodes, edges, sources)
    if depth is None:  # a cycle: breadth-first distance instead
        depth = _shortest(nodes, edges, sources)
    hidden = [depth.get(n) or 1 for n in nodes if kind[n] == "hidden"]
    last = max(hidden, default=0) + 1
    out: dict[int, int] = {}
    for n in nodes:
        k = kind[n]
        out[n] = 0 if k in ("input", "bias") else last if k == "output" else max(1, depth.get(n) or 1)
    return out


def _longest(nodes: list[int], edges: list[tuple[int, int]], sources: set[int]) -> dict[int, int] | None:
    depth = {n: 0 for n in sources}
    for _ in range(len(nodes) + 1):  # Bellman-Ford: settles within len(nodes) rounds unless a cycle
        changed = False
        for a, b in edges:
            if a in depth and depth.get(b, -1) < depth[a] + 1:
                depth[b] = depth[a] + 1
                changed = True
        if not changed:
            return depth
    return None


def _shortest(nodes: list[int], edges: list[tuple[int, int]], sources: set[int]) -> dict[int, int]:
    depth = {n: 0 for n in sources}
    frontier = list(sources)
    while frontier:
        nxt = []
        for a, b in edges:
            if a in frontier and b not in depth:
                depth[b] = depth[a] + 1
                nxt.append(b)
        frontier = nxt
    return depth


def positions(net: Mapping[str, Any]) -> dict[int, tuple[float, float]]:
    """(x, y) of every node: x its column, nodes of a column spread evenly over [0, 1]."""
    col = layers(net)
    by_col: dict[int, list[int]] = {}
    for n in (int(v) for v in net["nodes"]):
        by_col.setdefault(col[n], []).append(n)
    last = max(by_col)
    pos = {}
    for c, members in by_col.items():
        # Hidden columns are nudged up and down in turn, so a chain in1 -> h -> h -> out does
        # not draw every edge on one horizontal line through the nodes in between.
        shift = 0.0 if c in (0, last) else (0.06 if c % 2 else -0.06)
        for i, n in enumerate(members):
            pos[n] = (float(c), 1.0 - (i + 1) / (len(members) + 1) + shift)
    return pos


def draw_network(net: Mapping[str, Any], path: str | Path, title: str = "", hide_disabled: bool = False) -> Path:
    """Draw a NEAT network (`RunResults.network` form) into a PNG at `path`; returns the path."""
    import matplotlib  # lazy: matplotlib (~0.5 s) only to draw; `islands --help` imports this module

    matplotlib.use("Agg")  # before pyplot loads: no display needed
    import matplotlib.pyplot as plt  # lazy: after the backend is chosen
    from matplotlib.lines import Line2D  # lazy: matplotlib, as above
    from matplotlib.markers import MarkerStyle  # lazy: matplotlib, as above
    from matplotlib.patches import FancyArrowPatch  # lazy: matplotlib, as above

    pos = positions(net)
    kind = {int(n): str(k) for n, k in zip(net["nodes"], net["node_kind"])}
    weight = np.asarray(net["weight"], dtype=float)
    enabled = np.asarray(net["enabled"], dtype=bool)
    big = float(np.abs(weight[enabled]).max(initial=0.0)) or 1.0
    columns = max(x for x, _ in pos.values()) + 1
    rows = max(sum(1 for p in pos.values() if p[0] == c) for c in range(int(columns)))
    fig, ax = plt.subplots(figsize=(2.2 + 2.0 * columns, 1.5 + 0.6 * max(rows, 3)))
    names = _names(net, kind)
    for a, b, w, on in zip(net["conn_in"], net["conn_out"], weight, enabled):
        a, b = int(a), int(b)
        if a not in pos or b not in pos or (not on and hide_disabled):
            continue
        style = dict(color=(POSITIVE if w >= 0 else NEGATIVE) if on else DISABLED,
                     lw=0.6 + 3.4 * abs(w) / big if on else 0.6, ls="-" if on else "--",
                     alpha=0.9 if on else 0.6, zorder=1)
        if a == b:  # a self-loop: a small ring above the node
            ax.scatter(*pos[a], s=NODE_SIZE * 1.6, marker=MarkerStyle("o", fillstyle="none"), zorder=1,
                       edgecolors=style["color"], facecolors="none", linewidths=style["lw"],
                       linestyle=style["ls"], alpha=style["alpha"])
            continue
        span = pos[b][0] - pos[a][0]
        rad = 0.35 if span <= 0 else 0.12 if span > 1 else 0.0  # back edges and skips curve around nodes
        ax.add_patch(FancyArrowPatch(pos[a], pos[b], arrowstyle="-|>", mutation_scale=10, shrinkA=13, shrinkB=13,
                                     connectionstyle=f"arc3,rad={rad}", **style))
    for n, (x, y) in pos.items():
        ax.scatter([x], [y], s=NODE_SIZE, color=KIND_COLOURS.get(kind[n], "#dddddd"), edgecolors="black",
                   linewidths=0.8, zorder=2)
        ax.text(x, y, names[n], ha="center", va="center", fontsize=7, zorder=3)
    ax.set_xlim(-0.6, columns - 0.4)
    ax.set_ylim(-0.05, 1.05)
    ax.set_aspect("auto")
    ax.axis("off")
    ax.legend(handles=[Line2D([], [], color=POSITIVE, lw=2.5, label="weight > 0"),
                       Line2D([], [], color=NEGATIVE, lw=2.5, label="weight < 0"),
                       Line2D([], [], color=DISABLED, lw=0.8, ls="--", label="disabled")][: 2 if hide_disabled else 3],
              loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=3, frameon=False, fontsize=8)
    ax.set_title(title, fontsize=9)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def _names(net: Mapping[str, Any], kind: Mapping[int, str]) -> dict[int, str]:
    """in0.., bias, out0.., and h1.. for hidden nodes in id order (their ids are innovation
    numbers, too long to print)."""
    n_in = int(net["inputs"])
    hidden = sorted(n for n, k in kind.items() if k == "hidden")
    names = {n: f"h{i + 1}" for i, n in enumerate(hidden)}
    for n, k in kind.items():
        if k == "input":
            names[n] = f"in{n}"
        elif k == "bias":
            names[n] = "bias"
        elif k == "output":
            names[n] = f"out{n - n_in - 1}"
    return names


@click.command("draw")
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--island", default=None, help="Draw this island's best network (default: the run's champion).")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write (default: RUN/champion.png).")
@click.option("--hide-disabled", is_flag=True, help="Leave disabled connections out (default: dashed grey).")
def draw(run: Path, island: str | None, out: Path | None, hide_disabled: bool) -> None:
    """Draw the NEAT champion of RUN (or --island's best network) as a PNG."""

    def fail(message: str, code: int) -> None:
        click.echo(f"error: {message}", err=True)
        raise SystemExit(code)

    try:
        res = open_run(run)
        found = res.islands()
        if island is not None and island not in found:
            fail(f"{run} has no island {island!r} (islands: {', '.join(found) or 'none'})", EXIT_USAGE)
        algorithms = {res.island_config(i).algorithm for i in ([island] if island else found)} or {res.config.algorithm}
        if "neat" not in algorithms:
            fail(f"{run} evolves with {', '.join(sorted(algorithms))}, not NEAT: islands draw draws NEAT networks "
                 "(islands export writes any champion's genome and network)", EXIT_USAGE)
        champ = res.champion(island)
        if not isinstance(champ.genome, Mapping):
            fail(f"the champion of {run} ({champ.island}) is a vector, not a NEAT network: islands draw draws "
                 "NEAT networks (try --island with a NEAT island, or islands export)", EXIT_USAGE)
        net = res.network(island)
    except (IslandsError, PoolError) as e:  # no run, a bad manifest, no champion yet
        fail(str(e), EXIT_ERROR)
    assert net is not None
    hidden = int(sum(1 for k in net["node_kind"] if str(k) == "hidden"))
    title = (f"{Path(run).name}: {champ.island}, fitness {champ.fitness:.6g}"
             f"{'' if champ.generation is None else f' (generation {champ.generation})'}\n"
             f"{hidden} hidden node{'s' * (hidden != 1)}, {int(np.sum(net['enabled']))} enabled connections"
             f"{', recurrent' if net['recurrent'] else ''}")
    target = out or run / "champion.png"
    try:
        draw_network(net, target, title, hide_disabled)
    except OSError as e:
        fail(f"cannot write {target}: {e.strerror or e}", EXIT_ERROR)
    click.echo(f"network of {champ.island} drawn to {target}")
