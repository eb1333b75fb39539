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
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)):
            raise TypeError(f"Dropout rate must be a number in [0, 1), got {type(rate).__name__}: {rate!r}.")
        if not 0.0 <= rate < 1.0:        # NaN fails this too
            raise ValueError(f"Dropout rate must be a number in [0, 1), got {rate!r}.")
        self.rate = float(rate)
        self.noise_shape = _check_noise_shape(noise_shape)
        self._rng: np.random.Generator | None = None
        self._mask: np.ndarray | None = None

    def make_params(self, input_shape, dtype, rng):
        if self.noise_shape is not None:
            self._check_noise_fits((None, *input_shape))
        self._rng = rng
        return {}

    def _check_noise_fits(self, shape: tuple) -> None:
        """``noise_shape`` must have the input's rank, each entry None, 1 or the input's size (batch axis first)."""
        noise = self.noise_shape
        if len(noise) != len(shape) or any(n is not None and n != 1 and s is not None and n != s
                                           for n, s in zip(noise, shape)):
            raise ValueError(
                f"Layer '{self.name}' (Dropout) noise_shape {noise} does not fit inputs of shape {shape}: it needs "
                f"{len(shape)} entries (batch axis first), each None, 1 or the input's size on that axis."
            )

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        shape = x.shape
        if self.noise_shape is not None:
            self._check_noise_fits(x.shape)
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


def _check_noise_shape(noise_shape: Any) -> tuple | None:
    """``noise_shape`` as a tuple of positive ints and Nones (batch axis first), or None."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, (str, bytes)) or not isinstance(noise_shape, (tuple, list)):
        raise TypeError(f"Dropout noise_shape must be a tuple such as (None, 1, features) or None, got "
                        f"{type(noise_shape).__name__}: {noise_shape!r}.")
    for n in noise_shape:
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer))):
            raise TypeError(f"Dropout noise_shape entries must be positive integers or None, got "
                            f"{type(n).__name__} {n!r} in {noise_shape!r}.")
        if n is not None and n <= 0:
            raise ValueError(f"Dropout noise_shape entries must be positive integers or None, got {noise_shape!r}.")
    if not noise_shape:
        raise ValueError("Dropout noise_shape needs the batch axis and the input's axes, e.g. (None, 1, features); "
                         "got ().")
    return tuple(None if n is None else int(n) for n in noise_shape)
