"""``Input(shape=...)``: declares the shape of a model's inputs (batch axis left out)."""

from __future__ import annotations

from typing import Any

from rnnkit.layers.base import Layer, normalize_shape


class InputLayer(Layer):
    """Holds the input shape; passes data through unchanged."""

    def __init__(self, shape: Any = None, batch_size: int | None = None, name: str | None = None,
                 input_shape: Any = None):
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("Input needs a shape, e.g. Input(shape=(timesteps, features)).")
        super().__init__(name=name, input_shape=normalize_shape(shape, "shape"))
        self.batch_size = batch_size

    @classmethod
    def default_name(cls) -> str:
        return "input_layer"

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        return {**super().get_config(), "shape": list(self.input_shape_arg), "batch_size": self.batch_size}


def Input(shape: Any, batch_size: int | None = None, name: str | None = None) -> InputLayer:
    """Declare a model's input shape, without the batch axis: ``Input(shape=(3, 17))``."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name)
