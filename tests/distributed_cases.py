"""Training runs the distributed tests make twice: in an MPI job (tests/mpi_worker.py) and in one process.

Each case returns ``(model, x, y, fit arguments)`` built the same way in every process (float64,
seeded), so one process's plain ``fit`` is the reference the ranks' ``fit(distributed=True)`` must equal.
"""

from __future__ import annotations

import numpy as np

import rnnkit
from rnnkit import layers, regularizers


def _data(seed: int, n: int, shape: tuple, classes: int, seq: bool = False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *shape))
    y = rng.integers(0, classes, size=(n, shape[0]) if seq else n)
    return x, y


def lstm_uneven():
    """LSTM classifier; 45 samples in batches of 16 (the last one 13: shards 4, 3, 3, 3 on four ranks)."""
    model = rnnkit.Sequential([rnnkit.Input((6, 3)), layers.LSTM(5), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data(1, 45, (6, 3), 3)
    return model, x, y, {"batch_size": 16, "epochs": 3, "validation_split": 0.2}


def tiny_last_batch():
    """SimpleRNN with clipping and a weight penalty; batches of 11 leave a last batch of 1 sample (three of
    four ranks hold nothing of it)."""
    model = rnnkit.Sequential([
        rnnkit.Input((5, 2)),
        layers.SimpleRNN(4, kernel_regularizer=regularizers.L2(1e-3)),
        layers.Dense(1),
    ])
    model.compile(optimizer=rnnkit.optimizers.SGD(0.05, momentum=0.9, global_clipnorm=0.5), loss="mse",
                  metrics=["mae"])
    rng = np.random.default_rng(2)
    x = rng.normal(size=(34, 5, 2))
    y = rng.normal(size=(34, 1))
    return model, x, y, {"batch_size": 11, "epochs": 3}


def masked_tagger():
    """Embedding(mask_zero) -> GRU -> per-step softmax: the loss is a mean over unmasked positions, so
    the ranks are weighted by their unmasked positions, not their samples."""
    inp = rnnkit.Input((7,), dtype="int32")
    h = layers.Embedding(10, 4, mask_zero=True)(inp)
    h = layers.GRU(5, return_sequences=True)(h)
    out = layers.Dense(3, activation="softmax")(h)
    model = rnnkit.Model(inp, out)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(3)
    x = rng.integers(1, 10, size=(40, 7))
    lengths = rng.integers(1, 8, size=40)
    x[np.arange(7)[None, :] >= lengths[:, None]] = 0            # post-padding of very different lengths
    y = rng.integers(0, 3, size=(40, 7))
    return model, x, y, {"batch_size": 12, "epochs": 3, "validation_split": 0.25}


def two_outputs():
    """A functional model with two outputs (two losses, weighted) and a Bidirectional layer."""
    inp = rnnkit.Input((6, 3))
    h = layers.Bidirectional(layers.LSTM(4))(inp)
    a = layers.Dense(2, activation="softmax", name="kind")(h)
    b = layers.Dense(1, name="size")(h)
    model = rnnkit.Model(inp, [a, b])
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
                  metrics=[["accuracy"], []])
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 6, 3))
    return model, x, [rng.integers(0, 2, size=30), rng.normal(size=(30, 1))], {"batch_size": 8, "epochs": 2}


def accumulated():
    """Gradient accumulation on top of the ranks: updates of 2 batches of 10."""
    model, x, y, _ = lstm_uneven()
    return model, x, y, {"batch_size": 10, "epochs": 2, "steps_per_update": 2}


CASES = {f.__name__: f for f in (lstm_uneven, tiny_last_batch, masked_tagger, two_outputs, accumulated)}


def build(name: str):
    """The case ``name``, built in float64 with the layer seeds a fixed stream gives."""
    rnnkit.set_floatx("float64")
    rnnkit.utils.set_random_seed(7)
    return CASES[name]()
