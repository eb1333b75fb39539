"""Small array helpers."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import backend
from rnnkit.backend import set_random_seed

__all__ = ["one_hot", "set_random_seed"]


def one_hot(indices: Any, depth: int, dtype: Any = None) -> np.ndarray:
    """One-hot encode integer ``indices`` of any shape into ``(*indices.shape, depth)``.

    Unlike ``tf.one_hot``, an index outside ``[0, depth)`` is an error, not a row of zeros.
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth <= 0:
        raise ValueError(f"depth must be a positive integer, got {depth!r}.")
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iub" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise TypeError(f"one_hot expects integer indices, got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= depth):
        bad = arr[(arr < 0) | (arr >= depth)]
        raise ValueError(
            f"one_hot indices must lie in [0, {depth}), got {bad.size} outside it "
            f"(e.g. {int(bad.flat[0])}); is depth the size of the vocabulary?"
        )
    out = np.zeros((*arr.shape, depth), dtype=backend.float_dtype() if dtype is None else dtype)
    np.put_along_axis(out, arr[..., None], 1, axis=-1)
    return out
