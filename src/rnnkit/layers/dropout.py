"""``Dropout``: zero a fraction ``rate`` of the inputs during training, scaling the rest by ``1/(1-rate)``."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.layers.base import Layer


class Dropout(Layer):

    call_state = ("_mask",)
    supports_masking = True

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None,
                 name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape, seed=seed)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be a number in [0, 1), got {rate!r}.")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self._rng: np.random.Generator | None = None
        self._mask: np.ndarray | None = None

    def make_params(self, input_shape, dtype, rng):
        self._rng = rng
        return {}

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        shape = x.shape
        if self.noise_shape is not None:
            # None entries in noise_shape follow the input; 1s share one draw along that axis
            shape = tuple(s if n is None else n for s, n in zip(x.shape, self.noise_shape))
        keep = self._rng.random(shape) >= self.rate
        self._mask = keep.astype(x.dtype) / (1.0 - self.rate)
        return x * self._mask

    def backward(self, dy):
        return dy if self._mask is None else dy * self._mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}
