"""Weight constraints with Keras 3's names, formulas and defaults.

A constraint is a projection applied to a weight after every optimizer update:
``w[...] = constraint(w)``. The norms are taken along ``axis`` (0: each column of a
``(D, U)`` kernel, i.e. the weights into one unit), and, as in Keras, ``eps = 1e-7`` is
added to the norm in the denominator, so a zero column stays zero::

    MaxNorm(m):              w * clip(n, 0, m) / (eps + n)
    NonNeg():                max(w, 0)
    UnitNorm():              w / (eps + n)
    MinMaxNorm(lo, hi, r):   w * (r * clip(n, lo, hi) + (1 - r) * n) / (eps + n)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnnkit.registry import from_config, resolve

EPSILON = 1e-7  # Keras' backend epsilon


def _number(name: str, value: Any, low: float = 0.0, high: float = math.inf) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value!r}.")
    return value.item() if isinstance(value, np.generic) else value


def _axis(value: Any) -> int | list[int]:
    """An int or a list of ints (Keras allows ``[0, 1, 2]`` for a convolution kernel)."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if not items or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) for a in items):
        raise TypeError(f"axis must be an integer or a list of integers, got {value!r}.")
    return [int(a) for a in items] if isinstance(value, (list, tuple)) else int(value)


class Constraint:
    """Base class: ``constraint(w)`` returns the projected weight (a new array shaped like ``w``)."""

    name = "constraint"

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return np.asarray(w)

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: Any) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    __hash__ = object.__hash__


def _norms(w: np.ndarray, axis: int | list[int]) -> np.ndarray:
    return np.sqrt((w * w).sum(axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=True))


class MaxNorm(Constraint):
    """Rescale each weight vector along ``axis`` whose norm exceeds ``max_value`` down to it."""

    name = "max_norm"

    def __init__(self, max_value: float = 2, axis: int | list[int] = 0):
        self.max_value = _number("max_value", max_value)
        self.axis = _axis(axis)

    def __call__(self, w):
        w = np.asarray(w)
        n = _norms(w, self.axis)
        return w * (np.clip(n, 0.0, self.max_value) / (EPSILON + n))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Set negative weights to zero."""

    name = "non_neg"

    def __call__(self, w):
        return np.maximum(np.asarray(w), 0)


class UnitNorm(Constraint):
    """Rescale each weight vector along ``axis`` to norm 1 (``n / (eps + n)``, just under 1)."""

    name = "unit_norm"

    def __init__(self, axis: int | list[int] = 0):
        self.axis = _axis(axis)

    def __call__(self, w):
        w = np.asarray(w)
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Move each weight vector's norm ``n`` to ``rate * clip(n, min_value, max_value) + (1 - rate) * n``.

    ``rate=1`` enforces the bounds at once; a smaller rate moves towards them a step at a time.
    """

    name = "min_max_norm"

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: int | list[int] = 0):
        self.min_value = _number("min_value", min_value)
        self.max_value = _number("max_value", max_value)
        if self.min_value > self.max_value:
            raise ValueError(f"min_value ({min_value}) must not exceed max_value ({max_value}).")
        self.rate = _number("rate", rate, 0.0, 1.0)
        self.axis = _axis(axis)

    def __call__(self, w):
        w = np.asarray(w)
        n = _norms(w, self.axis)
        desired = self.rate * np.clip(n, self.min_value, self.max_value) + (1 - self.rate) * n
        return w * (desired / (EPSILON + n))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


# Keras' lower-case aliases are the classes themselves: ``max_norm(3)`` is ``MaxNorm(3)``.
max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm

_CLASSES = (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)
_TABLE: dict[str, Any] = {cls.name: cls for cls in _CLASSES}
_CLASS_NAMES = {cls.__name__: cls.name for cls in _CLASSES}   # Keras' serialised class names


def get(identifier: Any) -> Constraint | None:
    """A constraint for None (None), a name (``"max_norm"``), a serialised dict or an instance."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        identifier = _CLASS_NAMES.get(identifier, identifier)
    return resolve("constraint", identifier, _TABLE, Constraint)


def serialize(constraint: Constraint | None) -> dict | None:
    """``{"class_name": "max_norm", "config": {"max_value": 2, "axis": 0}}`` (None stays None)."""
    if constraint is None:
        return None
    if not isinstance(constraint, Constraint):
        raise TypeError(f"Expected a Constraint, got {type(constraint).__name__}: {constraint!r}.")
    return {"class_name": constraint.name, "config": constraint.get_config()}


def deserialize(config: Any) -> Constraint | None:
    """The inverse of ``serialize``; Keras' own ``{"class_name": "MaxNorm", ...}`` dicts load too."""
    if not isinstance(config, dict):
        return get(config)
    return from_config("constraint", config, _TABLE, _CLASS_NAMES)
