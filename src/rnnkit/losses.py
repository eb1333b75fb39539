"""Losses with Keras' names, arguments and reduction, each with its hand-written gradient.

A loss compares ``y_true`` and ``y_pred`` of shape ``(..., K)`` (sparse labels: ``(...)``),
computes one value per position ``...`` (reducing the last axis) and takes the mean over
positions, as Keras' ``sum_over_batch_size``. ``value_and_grad`` returns that mean and
``dL/dy_pred``.

The cross-entropies take Keras' ``from_logits`` (``y_pred`` holds logits, not probabilities)
and ``label_smoothing`` (the targets are pulled towards uniform: ``y (1 - s) + s / K`` for the
categorical loss, ``y (1 - s) + s / 2`` for the binary one). They also offer
``value_and_grad_from_logits``: the model uses it when the last layer ends in the matching
activation (softmax for the categorical losses, sigmoid for the binary one) and ``from_logits``
is False, so the loss is computed as ``logsumexp(z) - z_y`` and its gradient as
``softmax(z) - y``, which never overflows or takes the log of zero. With ``from_logits=True``
the same formulas are applied to the model's output itself.

``categorical_crossentropy(y_true, y_pred)`` and the other module-level functions return the
per-position values, as Keras' functions of the same names do.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnkit.ctc import ctc_loss_and_grad
from rnnkit.registry import from_config, resolve

EPSILON = 1e-7  # Keras' backend epsilon, used to clip probabilities
REDUCTIONS = ("sum_over_batch_size",)


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}: {value!r}.")
    return bool(value)


def _check_smoothing(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"label_smoothing must be a number in [0, 1], got {value!r}.")
    return float(value)


def _as_float(a: Any) -> np.ndarray:
    arr = np.asarray(a)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


class Loss:
    """Base class: subclasses give per-position values and their gradients; this class reduces.

    ``mask`` (shape ``(...)``, the positions) drops masked positions from the mean, as
    Keras does for padded sequences: the value is ``sum(l * m) / sum(m)``.
    """

    name = "loss"
    #: name of the output activation this loss can be fused with (computed from logits); None with from_logits
    fuses_with: str | None = None
    #: whether ``y_true`` holds class indices instead of a tensor shaped like ``y_pred``
    sparse = False
    #: whether ``y_pred`` holds logits (Keras' ``from_logits``); only the cross-entropies take it
    from_logits = False
    reduction = "sum_over_batch_size"

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size"):
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__} supports only reduction='sum_over_batch_size' (the mean over positions), "
                f"got reduction={reduction!r}; for another reduction, reduce the per-position values "
                "loss.values(y_true, y_pred) yourself."
            )
        self.reduction = reduction
        if name is not None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"name must be a non-empty string, got {name!r}.")
            self.name = name

    def __call__(self, y_true, y_pred, mask=None) -> float:
        y_pred = _as_float(y_pred)
        return self.value_and_grad(np.asarray(y_true), y_pred, mask)[0]

    def elementwise(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-position values ``l (...)`` and ``dl/dy_pred (..., K)``, ``y_pred`` being probabilities."""
        raise NotImplementedError  # pragma: no cover

    def elementwise_from_logits(self, y_true, logits):  # pragma: no cover - only the cross-entropies
        raise NotImplementedError

    def per_position(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``elementwise`` or, with ``from_logits``, ``elementwise_from_logits`` on the model's output."""
        y_true = self._match(y_true, y_pred)
        return self.elementwise_from_logits(y_true, y_pred) if self.from_logits else self.elementwise(y_true, y_pred)

    def values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        """The per-position values ``(...)`` (no reduction)."""
        return self.per_position(np.asarray(y_true), _as_float(y_pred))[0]

    def value_and_grad(self, y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray | None = None):
        """The mean loss over (unmasked) positions and its gradient with respect to ``y_pred``."""
        return _reduce(*self.per_position(y_true, y_pred), mask, y_pred.dtype)

    def value_and_grad_from_logits(self, y_true, logits, mask=None):
        """The same loss computed from the logits of the fused activation, and ``dL/dlogits``."""
        return _reduce(*self.elementwise_from_logits(self._match(y_true, logits), logits), mask, logits.dtype)

    def _match(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """``y_true`` with ``y_pred``'s shape: a trailing axis of 1 added or dropped, as Keras does."""
        if self.sparse or y_true.shape == y_pred.shape:
            return y_true
        if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
            y_true = y_true[..., None]
        elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{type(self).__name__} needs y_true shaped like y_pred {y_pred.shape}, "
                             f"got {y_true.shape}.")
        return y_true

    def get_config(self) -> dict:
        return {"name": self.name, "reduction": self.reduction}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


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
    """``-sum_k y_k log p_k`` with ``p`` normalised to sum 1 and clipped to ``[eps, 1 - eps]``.

    ``from_logits``: ``y_pred`` holds logits and ``p = softmax(y_pred)``. ``label_smoothing = s``:
    the targets become ``y (1 - s) + s / K``.
    """

    name = "categorical_crossentropy"
    fuses_with = "softmax"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 reduction: str = "sum_over_batch_size", name: str | None = None):
        super().__init__(reduction=reduction, name=name)
        self.from_logits = _check_flag("from_logits", from_logits)
        self.label_smoothing = _check_smoothing(label_smoothing)
        if self.from_logits:
            self.fuses_with = None   # the output is already the logits

    def _targets(self, y_true, y_pred):
        if not self.label_smoothing:
            return y_true
        s = self.label_smoothing
        return np.asarray(y_true, dtype=y_pred.dtype) * (1.0 - s) + s / y_pred.shape[-1]

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

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy with integer class labels of shape ``(...)`` or ``(..., 1)``.

    Keras' ``ignore_class`` is not supported (only None): mask those positions instead.
    """

    name = "sparse_categorical_crossentropy"
    sparse = True

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str = "sum_over_batch_size", name: str | None = None):
        if ignore_class is not None:
            raise ValueError(
                f"SparseCategoricalCrossentropy does not support ignore_class (got {ignore_class!r}); pad with "
                "a mask instead (Embedding(mask_zero=True) or Masking), which leaves those positions out of the loss."
            )
        super().__init__(from_logits=from_logits, reduction=reduction, name=name)

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

    def get_config(self):
        config = super().get_config()
        del config["label_smoothing"]
        return config


class BinaryCrossentropy(Loss):
    """Mean over the last axis of ``-(y log p + (1 - y) log(1 - p))``, ``p`` clipped to ``[eps, 1 - eps]``.

    ``from_logits``: ``y_pred`` holds logits and ``p = sigmoid(y_pred)``. ``label_smoothing = s``:
    the targets become ``y (1 - s) + s / 2``.
    """

    name = "binary_crossentropy"
    fuses_with = "sigmoid"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 reduction: str = "sum_over_batch_size", name: str | None = None):
        super().__init__(reduction=reduction, name=name)
        self.from_logits = _check_flag("from_logits", from_logits)
        self.label_smoothing = _check_smoothing(label_smoothing)
        if self.from_logits:
            self.fuses_with = None   # the output is already the logits

    def _targets(self, y_true, y_pred):
        if not self.label_smoothing:
            return y_true
        s = self.label_smoothing
        return np.asarray(y_true, dtype=y_pred.dtype) * (1.0 - s) + 0.5 * s

    def elementwise(self, y_true, y_pred):
        y_true = self._targets(y_true, y_pred)
        k = y_pred.shape[-1]
        q = np.clip(y_pred, EPSILON, 1.0 - EPSILON)
        values = -(y_true * np.log(q) + (1.0 - y_true) * np.log(1.0 - q)).mean(axis=-1)
        inside = (y_pred > EPSILON) & (y_pred < 1.0 - EPSILON)
        return values, np.where(inside, (q - y_true) / (q * (1.0 - q)), 0.0) / k

    def elementwise_from_logits(self, y_true, logits):
        y_true = self._targets(y_true, logits)
        k = logits.shape[-1]
        # max(z, 0) - z y + log(1 + exp(-|z|))  is  -y log s(z) - (1 - y) log(1 - s(z)), overflow-free
        values = (np.maximum(logits, 0) - logits * y_true + np.log1p(np.exp(-np.abs(logits)))).mean(axis=-1)
        sig = 0.5 * (1.0 + np.tanh(0.5 * logits))
        return values, (sig - y_true) / k

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class MeanSquaredError(Loss):
    """Mean over the last axis of ``(y_pred - y_true) ** 2``."""

    name = "mean_squared_error"

    def __init__(self, reduction: str = "sum_over_batch_size", name: str | None = None):
        super().__init__(name=name, reduction=reduction)

    def elementwise(self, y_true, y_pred):
        diff = y_pred - y_true
        k = diff.shape[-1]
        return (diff * diff).mean(axis=-1), (2.0 / k) * diff


class MeanAbsoluteError(Loss):
    """Mean over the last axis of ``|y_pred - y_true|``."""

    name = "mean_absolute_error"

    def __init__(self, reduction: str = "sum_over_batch_size", name: str | None = None):
        super().__init__(name=name, reduction=reduction)

    def elementwise(self, y_true, y_pred):
        diff = y_pred - y_true
        return np.abs(diff).mean(axis=-1), np.sign(diff) / diff.shape[-1]


class CTC(Loss):
    """Connectionist temporal classification: ``-log p(labels | y_pred)`` per sequence, the mean over the batch.

    ``y_true`` ``(B, L)``: integer labels in ``[1, K)`` padded at the end with 0, which is the blank (Keras 3's
    convention: a row's label length is its number of non-zero entries). ``y_pred`` ``(B, T, K)``:
    probabilities, normally a softmax output, from which the model then computes the loss from the
    softmax's logits (gradient ``softmax - gamma``, see ``rnnkit.ctc``); with ``from_logits=True``, logits,
    which is what Keras 3's ``keras.losses.CTC`` takes (it always applies a log-softmax). Every sequence
    uses all ``T`` steps, as in Keras, unless the output carries a mask (``Masking`` or
    ``Embedding(mask_zero=True)`` upstream), whose length per sequence is then used.
    """

    name = "ctc"
    fuses_with = "softmax"
    sparse = True   # y_true holds label indices, (B, L) against y_pred (B, T, K)

    def __init__(self, from_logits: bool = False, reduction: str = "sum_over_batch_size", name: str | None = None):
        super().__init__(reduction=reduction, name=name)
        self.from_logits = _check_flag("from_logits", from_logits)
        if self.from_logits:
            self.fuses_with = None   # the output is already the logits

    def check_targets(self, y_true: Any, output_shape: tuple, what: str = "y_true") -> np.ndarray:
        """``y_true`` as int64 labels ``(B, L)`` checked against an output of shape ``(T, K)`` (no batch axis)."""
        arr = np.asarray(y_true)
        if arr.dtype.kind not in "iuf" or arr.ndim != 2:
            raise ValueError(
                f"{self.name} expects {what} of shape (batch_size, max_label_length): integer labels in [1, K) "
                f"padded at the end with 0, got {what} of shape {arr.shape} and dtype {arr.dtype}."
            )
        if len(output_shape) != 2:
            raise ValueError(f"{self.name} needs an output of shape (batch_size, time_steps, num_classes), "
                             f"got {(None, *output_shape)}.")
        k = output_shape[-1]
        if arr.size and ((arr != np.round(arr)).any() or arr.min() < 0 or (k is not None and arr.max() >= k)):
            raise ValueError(f"{what} must hold integer labels in [1, {k}) padded with 0 for {self.name}, "
                             f"got values from {arr.min()} to {arr.max()}.")
        arr = arr.astype(np.int64)
        labelled = arr != 0
        # a 0 followed by a label would be counted (as Keras counts non-zeros) but is a blank inside the labels
        if (labelled[:, 1:] & ~labelled[:, :-1]).any():
            row = int(np.flatnonzero((labelled[:, 1:] & ~labelled[:, :-1]).any(axis=1))[0])
            raise ValueError(f"{what} row {row} is {arr[row].tolist()}: 0 is the blank and may only pad the end "
                             "of a row, after its labels.")
        steps = output_shape[0]
        if steps is not None and arr.shape[1] > 1:
            # each label takes a step, and a label repeating its neighbour one more (the blank between)
            needed = labelled.sum(axis=1) + (labelled[:, 1:] & (arr[:, 1:] == arr[:, :-1])).sum(axis=1)
            if (needed > steps).any():
                row = int(np.flatnonzero(needed > steps)[0])
                raise ValueError(f"{what} row {row} has labels {arr[row][labelled[row]].tolist()}, which need at "
                                 f"least {needed[row]} time steps (a repeated label needs a blank step between), "
                                 f"but the output has {steps}.")
        return arr

    def _per_sequence(self, y_true, y_pred, mask, from_logits: bool) -> tuple[np.ndarray, np.ndarray]:
        y_true = self.check_targets(y_true, y_pred.shape[1:])
        if y_true.shape[0] != y_pred.shape[0]:
            raise ValueError(f"{self.name} got {y_true.shape[0]} label rows for {y_pred.shape[0]} sequences.")
        steps = y_pred.shape[1]
        if mask is None:
            input_length = np.full(len(y_pred), steps)
        else:
            m = np.asarray(mask, dtype=bool).reshape(y_pred.shape[:2])
            input_length = m.sum(axis=1)
            if (m != (np.arange(steps)[None, :] < input_length[:, None])).any():
                raise ValueError(f"{self.name} needs each sequence's mask to keep its first steps and drop the rest "
                                 "(padding at the end).")
        return ctc_loss_and_grad(y_true, y_pred, (y_true != 0).sum(axis=1), input_length, mask_index=0,
                                 from_logits=from_logits)

    def elementwise(self, y_true, y_pred):
        return self._per_sequence(y_true, y_pred, None, False)

    def elementwise_from_logits(self, y_true, logits):
        return self._per_sequence(y_true, logits, None, True)

    def value_and_grad(self, y_true, y_pred, mask=None):
        return _reduce(*self._per_sequence(y_true, y_pred, mask, self.from_logits), None, y_pred.dtype)

    def value_and_grad_from_logits(self, y_true, logits, mask=None):
        return _reduce(*self._per_sequence(y_true, logits, mask, True), None, logits.dtype)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


# -- Keras' functions: per-position values ---------------------------------------------------

def categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                             label_smoothing: float = 0.0) -> np.ndarray:
    """Per-position categorical cross-entropy ``(...)`` of one-hot (or soft) targets ``(..., K)``."""
    return CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing).values(y_true, y_pred)


def sparse_categorical_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False) -> np.ndarray:
    """Per-position cross-entropy ``(...)`` of integer labels ``(...)`` and predictions ``(..., K)``."""
    return SparseCategoricalCrossentropy(from_logits=from_logits).values(y_true, y_pred)


def binary_crossentropy(y_true: Any, y_pred: Any, from_logits: bool = False,
                        label_smoothing: float = 0.0) -> np.ndarray:
    """Per-position binary cross-entropy ``(...)``, the mean over the last axis."""
    return BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing).values(y_true, y_pred)


def mean_squared_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """``mean((y_pred - y_true) ** 2, axis=-1)``."""
    return MeanSquaredError().values(y_true, y_pred)


def mean_absolute_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """``mean(|y_pred - y_true|, axis=-1)``."""
    return MeanAbsoluteError().values(y_true, y_pred)


def ctc(y_true: Any, y_pred: Any, from_logits: bool = False) -> np.ndarray:
    """Per-sequence CTC losses ``(B,)`` of 0-padded labels ``(B, L)`` and predictions ``(B, T, K)``."""
    return CTC(from_logits=from_logits).values(y_true, y_pred)


_CLASSES = (CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
            MeanSquaredError, MeanAbsoluteError, CTC)
_TABLE: dict[str, Any] = {cls.name: cls for cls in _CLASSES}
_TABLE.update({"mse": MeanSquaredError, "mae": MeanAbsoluteError})
_CLASS_NAMES = {cls.__name__: cls.name for cls in _CLASSES}   # Keras' serialised class names
_FUNCTIONS = {categorical_crossentropy: CategoricalCrossentropy,
              sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
              binary_crossentropy: BinaryCrossentropy, mean_squared_error: MeanSquaredError,
              mean_absolute_error: MeanAbsoluteError, ctc: CTC}


def get(identifier: Any) -> Loss:
    """A fresh loss for a name (``"categorical_crossentropy"``, ``"mse"``, ...) or one of this module's
    functions; an instance is returned as it is, a serialised dict is deserialised."""
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier) and not isinstance(identifier, Loss) and identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    return resolve("loss", identifier, _TABLE, Loss)


def serialize(loss: Loss) -> dict:
    """``{"class_name": "binary_crossentropy", "config": {"from_logits": True, ...}}``."""
    if not isinstance(loss, Loss):
        raise TypeError(f"Expected a Loss, got {type(loss).__name__}: {loss!r}.")
    if type(loss) not in _CLASSES:
        raise TypeError(f"Only rnnkit's own losses can be serialised, got an instance of {type(loss).__name__}.")
    return {"class_name": type(loss).name, "config": loss.get_config()}


def deserialize(config: Any) -> Loss:
    """The inverse of ``serialize`` (a name is accepted too)."""
    if not isinstance(config, dict):
        return get(config)
    return from_config("loss", config, _TABLE, _CLASS_NAMES)
