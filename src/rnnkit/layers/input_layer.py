"""``Input(shape=...)``: a model's symbolic input (batch axis left out of ``shape``).

``Input`` returns a ``SymbolicTensor`` that layers are called on to define a model, as in
Keras; the ``InputLayer`` behind it holds the shape and dtype and appears in ``model.layers``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import backend
from rnnkit.layers.base import Layer, normalize_shape
from rnnkit.symbolic import Node, SymbolicTensor

#: the largest size an input dimension (or batch size) may have: the int32 limit, far beyond any array
#: that fits in memory, so a file or a typo claiming 2**63 steps is refused instead of overflowing later
MAX_DIMENSION = 2**31 - 1


def _check_dtype(dtype: Any) -> np.dtype:
    if dtype is None:
        return backend.float_dtype()
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy dtype name such as 'float32' or 'int32', got {dtype!r}.") from None
    if dt.kind not in "fiub":
        raise TypeError(f"Input dtype must be a float, integer or bool type, got {dt}.")
    return dt


class InputLayer(Layer):
    """Holds an input's shape and dtype; passes data through unchanged."""

    call_state = ()

    def __init__(self, shape: Any = None, batch_size: int | None = None, dtype: Any = None, name: str | None = None,
                 input_shape: Any = None, batch_shape: Any = None):
        if batch_shape is not None:
            if shape is not None or batch_size is not None:
                raise ValueError("Give either batch_shape or shape (and batch_size), not both.")
            if isinstance(batch_shape, (str, bytes)) or not isinstance(batch_shape, (tuple, list)):
                raise TypeError(f"batch_shape must be a tuple such as (32, 10, 8), got {type(batch_shape).__name__}: "
                                f"{batch_shape!r}.")
            batch_shape = tuple(batch_shape)
            if not batch_shape:
                raise ValueError("batch_shape needs the batch axis first, e.g. batch_shape=(32, 10, 8).")
            batch_size, shape = batch_shape[0], batch_shape[1:]
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("Input needs a shape, e.g. Input(shape=(timesteps, features)); leave out the batch axis.")
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
                raise TypeError(f"batch_size must be a positive integer or None, got {type(batch_size).__name__}: "
                                f"{batch_size!r}.")
            if batch_size <= 0:
                raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
            if batch_size > MAX_DIMENSION:
                raise ValueError(f"batch_size must be at most {MAX_DIMENSION} (2**31 - 1), got {batch_size!r}.")
        shape = normalize_shape(shape, "shape")
        too_big = [d for d in shape if d is not None and d > MAX_DIMENSION]
        if too_big:
            raise ValueError(f"Input shape dimensions must be at most {MAX_DIMENSION} (2**31 - 1), got shape "
                             f"{shape}; use None for a variable length.")
        super().__init__(name=name, input_shape=shape)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.input_dtype = _check_dtype(dtype)
        self.input_shape = self.output_shape = self.input_shape_arg
        self.built = True
        node = Node(self, None, {}, None, [], None)
        self.output_tensor = SymbolicTensor((self.batch_size, *self.input_shape_arg), self.input_dtype, node=node,
                                            name=name)
        node.outputs = [self.output_tensor]
        node.output_structure = self.output_tensor
        self._inbound_nodes.append(node)

    @classmethod
    def default_name(cls) -> str:
        return "input_layer"

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        config = {**super().get_config(), "shape": list(self.input_shape_arg), "batch_size": self.batch_size}
        if self.input_dtype != backend.float_dtype() or self.input_dtype.kind != "f":
            config["dtype"] = str(self.input_dtype)
        return config


def Input(shape: Any = None, batch_size: int | None = None, dtype: Any = None, name: str | None = None,
          batch_shape: Any = None) -> SymbolicTensor:
    """A model's symbolic input: ``Input(shape=(timesteps, features))``, batch axis left out.

    ``dtype`` defaults to the float type (``rnnkit.floatx()``); use ``dtype="int32"`` for the
    indices an ``Embedding`` reads. Call layers on the result and pass the tensors to ``Model``.
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                      batch_shape=batch_shape).output_tensor
