"""NEAT (NeuroEvolution of Augmenting Topologies) on packed numpy genes and batched torch networks.

Modules: `innovation` (island-independent gene identity), `genome` (packed populations and
genome records), `compile` (genomes -> padded tensors, batched activation), `speciation`,
`reproduction`, `config` (NeatConfig), `algorithm` (NeatAlgorithm, the island interface).
"""
from islands.algorithms.neat.algorithm import NeatAlgorithm, NeatState
from islands.algorithms.neat.config import NeatConfig

__all__ = ["NeatAlgorithm", "NeatConfig", "NeatState"]
