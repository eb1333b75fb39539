"""Parity with Keras 3 (PyTorch backend) for the gated layers and the sequence wrappers.

LSTM, GRU (both ``reset_after`` forms) and SimpleRNN, ``Bidirectional`` in every merge mode,
``Masking`` / ``Embedding(mask_zero=True)`` masks (left padding, right padding, gaps) and
``TimeDistributed`` / ``RepeatVector`` models. Each test builds the Keras layer or model, gives
it random weights where the test is about the forward pass (non-zero biases included), copies
them into rnnkit with ``set_weights(keras.get_weights())`` and compares: outputs and states to
``ATOL = 1e-5`` in float32, training histories to ``RTOL = 1e-4`` relative.

Keras facts the expectations rely on (keras/src/layers/rnn and keras/src/backend/torch/rnn.py):
with ``go_backwards`` the returned sequence stays in processing (reversed) order; a masked step
keeps the states and repeats the previous *output*, which is zero before the first output;
``Bidirectional`` forces ``zero_output_for_mask = return_sequences`` on both layers, returns
``[out, *forward_states, *backward_states]`` with ``return_state`` and lists its weights
forward layer first.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

import rnnkit
from rnnkit.diagnostics.telemetry import TELEMETRY_KEYS

ATOL = 1e-5
RTOL = 1e-4
T, D, H = 6, 3, 5

CELLS = {  # name: (keras class, rnnkit class, extra kwargs)
    "lstm": (keras.layers.LSTM, rnnkit.layers.LSTM, {}),
    "gru": (keras.layers.GRU, rnnkit.layers.GRU, {"reset_after": True}),
    "gru_v1": (keras.layers.GRU, rnnkit.layers.GRU, {"reset_after": False}),
    "simple": (keras.layers.SimpleRNN, rnnkit.layers.SimpleRNN, {}),
}
N_STATES = {"lstm": 2, "gru": 1, "gru_v1": 1, "simple": 1}

# masks of (4, T): True = a real step. "gaps" also has a fully padded sequence.
MASKS = {
    "left": np.array([[j >= T - n for j in range(T)] for n in (6, 4, 2, 5)]),
    "right": np.array([[j < n for j in range(T)] for n in (6, 4, 2, 5)]),
    "gaps": np.array([[1, 0, 1, 1, 0, 1], [0, 1, 0, 1, 1, 0], [1, 1, 0, 0, 1, 1], [0] * T], dtype=bool),
}


def keras_keys(history: dict) -> list[str]:
    """The History keys Keras also has: rnnkit adds gradient telemetry (grad_norm, ...) of its own."""
    return sorted(k for k in history if k not in TELEMETRY_KEYS)


def np_(y):
    """Keras output(s) as a list of NumPy arrays."""
    return [keras.ops.convert_to_numpy(a) for a in (y if isinstance(y, (list, tuple)) else [y])]


def assert_close(got, expected, atol=ATOL):
    """Same number of arrays, same shapes, every entry within ``atol``."""
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape, (i, g.shape, e.shape)
        np.testing.assert_allclose(g, e, rtol=0, atol=atol, err_msg=f"array {i}")


def random_weights(weights, seed, scale=0.4):
    """Replacement weights of the same shapes: random kernels and non-zero biases."""
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=scale, size=w.shape).astype(np.float32) for w in weights]


def inputs(seed=0, batch=4, mask=None):
    """Random (batch, T, D) float32 inputs, zeroed at the masked steps."""
    x = np.random.default_rng(seed).normal(size=(batch, T, D)).astype(np.float32)
    if mask is not None:
        x[~mask] = 0.0
    return x


def layer_pair(cell, seed=1, **kwargs):
    """A Keras recurrent layer with random weights and the rnnkit layer holding the same ones."""
    k_cls, r_cls, extra = CELLS[cell]
    kl = k_cls(H, **extra, **kwargs)
    kl.build((None, T, D))
    kl.set_weights(random_weights(kl.get_weights(), seed))
    rl = r_cls(H, **extra, **kwargs)
    rl.build((T, D))
    rl.set_weights(kl.get_weights())
    return kl, rl


def bidi_pair(cell, merge_mode, seed=1, **kwargs):
    """A Keras Bidirectional layer with random weights and its rnnkit twin."""
    k_cls, r_cls, extra = CELLS[cell]
    kb = keras.layers.Bidirectional(k_cls(H, **extra, **kwargs), merge_mode=merge_mode)
    kb.build((None, T, D))
    kb.set_weights(random_weights(kb.get_weights(), seed))
    rb = rnnkit.layers.Bidirectional(r_cls(H, **extra, **kwargs), merge_mode=merge_mode)
    rb.build((T, D))
    rb.set_weights(kb.get_weights())
    return kb, rb


# -- single recurrent layers ---------------------------------------------------------------
@pytest.mark.parametrize("cell,return_sequences,go_backwards,return_state",
                         list(itertools.product(CELLS, (True, False), (False, True), (False, True))))
def test_recurrent_layer_matches_keras(cell, return_sequences, go_backwards, return_state):
    """LSTM / GRU (reset_after True and False) / SimpleRNN with random weights and biases give
    Keras' output in every combination of return_sequences, go_backwards (reversed order kept)
    and return_state, whose states (LSTM: h and c) equal Keras' too."""
    kl, rl = layer_pair(cell, return_sequences=return_sequences, go_backwards=go_backwards,
                        return_state=return_state)
    x = inputs()
    expected = np_(kl(x))
    assert len(expected) == 1 + N_STATES[cell] * return_state
    assert_close(rl(x), expected)


