"""neat-python's config file as the benchmarks use it (bench_neat.py, bench_workload.py).

Torch-free on purpose: bench_workload measures the memory of a neat-python child process.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any

NEAT_PYTHON_CONFIG = """
[NEAT]
fitness_criterion     = max
fitness_threshold     = {threshold}
no_fitness_termination = True
pop_size              = {population}
reset_on_extinction   = False

[DefaultGenome]
activation_default      = sigmoid
activation_mutate_rate  = 0.0
activation_options      = sigmoid
aggregation_default     = sum
aggregation_mutate_rate = 0.0
aggregation_options     = sum
bias_init_mean          = 0.0
bias_init_stdev         = 1.0
bias_max_value          = 30.0
bias_min_value          = -30.0
bias_mutate_power       = 0.5
bias_mutate_rate        = 0.7
bias_replace_rate       = 0.1
compatibility_disjoint_coefficient = 1.0
compatibility_weight_coefficient   = 0.5
conn_add_prob           = 0.5
conn_delete_prob        = 0.5
enabled_default         = True
enabled_mutate_rate     = 0.01
feed_forward            = True
initial_connection      = full
node_add_prob           = 0.2
node_delete_prob        = 0.2
num_hidden              = 0
num_inputs              = {inputs}
num_outputs             = 1
response_init_mean      = 1.0
response_init_stdev     = 0.0
response_max_value      = 30.0
response_min_value      = -30.0
response_mutate_power   = 0.0
response_mutate_rate    = 0.0
response_replace_rate   = 0.0
weight_init_mean        = 0.0
weight_init_stdev       = 1.0
weight_max_value        = 30
weight_min_value        = -30
weight_mutate_power     = 0.5
weight_mutate_rate      = 0.8
weight_replace_rate     = 0.1

[DefaultSpeciesSet]
compatibility_threshold = 3.0

[DefaultStagnation]
species_fitness_func = max
max_stagnation       = 20
species_elitism      = 2

[DefaultReproduction]
elitism            = 2
survival_threshold = 0.2
"""


def neat_python_config(population: int, inputs: int, threshold: float, outputs: int = 1) -> str:
    """neat-python's config file: the same NEAT settings in every benchmark."""
    text = NEAT_PYTHON_CONFIG.format(population=population, inputs=inputs, threshold=threshold)
    return text.replace("num_outputs             = 1", f"num_outputs             = {outputs}")


def neat_python_config_object(population: int, inputs: int, threshold: float, outputs: int = 1) -> Any:
    """neat-python's `neat.Config` of those settings (it reads only files: one is written and removed)."""
    import neat  # type: ignore[import-not-found]  # lazy: neat-python is a peer, not a dependency

    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(neat_python_config(population, inputs, threshold, outputs))
    try:
        return neat.Config(neat.DefaultGenome, neat.DefaultReproduction, neat.DefaultSpeciesSet,
                           neat.DefaultStagnation, f.name)
    finally:
        os.unlink(f.name)
