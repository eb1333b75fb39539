"""Losses with Keras' names and reductions, each with its hand-written gradient.

A loss compares ``y_true`` and ``y_pred`` of shape ``(..., K)`` (sparse labels: ``(...)``),
computes one value per position ``...`` (reducing the last axis) and takes the mean over
positions, as Keras' ``sum_over_batch_size``. ``value_and_grad`` returns that mean and
``dL/dy_pred``.

Cross-entropies also offer ``value_and_grad_from_logits``: the model uses it when the last
layer ends in the matching activation (softmax for the categorical losses, sigmoid for
the binary one), so the loss is computed as ``logsumexp(z) - z_y`` and its gradient as
``softmax(z) - y``, which never overflows or takes the log of zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.registry import resolve

EPSILON = 1e-7  # Keras' backend epsilon, used to clip probabilities


class Loss:
    """Base class: subclasses give per-position values and their gradients; this class reduces.

    ``mask`` (shape ``(...)``, the positions) drops masked positions from the mean, as
    Keras does for padded sequences: the value is ``sum(l * m) / sum(m)``.
    """

    name = "loss"
    #: name of the output activation this loss can be fused with (computed from logits)
    fuses_with: str | None = None
    #: whether ``y_true`` holds class indices instead of a tensor shaped like ``y_pred``
    sparse = False

    def __call__(self, y_true, y_pred, mask=None) -> float:
        return self.value_and_grad(np.asarray(y_true), np.asarray(y_pred), mask)[0]

    def elementwise(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-position values ``l (...)`` and ``dl/dy_pred (..., K)``."""
        raise NotImplementedError  # pragma: no cover

    def elementwise_from_logits(self, y_true, logits):  # pragma: no cover - only fused losses
        raise NotImplementedError

    def value_and_grad(self, y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None):
        """The mean loss over (unmasked) positions and its gradient with respect to ``y_pred``."""
        return _reduce(*self.elementwise(y_true, y_pred), mask, y_pred.dtype)

    def value_and_grad_from_logits(self, y_true, logits, mask=None):
        """The same loss computed from the logits of the fused activation, and ``dL/dlogits``."""
        return _reduce(*self.elementwise_from_logits(y_true, logits), mask, logits.dtype)

    def __repr__(self) -> str:
        return f"losses.get({self.name!r})"


def _reduce(values: np.ndarray, grads: np.ndarray, mask: np.ndarray | None, dtype) -> tuple[float, np.ndarray]:
    if mask is None:
        n = max(1, values.size)
        return float(values.sum() / n), (grads / n).astype(dtype, copy=False)
    weights = mask.reshape(values.shape).astype(values.dtype)
    total = max(float(weights.sum()), 1.0)
    value = float((values * weights).sum() / total)
    return value, (grads * (weights / total)[..., None]).astype(dtype, copy=False)


def _sparse_to_dense(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    labels = y_true.reshape(y_pred.shape[:-1]).astype(np.int64)
    onehot = np.zeros_like(y_pred)
    np.put_along_axis(onehot, labels[..., None], 1.0, axis=-1)
    return onehot


class CategoricalCrossentropy(Loss):
    """``-sum_k y_k log p_k`` with ``p`` normalised to sum 1 and clipped to ``[eps, 1 - eps]``."""

    name = "categorical_crossentropy"
    fuses_with = "softmax"

    def _targets(self, y_true, y_pred):
        return y_true

    def elementwise(self, y_true, y_pred):
        y = self._targets(y_true, y_pred)
        total = y_pred.sum(axis=-1, keepdims=True)
        p = y_pred / total
        q = np.clip(p, EPSILON, 1.0 - EPSILON)
        values = -(y * np.log(q)).sum(axis=-1)
        # dl/dq, zero where the clip was active, then back through p = y_pred / total
        dq = np.where((p > EPSILON) & (p < 1.0 - EPSILON), -y / q, 0.0)
        return values, (dq - (dq * p).sum(axis=-1, keepdims=True)) / total

    def elementwise_from_logits(self, y_true, logits):
        # with z' = z - max(z) and s = sum(exp(z')):  l = sum(y) log(s) - sum(y z'),  dl/dz = softmax(z) sum(y) - y
        y = self._targets(y_true, logits)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=-1, keepdims=True)
        y_sum = y.sum(axis=-1, keepdims=True)
        values = (y_sum * np.log(s) - (y * shifted).sum(axis=-1, keepdims=True))[..., 0]
        e *= y_sum / s
        e -= y
        return values, e


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class labels of shape ``(...)`` or ``(..., 1)``."""

    name = "sparse_categorical_crossentropy"
    sparse = True

    def _targets(self, y_true, y_pred):
        return _sparse_to_dense(y_true, y_pred)

    def elementwise_from_logits(self, y_true, logits):
        # l = log(s) - z'_label and dl/dz = softmax(z) - onehot(label), without building the one-hot
        labels = y_true.reshape(logits.shape[:-1]).astype(np.int64)[..., None]
        shifted = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=-1, keepdims=True)
        values = (np.log(s) - np.take_along_axis(shifted, labels, axis=-1))[..., 0]
        e /= s
        np.put_along_axis(e, labels, np.take_along_axis(e, labels, axis=-1) - 1.0, axis=-1)
        return values, e


class BinaryCrossentropy(Loss):
    """Mean over the last axis of ``-(y log p + (1 - y) log(1 - p))``, ``p`` clipped to ``[eps, 1 - eps]``."""

    name = "binary_crossentropy"
    fuses_with = "sigmoid"

    def elementwise(self, y_true, y_pred):
        k = y_pred.shape[-1]
        q = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
        values = -(y_true * np.log(q) + (1.0 - y_true) * np.log(1.0 - q)).mean(axis=-1)
        inside = (y_pred > EPSILON) & (y_pred < 1.0 - EPSILON)
        return values, np.where(inside, (q - y_true) / (q * (1.0 - q)), 0.0) / k

    def elementwise_from_logits(self, y_true, logits):
        k = logits.shape[-1]
        # max(z, 0) - z y + log(1 + exp(-|z|))  is  -y log s(z) - (1 - y) log(1 - s(z)), overflow-free
        values = (np.maximum(logits, 0) - logits * y_true + np.log1p(np.exp(-np.abs(logits)))).mean(axis=-1)
        sig = 0.5 * (1.0 + np.tanh(0.5 * logits))
        return values, (sig - y_true) / k


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def elementwise(self, y_true, y_pred):
        diff = y_pred - y_true
        k = diff.shape[-1]
        return (diff * diff).mean(axis=-1), (2.0 / k) * diff


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def elementwise(self, y_true, y_pred):
        diff = y_pred - y_true
        return np.abs(diff).mean(axis=-1), np.sign(diff) / diff.shape[-1]


_CLASSES = (CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
            MeanSquaredError, MeanAbsoluteError)
_TABLE: dict[str, Any] = {cls.name: cls for cls in _CLASSES}
_TABLE.update({"mse": MeanSquaredError, "mae": MeanAbsoluteError})


def get(identifier: Any) -> Loss:
    """Return a loss for a name (``"categorical_crossentropy"``, ``"mse"``, ...) or an instance."""
    return resolve("loss", identifier, _TABLE, Loss)
