"""Metrics reported during training, averaged over every position of every batch.

A metric returns per-batch ``(sum, count)`` so that the epoch value is the mean over all
samples seen (Keras' ``MeanMetricWrapper``), whatever the batch sizes were; ``result(sum, count)``
turns the epoch's totals into the logged value (the mean, or ``exp`` of it for ``Perplexity``).
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

    def result(self, total: float, count: float) -> float:
        """The logged value from the sums of ``update`` over an epoch: the mean over positions."""
        return total / max(count, 1)

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


class _CrossEntropyMetric(Metric):
    """Per-position cross-entropy ``-log p(label)`` in nats, from probabilities (clipped to
    ``[1e-7, 1 - 1e-7]`` as Keras' cross-entropy) or, with ``from_logits``, from logits.

    The labels are class indices ``(...)`` / ``(..., 1)`` or one-hot rows shaped like ``y_pred``.
    """

    def __init__(self, name: str | None = None, from_logits: bool = False):
        super().__init__(name)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits must be True or False, got {type(from_logits).__name__}: {from_logits!r}.")
        self.from_logits = bool(from_logits)

    def cross_entropy(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y_pred = np.asarray(y_pred, dtype=np.float64)
        y_true = np.asarray(y_true)
        if y_true.shape == y_pred.shape and y_pred.shape[-1] > 1:          # one-hot (or soft) targets
            if self.from_logits:
                return -(y_true * _log_softmax(y_pred)).sum(axis=-1)
            p = np.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), losses_module.EPSILON, 1 - losses_module.EPSILON)
            return -(y_true * np.log(p)).sum(axis=-1)
        labels = y_true.reshape(y_pred.shape[:-1]).astype(np.int64)[..., None]     # (..., 1)
        if self.from_logits:
            return -np.take_along_axis(_log_softmax(y_pred), labels, axis=-1)[..., 0]
        p = np.take_along_axis(y_pred, labels, axis=-1)[..., 0] / y_pred.sum(axis=-1)
        return -np.log(np.clip(p, losses_module.EPSILON, 1 - losses_module.EPSILON))

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class Perplexity(_CrossEntropyMetric):
    """``exp`` of the mean cross-entropy (nats) over every position of the epoch (keras_nlp's ``Perplexity``).

    The exponential is taken once, of the epoch's mean, not averaged over batches: batches of
    different sizes weigh by their positions, and masked positions are left out.
    """

    name = "perplexity"

    def values(self, y_true, y_pred):
        return self.cross_entropy(y_true, y_pred)

    def result(self, total: float, count: float) -> float:
        return math.exp(total / max(count, 1))


class BitsPerCharacter(_CrossEntropyMetric):
    """The mean cross-entropy in bits (``nats / ln 2``): a character model's usual figure."""

    name = "bits_per_character"

    def values(self, y_true, y_pred):
        return self.cross_entropy(y_true, y_pred) / math.log(2.0)


_TABLE = {cls.name: cls for cls in (CategoricalAccuracy, SparseCategoricalAccuracy, BinaryAccuracy,
                                    MeanAbsoluteError, MeanSquaredError, Perplexity, BitsPerCharacter)}
_ALIASES = {"mae": MeanAbsoluteError, "mse": MeanSquaredError, "bpc": BitsPerCharacter}
_ACCURACY = ("accuracy", "acc")
_CLASS_NAMES = {cls.__name__: cls.name for cls in _TABLE.values()}   # Keras' serialised class names


def _accuracy_for(loss: losses_module.Loss, y_true_shape, y_pred_shape, name: str) -> Metric:
    """Pick the accuracy that fits the loss, or the shapes where the loss does not say (Keras' rule)."""
    if isinstance(loss, losses_module.CTC):
        raise ValueError(
            f"metrics=[{name!r}] cannot be used with the CTC loss: its targets are label rows (B, L), not one "
            "label per output step (B, T, K). Leave the metric out, and score decoded outputs instead: "
            "rnnkit.ctc_decode(...) then rnnkit.ctc.character_error_rate(references, hypotheses)."
        )
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
