"""The adding problem (Hochreiter & Schmidhuber, 1997): a task that needs memory across many steps.

Every sequence has T steps of two features: a random value in [0, 1) and a marker that is 1
at exactly two steps, one in the first half and one in the second. The target is the sum
of the two marked values. Predicting the mean (1.0) gives a mean squared error of about 1/6;
doing better needs information carried from the first marker to the last step, which is
what a vanishing gradient prevents a network from learning.
"""

from __future__ import annotations

import numpy as np

from rnnkit import backend
from rnnkit.layers.base import check_positive_int


def adding_problem(n: int, steps: int = 100, seed: int | np.random.Generator | None = None,
                   dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences of the adding problem: ``x (n, steps, 2)`` and ``y (n, 1)``.

    ``x[..., 0]`` holds the values, ``x[..., 1]`` the two markers; ``y`` is the sum of the marked
    values. ``seed`` (an int or a ``numpy.random.Generator``) makes it reproducible; ``dtype``
    defaults to ``rnnkit.floatx()``.
    """
    n = check_positive_int("n", n)
    steps = check_positive_int("steps", steps)
    if steps < 2:
        raise ValueError(f"The adding problem needs at least 2 steps (one marker in each half), got {steps}.")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    values = rng.random((n, steps))                                      # (n, T)
    first = rng.integers(0, steps // 2, size=n)                          # a step in the first half
    second = rng.integers(steps // 2, steps, size=n)                     # and one in the second
    markers = np.zeros((n, steps))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)                            # (n, T, 2)
    y = (values[rows, first] + values[rows, second])[:, None]            # (n, 1)
    dtype = backend.float_dtype() if dtype is None else np.dtype(dtype)
    return x.astype(dtype), y.astype(dtype)
