"""``Embedding``: integer indices to dense vectors, with ``mask_zero`` for padded sequences."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import initializers
from rnnkit.layers.base import Layer, check_positive_int


class Embedding(Layer):
    """``y[b, t] = embeddings[x[b, t]]``; ``embeddings (input_dim, output_dim)``.

    With ``mask_zero=True`` index 0 is padding: the layer emits the mask ``x != 0`` that
    recurrent layers and losses downstream respect.
    """

    call_state = ("_indices",)

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "uniform",
                 mask_zero: bool = False, name: str | None = None, input_shape: Any = None,
                 seed: int | None = None):
        super().__init__(name=name, input_shape=input_shape, seed=seed)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.output_dim = check_positive_int("output_dim", output_dim)
        if embeddings_initializer == "uniform":   # Keras' name for RandomUniform(-0.05, 0.05)
            embeddings_initializer = initializers.RandomUniform()
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.mask_zero = bool(mask_zero)
        self._indices: np.ndarray | None = None

    def make_params(self, input_shape, dtype, rng):
        return {"embeddings": self.embeddings_initializer((self.input_dim, self.output_dim), dtype, rng)}

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"Layer '{self.name}' (Embedding) expects indices of shape (batch, timesteps).")

    def check_indices(self, x: np.ndarray) -> None:
        """Raise a clear error unless ``x`` holds integer indices in ``[0, input_dim)``."""
        self._as_indices(x)

    def _as_indices(self, x: np.ndarray) -> np.ndarray:
        idx = np.asarray(x)
        if idx.dtype.kind == "f" and not np.all(idx == np.round(idx)):
            raise ValueError(f"Layer '{self.name}' (Embedding) expects integer indices, got non-integer values.")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.input_dim):
            raise ValueError(
                f"Layer '{self.name}' (Embedding) expects indices in [0, {self.input_dim}), got values from "
                f"{idx.min()} to {idx.max()}; is input_dim the vocabulary size?"
            )
        return idx

    def forward(self, x, training=False):
        self._indices = self._as_indices(x)
        return self.params["embeddings"][self._indices]    # (B, T, E)

    def compute_mask(self, inputs, mask):
        return (np.asarray(inputs) != 0) if self.mask_zero else None

    def backward(self, dy):
        grad = np.zeros_like(self.params["embeddings"])
        np.add.at(grad, self._indices.reshape(-1), dy.reshape(-1, self.output_dim))
        self.grads["embeddings"] = grad
        return None  # no gradient with respect to integer indices

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero}
