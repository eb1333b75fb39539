"""Global numeric settings: the float type every new weight and input is cast to.

float32 is the default, as in Keras; the gradient checks switch to float64 with
``rnnkit.set_floatx("float64")``.
"""

from __future__ import annotations

import numpy as np

_VALID_FLOATX = ("float16", "float32", "float64")
_floatx = "float32"


def floatx() -> str:
    """Return the default float type as a string, e.g. ``"float32"``."""
    return _floatx


def set_floatx(value: str) -> None:
    """Set the default float type for weights built and inputs cast from now on.

    Layers that are already built keep their dtype.
    """
    global _floatx
    if value not in _VALID_FLOATX:
        raise ValueError(
            f"Unknown floatx {value!r}; expected one of {', '.join(_VALID_FLOATX)}."
        )
    _floatx = str(value)


def float_dtype() -> np.dtype:
    """The current default float type as a NumPy dtype."""
    return np.dtype(_floatx)


class floatx_scope:
    """``with floatx_scope("float64"): ...`` builds weights in that type, then restores the setting."""

    def __init__(self, value: str):
        self.value = value

    def __enter__(self):
        self.previous = floatx()
        set_floatx(self.value)
        return self

    def __exit__(self, *exc):
        set_floatx(self.previous)
        return False
