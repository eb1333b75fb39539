"""``rnnkit.utils.to_categorical`` against ``keras.utils.to_categorical``: shapes, dtype, values, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from rnnkit.utils import to_categorical

CASES = [
    ([0, 1, 2, 3], None),
    ([0, 1, 2, 3], 6),
    ([[1], [0], [3]], None),                 # (N, 1): the trailing 1 is dropped, as in Keras
    ([[1], [0], [3]], 5),
    ([[1, 2], [0, 0], [3, 1]], None),        # (N, 2): kept, a class axis is added
    (np.arange(24).reshape(2, 3, 4) % 5, None),
    (np.arange(6).reshape(2, 3, 1), 7),      # (2, 3, 1) -> (2, 3, 7)
    (np.array([[[2]]]), 3),                  # (1, 1, 1) -> (1, 1, 3): only the last axis goes
    (np.array([2.0, 0.0, 1.0]), None),       # whole floats are accepted, as by Keras
    (np.array([1, 0, 1], dtype=np.uint8), None),
    (np.array([True, False]), None),
    (3, None),                               # a scalar: (num_classes,)
    (np.array([4]), None),                   # (1,): not squeezed (rank 1)
]


@pytest.mark.parametrize("x, num_classes", CASES)
def test_matches_keras(x, num_classes):
    ours = to_categorical(x, num_classes)
    theirs = keras.utils.to_categorical(x, num_classes)
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype == np.float64
    assert np.array_equal(ours, theirs)


def test_rows_are_one_hot_and_argmax_gives_the_labels_back():
    y = np.random.default_rng(0).integers(0, 7, size=(50, 1))
    out = to_categorical(y, 7)
    assert out.shape == (50, 7)
    assert np.all(out.sum(axis=1) == 1.0)
    assert np.array_equal(out.argmax(axis=1), y[:, 0])


def test_empty_input_with_num_classes():
    assert to_categorical(np.zeros((0,), dtype=np.int64), 3).shape == (0, 3)


@pytest.mark.parametrize("x, num_classes, error, match", [
    ([0, -1, 2], None, ValueError, r"in \[0, 3\).*e\.g\. -1"),      # Keras wraps -1 round to the last class
    ([0, 1, 4], 3, ValueError, r"in \[0, 3\).*e\.g\. 4"),            # Keras: IndexError
    ([0.5, 1.0], None, ValueError, "fractional"),                   # Keras truncates 0.5 to class 0
    ([0.0, np.nan], None, ValueError, "NaN"),
    ([], None, ValueError, "empty"),
    (["a", "b"], None, TypeError, "dtype <U1"),
    ([0, 1], 0, ValueError, "num_classes must be a positive integer"),
    ([0, 1], 2.0, ValueError, "num_classes must be a positive integer"),
    ([0, 1], True, ValueError, "num_classes must be a positive integer"),
    ([[0, 1], [2]], None, TypeError, "array-like of class indices"),
])
def test_bad_input_is_refused_clearly(x, num_classes, error, match):
    with pytest.raises(error, match=match):
        to_categorical(x, num_classes)
