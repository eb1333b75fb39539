"""``rnnkit.utils``: ``pad_sequences`` against Keras' own, and ``set_random_seed``."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import rnnkit
from rnnkit.layers import Dense

RAW = [[711, 632, 71], [73, 8, 3215, 55, 927], [83, 91, 1, 645, 1253, 927], []]


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 4, 1, 8])
def test_pad_sequences_matches_keras(padding, truncating, maxlen):
    ours = rnnkit.utils.pad_sequences(RAW, maxlen=maxlen, padding=padding, truncating=truncating)
    theirs = keras.utils.pad_sequences(RAW, maxlen=maxlen, padding=padding, truncating=truncating)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_pad_sequences_to_length_zero():
    """(Keras' own fails here with truncating='pre': it keeps s[-0:], the whole sequence.)"""
    assert rnnkit.utils.pad_sequences(RAW, maxlen=0).shape == (4, 0)


def test_pad_sequences_of_vectors_with_a_float_value():
    seqs = [np.ones((2, 3)), np.zeros((1, 3))]
    ours = rnnkit.text.pad_sequences(seqs, dtype="float32", padding="post", value=-1.5)
    theirs = keras.utils.pad_sequences(seqs, dtype="float32", padding="post", value=-1.5)
    assert ours.shape == (2, 2, 3) and np.array_equal(ours, theirs)


def test_pad_sequences_errors():
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post', got 'left'"):
        rnnkit.utils.pad_sequences(RAW, padding="left")
    with pytest.raises(ValueError, match="item 1 is a single value"):
        rnnkit.utils.pad_sequences([[1, 2], 3])
    with pytest.raises(ValueError, match="cannot be stored in dtype int32"):
        rnnkit.utils.pad_sequences(RAW, value=0.5)
    with pytest.raises(ValueError, match="one shape"):
        rnnkit.utils.pad_sequences([np.ones((2, 3)), np.ones((2, 4))])


def test_set_random_seed_makes_unseeded_layers_reproducible_and_different():
    def weights():
        a, b = Dense(3), Dense(3)
        a.build((4,))
        b.build((4,))
        return a.params["kernel"], b.params["kernel"]

    rnnkit.utils.set_random_seed(7)
    first = weights()
    rnnkit.utils.set_random_seed(7)
    second = weights()
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])          # each layer takes the next seed of the stream
    with pytest.raises(ValueError, match="non-negative integer"):
        rnnkit.utils.set_random_seed(-1)
