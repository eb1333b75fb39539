"""``Dense``: ``y = act(x W + b)`` on the last axis of inputs of any rank."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import activations, initializers, kernels
from rnnkit.layers import penalties
from rnnkit.layers.base import Layer, check_positive_int


class Dense(Layer):
    """Fully connected layer with Keras' arguments and defaults.

    Shapes: ``x (..., D)``, ``kernel (D, U)``, ``bias (U,)``, ``y (..., U)``. The regularizers
    and constraints (names, configs or objects from ``rnnkit.regularizers`` / ``rnnkit.constraints``)
    go to ``self.regularizers`` / ``self.constraints`` under the weight's name; a bias
    regularizer or constraint is ignored when ``use_bias`` is False, as in Keras.
    """

    supports_masking = True

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 name: str | None = None, input_shape: Any = None, seed: int | None = None):
        super().__init__(name=name, input_shape=input_shape, seed=seed)
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        weights = {"kernel": (kernel_regularizer, kernel_constraint)}
        if self.use_bias:
            weights["bias"] = (bias_regularizer, bias_constraint)
        penalties.attach(self, weights, activity_regularizer)
        self._cache: tuple | None = None

    def make_params(self, input_shape, dtype, rng):
        d = input_shape[-1]
        if d is None:
            raise ValueError(f"Layer '{self.name}' (Dense) needs the last input axis to be known.")
        params = {"kernel": self.kernel_initializer((d, self.units), dtype, rng)}
        if self.use_bias:
            params["bias"] = self.bias_initializer((self.units,), dtype, rng)
        return params

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def forward(self, x, training=False):
        d, u = x.shape[-1], self.units
        mm = kernels.products_for(x, self.params["kernel"])            # the kernels' threads: no spinning BLAS threads
        z = mm.matmul(x.reshape(-1, d), self.params["kernel"]).reshape(*x.shape[:-1], u)   # (..., U)
        if self.use_bias:
            z += self.params["bias"]
        y = self.activation(z)
        self._cache = (x, z, y)
        return y

    @property
    def logits(self) -> np.ndarray:
        """The pre-activation ``x W + b`` of the last forward call."""
        return self._cache[1]

    def backward(self, dy):
        _, _, y = self._cache
        return self.backward_from_logits(self.activation.backward(dy, y))

    def backward_from_logits(self, dz: np.ndarray) -> np.ndarray:
        """Backward from ``dL/dz`` for ``z = x W + b`` (used when the loss is fused with softmax)."""
        x = self._cache[0]
        d, u = x.shape[-1], self.units
        x2, dz2 = x.reshape(-1, d), dz.reshape(-1, u)   # (N, D), (N, U)
        mm = kernels.products_for(x2, dz2, self.params["kernel"])
        self.grads["kernel"] = mm.matmul(x2, dz2, trans_a=True)          # (D, U)
        if self.use_bias:
            self.grads["bias"] = mm.column_sums(dz2)                    # (U,)
        if not self.need_input_grad:
            return None
        return mm.matmul(dz2, self.params["kernel"], trans_b=True).reshape(*dz.shape[:-1], d)   # (..., D)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **penalties.config(self, {"kernel": "kernel", "bias": "bias"})}
