"""``Embedding``: integer indices to dense vectors, with ``mask_zero`` for padded sequences."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import initializers
from rnnkit.layers import penalties
from rnnkit.layers.base import Layer, check_positive_int, is_shape_list


class Embedding(Layer):
    """``y[i] = embeddings[x[i]]`` for every index ``i``; ``embeddings (input_dim, output_dim)``.

    Indices may have any shape after the batch axis, as in Keras: ``(B,) -> (B, E)``,
    ``(B, T) -> (B, T, E)``, ``(B, T, K) -> (B, T, K, E)``. With ``mask_zero=True`` index 0 is
    padding: the layer emits the mask ``x != 0`` (shaped like the indices) that recurrent layers
    and losses downstream respect.

    Indices are looked up as integers whatever the model's float type (a float16 model reads row 2049
    for index 2049); an index outside ``[0, input_dim)`` or a non-integer value is a ValueError, as an
    out-of-range index is an error in Keras on CPU (TensorFlow and PyTorch raise).
    """

    call_state = ("_indices",)
    input_kind = "int"   # integer index arrays are not cast to float when the layer is called

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "uniform",
                 embeddings_regularizer: Any = None, embeddings_constraint: Any = None,
                 mask_zero: bool = False, activity_regularizer: Any = None, name: str | None = None,
                 input_shape: Any = None, seed: int | None = None):
        super().__init__(name=name, input_shape=input_shape, seed=seed)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.output_dim = check_positive_int("output_dim", output_dim)
        if embeddings_initializer == "uniform":   # Keras' name for RandomUniform(-0.05, 0.05)
            embeddings_initializer = initializers.RandomUniform()
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.mask_zero = bool(mask_zero)
        penalties.attach(self, {"embeddings": (embeddings_regularizer, embeddings_constraint)}, activity_regularizer)
        self._indices: np.ndarray | None = None

    def make_params(self, input_shape, dtype, rng):
        return {"embeddings": self.embeddings_initializer((self.input_dim, self.output_dim), dtype, rng)}

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def check_input_shape(self, input_shape):
        if is_shape_list(input_shape):
            raise ValueError(f"Layer '{self.name}' (Embedding) takes one array of indices, got a list of "
                             f"{len(input_shape)} inputs.")

    def check_indices(self, x: np.ndarray) -> None:
        """Raise a clear error unless ``x`` holds integer indices in ``[0, input_dim)``.

        Out-of-range indices are an error, as in Keras on CPU (TensorFlow raises; on GPU it would
        return zeros silently); non-integer values are an error too, where Keras would truncate them.
        """
        self._as_indices(x)

    def as_input_arrays(self, inputs: Any) -> np.ndarray:
        """One array of integer indices, never cast through the float type: float16 would round 2049 to 2048."""
        return self._as_indices(inputs)

    def _as_indices(self, x: Any) -> np.ndarray:
        idx = np.asarray(x)
        if idx.dtype.kind not in "biuf":
            raise TypeError(f"Layer '{self.name}' (Embedding) expects integer indices, got an array of dtype "
                            f"{idx.dtype}.")
        if idx.dtype.kind == "f":
            whole = np.isfinite(idx) & (idx == np.round(idx))
            if not whole.all():
                first = tuple(int(i) for i in np.argwhere(~whole)[0])
                raise ValueError(f"Layer '{self.name}' (Embedding) expects integer indices, got non-integer value "
                                 f"{idx[first].item()!r} at position {first}.")
        # compared in the array's own type, before the cast, so that no huge value wraps around in int64
        bad = (idx < 0) | (idx >= self.input_dim)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"Layer '{self.name}' (Embedding) expects indices in [0, {self.input_dim}), got values from "
                f"{idx.min()} to {idx.max()} (the first out of range: {idx[first]} at position {first}); "
                "is input_dim the vocabulary size?"
            )
        # integer arrays are used as given; floats and bools (which would index as a mask) become int64
        return idx if idx.dtype.kind in "iu" else idx.astype(np.int64)

    def forward(self, x, training=False):
        self._indices = self._as_indices(x)
        return self.params["embeddings"][self._indices]    # (B, ..., E)

    def compute_mask(self, inputs, mask):
        return (np.asarray(inputs) != 0) if self.mask_zero else None

    def backward(self, dy):
        grad = np.zeros_like(self.params["embeddings"])
        # indices of any rank flattened to N rows; add.at sums the rows of an index that repeats
        np.add.at(grad, self._indices.reshape(-1), dy.reshape(-1, self.output_dim))
        self.grads["embeddings"] = grad
        return None  # no gradient with respect to integer indices

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero, **penalties.config(self, {"embeddings": "embeddings"})}
