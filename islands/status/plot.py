"""`islands status --plot FILE.png`: fitness per island, diversity and lineages over time.

The lineage panel marks where a takeover began (red when it came before the target, grey
when after) and where the target was first reached.

The champion's island is drawn on top, thick and labelled; diversity is on a log axis (it
falls by orders of magnitude as islands converge, which a linear axis flattens into one
line); `--plot-x time` draws against wall-clock time since the run began instead of
generations (islands of different speeds then line up as they really ran).

matplotlib is imported here only, with the non-interactive Agg backend, so the report itself
stays fast and works without a display. Histories are sampled (at most `POINTS` lines per
island), which keeps the plot of a long 128-island run quick and its lines readable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from islands.status.reader import open_run, sample_records
from islands.status.report import problem_label
from islands.status.settings import display

POINTS = 400
X_AXES = ("generation", "time")
CHAMPION_STYLE = {"color": "crimson", "lw": 2.6, "zorder": 5}
MAX_STRIPS = 4  # varied settings drawn as strip plots (the JSON and the table carry them all)


def series(root: str | Path, islands: list[str], points: int = POINTS) -> dict[str, dict[str, np.ndarray]]:
    """Sampled history of each island: generation, best_ever and (where recorded) diversity."""
    reader = open_run(root)
    out: dict[str, dict[str, np.ndarray]] = {}
    for island in islands:
        lines = reader.history_tail(island)
        if lines is None:  # unreadable: the report's notes say so
            continue
        recs = [r for r in sample_records(lines, points) if r.generation is not None]
        div = [r for r in sample_records(lines, points, b'"diversity"') if r.generation is not None]
        out[island] = {
            "generation": np.array([r.generation for r in recs], dtype=np.int64),
            "time": np.array([_nan(r.time) for r in recs], dtype=np.float64),
            "best_ever": np.array([_nan(r.best_ever) for r in recs], dtype=np.float64),
            "div_generation": np.array([r.generation for r in div], dtype=np.int64),
            "div_time": np.array([_nan(r.time) for r in div], dtype=np.float64),
            "diversity": np.array([_nan(r.diversity) for r in div], dtype=np.float64),
        }
    return out


def _time_axis(data: Mapping[str, Mapping[str, np.ndarray]], created: float | None) -> tuple[float, float, str]:
    """Start (Unix time), divisor and unit of a time axis that reads well for this run's length."""
    times = np.concatenate([s["time"][np.isfinite(s["time"])] for s in data.values()] or [np.zeros(0)])
    start = float(times.min()) if times.size else 0.0
    if created is not None and times.size and created <= start:
        start = float(created)
    span = float(times.max()) - start if times.size else 0.0
    if span >= 2 * 3600:
        return start, 3600.0, "hours"
    if span >= 120:
        return start, 60.0, "minutes"
    return start, 1.0, "seconds"


