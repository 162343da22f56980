"""NEAT's settings: a frozen, validated dataclass built from `RunConfig.algorithm_params`.

Defaults follow the NEAT paper's XOR and pole-balancing experiments (Stanley & Miikkulainen
2002) where it gives a value, and neat-python's defaults otherwise, except the structural
mutation rates: add-node 0.05 and add-connection 0.5 (the paper: 0.03 and 0.05, or 0.3 for
large populations) halved the evaluations XOR needs here (about 3,000 instead of 7,000 at
population 150; `scripts/bench_neat.py` measures it).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

from islands.algorithms.params import config_from_params
from islands.errors import ConfigError

MAX_NODES = 4096  # per genome; also the pool format's cap for "neat" genomes
MAX_CONNS = 65536


@dataclass(frozen=True)
class NeatConfig:
    """Rates are probabilities per child unless noted; distances follow the NEAT paper.

    Attributes:
        recurrent: allow cycles (one synchronous activation step per call, for memory
            tasks such as double_pole_nv); otherwise genomes stay acyclic and each call
            computes the exact feed-forward output.
        steepness: slope of the sigmoid 1 / (1 + exp(-steepness * x)) of every node.
        weight_init_std, weight_max: new weights ~ N(0, std); every weight is clipped.
        weight_mutate_rate: share of children whose weights mutate; in such a child each
            weight is replaced (weight_replace_rate) or perturbed by N(0, weight_power).
        add_node_rate, add_conn_rate: structural mutations per child.
        crossover_rate: share of non-elite children bred by crossover (others: mutation only).
        disable_rate: a gene disabled in either parent stays disabled with this probability.
        interspecies_rate: share of crossovers whose second parent comes from any species.
        c_disjoint, c_weight, compat_threshold: distance = c_disjoint * non-matching / N +
            c_weight * mean |weight difference| of matching genes; N is the larger genome's
            size, or 1 below `normalize_min_genes` genes.
        target_species: if > 0, the threshold moves by threshold_step each generation to
            approach this many species.
        stagnation: a species whose best has not improved for this many generations has no
            offspring, except the `species_elitism` best species.
        survival: share of each species (the best) allowed to breed.
        elite_min_size: the champion of every species this large is copied unchanged.
    """

    recurrent: bool = False
    steepness: float = 4.9
    weight_init_std: float = 1.0
    weight_max: float = 8.0
    weight_mutate_rate: float = 0.8
    weight_replace_rate: float = 0.1
    weight_power: float = 0.5
    add_node_rate: float = 0.05
    add_conn_rate: float = 0.5
    conn_tries: int = 5
    crossover_rate: float = 0.75
    disable_rate: float = 0.75
    interspecies_rate: float = 0.001
    c_disjoint: float = 1.0
    c_weight: float = 0.4
    compat_threshold: float = 3.0
    normalize_min_genes: int = 20
    target_species: int = 0
    threshold_step: float = 0.3
    stagnation: int = 15
    species_elitism: int = 1
    survival: float = 0.2
    elite_min_size: int = 5
    max_nodes: int = 512
    max_conns: int = 8192

    def __post_init__(self) -> None:
        def need(cond: bool, what: str, value: Any) -> None:
            if not cond:
                raise ConfigError(f"neat: {what}, got {value!r}")

        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool":
                need(isinstance(value, bool), f"{f.name} must be true or false", value)
            elif f.type == "int":
                need(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                     f"{f.name} must be an integer >= 0", value)
            else:
                need(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                     f"{f.name} must be a finite number", value)
        for name in ("weight_mutate_rate", "weight_replace_rate", "add_node_rate", "add_conn_rate",
                     "crossover_rate", "disable_rate", "interspecies_rate"):
            need(0.0 <= getattr(self, name) <= 1.0, f"{name} must be in [0, 1]", getattr(self, name))
        need(0.0 < self.survival <= 1.0, "survival must be in (0, 1]", self.survival)
        for name in ("steepness", "weight_init_std", "weight_max", "compat_threshold", "threshold_step"):
            need(getattr(self, name) > 0, f"{name} must be > 0", getattr(self, name))
        need(self.weight_power >= 0, "weight_power must be >= 0", self.weight_power)
        need(self.c_disjoint >= 0 and self.c_weight >= 0, "distance coefficients must be >= 0",
             (self.c_disjoint, self.c_weight))
        need(1 <= self.stagnation, "stagnation must be >= 1", self.stagnation)
        need(1 <= self.conn_tries <= 100, "conn_tries must be in [1, 100]", self.conn_tries)
        need(2 <= self.max_nodes <= MAX_NODES, f"max_nodes must be in [2, {MAX_NODES}]", self.max_nodes)
        need(1 <= self.max_conns <= MAX_CONNS, f"max_conns must be in [1, {MAX_CONNS}]", self.max_conns)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> "NeatConfig":
        """Build from `RunConfig.algorithm_params`, rejecting unknown names and coercing text.

        Values may arrive as strings from a command line ("true", "0.05"); they are parsed to
        the field's type so that a manifest written by hand works too.
        """
        return config_from_params(cls, params, "neat")

    def to_params(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
