"""Input checks shared by the time-series helpers: one place for the wording of their errors."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.checks import as_numeric_array


def as_series(data: Any, what: str = "series", min_length: int = 1) -> np.ndarray:
    """``data`` as a 1-D float64 array of at least ``min_length`` finite values.

    float64 whatever came in: forecasts and metrics are sums of many small differences, and the
    series is small next to a model's weights.
    """
    arr = as_numeric_array(data, what, dtype=np.float64)                 # numbers, non-empty, no NaN/inf
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional (one value per time step), got shape {arr.shape}; "
                         "pass a single column, e.g. data[:, 0].")
    if len(arr) < min_length:
        raise ValueError(f"{what} has {len(arr)} value(s); at least {min_length} are needed here.")
    return arr


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an ``int`` of at least ``minimum``; booleans and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__}: {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)