def write_plot(root: str | Path, report: Mapping[str, Any], path: str | Path, points: int = POINTS,
               x_axis: str = "generation") -> Path:
    """Draw the run's fitness and diversity curves into a PNG at `path`; returns the path.

    `x_axis` is "generation" or "time" (seconds, minutes or hours since the run began).

    A minimisation benchmark (every fitness <= 0) is drawn as f(x) = -fitness on a log
    axis, where progress over many orders of magnitude stays visible.
    """
    import matplotlib  # lazy: matplotlib (~0.5 s) only for --plot; the report itself stays fast

    matplotlib.use("Agg")  # before pyplot loads: no display needed
    import matplotlib.pyplot as plt  # lazy: after the backend is chosen

    if x_axis not in X_AXES:
        raise ValueError(f"x_axis must be one of {X_AXES}, got {x_axis!r}")
    data = series(root, [i["island"] for i in report["islands"]], points)
    champion = (report["archipelago"].get("champion") or {}).get("island")
    by_time = x_axis == "time"
    t0, t_div, t_unit = _time_axis(data, report["run"].get("created"))

    def xs(s: Mapping[str, np.ndarray], div: bool = False) -> np.ndarray:
        if not by_time:
            return s["div_generation" if div else "generation"]
        return (s["div_time" if div else "time"] - t0) / t_div

    # Archipelago figures are per generation: on a time axis, place a generation at the time
    # the islands (pooled) reached it.
    pooled = sorted((int(g), float(t)) for s in data.values() for g, t in zip(s["generation"], s["time"]) if np.isfinite(t))

    def gen_x(gens: list[int]) -> np.ndarray:
        if not by_time:
            return np.asarray(gens, dtype=np.float64)
        if not pooled:
            return np.full(len(gens), np.nan)
        g, t = np.array(pooled, dtype=np.float64).T
        return (np.interp(gens, g, t) - t0) / t_div
    finite = np.concatenate([s["best_ever"][np.isfinite(s["best_ever"])] for s in data.values()] or [np.zeros(0)])
    minimise = finite.size > 0 and bool(np.all(finite <= 0))
    settings = report.get("settings")
    strips = settings["settings"][:MAX_STRIPS] if settings else []
    fig = plt.figure(figsize=(10, 11 + (3.5 if strips else 0)), constrained_layout=True)
    grid = fig.add_gridspec(4 if strips else 3, max(1, len(strips)), height_ratios=[3, 2, 2] + ([2.5] if strips else []))
    ax_fit = fig.add_subplot(grid[0, :])
    ax_div = fig.add_subplot(grid[1, :], sharex=ax_fit)
    ax_lin = fig.add_subplot(grid[2, :], sharex=ax_fit)
    for k, setting in enumerate(strips):
        _strip(fig.add_subplot(grid[3, k]), setting, report, minimise, settings["rank_by"])
    many = len(data) > 12
    for island, s in data.items():
        y = -s["best_ever"] if minimise else s["best_ever"]
        if minimise:
            y = np.where(y > 0, y, np.nan)  # log axis: an exact optimum (0) cannot be drawn
        kw = {"lw": 0.7, "alpha": 0.6} if many else {"lw": 1.2, "label": island}
        if island == champion:
            kw = {**CHAMPION_STYLE, "label": f"{island} (champion)"}
        ax_fit.plot(xs(s), y, **kw)
        if s["div_generation"].size:
            ax_div.plot(xs(s, div=True), s["diversity"],
                        **({"lw": 0.5, "alpha": 0.4, "color": "grey"} if many and island != champion else kw))
    over_time = report["archipelago"]["diversity_over_time"]
    if over_time:
        ax_div.plot(gen_x([p["generation"] for p in over_time]), [p["mean"] for p in over_time],
                    color="black", lw=2.2, label="mean over islands")
    if any(np.any(s["diversity"] > 0) for s in data.values()):
        ax_div.set_yscale("log", nonpositive="mask")  # converging islands fall by orders of magnitude
    run = report["run"]
    ax_fit.set_title(f"{problem_label(run)}: best fitness per island ({len(data)} islands)"
                     + (f", champion {champion}" if champion else ""))
    if minimise:
        ax_fit.set_yscale("log")
        ax_fit.set_ylabel("f(x) = -fitness (best so far, log)")
    else:
        ax_fit.set_ylabel("fitness (best so far)")
    ax_div.set_ylabel("within-island diversity, log\n(mean gene std / bound width)")
    lineage = report["archipelago"]["lineage"]
    trend = lineage["over_time"]
    if trend:
        ax_lin.plot(gen_x([p["generation"] for p in trend]), [p["effective_origins"] for p in trend],
                    color="tab:purple", lw=2.0, marker=".", label="effective origins (archipelago)")
    verdict = lineage.get("takeover")
    if verdict and verdict["generation"] is not None:
        trouble = verdict["kind"] == "before-target"
        ax_lin.axvline(gen_x([verdict["generation"]])[0], color="crimson" if trouble else "grey", ls=":", lw=1.5,
                       label=f"{verdict['origin']} takes over" + (" (before the target)" if trouble else ""))
    if verdict and verdict["target_generation"] is not None:
        ax_lin.axvline(gen_x([verdict["target_generation"]])[0], color="tab:green", ls="--", lw=1.2,
                       label=f"target reached ({verdict['target_island']})")
    counted = max((p["islands"] for p in trend), default=lineage["islands_counted"])
    if counted:
        ax_lin.axhline(counted, color="grey", ls="--", lw=1.0, label=f"{counted} islands: every lineage alive")
    ax_lin.set_ylim(bottom=0)
    ax_lin.set_ylabel("effective number of origins\n(exp entropy of lineage origins)")
    now = lineage["effective_origins"]
    ax_lin.set_title("lineages over time" + (f" (now {now:.1f}, largest {lineage['dominant_origin']} "
                                             f"{lineage['dominant_share']:.0%})" if now is not None else ""))
    ax_lin.set_xlabel(f"{t_unit} since the run began" if by_time else "generation")
    between = report["archipelago"]["between_island_diversity"]
    if between is not None:
        ax_div.set_title(f"diversity over time (between islands now: {between:.3f})")
    for ax in (ax_fit, ax_div, ax_lin):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", ncol=2 if not many else 1)
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _strip(ax: Any, setting: Mapping[str, Any], report: Mapping[str, Any], minimise: bool, rank_by: str) -> None:
    """One varied setting: each island as a point at its value, best_ever left, own gain right."""
    values = [v["value"] for v in setting["values"]]
    name = setting["name"]
    gain_key = "own_log_gain" if rank_by == "own_log_gain" else "own_gain"
    best_x, best_y, gain_x, gain_y = [], [], [], []
    for n, isl in enumerate(report["islands"]):
        if isl["overrides"].get(name) not in values:
            continue
        x = values.index(isl["overrides"].get(name)) + ((n * 0.618) % 1 - 0.5) * 0.3  # jitter, no RNG
        if isl["best_ever"] is not None:
            best_x.append(x - 0.08)
            best_y.append(-isl["best_ever"] if minimise else isl["best_ever"])
        if isl.get(gain_key) is not None:
            gain_x.append(x + 0.08)
            gain_y.append(isl[gain_key])
    ax.scatter(best_x, best_y, s=18, color="tab:blue", label="f(x) = -best_ever" if minimise else "best_ever")
    if minimise and best_y and min(best_y) > 0:
        ax.set_yscale("log")
    ax.set_ylabel("f(x) (log)" if minimise else "best_ever", color="tab:blue")
    ax.set_xticks(range(len(values)), [display(v) for v in values], rotation=30 if len(values) > 4 else 0)
    ax.set_xlabel(name + ("  (champion: " + display(setting["champion_value"]) + ")"
                          if setting["champion_value"] is not None or any(v["champion"] for v in setting["values"])
                          else ""))
    ax.set_xlim(-0.6, len(values) - 0.4)
    ax.grid(True, alpha=0.3)
    if gain_y:
        twin = ax.twinx()
        twin.scatter(gain_x, gain_y, s=18, marker="^", color="tab:orange", label="own gain")
        twin.set_ylabel("own gain" + (" (orders of magnitude)" if gain_key == "own_log_gain" else ""),
                        color="tab:orange")
    ax.set_title(f"{name}: ranked by {rank_by.replace('_', ' ')}", fontsize="medium")


def _nan(x: float | None) -> float:
    """A missing number as NaN, which matplotlib leaves out of a line."""
    return np.nan if x is None else x
