"""What ``fit``, ``evaluate`` and ``predict`` accept as ``x`` and ``y``, checked and put in the model's order.

A model with one input takes one array; with several, a list in the order of
``model.inputs`` or a dict keyed by input name, as Keras. Targets follow the outputs the same
way. Every check happens here, before any weight changes, and says what was expected and what
was given.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rnnkit import losses as losses_module
from rnnkit.checks import as_numeric_array, check_input_shape


def matches(shape: tuple, expected: tuple) -> bool:
    """Whether ``shape`` fits ``expected``, where ``None`` in ``expected`` (a variable length) fits any size."""
    return len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))


def as_list(data: Any, names: Sequence[str], what: str, kind: str) -> list:
    """``data`` (one array, a list or a dict keyed by name) as a list in ``names`` order."""
    n = len(names)
    if data is None:
        raise ValueError(f"{what} is required, got None.")
    if isinstance(data, dict):
        unknown = [k for k in data if k not in names]
        missing = [k for k in names if k not in data]
        if unknown or missing:
            raise ValueError(
                f"{what} was given as a dict with keys {sorted(map(str, data))}, but the model's {kind}s are "
                f"named {list(names)}" + (f"; unknown: {unknown}" if unknown else "")
                + (f"; missing: {missing}" if missing else "") + "."
            )
        return [data[k] for k in names]
    if n == 1:
        if isinstance(data, (list, tuple)) and len(data) == 1 and hasattr(data[0], "shape"):
            return [data[0]]
        return [data]
    if not isinstance(data, (list, tuple)) or len(data) != n or not all(hasattr(d, "__len__") for d in data):
        got = (f"a list of {len(data)}" if isinstance(data, (list, tuple)) else
               f"one array of shape {np.shape(data)}")
        raise ValueError(
            f"The model has {n} {kind}s ({', '.join(names)}), so {what} must be a list of {n} arrays in that "
            f"order or a dict keyed by those names; got {got}."
        )
    return list(data)


def prepare_inputs(model: Any, x: Any, what: str = "x") -> list[np.ndarray]:
    """``x`` as one checked array per model input (cast to the input's type), all with the same sample count."""
    names = model.input_names
    raw = as_list(x, names, what, "input")
    arrays = []
    for name, tensor, data in zip(names, model.inputs, raw):
        label = what if len(names) == 1 else f"{what}['{name}']"
        if tensor.dtype.kind in "iub":
            arr = as_numeric_array(data, label)
            if arr.dtype.kind == "f":
                if not np.all(arr == np.round(arr)):
                    raise ValueError(f"{label} must hold integers for input '{name}' (dtype {tensor.dtype}), "
                                     "got non-integer values.")
                info = np.iinfo(tensor.dtype)
                if arr.min() < info.min or arr.max() > info.max:
                    raise ValueError(f"{label} holds values from {arr.min()} to {arr.max()}, outside the range of "
                                     f"input '{name}' (dtype {tensor.dtype}).")
                arr = arr.astype(tensor.dtype)
        elif _reads_indices(model, tensor):
            # indices read only by Embedding-like layers stay as given: the model's float type would round
            # them (float16 turns 2049 into 2048); those layers check and cast them to integers themselves
            arr = as_numeric_array(data, label)
        else:
            arr = as_numeric_array(data, label, dtype=model.dtype)
        check_input_shape(arr, tuple(tensor.shape[1:]), model.name, None if len(names) == 1 else name)
        arrays.append(arr)
    counts = {len(a) for a in arrays}
    if len(counts) > 1:
        raise ValueError("All inputs must have the same number of samples, got "
                         + ", ".join(f"{n}: {len(a)}" for n, a in zip(names, arrays)) + ".")
    model.check_input_values(arrays)
    return arrays


def _reads_indices(model: Any, tensor: Any) -> bool:
    """Whether every layer that reads ``tensor`` takes integer indices (``input_kind == "int"``, as Embedding),
    looking inside a model used as a layer."""
    readers = [node.layer for node in model.graph.nodes if any(t.id == tensor.id for t in node.tensor_inputs)]
    return bool(readers) and all(
        layer.input_kind == "int" or (getattr(layer, "_graph", None) is not None and len(layer.inputs) == 1
                                      and _reads_indices(layer, layer.inputs[0]))
        for layer in readers)


def prepare_targets(model: Any, y: Any, n: int, what: str = "y") -> list[np.ndarray | None]:
    """``y`` as one checked array per model output that has a loss (None for the others)."""
    heads = model.heads
    names = [h.name for h in heads]
    with_loss = [h for h in heads if h.loss is not None]
    if isinstance(y, dict) or len(with_loss) == len(heads):
        raw = as_list(y, names, what, "output") if not isinstance(y, dict) else _from_dict(y, heads, what)
    else:  # a list or one array for just the outputs that have a loss
        part = as_list(y, [h.name for h in with_loss], what, "output with a loss")
        it = iter(part)
        raw = [next(it) if h.loss is not None else None for h in heads]
    out = []
    for head, data in zip(heads, raw):
        if head.loss is None or data is None:
            out.append(None)
            continue
        label = what if len(heads) == 1 else f"{what}['{head.name}']"
        out.append(_check_target(model, head, data, n, label))
    return out


def _from_dict(y: dict, heads: list, what: str) -> list:
    names = [h.name for h in heads]
    unknown = [k for k in y if k not in names]
    missing = [h.name for h in heads if h.loss is not None and h.name not in y]
    if unknown or missing:
        raise ValueError(
            f"{what} was given as a dict with keys {sorted(map(str, y))}, but the model's outputs with a loss are "
            f"{[h.name for h in heads if h.loss is not None]}" + (f"; unknown: {unknown}" if unknown else "")
            + (f"; missing: {missing}" if missing else "") + "."
        )
    return [y.get(name) for name in names]


def _check_target(model: Any, head: Any, data: Any, n: int, what: str) -> np.ndarray:
    out_shape = head.shape
    loss = head.loss
    if hasattr(loss, "check_targets"):   # a loss with its own target layout: CTC's label rows (B, L)
        arr = loss.check_targets(as_numeric_array(data, what), out_shape, what)
    elif loss.sparse:
        arr = as_numeric_array(data, what)
        if not (matches(arr.shape[1:], out_shape[:-1]) or matches(arr.shape[1:], (*out_shape[:-1], 1))):
            raise ValueError(
                f"{loss.name} expects integer class labels of shape {(None, *out_shape[:-1])}, "
                f"got {what} of shape {arr.shape}."
            )
        k = out_shape[-1]
        if (arr != np.round(arr)).any() or arr.min() < 0 or (k is not None and arr.max() >= k):
            raise ValueError(
                f"{what} must hold integer class labels in [0, {k}) for {loss.name}, "
                f"got values from {arr.min()} to {arr.max()}."
            )
        arr = arr.astype(np.int64)
    else:
        arr = as_numeric_array(data, what, dtype=model.dtype)
        if not matches(arr.shape[1:], out_shape):
            if arr.ndim == 1 and tuple(out_shape) == (1,):
                arr = arr[:, None]
            else:
                hint = ""
                labels_shape = arr.shape[1:]
                as_indices = matches(labels_shape, out_shape[:-1]) or matches(labels_shape, (*out_shape[:-1], 1))
                if isinstance(loss, losses_module.CategoricalCrossentropy) and as_indices:
                    hint = (f" For class indices, one-hot encode them with rnnkit.one_hot(y, {out_shape[-1]}) "
                            "or use loss='sparse_categorical_crossentropy'.")
                where = f"Model '{model.name}'" if len(model.heads) == 1 else \
                    f"Output '{head.name}' of model '{model.name}'"
                raise ValueError(f"{where} outputs {(None, *out_shape)} but {what} has shape {arr.shape}.{hint}")
    if arr.shape[0] != n:
        raise ValueError(f"x and {what} must have the same number of samples, got {n} and {arr.shape[0]}.")
    return arr


def take(arrays: list, index: Any) -> list:
    """The rows ``index`` (a slice or an index array) of every array in the list (None stays None)."""
    return [None if a is None else a[index] for a in arrays]
