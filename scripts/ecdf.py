"""COCO-style runtime ECDF of a quality benchmark's runs, one panel per dimension.

Used by bench_algorithms.py and bench_coco.py. A run is a dict with "dim", "method" and "hits"
({target: evaluations at which f - f_opt first reached it}, from `quality_runners.Trace`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from quality_runners import TARGETS


def ecdf_plot(runs: list[dict], path: Path, budget_per_dim: int, *, pairs: str, title: Callable[[int, list[dict]], str],
              peers: Sequence[str] = ()) -> None:
    """Share of (`pairs`, target) reached against evaluations / D, from the first evaluation to the budget.

    `pairs` names what a run is (e.g. "problem, seed"), `title(dim, runs of that dim)` titles a
    panel, and methods in `peers` are drawn dashed.
    """
    import matplotlib  # lazy: plotting only at the end

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after the backend is chosen

    dims = sorted({r["dim"] for r in runs})
    fig, axes = plt.subplots(1, len(dims), figsize=(6.5 * len(dims), 4.8), squeeze=False)
    for ax, dim in zip(axes[0], dims):
        mine = [r for r in runs if r["dim"] == dim]
        for method in dict.fromkeys(r["method"] for r in mine):
            rs = [r for r in mine if r["method"] == method]
            hits = sorted(e / dim for r in rs for e in r["hits"].values())
            xs = np.array([1.0 / dim] + hits + [budget_per_dim])  # from the first evaluation to the budget
            ys = np.minimum(np.arange(len(xs)), len(hits)) / (len(rs) * len(TARGETS))
            ax.step(xs, ys, where="post", label=method, ls="--" if method in peers else "-")
        ax.set(xscale="log", xlabel="evaluations / D", ylabel=f"share of ({pairs}, target) reached",
               title=title(dim, mine), ylim=(0, 1))
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
