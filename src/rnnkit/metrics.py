"""Metrics reported during training, averaged over every position of every batch.

A metric returns per-batch ``(sum, count)`` so that the epoch value is the mean over all
samples seen (Keras' ``MeanMetricWrapper``), whatever the batch sizes were.
``serialize(metric)`` / ``deserialize(config)`` round-trip a metric with its arguments, so
a model compiled with metric objects can be saved and restored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnkit import losses as losses_module
from rnnkit.registry import from_config


class Metric:
    name = "metric"

    def __init__(self, name: str | None = None):
        if name is not None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"name must be a non-empty string, got {name!r}.")
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

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


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
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
                or not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}.")
        self.threshold = float(threshold)

    def values(self, y_true, y_pred):
        hits = (y_pred > self.threshold) == (np.asarray(y_true).reshape(y_pred.shape) > self.threshold)
        return hits.mean(axis=-1)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


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
_CLASS_NAMES = {cls.__name__: cls.name for cls in _TABLE.values()}   # Keras' serialised class names


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
    """Resolve a metric name (``"accuracy"`` picks categorical, sparse or binary), config or instance."""
    check_name(identifier)
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    key = identifier.lower()
    if key in _ACCURACY:
        return _accuracy_for(loss, y_true_shape, y_pred_shape, identifier)
    return (_TABLE.get(key) or _ALIASES[key])(identifier)


def check_name(identifier: Any) -> None:
    """Raise the 'unknown metric' error at compile time, before any data is seen."""
    if isinstance(identifier, Metric):
        return
    if isinstance(identifier, dict):
        deserialize(identifier)
        return
    if not isinstance(identifier, str):
        raise TypeError(f"Expected a metric name (str) or a Metric instance, got {type(identifier).__name__}.")
    key = identifier.lower()
    if key not in _ACCURACY and key not in _TABLE and key not in _ALIASES:
        raise ValueError(f"Unknown metric {identifier!r}. Valid metric names are: {', '.join(names())}.")


def serialize(metric: Metric) -> dict:
    """``{"class_name": "binary_accuracy", "config": {"name": "accuracy", "threshold": 0.5}}``."""
    if not isinstance(metric, Metric):
        raise TypeError(f"Expected a Metric, got {type(metric).__name__}: {metric!r}.")
    if type(metric) not in _TABLE.values():
        raise TypeError(f"Only rnnkit's own metrics can be serialised, got an instance of {type(metric).__name__}.")
    return {"class_name": type(metric).name, "config": metric.get_config()}


def deserialize(config: Any) -> Metric:
    """The inverse of ``serialize``; Keras' class names (``"BinaryAccuracy"``) are accepted too."""
    if not isinstance(config, dict):
        raise TypeError(f"Expected a metric config {{'class_name', 'config'}}, got {type(config).__name__}: "
                        f"{config!r}.")
    return from_config("metric", config, {**_TABLE, **_ALIASES}, _CLASS_NAMES)
