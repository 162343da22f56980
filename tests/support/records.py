"""Comparing an algorithm's records (`to_record`) bit for bit, as a checkpoint must restore them."""
from __future__ import annotations

import numpy as np


def same_record(a, b) -> bool:
    """Equal keys, equal values of the same type, arrays of the same dtype, shape and bytes."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_record(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return type(a) is type(b) and a == b
