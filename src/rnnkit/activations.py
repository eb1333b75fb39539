"""Element-wise activations, each with its hand-written derivative.

Every activation here can write its derivative in terms of its *output* ``y``, so the
recurrent layers only cache the hidden states they already keep for BPTT.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.registry import resolve


class Activation:
    """``y = f(x)`` and the vector-Jacobian product ``dx = dy * f'(x)``."""

    name = "activation"
    #: whether each output element depends on its own input only (softmax does not)
    elementwise = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_(self, x: np.ndarray) -> np.ndarray:
        """Apply in place where possible (``x`` is overwritten) and return the result."""
        x[...] = self.forward(x)
        return x

    def forward_blocks_(self, x: np.ndarray, width: int) -> np.ndarray:
        """Apply in place to ``x (B, k * width)`` as k separate gate blocks of ``width`` columns.

        One call for element-wise activations; one per block for softmax, as Keras applies it per gate.
        """
        if self.elementwise:
            return self.forward_(x)
        for k in range(x.shape[-1] // width):
            self.forward_(x[:, k * width:(k + 1) * width])
        return x

    def forward_into(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write ``f(x)`` into ``out`` (``x`` is left alone) and return ``out``."""
        out[...] = self.forward(x)
        return out

    def backward(self, dy: np.ndarray, y: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Given the output ``y = f(x)`` and ``dL/dy``, return ``dL/dx``."""
        raise NotImplementedError

    def derivative(self, y: np.ndarray) -> np.ndarray:  # pragma: no cover - element-wise ones only
        """``f'(x)`` element by element, written in terms of the output ``y = f(x)``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"activations.get({self.name!r})"


class Linear(Activation):
    name = "linear"

    def forward(self, x):
        return x

    def forward_(self, x):
        return x

    def forward_into(self, x, out):
        np.copyto(out, x)
        return out

    def backward(self, dy, y):
        return dy

    def derivative(self, y):
        return np.ones_like(y)


class Tanh(Activation):
    name = "tanh"

    def forward(self, x):
        return np.tanh(x)

    def forward_(self, x):
        return np.tanh(x, out=x)

    def forward_into(self, x, out):
        return np.tanh(x, out=out)

    def backward(self, dy, y):
        return dy * (1.0 - y * y)

    def derivative(self, y):
        return 1.0 - y * y


class Relu(Activation):
    name = "relu"

    def forward(self, x):
        return np.maximum(x, 0.0)

    def forward_(self, x):
        return np.maximum(x, 0.0, out=x)

    def forward_into(self, x, out):
        return np.maximum(x, 0.0, out=out)

    def backward(self, dy, y):
        # f'(x) = 1 where x > 0, and y > 0 exactly there.
        return dy * (y > 0)

    def derivative(self, y):
        return (y > 0).astype(y.dtype)


class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, x):
        # 0.5 * (1 + tanh(x / 2)) never overflows, unlike 1 / (1 + exp(-x)).
        return 0.5 * (1.0 + np.tanh(0.5 * x))

    def forward_(self, x):
        x *= 0.5
        np.tanh(x, out=x)
        x += 1.0
        x *= 0.5
        return x

    def backward(self, dy, y):
        return dy * y * (1.0 - y)

    def derivative(self, y):
        return y * (1.0 - y)


class Softmax(Activation):
    """Softmax over the last axis."""

    name = "softmax"
    elementwise = False

    def forward(self, x):
        z = x - x.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def backward(self, dy, y):
        # J^T dy for J = diag(y) - y y^T
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


_TABLE = {cls.name: cls for cls in (Linear, Tanh, Relu, Sigmoid, Softmax)}


def get(identifier: Any) -> Activation:
    """Return the activation for a name (``"tanh"``), ``None`` (linear) or an instance."""
    if identifier is None:
        return Linear()
    return resolve("activation", identifier, _TABLE, Activation)


def serialize(activation: Activation) -> str:
    return activation.name


def names() -> list[str]:
    return sorted(_TABLE)
