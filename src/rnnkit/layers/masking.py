"""``Masking``: mark timesteps whose features all equal ``mask_value`` as padding."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.layers.base import Layer


class Masking(Layer):
    """Emits the mask ``any(x[b, t] != mask_value)`` and, as Keras, zeroes the masked steps."""

    call_state = ("_keep",)

    input_rank = 3

    def __init__(self, mask_value: float = 0.0, name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.floating, np.integer)):
            raise TypeError(f"mask_value must be a number, got {type(mask_value).__name__}: {mask_value!r}.")
        if not np.isfinite(mask_value):   # inputs are finite, and NaN equals nothing: it would never mask
            raise ValueError(f"mask_value must be a finite number, got {mask_value!r}.")
        self.mask_value = float(mask_value)
        self._keep: np.ndarray | None = None

    def compute_mask(self, inputs, mask):
        return np.any(inputs != self.mask_value, axis=-1)    # (B, T)

    def forward(self, x, training=False):
        self._keep = self.compute_mask(x, None)[..., None].astype(x.dtype)  # (B, T, 1)
        return x * self._keep

    def backward(self, dy):
        return dy * self._keep

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
