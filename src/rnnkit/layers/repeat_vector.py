"""``RepeatVector(n)``: ``(B, D) -> (B, n, D)``, the bridge from one input to a sequence."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.layers.base import Layer, check_positive_int


class RepeatVector(Layer):

    call_state = ()
    input_rank = 2

    def __init__(self, n: int, name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        self.n = check_positive_int("n", n)

    def compute_output_shape(self, input_shape):
        return (self.n, *input_shape)

    def forward(self, x, training=False):
        return np.repeat(x[:, None, :], self.n, axis=1)      # (B, n, D)

    def backward(self, dy):
        return dy.sum(axis=1)                                # (B, D)

    def get_config(self):
        return {**super().get_config(), "n": self.n}
