"""Results out: a finished (or running) run's history, champion and policy as plain data.

The public reading API for a run directory, so that analysis never needs internal modules::

    from islands.results import open_run, load_policy
    run = open_run("runs/xor")
    rows = run.history()             # list of flat dicts, one per island generation
    df = run.history_frame()         # the same rows as a pandas DataFrame (extra islands[pandas])
    genome, fitness, island = run.champion()
    policy = load_policy(run)        # network tasks: observations [B, inputs] -> outputs [B, outputs]

The champion is `champion.isld` (written by the launcher and by `islands.runs.evolve` at their
end) unless an island's status records a better best-ever genome (an island still running, a
run from before evolve wrote one), picked then by the one rule of
`islands.status.record.champion`. Everything is read through the one run reader
(`islands.status.reader`, whose error policy applies: a file that cannot be read is skipped);
nothing here writes to the run. torch is imported only by `load_policy`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from islands.config import RunConfig, is_inline
from islands.errors import IslandsError
from islands.runs import Run
from islands.tuning import segments, tpe
from islands.status import reader as run_reader
from islands.status.reader import RunReader
from islands.status.record import EVENT_COUNTERS, IslandStatus, champion

if TYPE_CHECKING:
    import torch

    from islands.problems.base import Problem

__all__ = ["Champion", "RunResults", "open_run", "load_policy", "NoChampion", "HISTORY_KEYS"]

# Every history row has exactly these keys (None where a generation did not record one).
HISTORY_KEYS = ("island", "generation", "best", "mean", "best_ever", "evaluations", "time",
                "diversity", "foreign", *(f"migration_{k}" for k in EVENT_COUNTERS))


class NoChampion(IslandsError):
    """The run (or the island asked for) has no recorded best genome yet."""


@dataclass(frozen=True)
class Champion:
    """A recorded best genome: an array, or for NEAT a dict of arrays (nodes, conn_in, ...)."""

    genome: Any
    fitness: float
    island: str
    generation: int | None = None
    obs_norm: Mapping[str, Any] | None = None  # gym:* runs: the observation transform it was evaluated with

    def __iter__(self):  # `genome, fitness, island = run.champion()`
        return iter((self.genome, self.fitness, self.island))


class RunResults:
    """Read-only view of one run directory: the run reader plus what needs the problem."""

    def __init__(self, reader: RunReader) -> None:
        self.reader, self.root, self.rundir = reader, reader.root, reader.rundir
        self.run: Run = reader.run  # FormatError now, not later, if the recorded settings are bad

    @property
    def config(self) -> RunConfig:
        return self.run.config

    @property
    def run_id(self) -> str:
        return self.run.run_id

    def islands(self) -> list[str]:
        """Islands that wrote anything (planned ones first, in their order)."""
        found = set(self.reader.present())
        planned = [i for i in self.run.planned() if i in found]
        return planned + sorted(found - set(planned))

    def island_config(self, island: str) -> RunConfig:
        """The run's settings with that island's `--vary` overrides applied."""
        return self.config.with_overrides(self.run.overrides(island))

    def status(self, island: str) -> IslandStatus | None:
        """Its latest status; None if it has none, or it cannot be read or is another run's."""
        return self.reader.status(island)

    def optima(self, k: int = 10) -> list[dict[str, Any]]:
        """The k best distinct optima the run found, best first: dicts with `island`, `best`,
        `radius` (0: an island's best-ever point) and `centre` (`RunReader.optima`)."""
        return [b.to_dict() for b in self.reader.optima(k)]

    def history(self, island: str | None = None) -> list[dict[str, Any]]:
        """One flat row per island generation, all with the keys `HISTORY_KEYS`."""
        rows: list[dict[str, Any]] = []
        for isl in [island] if island else self.islands():
            for line in self.reader.history(isl):
                ev = line.migration
                rows.append({
                    "island": isl, "generation": line.generation, "best": line.best, "mean": line.mean,
                    "best_ever": line.best_ever, "evaluations": line.evaluations, "time": line.time,
                    "diversity": line.diversity, "foreign": line.foreign,
                    **{f"migration_{k}": (getattr(ev, k) if ev is not None else 0) for k in EVENT_COUNTERS},
                })
        return rows

    def history_frame(self, island: str | None = None) -> Any:
        """`history()` as a pandas DataFrame, columns `HISTORY_KEYS` (also when it has no rows).

        pandas is optional (`pip install islands[pandas]`); without it, an IslandsError in one
        line naming that extra.
        """
        try:
            import pandas  # lazy: optional (the pandas extra); open_run and history() never need it
        except ImportError:
            raise IslandsError("history_frame() needs pandas: pip install 'islands[pandas]' "
                               "(or use history(), a list of flat dicts)") from None
        return pandas.DataFrame(self.history(island), columns=list(HISTORY_KEYS))

    def segments(self) -> list[dict[str, Any]]:
        """A tuned run's segments (`islands.tuning.segments`), best first, one flat dict each:
        island, segment, start, generations, evaluations, best, end, parent, why, trial and one
        `setting.NAME` column per searched setting (for a pandas DataFrame). [] when untuned."""
        rows = []
        for s in segments.ranked(segments.read_run(self.rundir, self.islands())):
            row = {k: v for k, v in s.to_body().items() if k not in ("settings", "rungs", "index")}
            row["segment"], row["rungs"] = s.index, list(s.rungs)
            rows.append({**row, **{f"setting.{k}": v for k, v in sorted(s.settings.items())}})
        return rows

    def study(self) -> Any:
        """The run's Optuna study (`RUN/optuna.journal`, written by `--tuner tpe`); needs the optuna
        extra. IslandsError when the run has no journal."""
        path = self.root / tpe.JOURNAL
        if not path.is_file():
            raise IslandsError(f"{self.root} has no {tpe.JOURNAL} (a run launched with --tuner tpe writes one)")
        return tpe.open_study(path)

    def champion(self, island: str | None = None) -> Champion:
        """The run's champion, or with `island` that island's best-ever genome."""
        if island is None:
            body = self.reader.champion_file()
            best = champion((self.status(i) for i in self.islands()), self.run_id)
            # The file, unless an island still running has since found better (a resumed run).
            if (body is not None and "genome" in body
                    and (best is None or float(body["fitness"]) >= float(best.best_ever))):  # type: ignore[arg-type]
                return Champion(body["genome"], float(body["fitness"]), str(body["island"]),
                                body.get("generation"), body.get("obs_norm") or None)
        else:
            best = self.status(island)
            if best is not None and (best.best_genome is None or best.best_ever is None):
                best = None
        if best is None:
            raise NoChampion(f"{self.root}: {'island ' + island if island else 'the run'} has no recorded best genome yet")
        return Champion(best.best_genome, float(best.best_ever), str(best.island), best.best_ever_generation,
                        dict(best.best_obs_norm) or None)

    def problem(self, island: str | None = None) -> Problem:
        """The problem the island (default: the champion's) evolved on, built as it built it."""
        from islands.problems import make_problem  # lazy: loads torch; open_run, history and champion stay torch-free

        cfg = self.island_config(island or self.champion().island)
        return make_problem(cfg.problem, cfg.dim, **dict(cfg.problem_params))

    def network(self, island: str | None = None) -> dict[str, Any] | None:
        """The champion's network as plain arrays (None for a task that is not a network).

        MLP: `kind`, `layer_sizes`, `activation`, `output_activation` and per layer
        `weights[i]` `[in, out]` and `biases[i]` `[out]` (y = act(x @ W + b)). NEAT: `nodes`
        with their `node_kind` (input, bias, output, hidden), the connections and `steepness`
        (a node computes sigmoid(steepness * sum(w * x))), `recurrent`.
        """
        champ = self.champion(island)
        cfg = self.island_config(champ.island)
        if is_inline(cfg.problem) and not isinstance(champ.genome, Mapping):
            return None  # a Python function's vector genome (islands.problems.inline): no network
        prob = self.problem(champ.island)
        if isinstance(champ.genome, Mapping):
            from islands.algorithms.neat import NeatConfig  # lazy: the neat package loads torch

            task = prob.task  # type: ignore[attr-defined]
            neat = NeatConfig.from_params(cfg.algorithm_params)
            nodes = np.asarray(champ.genome["nodes"], dtype=np.int64)
            n_in, n_out = int(task.inputs), int(task.outputs)
            kind = np.where(nodes < n_in, "input", np.where(nodes == n_in, "bias",
                            np.where(nodes <= n_in + n_out, "output", "hidden")))
            return {"kind": "neat", "inputs": n_in, "outputs": n_out, "nodes": nodes, "node_kind": kind,
                    "conn_in": np.asarray(champ.genome["conn_in"], dtype=np.int64),
                    "conn_out": np.asarray(champ.genome["conn_out"], dtype=np.int64),
                    "weight": np.asarray(champ.genome["weight"], dtype=np.float32),
                    "enabled": np.asarray(champ.genome["enabled"], dtype=bool),
                    "steepness": float(neat.steepness),
                    "recurrent": bool(neat.recurrent or getattr(task, "memory", False)),
                    **_io(task, champ.obs_norm)}
        spec = getattr(prob, "spec", None)
        if spec is None:
            return None
        g = np.asarray(champ.genome).reshape(-1)
        weights, biases, at = [], [], 0
        for a, b in zip(spec.sizes, spec.sizes[1:]):
            weights.append(g[at: at + a * b].reshape(a, b))
            at += a * b
            biases.append(g[at: at + b])
            at += b
        out = {"kind": "mlp", "layer_sizes": np.asarray(spec.sizes, dtype=np.int64),
               "activation": spec.activation, "output_activation": "sigmoid",
               "weights": weights, "biases": biases}
        return {**out, **_io(getattr(prob, "task", None), champ.obs_norm)}


