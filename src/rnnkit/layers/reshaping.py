"""Reshaping layers: ``Reshape``, ``Flatten`` and ``Permute``, with Keras' arguments.

They move values around without changing them, so each backward is the inverse move.
As in Keras 3 none of them passes a (B, T) mask on: the time axis they would describe may
no longer be there.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from rnnkit.layers.base import Layer

DATA_FORMATS = ("channels_last", "channels_first")


def check_data_format(value: Any) -> str:
    """``"channels_last"`` (also for None, as Keras' default) or ``"channels_first"``."""
    if value is None:
        return "channels_last"
    if value not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {', '.join(map(repr, DATA_FORMATS))}, got {value!r}.")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class Reshape(Layer):
    """``(B, *S) -> (B, *target_shape)`` with the same number of values per sample.

    One entry of ``target_shape`` may be -1: its size is inferred, e.g. ``Reshape((-1, 2))``
    turns ``(B, 3, 4)`` into ``(B, 6, 2)``.
    """

    call_state = ("_x_shape",)

    def __init__(self, target_shape: Sequence[int], name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        try:
            target = tuple(target_shape)
        except TypeError:
            raise TypeError(f"Reshape target_shape must be a tuple of integers, got {target_shape!r}.") from None
        if not all(_is_int(d) and (d > 0 or d == -1) for d in target) or target.count(-1) > 1:
            raise ValueError(f"Reshape target_shape must hold positive integers and at most one -1 (a size to "
                             f"infer), without the batch axis; got {target_shape!r}.")
        self.target_shape = tuple(int(d) for d in target)
        self._x_shape: tuple | None = None

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape):
        if None in input_shape:
            return tuple(None if d == -1 else d for d in self.target_shape)
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        fits = size % known == 0 if -1 in self.target_shape else size == known
        if not fits:
            raise ValueError(
                f"Layer '{self.name or self.default_name()}' (Reshape) cannot reshape inputs of shape "
                f"{(None, *input_shape)} ({size} values per sample) to target_shape {self.target_shape}."
            )
        return tuple(size // known if d == -1 else d for d in self.target_shape)

    def forward(self, x, training=False):
        self._x_shape = x.shape
        return x.reshape(len(x), *self.target_shape)         # (B, *target_shape)

    def backward(self, dy):
        return dy.reshape(self._x_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Flatten(Layer):
    """``(B, d1, ..., dn) -> (B, d1 * ... * dn)``.

    With ``data_format="channels_first"`` the channel axis (axis 1) is moved last before
    flattening, so the order of the values is the one ``channels_last`` would give.
    """

    call_state = ("_x_shape",)

    def __init__(self, data_format: str | None = "channels_last", name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        self.data_format = check_data_format(data_format)
        self._x_shape: tuple | None = None

    def compute_output_shape(self, input_shape):
        return (None if None in input_shape else math.prod(input_shape),)

    def _channels_last_axes(self, ndim: int) -> tuple[int, ...]:
        if self.data_format == "channels_first" and ndim > 2:
            return (0, *range(2, ndim), 1)                    # (B, C, ...) -> (B, ..., C)
        return tuple(range(ndim))

    def forward(self, x, training=False):
        self._x_shape = x.shape
        return x.transpose(self._channels_last_axes(x.ndim)).reshape(len(x), -1)   # (B, prod(S))

    def backward(self, dy):
        axes = self._channels_last_axes(len(self._x_shape))
        moved = tuple(self._x_shape[a] for a in axes)
        return dy.reshape(moved).transpose(np.argsort(axes))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Permute(Layer):
    """Reorder the axes after the batch axis: ``dims`` is a permutation of ``1..n`` (1-based, as Keras).

    ``Permute((2, 1))`` turns ``(B, T, D)`` into ``(B, D, T)``.
    """

    call_state = ()

    def __init__(self, dims: Sequence[int], name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        try:
            dims = tuple(dims)
        except TypeError:
            raise TypeError(f"Permute dims must be a tuple of integers, got {dims!r}.") from None
        if not all(_is_int(d) for d in dims) or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute dims must be a permutation of 1..n (the batch axis 0 is left out), "
                             f"e.g. (2, 1); got {dims!r}.")
        self.dims = tuple(int(d) for d in dims)
        self.input_rank = len(self.dims) + 1

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[d - 1] for d in self.dims)

    def forward(self, x, training=False):
        return x.transpose(0, *self.dims)

    def backward(self, dy):
        return dy.transpose(np.argsort((0, *self.dims)))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}
