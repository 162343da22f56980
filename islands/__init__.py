"""islands: file-coordinated island-model evolution with PyTorch.

The library API: `islands.runs.evolve` runs one island (also on a fitness function or
`Problem` given as a Python object), `launcher.session.launch` an archipelago,
`islands.results.open_run` reads a run's results, `islands.problems.make_problem` builds a
problem, `islands.algorithms.make_algorithm` an algorithm. Importing this package
does not import torch, so a process can limit its threads first (`islands.threads`).
"""

__version__ = "0.1.0"
