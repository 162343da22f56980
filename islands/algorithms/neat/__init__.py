"""NEAT (NeuroEvolution of Augmenting Topologies) on packed numpy genes and batched torch networks.

Modules: `innovation` (island-independent gene identity), `genome` (packed populations and
genome records), `compile` (genomes -> padded tensors, batched activation), `speciation`,
`reproduction`, `config` (NeatConfig), `algorithm` (NeatAlgorithm, the island interface),
`codec` (NEAT genomes in migrant batches, registered with the pool here at import).
"""
from islands.algorithms.neat import codec
from islands.algorithms.neat.algorithm import NeatAlgorithm, NeatState
from islands.algorithms.neat.config import NeatConfig

codec.register()

__all__ = ["NeatAlgorithm", "NeatConfig", "NeatState"]
