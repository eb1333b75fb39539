"""Pooling over windows of time: ``MaxPooling1D`` and ``AveragePooling1D``, with Keras' arguments.

Output step ``t`` pools input steps ``t s - l .. t s - l + P - 1`` (``P = pool_size``, ``s = strides``,
which default to ``pool_size``, ``l`` the padding in front). ``padding="valid"`` gives
``T_out = floor((T - P) / s) + 1``; ``padding="same"`` gives ``T_out = ceil(T / s)``, split as for
``Conv1D`` (the odd step at the end), and, as Keras 3 does, the padded steps take no part: the
maximum and the mean are over the real steps of each window only.

The shapes are ``(B, T, C) -> (B, T_out, C)`` (``(B, C, T) -> (B, C, T_out)`` with
``data_format="channels_first"``). As in Keras 3, no mask passes through.

``pool_size`` and ``strides`` are at most ``2**31 - 1``, and ``"same"`` padding may add at most
``max(T, MAX_PADDING_STEPS)`` steps (``rnnkit.layers.conv``), checked at build for a known length and on
every call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.layers.base import Layer
from rnnkit.layers.conv import (
    check_padding,
    output_length,
    padding_amounts,
    standardize_int_tuple,
    standardize_padding,
)
from rnnkit.layers.reshaping import check_data_format


class _Pooling1D(Layer):
    input_rank = 3

    def __init__(self, pool_size: int | tuple[int] = 2, strides: int | tuple[int] | None = None,
                 padding: str = "valid", data_format: str | None = "channels_last",
                 name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        self.pool_size = standardize_int_tuple("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else standardize_int_tuple("strides", strides)
        self.padding = standardize_padding(padding, ("valid", "same"))
        self.data_format = check_data_format(data_format)
        self._cache: tuple | None = None

    @property
    def _where(self) -> str:
        """How error messages name this layer: ``Layer 'max_pooling1d' (MaxPooling1D)``."""
        return f"Layer '{self.name or self.default_name()}' ({type(self).__name__})"

    def _steps(self, input_shape) -> int | None:
        return input_shape[0] if self.data_format == "channels_last" else input_shape[1]

    def _too_short(self, steps: int) -> ValueError:
        return ValueError(f"{self._where} with padding='valid' and "
                          f"pool_size={self.pool_size[0]} needs sequences of at least {self.pool_size[0]} steps, "
                          f"got {steps}; use padding='same' or longer sequences.")

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        steps = self._steps(input_shape)
        if steps is not None and output_length(steps, self.pool_size[0], self.strides[0], self.padding) < 1:
            raise self._too_short(steps)
        if steps is not None:
            self._check_padding(steps)

    def _check_padding(self, steps: int) -> None:
        check_padding(self._where, steps, self.pool_size[0], self.strides[0], self.padding,
                      f"pool_size={self.pool_size[0]}, strides={self.strides[0]}")

    def compute_output_shape(self, input_shape):
        out = output_length(self._steps(input_shape), self.pool_size[0], self.strides[0], self.padding)
        return (out, input_shape[1]) if self.data_format == "channels_last" else (input_shape[0], out)

    def _windows(self, x: np.ndarray, fill: float) -> tuple[np.ndarray, tuple[int, int]]:
        """Every pooling window of ``x (B, T, C)`` padded with ``fill``: a view ``(B, T_out, C, P)``."""
        if x.ndim != 3:
            raise ValueError(f"{self._where} expects inputs of rank 3, "
                             f"got shape {x.shape}.")
        T, P, s = x.shape[1], self.pool_size[0], self.strides[0]
        if output_length(T, P, s, self.padding) < 1:
            raise self._too_short(T)
        self._check_padding(T)
        left, right = padding_amounts(T, P, s, self.padding)
        xp = np.pad(x, ((0, 0), (left, right), (0, 0)), constant_values=fill) if left or right else x  # (B, Tp, C)
        return np.lib.stride_tricks.sliding_window_view(xp, P, axis=1)[:, ::s], (left, right)

    def _scatter(self, parts: list[np.ndarray], T: int, left: int, right: int) -> np.ndarray:
        """``dx (B, T, C)`` from ``parts[k] (B, T_out, C)``, the gradient of window position ``k``:
        output step ``t`` read padded step ``t s + k`` (a loop over the P positions, not over time)."""
        B, T_out, C = parts[0].shape
        s = self.strides[0]
        dxp = np.zeros((B, left + T + right, C), dtype=parts[0].dtype)       # (B, Tp, C)
        for k, part in enumerate(parts):
            dxp[:, k:k + (T_out - 1) * s + 1:s, :] += part
        return dxp[:, left:left + T, :]                                       # (B, T, C)

    def forward(self, x, training=False):
        x = x if self.data_format == "channels_last" else x.transpose(0, 2, 1)    # (B, T, C)
        y = self._pool(x)                                                        # (B, T_out, C)
        return y if self.data_format == "channels_last" else np.ascontiguousarray(y.transpose(0, 2, 1))

    def backward(self, dy):
        dy = dy if self.data_format == "channels_last" else dy.transpose(0, 2, 1)   # (B, T_out, C)
        dx = self._unpool(dy)                                                       # (B, T, C)
        return dx if self.data_format == "channels_last" else dx.transpose(0, 2, 1)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": self.data_format}


class MaxPooling1D(_Pooling1D):
    """``y[b, t, c] = max_k x[b, t s - l + k, c]`` over the real steps of the window.

    The gradient goes to the step holding the maximum (the first of the window, on a tie).
    """

    def _pool(self, x):
        windows, (left, right) = self._windows(x, -np.inf)                     # (B, T_out, C, P)
        where = windows.argmax(axis=-1)                                         # (B, T_out, C)
        self._cache = (where, x.shape[1], left, right)
        return np.take_along_axis(windows, where[..., None], axis=-1)[..., 0]  # (B, T_out, C)

    def _unpool(self, dy):
        where, T, left, right = self._cache
        return self._scatter([np.where(where == k, dy, 0) for k in range(self.pool_size[0])], T, left, right)


class AveragePooling1D(_Pooling1D):
    """``y[b, t, c] = sum_k x[b, t s - l + k, c] / n_t``, ``n_t`` the number of real steps in window ``t``
    (``pool_size`` everywhere with ``padding="valid"``)."""

    def __init__(self, pool_size: int | tuple[int], strides: int | tuple[int] | None = None, padding: str = "valid",
                 data_format: str | None = "channels_last", name: str | None = None, input_shape: Any = None):
        # Keras gives MaxPooling1D a default pool_size of 2 and AveragePooling1D none
        super().__init__(pool_size, strides, padding, data_format, name=name, input_shape=input_shape)

    def _pool(self, x):
        windows, (left, right) = self._windows(x, 0.0)                           # (B, T_out, C, P)
        real = np.pad(np.ones(x.shape[1], dtype=x.dtype), (left, right))         # (Tp,): 1 on the real steps
        counts = np.lib.stride_tricks.sliding_window_view(real, self.pool_size[0])[::self.strides[0]].sum(-1)
        scale = (1.0 / counts)[None, :, None]                                    # (1, T_out, 1)
        self._cache = (scale, x.shape[1], left, right)
        return windows.sum(axis=-1) * scale                                      # (B, T_out, C)

    def _unpool(self, dy):
        scale, T, left, right = self._cache
        share = dy * scale                                                       # (B, T_out, C)
        return self._scatter([share] * self.pool_size[0], T, left, right)
