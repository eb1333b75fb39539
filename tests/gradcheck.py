"""Central finite differences in float64, the first of the three references for every gradient."""

from __future__ import annotations

from typing import Callable

import numpy as np

EPS = 1e-6


def numeric_grad(f: Callable[[], float], array: np.ndarray, eps: float = EPS) -> np.ndarray:
    """d f / d array by central differences, perturbing ``array`` in place and restoring it."""
    if not array.flags.c_contiguous:
        raise ValueError("numeric_grad perturbs the array through a flat view; pass a C-contiguous array")
    grad = np.zeros_like(array, dtype=np.float64)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |a - n| / max(max |a|, max |n|), so a zero gradient must be exactly matched."""
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), 1e-12)
    return float(np.abs(analytic - numeric).max(initial=0.0) / scale)
