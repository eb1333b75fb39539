"""Global pooling over time: ``GlobalAveragePooling1D`` and ``GlobalMaxPooling1D``.

Both turn a sequence ``(B, T, D)`` into one vector per sample ``(B, D)`` (``(B, 1, D)`` with
``keepdims=True``; with ``data_format="channels_first"`` the input is ``(B, D, T)``). The
output has no time axis, so no mask comes out of them.

Masks as in Keras 3: the average is taken over the unmasked steps only, while the maximum
is taken over every step, padding included (Keras 3's ``GlobalMaxPooling1D`` ignores the mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.layers.base import Layer
from rnnkit.layers.reshaping import check_data_format


class _GlobalPooling1D(Layer):
    input_rank = 3

    def __init__(self, data_format: str | None = "channels_last", keepdims: bool = False,
                 name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        self.data_format = check_data_format(data_format)
        if not isinstance(keepdims, (bool, np.bool_)):
            raise TypeError(f"keepdims must be True or False, got {keepdims!r}.")
        self.keepdims = bool(keepdims)

    @classmethod
    def default_name(cls) -> str:
        return super().default_name().replace("1_d", "1d")      # Keras: global_average_pooling1d

    @property
    def steps_axis(self) -> int:
        return 1 if self.data_format == "channels_last" else 2

    def compute_output_shape(self, input_shape):
        features = input_shape[-1] if self.data_format == "channels_last" else input_shape[0]
        if not self.keepdims:
            return (features,)
        return (1, features) if self.data_format == "channels_last" else (features, 1)

    def _with_steps_axis(self, dy: np.ndarray) -> np.ndarray:
        """``dy`` with the pooled axis (size 1) back in place: ``(B, D) -> (B, 1, D)``."""
        return dy if self.keepdims else np.expand_dims(dy, self.steps_axis)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    """``y[b] = sum_t m[b, t] x[b, t] / sum_t m[b, t]``: the mean over the unmasked steps.

    Without a mask ``m = 1`` (the plain mean). A sample whose steps are all masked gives
    ``y = 0`` and no gradient (Keras 3 divides 0 by 0 there and gives NaN).
    """

    consumes_mask = True
    call_state = ("_weights",)

    def forward(self, x, training=False, mask=None):
        axis = self.steps_axis
        if mask is None:
            shape = [1, 1, 1]
            shape[axis] = x.shape[axis]
            weights = np.full(shape, 1.0 / x.shape[axis], dtype=x.dtype)       # (1, T, 1)
        else:
            m = np.expand_dims(np.asarray(mask, bool), 3 - axis).astype(x.dtype)   # (B, T, 1)
            weights = m / np.maximum(m.sum(axis=axis, keepdims=True), 1.0)       # m / (unmasked steps)
        self._weights = weights
        return (x * weights).sum(axis=axis, keepdims=self.keepdims)            # (B, D)

    def backward(self, dy):
        return self._with_steps_axis(dy) * self._weights                        # (B, T, D)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """``y[b, d] = max_t x[b, t, d]``; the gradient goes to the step of the maximum (the first, on a tie).

    ``mask=`` is accepted for symmetry with ``GlobalAveragePooling1D`` and ignored, as in Keras 3,
    so ``consumes_mask`` is False and a model does not pass it.
    """

    call_state = ("_argmax", "_x_shape")

    def forward(self, x, training=False, mask=None):
        axis = self.steps_axis
        self._argmax = x.argmax(axis=axis, keepdims=True)                      # (B, 1, D)
        self._x_shape = x.shape
        y = np.take_along_axis(x, self._argmax, axis=axis)
        return y if self.keepdims else y.squeeze(axis)                          # (B, D)

    def backward(self, dy):
        dx = np.zeros(self._x_shape, dtype=dy.dtype)                            # (B, T, D)
        np.put_along_axis(dx, self._argmax, self._with_steps_axis(dy), axis=self.steps_axis)
        return dx
