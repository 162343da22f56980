"""gymnasium environments as network problems: `--problem gym:CartPole-v1`.

Any registered environment with a Box observation space and a Box or Discrete action space
becomes a "pure" (or NEAT) network task: the network is the MLP of `islands.nets` with
`--param hidden=...` (the same code as the built-in control tasks), its inputs the flattened
observation (scaled to [-1, 1] along every dimension whose bounds are finite, unless
`normalize=false`; or normalised by running statistics, `obs_norm=`, below), its outputs read as an argmax over the Discrete actions or mapped from
(0, 1) onto the Box's bounds ([-1, 1] where a bound is infinite).

One evaluation runs `episodes` (K) episodes for every network of the population at once in one
gymnasium vector environment of P x K copies, stepped together until every episode has ended
or `max_steps` (default: the environment's own time limit) is reached. Fitness is the mean (or
`statistic=median|min`; the lower middle value for an even K) return over the K episodes, so
one lucky start no longer wins.

Seeds (docs/DESIGN.md, "Episode seeds"): the island reseeds the task before each generation
from its own seed and the generation number (`Problem.reseed`), so every generation meets fresh
starts, a run repeats exactly and a resumed island continues bit for bit. Training seeds lie in
[0, 2^31); `islands evaluate` and `islands replay` use seeds from 2^31 up, so the champion is
judged on starts it never trained on.

Observation normalisation (`obs_norm=auto|off|island|run`, `islands.problems.obs_norm`): inputs
`(obs - mean) / std` clipped to +-5, with the running statistics of the observations seen so
far, frozen while a generation is evaluated, saved in checkpoints and with the champion (which
`load_policy`, `evaluate`, `replay` and `export` then apply). "run" merges the statistics of
every island through the run directory, "island" keeps each island's own; "auto" (default) is
"run" where no observation dimension has finite bounds (MuJoCo) and "off" otherwise (the bounds
scaling above: CartPole, LunarLander, BipedalWalker keep today's inputs).

Bad episodes: an observation or reward that is NaN or infinite ends that episode with a NaN
return (the worst fitness; one warning line per task says how many), an environment that
raises inside `reset` or `step` is one error line naming it, never a traceback.

Vectorisation (`vectorize=auto|native|sync|loop`); the network always runs on the whole
population at once, one batched forward pass per time step:
- "native": the environment's own vector class where gymnasium has one (CartPole-v1). It
  draws all P x K starts from one seed per generation, so networks meet different starts.
- "sync": `gymnasium.vector.SyncVectorEnv`. Episode k of every network starts from seed s_k
  (common starts: a fairer comparison), and an episode with seed s is exactly
  `env.reset(seed=s)` of a plain `gymnasium.make`.
- "loop": the same episodes as sync, in single environments of which only the live ones are
  stepped: SyncVectorEnv also steps every finished episode until the longest one ends (CartPole-v1,
  P=100, K=5, random networks: 19.8 s per generation against 0.41 s). It is also the fallback,
  with a one-line warning, when native or sync cannot be made.
- "auto" (default): native where gymnasium has it, else loop. Native costs the same for short
  episodes (0.44 s) and far less once networks balance (500 steps each: 0.47 s against 11.6 s).
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from islands.errors import ConfigError, ProblemNotFound
from islands.nets import Policy
from islands.problems.base import check_dim
from islands.problems.obs_norm import CLIP, ObsNorm, frozen_from_body, resolve_mode
from islands.problems.usercode import describe
from islands.problems.tasks import NetworkProblem, Task, network_problem

__all__ = ["PREFIX", "GymTask", "gym_problem", "training_seeds", "evaluation_seeds"]

PREFIX = "gym:"
STATISTICS = ("mean", "median", "min")
MODES = ("auto", "native", "sync", "loop")
SEED_SPAN = 2**31  # training seeds in [0, 2^31), evaluation seeds in [2^31, 2^32)
MAX_EVAL_EPISODES = 2**20
EVAL_SETS = SEED_SPAN // MAX_EVAL_EPISODES  # 2048 values of `islands evaluate --seed`
MAX_EPISODES = 1000  # training episodes per network and generation
SCALE_LIMIT = 1e6  # bounds wider than this are "unbounded" for observation scaling
WARMUP_EPISODES = 5  # random-action episodes whose observations start the normalisation statistics
WARMUP_SALT = 0x57A75  # their starts are not the first generation's own
EXTRAS = ("mujoco", "box2d")  # gymnasium's environment families that need an extra of ours


def _gymnasium() -> Any:
    try:
        import gymnasium  # lazy: the optional `gym` extra; without it only gym:* problems fail
    except ImportError:
        raise ConfigError("gym:* problems need gymnasium: pip install 'islands[gym]' (or pip install gymnasium)") from None
    return gymnasium


def _quiet_mujoco(entry_point: Any) -> None:
    """MuJoCo 4 warns on stderr, once per model compiled, that gymnasium's XML uses a deprecated
    attribute: with P x K environments that is hundreds of identical lines per island. Such
    deprecation notices are dropped; any other MuJoCo warning is printed once."""
    if "mujoco" not in str(entry_point):
        return
    try:
        import mujoco  # lazy: only MuJoCo environments need it (the gym extra's mujoco part)
    except ImportError:
        return
    said: set[str] = set()

    def warn(message: str) -> None:
        if "deprecated" not in message and message not in said:
            said.add(message)
            print(f"warning: mujoco: {' '.join(message.split())[:300]}", file=sys.stderr, flush=True)

    mujoco.set_mju_user_warning(warn)


def training_seeds(seed: int, count: int) -> list[int]:
    """`count` episode seeds in [0, 2^31) for a generation whose task seed is `seed`."""
    state = np.random.SeedSequence([int(seed) % 2**64, 0x67796D]).generate_state(count, dtype=np.uint32)
    return [int(s) % SEED_SPAN for s in state]


def evaluation_seeds(seed: int, count: int) -> list[int]:
    """`count` consecutive seeds in [2^31, 2^32) for `islands evaluate --seed`: never training seeds.

    Seed S owns [2^31 + S * 2^20, 2^31 + (S + 1) * 2^20): 2048 disjoint sets of unseen starts.
    """
    check_dim(count, what="episodes")
    if count > MAX_EVAL_EPISODES:
        raise ConfigError(f"episodes must be at most {MAX_EVAL_EPISODES}, got {count}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < EVAL_SETS:
        raise ConfigError(f"evaluation seed must be an integer in [0, {EVAL_SETS - 1}], got {seed!r}")
    return [SEED_SPAN + seed * MAX_EVAL_EPISODES + i for i in range(count)]


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise ConfigError(f"{name} must be true or false, got {value!r}")


class GymTask(Task):
    """A gymnasium environment driving a population of policies (see the module docstring)."""

    memory = False

    def __init__(self, env_id: str, *, episodes: int = 5, max_steps: int | None = None,
                 statistic: str = "mean", vectorize: str = "auto", normalize: bool = True,
                 obs_norm: str = "auto") -> None:
        gym = _gymnasium()
        self.env_id = env_id
        self.name = PREFIX + env_id
        self.episodes = check_dim(episodes, what=f"{self.name}: episodes")
        if self.episodes > MAX_EPISODES:  # P x K environments are alive at once
            raise ConfigError(f"{self.name}: episodes must be at most {MAX_EPISODES}, got {self.episodes}")
        if statistic not in STATISTICS:
            raise ConfigError(f"{self.name}: statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
        if vectorize not in MODES:
            raise ConfigError(f"{self.name}: vectorize must be one of {', '.join(MODES)}, got {vectorize!r}")
        self.statistic, self.normalize = statistic, _flag(f"{self.name}: normalize", normalize)
        try:
            self.spec = gym.spec(env_id)
        except Exception as e:  # gymnasium raises its own NameNotFound/VersionNotFound/Error types
            raise ProblemNotFound(f"problem {self.name!r}: {' '.join(str(e).split())}") from None
        _quiet_mujoco(self.spec.entry_point)
        self._describe_spaces(gym)
        try:
            mode = resolve_mode(obs_norm, self.obs_bounded)
        except ValueError as e:
            raise ConfigError(f"{self.name}: {e}") from None
        self.obs_norm = ObsNorm(self.inputs, mode) if mode != "off" else None
        self.bad_episodes = 0  # episodes ended by a NaN or infinite observation or reward
        self.steps = 0  # environment steps of live episodes taken so far (benchmarks compare at equal steps)
        limit = self.spec.max_episode_steps if max_steps is None else max_steps
        if limit is None:
            raise ConfigError(f"{self.name} has no time limit of its own: give --param max_steps=N")
        self.max_steps = check_dim(limit, what=f"{self.name}: max_steps")
        native = self.spec.vector_entry_point is not None
        if vectorize == "native" and not native:
            raise ConfigError(f"{self.name} has no native vector environment; use vectorize=sync or auto")
        self.mode = ("native" if native else "loop") if vectorize == "auto" else vectorize
        self.seed = 0  # the generation's seed, set by the island through `reseed`
        self._envs: tuple[tuple[str, int], Any] | None = None  # one cached vector env
        self._warned = False
        self._warned_bad = False

    # -- spaces ---------------------------------------------------------------------------
    def _describe_spaces(self, gym: Any) -> None:
        try:
            env = gym.make(self.env_id)
        except Exception as e:  # a missing extra (box2d, mujoco) or a broken environment
            extra = next((x for x in EXTRAS if f"envs.{x}" in str(self.spec.entry_point)), None)
            hint = f" (pip install 'islands[{extra}]')" if extra and type(e).__name__ == "DependencyNotInstalled" else ""
            raise ConfigError(f"problem {self.name!r} cannot be made: {' '.join(str(e).split())[:300]}{hint}") from None
        try:
            obs, act = env.observation_space, env.action_space
        finally:
            env.close()
        spaces = gym.spaces
        if not isinstance(obs, spaces.Box):
            raise ConfigError(f"{self.name}: observation space {obs} is not a Box; only Box observations are supported")
        if isinstance(act, spaces.Discrete):
            self.discrete, self.outputs, self.action_start = True, int(act.n), int(act.start)
        elif isinstance(act, spaces.Box):
            self.discrete, self.outputs = False, int(np.prod(act.shape))
            self.action_shape, self.action_dtype = tuple(act.shape), act.dtype
            low, high = act.low.reshape(-1).astype(np.float64), act.high.reshape(-1).astype(np.float64)
            finite = np.isfinite(low) & np.isfinite(high)
            self.action_low = np.where(finite, low, -1.0)
            self.action_width = np.where(finite, high - low, 2.0)
        else:
            raise ConfigError(f"{self.name}: action space {act} is neither Box nor Discrete")
        self.inputs = int(np.prod(obs.shape))
        bound = np.maximum(np.abs(obs.low.reshape(-1)), np.abs(obs.high.reshape(-1))).astype(np.float64)
        usable = np.isfinite(bound) & (bound > 0) & (bound <= SCALE_LIMIT)
        self.obs_scale = np.where(usable, 1.0 / np.where(usable, bound, 1.0), 1.0).astype(np.float32)
        self.obs_bounded = usable

    @property
    def solved_at(self) -> float | None:  # type: ignore[override]
        """The environment's reward threshold (gymnasium's "solved"), if it declares one."""
        value = self.spec.reward_threshold
        return None if value is None else float(value)

    optimum = None

    # -- seeds ----------------------------------------------------------------------------
    def reseed(self, seed: int) -> None:
        """Use the starts of `seed` from now on (the island calls this once per generation)."""
        self.seed = int(seed)
        if self.obs_norm is not None:
            self.obs_norm.reseed(self.seed)

    def use_obs_norm(self, record: Any) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Evaluate from now on with a recorded transform (a champion's `obs_norm`), collecting
        nothing. Returns (mean, std, clip) in use, or None where observations are only scaled
        by their bounds. A task that normalises but has no usable record starts from the
        identity, as an island's first generation does."""
        frozen = frozen_from_body(record, self.inputs) if record else None
        if frozen is None and self.obs_norm is None:
            return None
        if self.obs_norm is None:
            self.obs_norm = ObsNorm(self.inputs, "island")
        mean, std = frozen if frozen is not None else (np.zeros(self.inputs), np.ones(self.inputs))
        self.obs_norm.use(mean, std)
        return self.obs_norm.mean.copy(), self.obs_norm.std.copy(), CLIP

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(self, policy: Policy, device: torch.device) -> Tensor:
        if self.obs_norm is not None and self.obs_norm.needs_warmup:
            self._warm_up()
        if self.obs_norm is not None:
            self.obs_norm.collecting = True  # a training evaluation: its observations count
        try:
            returns = torch.from_numpy(self.returns(policy, device, training_seeds(self.seed, self.episodes)))
        finally:
            if self.obs_norm is not None:
                self.obs_norm.collecting = False
        if self.statistic == "mean":
            return returns.mean(dim=1).to(device)
        if self.statistic == "median":
            return returns.median(dim=1).values.to(device)
        return returns.min(dim=1).values.to(device)

    def _warm_up(self) -> None:
        """First statistics from WARMUP_EPISODES episodes of random actions from this generation's
        training starts (seeded, so a run repeats exactly; their steps count as the task's)."""
        env = _gymnasium().make(self.env_id, max_episode_steps=self.max_steps)
        rows = []
        try:
            for s in training_seeds(self.seed ^ WARMUP_SALT, WARMUP_EPISODES):
                obs, _ = env.reset(seed=s)
                env.action_space.seed(s)
                rows.append(np.asarray(obs, dtype=np.float64).reshape(-1))
                for _ in range(self.max_steps):
                    obs, _r, term, trunc, _ = env.step(env.action_space.sample())
                    self.steps += 1
                    rows.append(np.asarray(obs, dtype=np.float64).reshape(-1))
                    if term or trunc:
                        break
        except Exception as e:  # noqa: BLE001 - an environment may raise anything inside reset or step
            raise ConfigError(f"{self.name}: the environment failed: {describe(e)}") from e
        finally:
            env.close()
        self.obs_norm.warm(np.stack(rows))  # type: ignore[union-attr]

    def returns(self, policy: Policy, device: torch.device, seeds: Sequence[int],
                mode: str | None = None) -> np.ndarray:
        """Return of every network on every episode, float64 `[P, len(seeds)]`.

        Episode k of every network starts from `seeds[k]` (modes sync and loop); the native
        mode seeds its whole batch with `seeds[0]`.
        """
        mode = mode or self.mode
        p, k = policy.size, len(seeds)
        n = p * k
        if mode != "loop":
            envs = self._vector(mode, n)
            if envs is None:
                mode = "loop"
        policy.reset(k)
        if mode == "loop":
            return self._loop(policy, device, seeds).reshape(p, k)
        total = np.zeros(n, dtype=np.float64)
        alive = np.ones(n, dtype=bool)
        try:
            obs, _ = envs.reset(seed=int(seeds[0]) if mode == "native" else [int(s) for s in seeds] * p)
            self._score(total, alive, np.zeros(n), obs)
            for _ in range(self.max_steps):
                if not alive.any():
                    break
                action = self._actions(policy, obs, p, k, device, alive)
                self.steps += int(alive.sum())
                obs, reward, terminated, truncated, _ = envs.step(action)
                self._score(total, alive, reward, obs)
                alive &= ~(np.asarray(terminated) | np.asarray(truncated))
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - an environment may raise anything inside reset or step
            raise ConfigError(f"{self.name}: the environment failed: {describe(e)}") from e
        self._warn_bad()
        return total.reshape(p, k)

    def _score(self, total: np.ndarray, alive: np.ndarray, reward: Any, obs: Any) -> None:
        """Add a step's rewards to the live episodes; end those whose observation or reward is
        NaN or infinite with a NaN return (the worst fitness)."""
        reward = np.asarray(reward, dtype=np.float64).reshape(-1)
        ok = np.isfinite(reward) & np.isfinite(np.asarray(obs)).reshape(len(total), -1).all(axis=1)
        bad = alive & ~ok
        total += np.where(alive & ok, reward, 0.0)
        if bad.any():
            total[bad] = np.nan
            alive &= ~bad
            self.bad_episodes += int(bad.sum())

    def _warn_bad(self) -> None:
        if self.bad_episodes and not self._warned_bad:
            self._warned_bad = True
            print(f"warning: {self.name}: {self.bad_episodes} episode(s) met a NaN or infinite observation or "
                  "reward; each ended there with a NaN return (the worst fitness)", file=sys.stderr, flush=True)

    def _actions(self, policy: Policy, obs: np.ndarray, p: int, k: int, device: torch.device,
                 alive: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32).reshape(p * k, -1)
        if self.obs_norm is not None:
            self.obs_norm.observe(x if alive is None else x[alive])
            x = self.obs_norm.apply(x)
        elif self.normalize:
            x = x * self.obs_scale
        out = policy(torch.from_numpy(x).to(device).reshape(p, k, self.inputs))
        out = out.reshape(p * k, self.outputs).detach().cpu()
        if self.discrete:
            return (out.argmax(dim=1).numpy() + self.action_start).astype(np.int64)
        act = self.action_low + out.double().numpy() * self.action_width
        if not np.isfinite(act).all():  # an ended episode's NaN observation: its env may still be stepped
            act = np.nan_to_num(act, nan=0.0, posinf=0.0, neginf=0.0)
        return act.astype(self.action_dtype).reshape((p * k, *self.action_shape))

    def _vector(self, mode: str, n: int) -> Any:
        """The cached vector environment of `n` copies, or None when it cannot be made."""
        if self._envs is not None and self._envs[0] == (mode, n):
            return self._envs[1]
        self.close()
        gym = _gymnasium()
        kind = "vector_entry_point" if mode == "native" else "sync"
        try:
            envs = gym.make_vec(self.env_id, num_envs=n, vectorization_mode=kind, max_episode_steps=self.max_steps)
        except Exception as e:  # noqa: BLE001 - any environment may refuse to vectorise
            if not self._warned:
                self._warned = True
                print(f"warning: {self.name} cannot be vectorised ({' '.join(str(e).split())[:200]}); "
                      "stepping its environments one by one", file=sys.stderr, flush=True)
            return None
        self._envs = ((mode, n), envs)
        return envs

    def _loop(self, policy: Policy, device: torch.device, seeds: Sequence[int]) -> np.ndarray:
        """Single environments, only those whose episode lasts stepped (the network still runs
        on the whole population at once)."""
        p, k = policy.size, len(seeds)
        envs = self._singles(p * k)
        total = np.zeros(p * k, dtype=np.float64)
        alive = np.ones(p * k, dtype=bool)
        reward = np.zeros(p * k)
        try:
            obs = np.stack([np.asarray(e.reset(seed=int(seeds[i % k]))[0], dtype=np.float32).reshape(-1)
                            for i, e in enumerate(envs)])
            self._score(total, alive, reward, obs)
            for _ in range(self.max_steps):
                if not alive.any():
                    break
                action = self._actions(policy, obs, p, k, device, alive)
                live = np.flatnonzero(alive)
                self.steps += len(live)
                for i in live:
                    o, r, term, trunc, _ = envs[i].step(action[i])
                    obs[i] = np.asarray(o, dtype=np.float32).reshape(-1)
                    reward[i] = float(r)
                    alive[i] = not (term or trunc)
                stepped = np.zeros(p * k, dtype=bool)
                stepped[live] = True
                self._score(total, stepped, np.where(stepped, reward, 0.0), obs)
                alive &= stepped  # _score ended the bad ones among those stepped
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - an environment may raise anything inside reset or step
            raise ConfigError(f"{self.name}: the environment failed: {describe(e)}") from e
        self._warn_bad()
        return total

    def _singles(self, n: int) -> list[Any]:
        """The cached list of `n` single environments."""
        if self._envs is not None and self._envs[0] == ("loop", n):
            return self._envs[1]
        self.close()
        gym = _gymnasium()
        envs = [gym.make(self.env_id, max_episode_steps=self.max_steps) for _ in range(n)]
        self._envs = (("loop", n), envs)
        return envs

    def close(self) -> None:
        """Close the cached environments (a new batch size, or the end of the task)."""
        if self._envs is not None:
            held = self._envs[1]
            for env in held if isinstance(held, list) else [held]:
                env.close()
            self._envs = None


def gym_problem(env_id: str, dim: int = 0, *, hidden: object = 8, activation: str = "tanh",
                weight_bound: float = 5.0, episodes: int = 5, max_steps: int | None = None,
                statistic: str = "mean", vectorize: str = "auto", normalize: object = True,
                solved_at: object = "task", obs_norm: str = "auto") -> NetworkProblem:
    """A gymnasium environment as an MLP task; `reseed` gives each generation fresh starts."""
    if not isinstance(env_id, str) or not env_id.strip():
        raise ProblemNotFound("gym: needs an environment id, e.g. --problem gym:CartPole-v1")
    task = GymTask(env_id.strip(), episodes=episodes, max_steps=max_steps, statistic=statistic,
                   vectorize=vectorize, normalize=normalize, obs_norm=obs_norm)  # type: ignore[arg-type]
    problem = network_problem(task, hidden=hidden, activation=activation, weight_bound=weight_bound,
                              solved_at=solved_at,
                              description=f"gymnasium {env_id}: {statistic} return over {task.episodes} episode(s)")
    return dataclasses.replace(problem, reseed=task.reseed)


def is_gym(name: str) -> bool:
    return isinstance(name, str) and name.strip().startswith(PREFIX)
