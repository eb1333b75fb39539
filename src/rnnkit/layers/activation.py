"""``Activation``: applies an activation function element-wise."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import activations
from rnnkit.layers.base import Layer


class Activation(Layer):
    supports_masking = True

    def __init__(self, activation: Any, name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        self.activation = activations.get(activation)
        self._cache: tuple | None = None

    def forward(self, x, training=False):
        y = self.activation(x)
        self._cache = (x, y)
        return y

    @property
    def logits(self) -> np.ndarray:
        return self._cache[0]

    def backward(self, dy):
        return self.activation.backward(dy, self._cache[1])

    def backward_from_logits(self, dz):
        return dz

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}