def _io(task: Any, obs_norm: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """How a gym:* task feeds and reads the network (islands.problems.gym): inputs are the
    flattened observation times `observation_scale`, or, where the run normalised observations,
    `clip((obs - observation_mean) / observation_std, -observation_clip, observation_clip)`;
    Discrete actions are `action_start` + argmax of the outputs, Box actions
    `action_low + output * action_width`."""
    if task is None or not hasattr(task, "obs_scale"):
        return {}
    out: dict[str, Any] = {"observation_scale": np.asarray(task.obs_scale if task.normalize else
                                                           np.ones_like(task.obs_scale), dtype=np.float32)}
    frozen = task.use_obs_norm(obs_norm)
    if frozen is not None:
        out = {"observation_mean": frozen[0], "observation_std": frozen[1], "observation_clip": frozen[2]}
    if task.discrete:
        return {**out, "action": "argmax", "action_start": int(task.action_start)}
    return {**out, "action": "box", "action_low": np.asarray(task.action_low, dtype=np.float64),
            "action_width": np.asarray(task.action_width, dtype=np.float64)}


def open_run(path: str | Path) -> RunResults:
    """The run at `path`; RunDirError if it holds none, FormatError if its manifest is bad."""
    return RunResults(run_reader.open_run(path))


class _Policy:
    """One network as a callable: `[B, inputs] -> [B, outputs]` (also `[inputs] -> [outputs]`).

    It also follows the population `Policy` protocol with size 1 (`reset`, `[1, B, in] ->
    [1, B, out]`), so a task replays it directly: `problem.task.evaluate(policy, device)`.
    """

    size = 1

    def __init__(self, net: Any, inputs: int, outputs: int, task: Any = None) -> None:
        self.net, self.inputs, self.outputs, self.task = net, inputs, outputs, task

    def reset(self, batch: int = 1) -> None:
        """Clear recurrent state (NEAT recurrent networks) before a new episode."""
        self.net.reset(batch)

    def __call__(self, obs: Any) -> torch.Tensor:
        import torch  # lazy: torch only for a policy (module docstring)

        x = torch.as_tensor(obs)
        if x.ndim == 3:
            return self.net(x)
        single = x.ndim == 1
        out = self.net(x.reshape(1, -1, self.inputs))[0]
        return out[0] if single else out

    def act(self, observation: Any) -> Any:
        """gym:* runs: the action for one raw observation, scaled and read as the island did
        (`env.step(policy.act(obs))`), after `reset()` at the start of each episode."""
        import torch  # lazy: torch only for a policy (module docstring)

        if self.task is None or not hasattr(self.task, "obs_scale"):
            raise IslandsError("act() is for gym:* problems; call the policy on observations instead")
        device = self.net.layers[0][0].device if hasattr(self.net, "layers") else torch.device("cpu")
        return self.task._actions(self, np.asarray(observation)[None], 1, 1, device)[0]


def load_policy(run: RunResults | str | Path, island: str | None = None,
                device: str = "cpu") -> _Policy:
    """The champion (or `island`'s best) of a network task as a callable policy.

    `pure` genomes become the problem's MLP (islands.nets); NEAT genomes are compiled by the
    run's own NEAT algorithm, so the outputs are exactly those the island scored.
    """
    import torch  # lazy: torch only for a policy (module docstring)

    from islands.algorithms import make_algorithm  # lazy: islands.algorithms.factory loads torch
    from islands.nets import MLP  # lazy: loads torch

    res = run if isinstance(run, RunResults) else open_run(run)
    champ = res.champion(island)
    prob = res.problem(champ.island)
    task = getattr(prob, "task", None)
    if task is None:
        raise IslandsError(f"problem {prob.name!r} is not a network task; its champion is a plain vector")
    if isinstance(champ.genome, Mapping):
        from islands.algorithms.neat import genome as gn  # lazy: the neat package loads torch

        algo = make_algorithm(res.island_config(champ.island), prob, device)
        net = algo.compile(gn.from_records([dict(champ.genome)]))  # type: ignore[attr-defined]
    else:
        genome = torch.as_tensor(np.asarray(champ.genome), device=device).reshape(1, -1)
        net = MLP(prob.spec, genome)  # type: ignore[attr-defined]
    if hasattr(task, "use_obs_norm"):
        task.use_obs_norm(champ.obs_norm)  # the transform the champion was scored with
    return _Policy(net, int(task.inputs), int(task.outputs), task)
