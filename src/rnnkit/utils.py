"""Small array helpers."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import backend
from rnnkit.backend import set_random_seed

__all__ = ["one_hot", "pad_sequences", "set_random_seed", "to_categorical"]


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


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """Class indices as one-hot rows, as ``keras.utils.to_categorical``: ``(*shape, num_classes)`` float64.

    A trailing axis of size 1 is dropped first, so labels shaped ``(N, 1)`` give ``(N, num_classes)``,
    as in Keras; a scalar gives ``(num_classes,)``. ``num_classes`` defaults to ``max(x) + 1``. The result
    is float64 because Keras' NumPy path builds it with ``np.zeros`` (``fit`` casts it to the model's
    float type). Unlike Keras, an index that is negative, not whole or not below ``num_classes`` is a
    ``ValueError`` (Keras would wrap a negative index around, truncate 1.5 to 1, or fail with IndexError).
    """
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes <= 0):
        raise ValueError(f"num_classes must be a positive integer or None, got {num_classes!r}.")
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:    # ragged lists: NumPy refuses to make one array of them
        raise TypeError(f"to_categorical expects an array-like of class indices, got {type(x).__name__}: "
                        f"{exc}") from None
    if arr.dtype.kind not in "iubf":
        raise TypeError(f"to_categorical expects integer class indices, got dtype {arr.dtype}.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise ValueError("to_categorical expects whole-number class indices, got values with a fractional part "
                         "(or NaN/inf); are these probabilities rather than labels?")
    shape = arr.shape[:-1] if arr.ndim > 1 and arr.shape[-1] == 1 else arr.shape   # Keras: (N, 1) -> (N,)
    flat = arr.reshape(-1).astype(np.int64)
    if num_classes is None:
        if not flat.size:
            raise ValueError("to_categorical cannot infer num_classes from an empty array; pass num_classes.")
        num_classes = int(flat.max()) + 1
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        bad = flat[(flat < 0) | (flat >= num_classes)]
        raise ValueError(f"to_categorical expects class indices in [0, {num_classes}), got {bad.size} outside it "
                         f"(e.g. {int(bad[0])}).")
    out = np.zeros((flat.size, int(num_classes)))                          # (N, C), float64 as in Keras
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(*shape, int(num_classes))


def pad_sequences(sequences: Any, maxlen: int | None = None, dtype: Any = "int32", padding: str = "pre",
                  truncating: str = "pre", value: float = 0.0) -> np.ndarray:
    """Sequences of different lengths as one ``(n, maxlen, ...)`` array, as ``keras.utils.pad_sequences``.

    Shorter sequences are filled with ``value`` before (``padding="pre"``, Keras' default) or after
    (``"post"``) their items; longer ones lose items at the start (``truncating="pre"``) or the end.
    ``maxlen`` defaults to the longest sequence. Items may be numbers or arrays of one shape.
    """
    for name, arg in (("padding", padding), ("truncating", truncating)):
        if arg not in ("pre", "post"):
            raise ValueError(f"{name} must be 'pre' or 'post', got {arg!r}.")
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0):
        raise ValueError(f"maxlen must be a non-negative integer or None, got {maxlen!r}.")
    try:
        seqs = [np.asarray(s) for s in sequences]
    except TypeError:
        raise TypeError(f"pad_sequences expects a list of sequences, got {type(sequences).__name__}.") from None
    for i, s in enumerate(seqs):
        if s.ndim == 0:
            raise ValueError(f"pad_sequences expects sequences, but item {i} is a single value {s!r}.")
    item_shapes = {s.shape[1:] for s in seqs if len(s)}
    if len(item_shapes) > 1:
        raise ValueError(f"The items of the sequences must all have one shape, got {sorted(item_shapes)}.")
    item_shape = item_shapes.pop() if item_shapes else ()
    length = max((len(s) for s in seqs), default=0) if maxlen is None else int(maxlen)
    out = np.full((len(seqs), length, *item_shape), value, dtype=dtype)
    if np.issubdtype(out.dtype, np.integer) and not float(value).is_integer():
        raise ValueError(f"value={value!r} cannot be stored in dtype {out.dtype}; pass a float dtype.")
    for i, s in enumerate(seqs):
        if not len(s) or not length:
            continue
        kept = s[-length:] if truncating == "pre" else s[:length]
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, -len(kept):] = kept
    return out
