"""Metrics reported during training, averaged over every position of every batch.

A metric returns per-batch ``(sum, count)`` so that the epoch value is the mean over all
samples seen (Keras' ``MeanMetricWrapper``), whatever the batch sizes were.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import losses as losses_module


class Metric:
    name = "metric"

    def __init__(self, name: str | None = None):
        if name is not None:
            self.name = name

    def update(self, y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
        """Return ``(sum of per-position values, number of positions)`` for one batch.

        Masked positions (``mask`` False) are left out of both.
        """
        values = self.values(y_true, y_pred)
        if mask is None:
            return float(values.sum()), float(values.size)
        m = mask.reshape(values.shape)
        return float(values[m].sum()), float(m.sum())

    def values(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """One value per position (every axis of ``y_pred`` but the last)."""
        raise NotImplementedError  # pragma: no cover


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def values(self, y_true, y_pred):
        return np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def values(self, y_true, y_pred):
        labels = np.asarray(y_true).reshape(y_pred.shape[:-1])
        return labels.astype(np.int64) == np.argmax(y_pred, axis=-1)


class BinaryAccuracy(Metric):
    name = "binary_accuracy"

    def __init__(self, name: str | None = None, threshold: float = 0.5):
        super().__init__(name)
        self.threshold = threshold

    def values(self, y_true, y_pred):
        hits = (y_pred > self.threshold) == (np.asarray(y_true).reshape(y_pred.shape) > self.threshold)
        return hits.mean(axis=-1)


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"

    def values(self, y_true, y_pred):
        return np.abs(y_pred - np.asarray(y_true).reshape(y_pred.shape)).mean(axis=-1)


class MeanSquaredError(Metric):
    name = "mean_squared_error"

    def values(self, y_true, y_pred):
        diff = y_pred - np.asarray(y_true).reshape(y_pred.shape)
        return (diff * diff).mean(axis=-1)


_TABLE = {cls.name: cls for cls in (CategoricalAccuracy, SparseCategoricalAccuracy, BinaryAccuracy,
                                    MeanAbsoluteError, MeanSquaredError)}
_ALIASES = {"mae": MeanAbsoluteError, "mse": MeanSquaredError}
_ACCURACY = ("accuracy", "acc")


def _accuracy_for(loss: losses_module.Loss, y_true_shape, y_pred_shape, name: str) -> Metric:
    """Pick the accuracy that fits the loss, or the shapes where the loss does not say (Keras' rule)."""
    if isinstance(loss, losses_module.BinaryCrossentropy):
        return BinaryAccuracy(name)
    if isinstance(loss, losses_module.SparseCategoricalCrossentropy):
        return SparseCategoricalAccuracy(name)
    if isinstance(loss, losses_module.CategoricalCrossentropy):
        return CategoricalAccuracy(name)
    if y_pred_shape[-1] == 1:
        return BinaryAccuracy(name)
    if len(y_true_shape) < len(y_pred_shape) or y_true_shape[-1] == 1:
        return SparseCategoricalAccuracy(name)
    return CategoricalAccuracy(name)


def names() -> list[str]:
    return sorted([*_ACCURACY, *_TABLE, *_ALIASES])


def get(identifier: Any, loss: losses_module.Loss, y_true_shape, y_pred_shape) -> Metric:
    """Resolve a metric name (``"accuracy"`` picks categorical, sparse or binary) or instance."""
    check_name(identifier)
    if isinstance(identifier, Metric):
        return identifier
    key = identifier.lower()
    if key in _ACCURACY:
        return _accuracy_for(loss, y_true_shape, y_pred_shape, identifier)
    return (_TABLE.get(key) or _ALIASES[key])(identifier)


def check_name(identifier: Any) -> None:
    """Raise the 'unknown metric' error at compile time, before any data is seen."""
    if isinstance(identifier, Metric):
        return
    if not isinstance(identifier, str):
        raise TypeError(f"Expected a metric name (str) or a Metric instance, got {type(identifier).__name__}.")
    key = identifier.lower()
    if key not in _ACCURACY and key not in _TABLE and key not in _ALIASES:
        raise ValueError(f"Unknown metric {identifier!r}. Valid metric names are: {', '.join(names())}.")
