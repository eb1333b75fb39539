"""Input checks at the API boundary: what was expected, what was given, how to fix it."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_numeric_array(data: Any, what: str, dtype: np.dtype | None = None) -> np.ndarray:
    """Convert ``data`` to a non-empty, finite numeric array (cast to ``dtype`` if given)."""
    if data is None:
        raise ValueError(f"{what} is required, got None.")
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{what} must be a rectangular numeric array (all sequences the same length); "
            f"NumPy could not convert it: {exc}"
        ) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{what} must hold numbers, got an array of dtype {arr.dtype} "
            f"(first element: {arr.flat[0]!r})." if arr.size else f"{what} must hold numbers, got dtype {arr.dtype}."
        )
    if arr.ndim == 0:
        raise ValueError(f"{what} must have a batch axis, got a scalar {arr!r}.")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}); give at least one sample.")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            bad = int((~finite).sum())
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise ValueError(
                f"{what} contains {bad} NaN or infinite value(s), the first at index {first}; "
                "clean or impute the data before training."
            )
    return arr


def check_input_shape(x: np.ndarray, expected: tuple, model_name: str, input_name: str | None = None) -> None:
    """``expected`` leaves out the batch axis; ``None`` entries match any length."""
    want = (None, *expected)
    if x.ndim != len(want) or any(e is not None and e != g for e, g in zip(expected, x.shape[1:])):
        hint = ""
        if len(expected) == 2 and x.ndim == 2 and expected[0] in (None, x.shape[1]):
            hint = (" Recurrent models take (samples, timesteps, features); if these are character or word "
                    f"indices, one-hot encode them with rnnkit.one_hot(x, {expected[1]}) or start the model "
                    "with an Embedding layer.")
        elif tuple(x.shape) == tuple(expected):
            hint = " It looks like the batch axis is missing; wrap a single sample as x[None]."
        raise ValueError(
            f"Model '{model_name}'{'' if input_name is None else f' input {input_name!r}'} expects input of "
            f"shape {want} (batch first), got an array of "
            f"shape {x.shape}.{hint}"
        )
