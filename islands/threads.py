"""Thread hygiene: one compute thread per island process (docs/DESIGN.md, "One thread per island").

Native thread pools read these variables once, when the library loads, so they must be set
before torch (or numpy's BLAS) is imported: the CLI entry point calls `limit_env` first.
"""
from __future__ import annotations

import os
from typing import MutableMapping

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def limit_env(env: MutableMapping[str, str] = os.environ) -> MutableMapping[str, str]:
    """Set every thread-count variable to 1 in `env` (the process's own by default)."""
    for name in THREAD_VARS:
        env[name] = "1"
    return env