@pytest.mark.parametrize("cell,go_backwards", list(itertools.product(CELLS, (False, True))))
def test_initial_state_matches_keras(cell, go_backwards):
    """A non-zero initial_state (LSTM: [h0, c0]) is used as Keras uses it: outputs and final states agree."""
    kl, rl = layer_pair(cell, return_sequences=True, return_state=True, go_backwards=go_backwards)
    x = inputs()
    rng = np.random.default_rng(9)
    h0 = [rng.normal(size=(4, H)).astype(np.float32) for _ in range(N_STATES[cell])]
    assert_close(rl(x, initial_state=h0), np_(kl(x, initial_state=h0)))


OPTIONS = [
    ("lstm", {"activation": "relu"}),
    ("lstm", {"recurrent_activation": "tanh", "activation": "sigmoid"}),
    ("lstm", {"use_bias": False}),
    ("lstm", {"unit_forget_bias": False}),
    ("gru", {"activation": "relu"}),
    ("gru", {"use_bias": False}),
    ("gru_v1", {"activation": "linear", "recurrent_activation": "tanh"}),
    ("gru_v1", {"use_bias": False}),
    ("simple", {"activation": "linear"}),
    ("simple", {"use_bias": False, "activation": "relu"}),
]


@pytest.mark.parametrize("cell,kwargs", OPTIONS, ids=[f"{c}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                                                       for c, kw in OPTIONS])
def test_layer_options_match_keras(cell, kwargs):
    """Non-default activations, use_bias=False (no bias weight at all) and unit_forget_bias=False
    give Keras' weight list and outputs (sequence and states)."""
    kl, rl = layer_pair(cell, return_sequences=True, return_state=True, **kwargs)
    assert [w.shape for w in rl.get_weights()] == [w.shape for w in kl.get_weights()]
    x = inputs()
    assert_close(rl(x), np_(kl(x)))


@pytest.mark.parametrize("unit_forget_bias,bias_initializer",
                         [(True, "zeros"), (False, "zeros"), (True, "ones")])
def test_lstm_unit_forget_bias_initial_bias_matches_keras(unit_forget_bias, bias_initializer):
    """LSTM's initial bias is Keras': ones in the forget block (i, f, c, o order) with
    unit_forget_bias, the bias_initializer everywhere else (and everywhere without it)."""
    kl = keras.layers.LSTM(H, unit_forget_bias=unit_forget_bias, bias_initializer=bias_initializer)
    kl.build((None, T, D))
    rl = rnnkit.layers.LSTM(H, unit_forget_bias=unit_forget_bias, bias_initializer=bias_initializer)
    rl.build((T, D))
    np.testing.assert_array_equal(rl.get_weights()[2], kl.get_weights()[2])
    forget = 1.0 if unit_forget_bias or bias_initializer == "ones" else 0.0
    assert rl.get_weights()[2][H:2 * H].tolist() == [forget] * H


# -- Bidirectional ---------------------------------------------------------------------------
MERGE_MODES = ["concat", "sum", "mul", "ave", None]


@pytest.mark.parametrize("cell,merge_mode,return_sequences,return_state",
                         list(itertools.product(("lstm", "gru", "gru_v1"), MERGE_MODES, (True, False),
                                                (False, True))))
def test_bidirectional_matches_keras(cell, merge_mode, return_sequences, return_state):
    """Bidirectional(LSTM / GRU) with every merge mode (None: a list of the two outputs), with and
    without return_sequences and return_state ([out(s), *forward states, *backward states]) gives
    Keras' arrays from Keras' weight list (forward layer first)."""
    kb, rb = bidi_pair(cell, merge_mode, return_sequences=return_sequences, return_state=return_state)
    x = inputs()
    expected = np_(kb(x))
    assert len(expected) == (1 if merge_mode else 2) + 2 * N_STATES[cell] * return_state
    assert_close(rb(x), expected)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_initial_state_matches_keras(cell):
    """Bidirectional's initial_state is split as Keras splits it: first half forward, second half backward."""
    kb, rb = bidi_pair(cell, "concat", return_sequences=True, return_state=True)
    rng = np.random.default_rng(4)
    states = [rng.normal(size=(4, H)).astype(np.float32) for _ in range(2 * N_STATES[cell])]
    x = inputs()
    assert_close(rb(x, initial_state=states), np_(kb(x, initial_state=states)))


# -- masking -----------------------------------------------------------------------------------
def masked_models(cell, where, return_sequences):
    """Masking(0.0) -> recurrent layer (forward, go_backwards or Bidirectional), Keras and rnnkit."""
    k_cls, r_cls, extra = CELLS[cell]
    opts = dict(extra, return_sequences=return_sequences, go_backwards=where == "backwards")
    k_rnn, r_rnn = k_cls(H, **opts), r_cls(H, **opts)
    if where == "bidirectional":
        k_rnn, r_rnn = keras.layers.Bidirectional(k_rnn), rnnkit.layers.Bidirectional(r_rnn)
    km = keras.Sequential([keras.Input((T, D)), keras.layers.Masking(0.0), k_rnn])
    km.set_weights(random_weights(km.get_weights(), 2))
    rm = rnnkit.Sequential([rnnkit.layers.Masking(0.0, input_shape=(T, D)), r_rnn])
    rm.set_weights(km.get_weights())
    return km, rm


@pytest.mark.parametrize("cell,pattern,where,return_sequences",
                         list(itertools.product(("lstm", "gru", "gru_v1", "simple"), MASKS,
                                                ("forward", "backwards", "bidirectional"), (True, False))))
def test_masking_matches_keras(cell, pattern, where, return_sequences):
    """Masking(0.0) before a forward, go_backwards or Bidirectional layer: with left padding,
    right padding and gaps (and one fully padded sequence) the model outputs equal Keras' (masked
    steps skipped, state carried; Bidirectional sequences zero there)."""
    mask = MASKS[pattern]
    km, rm = masked_models(cell, where, return_sequences)
    x = inputs(mask=mask)
    assert_close(rm.predict(x, verbose=0), np_(km(x)))


@pytest.mark.parametrize("cell,go_backwards", list(itertools.product(("lstm", "gru", "simple"), (False, True))))
def test_masked_states_match_keras(cell, go_backwards):
    """With a mask passed to the layer and return_state, the final states (LSTM: h and c) are
    those of each sequence's last real step, as in Keras."""
    kl, rl = layer_pair(cell, return_sequences=True, return_state=True, go_backwards=go_backwards)
    for mask in MASKS.values():
        x = inputs(mask=mask)
        assert_close(rl(x, mask=mask), np_(kl(x, mask=mask)))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_masked_bidirectional_states_match_keras(cell):
    """Bidirectional with a mask and return_state: merged outputs and all four / two states equal Keras'."""
    for return_sequences in (True, False):
        kb, rb = bidi_pair(cell, "concat", return_sequences=return_sequences, return_state=True)
        for mask in MASKS.values():
            x = inputs(mask=mask)
            assert_close(rb(x, mask=mask), np_(kb(x, mask=mask)))


@pytest.mark.parametrize("cell,return_sequences", list(itertools.product(("lstm", "gru", "simple"), (True, False))))
def test_masked_steps_with_initial_state_output_like_keras(cell, return_sequences):
    """A mask together with a non-zero initial_state: Keras repeats the previous *output* at a
    masked step, and before the first real step that output is zero (not the initial state), so
    left-padded steps and a fully padded sequence output zeros while the states stay the initial ones."""
    kl, rl = layer_pair(cell, return_sequences=return_sequences, return_state=True)
    rng = np.random.default_rng(6)
    h0 = [rng.normal(size=(4, H)).astype(np.float32) for _ in range(N_STATES[cell])]
    for mask in (MASKS["left"], MASKS["gaps"]):
        x = inputs(mask=mask)
        assert_close(rl(x, mask=mask, initial_state=h0), np_(kl(x, mask=mask, initial_state=h0)))


@pytest.mark.parametrize("return_sequences,go_backwards", list(itertools.product((True, False), (False, True))))
def test_embedding_mask_zero_then_lstm_matches_keras(return_sequences, go_backwards):
    """Embedding(mask_zero=True) -> LSTM: index 0 is padding (left, right and in gaps) and is
    skipped exactly as in Keras."""
    km = keras.Sequential([keras.Input((T,), dtype="int32"), keras.layers.Embedding(10, 4, mask_zero=True),
                           keras.layers.LSTM(H, return_sequences=return_sequences, go_backwards=go_backwards)])
    km.set_weights(random_weights(km.get_weights(), 3))
    rm = rnnkit.Sequential([rnnkit.layers.Embedding(10, 4, mask_zero=True, input_shape=(T,)),
                            rnnkit.layers.LSTM(H, return_sequences=return_sequences, go_backwards=go_backwards)])
    rm.set_weights(km.get_weights())
    ids = np.random.default_rng(8).integers(1, 10, size=(12, T))
    ids *= np.concatenate(list(MASKS.values()))          # zeros: left, right, gaps, all
    assert_close(rm.predict(ids, verbose=0), np_(km(ids)))


# -- training ----------------------------------------------------------------------------------
def assert_rel(actual, expected, rtol=RTOL):
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    err = np.max(np.abs(a - e) / np.maximum(np.abs(e), 1e-6))
    assert err <= rtol, f"max relative error {err:.3g} > {rtol:g}\n{a}\n{e}"


OPTIMIZERS = {  # Adam is blind to a gradient's overall scale, SGD is not: train with both
    "adam": lambda lib: lib.optimizers.Adam(0.01),
    "sgd": lambda lib: lib.optimizers.SGD(0.5, momentum=0.9),
}


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_masked_many_to_many_training_matches_keras(opt):
    """Masking -> Bidirectional(LSTM, sequences) -> GRU(sequences) -> TimeDistributed(Dense softmax),
    sparse categorical CE + accuracy, 3 epochs on padded data (right, left and gaps; batches 8, 8,
    4, unshuffled): per-epoch loss and accuracy and the trained weights equal Keras', i.e. padded
    steps count in neither and BPTT carries gradients across masked steps as Keras' autodiff does;
    the labels at padded steps do not matter."""
    n, classes = 20, 4
    rng = np.random.default_rng(11)
    lengths = rng.integers(2, T + 1, size=n)
    mask = np.arange(T)[None, :] < lengths[:, None]
    mask[::3] = mask[::3, ::-1]                             # every third sequence left-padded
    mask[1::4, 2] = mask[2::4, 3] = False                   # and some gaps
    x = rng.normal(size=(n, T, D)).astype(np.float32) * mask[..., None]
    y = rng.integers(0, classes, size=(n, T))               # padded steps hold arbitrary labels

    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((T, D)), keras.layers.Masking(0.0),
                           keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True)),
                           keras.layers.GRU(5, return_sequences=True),
                           keras.layers.TimeDistributed(keras.layers.Dense(classes, activation="softmax"))])
    km.compile(optimizer=OPTIMIZERS[opt](keras), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rm = rnnkit.Sequential([rnnkit.layers.Masking(0.0, input_shape=(T, D)),
                            rnnkit.layers.Bidirectional(rnnkit.layers.LSTM(6, return_sequences=True)),
                            rnnkit.layers.GRU(5, return_sequences=True),
                            rnnkit.layers.TimeDistributed(rnnkit.layers.Dense(classes, activation="softmax"))])
    rm.compile(optimizer=OPTIMIZERS[opt](rnnkit), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rm.set_weights(km.get_weights())

    y_other = np.where(mask, y, (y + 1) % classes)          # different labels at padded steps only
    np.testing.assert_allclose(rm.evaluate(x, y_other, verbose=0), rm.evaluate(x, y, verbose=0), rtol=0, atol=0)
    kh = km.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    rh = rm.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    assert keras_keys(rh) == sorted(kh) == ["accuracy", "loss"]
    assert_rel(rh["loss"], kh["loss"])
    assert_rel(rh["accuracy"], kh["accuracy"])
    assert_close(rm.get_weights(), km.get_weights())          # every weight moved as Keras moved it
    assert_close(rm.predict(x, verbose=0), np_(km(x)))


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_one_to_many_training_matches_keras(opt):
    """Dense -> RepeatVector(T) -> LSTM(return_sequences) -> TimeDistributed(Dense), MSE, 3 epochs
    (batches 8, 8, 8, unshuffled): per-epoch losses and the trained weights equal Keras'."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(24, 4)).astype(np.float32)
    y = np.cumsum(rng.normal(size=(24, T, 2)), axis=1).astype(np.float32) / 3

    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                           keras.layers.RepeatVector(T), keras.layers.LSTM(6, return_sequences=True),
                           keras.layers.TimeDistributed(keras.layers.Dense(2))])
    km.compile(optimizer=OPTIMIZERS[opt](keras), loss="mse")
    rm = rnnkit.Sequential([rnnkit.layers.Dense(8, activation="tanh", input_shape=(4,)),
                            rnnkit.layers.RepeatVector(T), rnnkit.layers.LSTM(6, return_sequences=True),
                            rnnkit.layers.TimeDistributed(rnnkit.layers.Dense(2))])
    rm.compile(optimizer=OPTIMIZERS[opt](rnnkit), loss="mse")
    rm.set_weights(km.get_weights())
    kh = km.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    rh = rm.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history
    assert_rel(rh["loss"], kh["loss"])
    assert_close(rm.get_weights(), km.get_weights())


# -- weight order ------------------------------------------------------------------------------
def test_model_weight_order_matches_keras():
    """Model.get_weights() lists the same arrays in the same order as Keras for every layer type
    here (Bidirectional: forward layer's kernel, recurrent kernel, bias, then the backward
    layer's), so Keras' weights can be set on the rnnkit model and give Keras' predictions."""
    def stack(lib):
        L = lib.layers
        return [L.Bidirectional(L.LSTM(4, return_sequences=True)),
                L.Bidirectional(L.GRU(3, return_sequences=True, reset_after=False), merge_mode="sum"),
                L.Bidirectional(L.SimpleRNN(3, return_sequences=True), merge_mode="ave"),
                L.GRU(4, return_sequences=True), L.LSTM(3, return_sequences=True, use_bias=False),
                L.TimeDistributed(L.Dense(2))]

    km = keras.Sequential([keras.Input((T, D)), keras.layers.Masking(0.0), *stack(keras)])
    km.set_weights(random_weights(km.get_weights(), 5))
    rm = rnnkit.Sequential([rnnkit.layers.Masking(0.0, input_shape=(T, D)), *stack(rnnkit)])
    assert [w.shape for w in rm.get_weights()] == [w.shape for w in km.get_weights()]
    rm.set_weights(km.get_weights())
    for r, k in zip(rm.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(r, k)
    for r_layer, k_layer in zip(rm.layers[1:4], km.layers[1:4]):      # the Bidirectional layers
        for r_sub, k_sub in ((r_layer.forward_layer, k_layer.forward_layer),
                             (r_layer.backward_layer, k_layer.backward_layer)):
            for r, k in zip(r_sub.get_weights(), k_sub.get_weights(), strict=True):
                np.testing.assert_array_equal(r, k)
    x = inputs(mask=MASKS["gaps"])
    assert_close(rm.predict(x, verbose=0), np_(km(x)))
