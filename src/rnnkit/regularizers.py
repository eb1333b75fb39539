"""Weight and activity penalties with Keras 3's names, formulas and defaults.

A regularizer is a penalty ``R(w)`` added to the loss, together with its derivative, so that
the training engine can add ``R(w)`` to the loss and ``dR/dw`` to the weight's gradient::

    L1(l1):      R(w) = l1 * sum(|w|)                 dR/dw = l1 * sign(w)      (0 where w == 0)
    L2(l2):      R(w) = l2 * sum(w ** 2)              dR/dw = 2 * l2 * w        (no 1/2, as Keras)
    L1L2(l1, l2): the sum of the two

A layer keeps them in ``layer.regularizers`` (weight name -> regularizer) and, for its output,
in ``layer.activity_regularizer``; Keras divides the activity penalty by the batch size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnkit.registry import from_config, resolve


def _factor(name: str, value: Any) -> float:
    """A penalty factor: a finite number >= 0 (Keras' check)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


class Regularizer:
    """Base class: ``reg(w)`` is the penalty (a float) and ``reg.gradient(w)`` its derivative."""

    name = "regularizer"

    def __call__(self, w: np.ndarray) -> float:
        return 0.0

    def gradient(self, w: np.ndarray) -> np.ndarray:
        """``dR/dw``, an array shaped and typed like ``w``."""
        return np.zeros_like(w)

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: Any) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = object.__hash__


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w ** 2)``; both factors default to 0, as in Keras 3."""

    name = "l1_l2"

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _factor("l1", 0.0 if l1 is None else l1)
        self.l2 = _factor("l2", 0.0 if l2 is None else l2)

    def __call__(self, w):
        w = np.asarray(w)
        value = 0.0
        if self.l1:
            value += self.l1 * float(np.abs(w).sum())
        if self.l2:
            value += self.l2 * float((w * w).sum())
        return value

    def gradient(self, w):
        w = np.asarray(w)
        grad = np.zeros_like(w)
        if self.l1:
            grad += self.l1 * np.sign(w)        # sign(0) = 0, as autograd of |w|
        if self.l2:
            grad += (2.0 * self.l2) * w
        return grad

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|w|)``."""

    name = "l1"

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=0.01 if l1 is None else l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w ** 2)`` (Keras has no factor 1/2, so the gradient is ``2 * l2 * w``)."""

    name = "l2"

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=0.01 if l2 is None else l2)

    def get_config(self):
        return {"l2": self.l2}


# Keras' lower-case aliases are the classes themselves: ``l2(0.01)`` is ``L2(0.01)``.
l1, l2, l1_l2 = L1, L2, L1L2

_CLASSES = (L1, L2, L1L2)
_TABLE: dict[str, Any] = {cls.name: cls for cls in _CLASSES}
# the string "l1_l2" gives the documented 0.01 / 0.01 (L1L2() alone would penalise nothing)
_TABLE["l1_l2"] = lambda: L1L2(l1=0.01, l2=0.01)
_CLASS_NAMES = {cls.__name__: cls.name for cls in _CLASSES}   # Keras' serialised class names
_CLASS_NAMES["l1l2"] = "l1_l2"                                # Keras 3's snake case of "L1L2"


def get(identifier: Any) -> Regularizer | None:
    """A regularizer for None (None), a name (``"l2"``), a serialised dict or an instance."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        identifier = _CLASS_NAMES.get(identifier, identifier)
    return resolve("regularizer", identifier, _TABLE, Regularizer)


def serialize(regularizer: Regularizer | None) -> dict | None:
    """``{"class_name": "l2", "config": {"l2": 0.01}}`` (None stays None)."""
    if regularizer is None:
        return None
    if not isinstance(regularizer, Regularizer):
        raise TypeError(f"Expected a Regularizer, got {type(regularizer).__name__}: {regularizer!r}.")
    return {"class_name": regularizer.name, "config": regularizer.get_config()}


def deserialize(config: Any) -> Regularizer | None:
    """The inverse of ``serialize``; Keras' own ``{"class_name": "L2", ...}`` dicts load too."""
    if not isinstance(config, dict):
        return get(config)
    return from_config("regularizer", config, {c.name: c for c in _CLASSES}, _CLASS_NAMES)
