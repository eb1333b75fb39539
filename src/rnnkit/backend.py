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


# -- Keras' set_random_seed: an opt-in seed for everything not given a seed of its own ----------------

_seed_sequence: np.random.SeedSequence | None = None


def set_random_seed(seed: int) -> None:
    """Make every layer built from now on without a ``seed=`` of its own (and the shuffling of every model
    made from now on) reproducible, as ``keras.utils.set_random_seed`` does.

    Each layer takes the next seed of one stream started from ``seed``, so a program that builds its
    layers in the same order gets the same weights. Without a call, such layers draw fresh entropy.
    """
    global _seed_sequence
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    _seed_sequence = np.random.SeedSequence(int(seed))


def next_seed() -> list[int] | None:
    """The next seed of the stream ``set_random_seed`` started, or None if it was never called."""
    if _seed_sequence is None:
        return None
    return [int(v) for v in _seed_sequence.spawn(1)[0].generate_state(2)]
