"""Keras' cell API: ``SimpleRNNCell``, ``LSTMCell``, ``GRUCell``, ``StackedRNNCells`` and ``RNN``.

Three references, as for the fused layers:

* the fused layers themselves: ``RNN(LSTMCell(n))`` must compute what ``LSTM(n)`` computes with
  the same weights, outputs, states and every gradient within 1e-12 in float64, over masks,
  initial states, ``go_backwards``, ``return_sequences`` and dropout in training;
* central finite differences in float64 (``rel_error < 1e-6``) for each built-in cell, a stack
  of two different cells and a user's own cell (the minimal cell of Keras' RNN guide);
* Keras 3 (PyTorch backend): forward outputs and the structure of the returned states.

Every output is projected on a fixed random tensor, ``L = sum_i w_i * y_i``, so ``dL/dy_i = w_i``.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import rnnkit
from gradcheck import numeric_grad, rel_error
from rnnkit.layers import (
    GRU,
    LAYER_CLASSES,
    LSTM,
    RNN,
    Bidirectional,
    Dense,
    GRUCell,
    Input,
    Layer,
    LSTMCell,
    SimpleRNN,
    SimpleRNNCell,
    StackedRNNCells,
)

B, T, D, H = 3, 5, 3, 4
FD_TOL = 1e-6          # finite differences, float64
EXACT = 1e-12          # RNN(cell) against the fused layer, float64
KERAS_RTOL = 1e-5      # float32

#: (B, T) timestep masks: True marks a real step
MASKS = {
    "none": None,
    "left_padding": np.array([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=bool),
    "right_padding": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=bool),
    "gaps": np.array([[1, 0, 1, 0, 1], [0, 1, 1, 0, 1], [1, 1, 0, 1, 1]], dtype=bool),
    "fully_masked_row": np.array([[0, 0, 0, 0, 0], [1, 1, 0, 1, 1], [1, 0, 1, 1, 1]], dtype=bool),
}

#: name -> (fused layer factory, cell factory), both taking units and keyword arguments
KINDS = {
    "simple_rnn": (SimpleRNN, SimpleRNNCell),
    "lstm": (LSTM, LSTMCell),
    "gru_reset_after": (lambda n, **kw: GRU(n, reset_after=True, **kw),
                        lambda n, **kw: GRUCell(n, reset_after=True, **kw)),
    "gru_reset_before": (lambda n, **kw: GRU(n, reset_after=False, **kw),
                         lambda n, **kw: GRUCell(n, reset_after=False, **kw)),
}
N_STATES = {"simple_rnn": 1, "lstm": 2, "gru_reset_after": 1, "gru_reset_before": 1}


class MinimalRNNCell(Layer):
    """The cell of Keras' RNN guide, written as a user would: ``output = x W + h U``, with its backward."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_uniform",
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), initializer="random_uniform",
                                                name="recurrent_kernel")
        self.built = True

    def call(self, inputs, states):
        prev_output = states[0]
        output = inputs @ self.kernel + prev_output @ self.recurrent_kernel
        self.save_for_backward(inputs, prev_output)
        return output, [output]

    def backward(self, d_output, d_states):
        inputs, prev_output = self.saved_tensors
        d = d_output + d_states[0]
        self.grads["kernel"] = inputs.T @ d
        self.grads["recurrent_kernel"] = prev_output.T @ d
        return d @ self.kernel.T, [d @ self.recurrent_kernel.T]


# -- helpers ---------------------------------------------------------------------------------------

def flat(structure) -> list:
    """The arrays of a (nested) list of outputs, in order."""
    if isinstance(structure, (list, tuple)):
        return [a for s in structure for a in flat(s)]
    return [np.asarray(structure)]


def like(structure, arrays):
    """``arrays`` (flat, an iterator) laid out as ``structure``."""
    if isinstance(structure, (list, tuple)):
        return [like(s, arrays) for s in structure]
    return next(arrays)


def randomize(layer, rng, scale=0.5):
    """Random weights, non-zero biases included (the initializers give zero biases)."""
    for p in layer.params.values():
        p[...] = rng.normal(scale=scale, size=p.shape)


def close(a, b, tol=EXACT) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.abs(a - b).max(initial=0.0) <= tol * max(1.0, np.abs(b).max(initial=0.0))


def run_and_backward(layer, x, init, mask, rng_w, training=False):
    """Forward, then backward of ``L = sum w * outputs``: (outputs, dx, initial state grads, weight grads)."""
    out = layer.forward(x, training=training, initial_state=init, mask=mask)
    ws = [rng_w.normal(size=a.shape) for a in flat(out)]
    g = like(out, iter(ws))
    dx = layer.backward(g[0], g[1:]) if isinstance(out, list) else layer.backward(g)
    return flat(out), dx, flat(layer.initial_state_grads), {k: v.copy() for k, v in layer.grads.items()}


def built(layer, shape=(T, D)):
    layer.build(shape)
    return layer


# -- RNN(cell) equals the fused layer ---------------------------------------------------------------

@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("kind", list(KINDS))
def test_same_seed_gives_the_fused_layers_weights(kind):
    fused, cell = KINDS[kind]
    for kwargs in ({}, {"use_bias": False}, {"unit_forget_bias": False} if kind == "lstm" else {"activation": "relu"}):
        a, b = built(fused(H, seed=11, **kwargs)), built(RNN(cell(H, seed=11, **kwargs)))
        assert list(a.params) == list(b.params)
        for k in a.params:
            assert np.array_equal(a.params[k], b.params[k]), (kwargs, k)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_rnn_of_cell_equals_fused_layer(kind, mask_name, go_backwards, return_sequences):
    """Outputs, final states and the gradients of input, initial states and weights, within 1e-12."""
    fused, cell = KINDS[kind]
    rng = np.random.default_rng(3)
    flags = dict(return_sequences=return_sequences, return_state=True, go_backwards=go_backwards)
    a = built(fused(H, **flags))
    b = built(RNN(cell(H), **flags))
    randomize(a, rng)
    b.set_weights(a.get_weights())
    x = rng.normal(size=(B, T, D))
    init = [rng.normal(size=(B, H)) for _ in range(N_STATES[kind])]
    mask = MASKS[mask_name]
    out_a, dx_a, ds_a, gw_a = run_and_backward(a, x, init, mask, np.random.default_rng(5))
    out_b, dx_b, ds_b, gw_b = run_and_backward(b, x, init, mask, np.random.default_rng(5))
    assert len(out_a) == len(out_b) == 1 + N_STATES[kind]
    assert all(close(p, q) for p, q in zip(out_b, out_a))
    assert close(dx_b, dx_a)
    assert len(ds_b) == len(ds_a) and all(close(p, q) for p, q in zip(ds_b, ds_a))
    assert list(gw_b) == list(gw_a) and all(close(gw_b[k], gw_a[k]) for k in gw_a)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("kind", list(KINDS))
def test_rnn_of_cell_equals_fused_layer_without_states(kind):
    """No initial state, no return_state, zero_output_for_mask: only dL/dy reaches the layer."""
    fused, cell = KINDS[kind]
    rng = np.random.default_rng(4)
    for flags in ({"return_sequences": True, "zero_output_for_mask": True}, {}):
        a, b = built(fused(H, **flags)), built(RNN(cell(H), **flags))
        randomize(a, rng)
        b.set_weights(a.get_weights())
        x = rng.normal(size=(B, T, D))
        res_a = run_and_backward(a, x, None, MASKS["gaps"], np.random.default_rng(1))
        res_b = run_and_backward(b, x, None, MASKS["gaps"], np.random.default_rng(1))
        assert close(res_b[0][0], res_a[0][0]) and close(res_b[1], res_a[1])
        assert all(close(p, q) for p, q in zip(res_b[2], res_a[2]))
        assert all(close(res_b[3][k], res_a[3][k]) for k in res_a[3])


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("kind", list(KINDS))
def test_dropout_in_training_equals_fused_layer(kind):
    """Same seed, same masks: the cell draws them from the same stream, in the same order, as the layer."""
    fused, cell = KINDS[kind]
    rng = np.random.default_rng(6)
    kw = dict(dropout=0.3, recurrent_dropout=0.4, seed=9, return_sequences=True, return_state=True)
    a = built(fused(H, **kw))
    b = built(RNN(cell(H, dropout=0.3, recurrent_dropout=0.4, seed=9), return_sequences=True, return_state=True))
    randomize(a, rng)
    b.set_weights(a.get_weights())
    x = rng.normal(size=(B, T, D))
    init = [rng.normal(size=(B, H)) for _ in range(N_STATES[kind])]
    for _ in range(2):                                      # a new pair of masks per call, still the same
        out_a, dx_a, ds_a, gw_a = run_and_backward(a, x, init, MASKS["gaps"], np.random.default_rng(2), training=True)
        out_b, dx_b, ds_b, gw_b = run_and_backward(b, x, init, MASKS["gaps"], np.random.default_rng(2), training=True)
        assert all(close(p, q) for p, q in zip(out_b, out_a))
        assert close(dx_b, dx_a) and all(close(p, q) for p, q in zip(ds_b, ds_a))
        assert all(close(gw_b[k], gw_a[k]) for k in gw_a)


def test_dropout_is_variational_and_reproducible():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, T, 6)).astype(np.float32)

    def layer():
        return RNN(SimpleRNNCell(H, dropout=0.5, recurrent_dropout=0.5, seed=3), return_sequences=True)

    a, b = layer(), layer()
    ya, yb = a(x, training=True), b(x, training=True)
    assert np.array_equal(ya, yb)                           # the seed fixes the masks
    dx = a.backward(np.ones_like(ya))
    dropped = dx == 0                                       # (B, T, D): inputs the input mask removed
    assert 0 < dropped[:, 0].mean() < 1
    assert (dropped == dropped[:, :1]).all()                # the same units at every step: one mask per sequence
    assert not np.array_equal(a(x, training=True), ya)      # the next sequence gets new masks
    plain = RNN(SimpleRNNCell(H), return_sequences=True)
    plain.build((T, 6))
    plain.set_weights(a.get_weights())
    assert np.array_equal(a(x), plain(x))                   # inference: no dropout


# -- finite differences ---------------------------------------------------------------------------

def check_finite_differences(layer, x, init=None, mask=None, seed=0):
    """Analytic gradients of L = sum w * outputs against central differences: input, initial states, weights."""
    out = layer.forward(x, initial_state=init, mask=mask)
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=a.shape) for a in flat(out)]

    def loss():
        return float(sum((w * a).sum() for w, a in zip(ws, flat(layer.forward(x, initial_state=init, mask=mask)))))

    out = layer.forward(x, initial_state=init, mask=mask)
    g = like(out, iter(ws))
    dx = layer.backward(g[0], g[1:]) if isinstance(out, list) else layer.backward(g)
    checks = [("x", dx, x)]
    if init is not None:
        assert len(flat(layer.initial_state_grads)) == len(flat(init))
        checks += [(f"initial_state[{i}]", d, s) for i, (d, s) in enumerate(zip(flat(layer.initial_state_grads),
                                                                                 flat(init)))]
    grads = {k: v.copy() for k, v in layer.grads.items()}
    checks += [(k, grads[k], layer.params[k]) for k in grads]
    assert len(grads) == len(layer.params) > 0
    for name, analytic, array in checks:
        err = rel_error(analytic, numeric_grad(loss, array))
        assert err < FD_TOL, (name, err)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("kind", list(KINDS))
def test_finite_differences_builtin_cells(kind):
    rng = np.random.default_rng(7)
    layer = built(RNN(KINDS[kind][1](3), return_sequences=True, return_state=True, go_backwards=kind != "lstm"),
                  (T, 2))
    randomize(layer, rng)
    init = [rng.normal(size=(B, 3)) for _ in range(N_STATES[kind])]
    check_finite_differences(layer, rng.normal(size=(B, T, 2)), init, MASKS["fully_masked_row"])


@pytest.mark.usefixtures("float64")
def test_finite_differences_stack_of_two_cells():
    rng = np.random.default_rng(8)
    layer = built(RNN(StackedRNNCells([LSTMCell(3), GRUCell(2, reset_after=False)]), return_state=True), (T, 2))
    randomize(layer, rng)
    init = [[rng.normal(size=(B, 3)), rng.normal(size=(B, 3))], [rng.normal(size=(B, 2))]]
    check_finite_differences(layer, rng.normal(size=(B, T, 2)), init, MASKS["gaps"])


@pytest.mark.usefixtures("float64")
def test_finite_differences_user_cell():
    rng = np.random.default_rng(9)
    layer = built(RNN(MinimalRNNCell(3), return_sequences=True, return_state=True), (T, 2))
    check_finite_differences(layer, rng.normal(size=(B, T, 2)), [rng.normal(size=(B, 3))], MASKS["left_padding"])
    # in a stack under a GRU cell, so that the loss is not linear in the user cell's weights
    layer = built(RNN([MinimalRNNCell(3), GRUCell(2)], return_state=True), (T, 2))
    randomize(layer, rng)
    init = [[rng.normal(size=(B, 3))], [rng.normal(size=(B, 2))]]
    check_finite_differences(layer, rng.normal(size=(B, T, 2)), init, MASKS["fully_masked_row"])


@pytest.mark.usefixtures("float64")
def test_user_cell_equals_linear_simple_rnn():
    """The guide's cell is SimpleRNN(activation="linear", use_bias=False): same weights, same numbers."""
    rng = np.random.default_rng(10)
    a = built(SimpleRNN(H, activation="linear", use_bias=False, return_sequences=True, return_state=True))
    b = built(RNN(MinimalRNNCell(H), return_sequences=True, return_state=True))
    assert b.weight_names == ["kernel", "recurrent_kernel"]
    randomize(a, rng)
    b.set_weights(a.get_weights())
    assert b.params["kernel"] is b.cell.kernel              # set_weights reached the user's arrays
    x, init = rng.normal(size=(B, T, D)), [rng.normal(size=(B, H))]
    res_a = run_and_backward(a, x, init, MASKS["gaps"], np.random.default_rng(1))
    res_b = run_and_backward(b, x, init, MASKS["gaps"], np.random.default_rng(1))
    assert all(close(p, q) for p, q in zip(res_b[0], res_a[0])) and close(res_b[1], res_a[1])
    assert all(close(res_b[3][k], res_a[3][k]) for k in res_a[3])


def test_user_cell_get_initial_state_is_used():
    """As in Keras, the cell's own get_initial_state gives the states when none are passed."""

    class OnesFirst(MinimalRNNCell):
        def get_initial_state(self, batch_size=None):
            return [np.ones((batch_size, self.units))]

    x = np.random.default_rng(15).normal(size=(B, T, D)).astype(np.float32)
    layer, plain = built(RNN(OnesFirst(H))), built(RNN(MinimalRNNCell(H)))
    plain.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(x), plain(x, initial_state=[np.ones((B, H))]))


# -- Keras 3 -------------------------------------------------------------------------------------------

def keras_numpy(out):
    """Keras outputs as nested lists of NumPy arrays (tuples become lists)."""
    if isinstance(out, (list, tuple)):
        return [keras_numpy(o) for o in out]
    return keras.ops.convert_to_numpy(out)


def shapes(out):
    if isinstance(out, (list, tuple)):
        return [shapes(o) for o in out]
    return tuple(np.shape(out))


KERAS_CELLS = {
    "simple_rnn": (lambda: keras.layers.SimpleRNNCell(H), lambda: SimpleRNNCell(H)),
    "lstm": (lambda: keras.layers.LSTMCell(H), lambda: LSTMCell(H)),
    "gru_reset_after": (lambda: keras.layers.GRUCell(H), lambda: GRUCell(H)),
    "gru_reset_before": (lambda: keras.layers.GRUCell(H, reset_after=False), lambda: GRUCell(H, reset_after=False)),
    "stacked_rnn_cells": (lambda: keras.layers.StackedRNNCells([keras.layers.LSTMCell(H), keras.layers.GRUCell(2)]),
                          lambda: StackedRNNCells([LSTMCell(H), GRUCell(2)])),
    "list_of_cells": (lambda: [keras.layers.GRUCell(H, reset_after=False), keras.layers.SimpleRNNCell(2)],
                      lambda: [GRUCell(H, reset_after=False), SimpleRNNCell(2)]),
}


@pytest.mark.parametrize("kind", list(KERAS_CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_keras_parity(kind, return_sequences):
    """Outputs and returned states equal Keras' with the same weights, with a mask; same structure."""
    make_keras, make_ours = KERAS_CELLS[kind]
    rng = np.random.default_rng(11)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    mask = MASKS["gaps"]
    ref = keras.layers.RNN(make_keras(), return_sequences=return_sequences, return_state=True)
    ref(x)
    ref.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in ref.get_weights()])
    ours = RNN(make_ours(), return_sequences=return_sequences, return_state=True)
    ours.build((T, D))
    ours.set_weights(ref.get_weights())
    expected, got = keras_numpy(ref(x, mask=mask)), ours(x, mask=mask)
    assert shapes(got) == shapes(expected)
    assert ours.state_structure == ([[H, H], [2]] if kind == "stacked_rnn_cells" else
                                    [[H], [2]] if kind == "list_of_cells" else [H] * N_STATES[kind])
    for g, e in zip(flat(got), flat(expected)):
        np.testing.assert_allclose(g, e, rtol=KERAS_RTOL, atol=1e-6)


def test_state_and_output_sizes_as_keras():
    for ours, theirs in ((SimpleRNNCell(3), keras.layers.SimpleRNNCell(3)), (LSTMCell(3), keras.layers.LSTMCell(3)),
                         (GRUCell(3), keras.layers.GRUCell(3))):
        assert ours.state_size == theirs.state_size and ours.output_size == theirs.output_size
    stack = StackedRNNCells([LSTMCell(4), GRUCell(3)])
    assert stack.state_size == [[4, 4], 3] and stack.output_size == 3
    layer = RNN(stack, return_state=True)
    assert (layer.n_states, layer.units, layer.output_size) == (2, None, 3)
    assert (RNN(LSTMCell(5)).n_states, RNN(LSTMCell(5)).units) == (2, 5)


# -- one step, weights, state -----------------------------------------------------------------------

@pytest.mark.usefixtures("float64")
def test_cell_called_directly_is_one_step_of_the_layer():
    rng = np.random.default_rng(12)
    cell = LSTMCell(H)
    x_t, h, c = rng.normal(size=(B, D)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    y, (h1, c1) = cell(x_t, [h, c])
    layer = built(LSTM(H, return_state=True), (1, D))
    layer.set_weights(cell.get_weights())
    out, h_ref, c_ref = layer.forward(x_t[:, None], initial_state=[h, c])
    assert close(y, out) and close(h1, h_ref) and close(c1, c_ref)
    d_inputs, (dh, dc) = cell.backward(np.ones((B, H)), [None, np.ones((B, H))])
    layer.backward(np.ones((B, H)), [None, np.ones((B, H))])
    assert d_inputs.shape == (B, D) and close(dh, layer.initial_state_grads[0])
    assert all(close(cell.grads[k], layer.grads[k]) for k in layer.grads)


def test_params_are_the_cells_arrays():
    cell = GRUCell(3)
    layer = built(RNN([SimpleRNNCell(2), cell]))
    assert layer.weight_names == [f"cell_{k}/{n}" for k in (0, 1) for n in ("kernel", "recurrent_kernel", "bias")]
    assert layer.params["cell_1/kernel"] is cell.params["kernel"]
    layer.set_weights([np.full(w.shape, 0.25) for w in layer.get_weights()])
    assert (cell.params["recurrent_kernel"] == 0.25).all()


def test_stateful_carry_and_reset_states():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    whole = RNN([LSTMCell(H, seed=1), GRUCell(2, seed=2)], return_sequences=True)
    carry = RNN([LSTMCell(H, seed=1), GRUCell(2, seed=2)], return_sequences=True, stateful=True)
    full = whole(x)
    first = carry(x[:, :2])
    np.testing.assert_allclose(np.concatenate([first, carry(x[:, 2:])], axis=1), full, rtol=1e-6, atol=1e-6)
    carry.reset_states()
    np.testing.assert_array_equal(carry(x[:, :2]), first)
    states = [[rng.normal(size=(B, H)), rng.normal(size=(B, H))], [rng.normal(size=(B, 2))]]
    carry.reset_states(states)
    np.testing.assert_allclose(carry(x), whole(x, initial_state=states), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="batch"):
        carry(x[:2])


@pytest.mark.usefixtures("float64")
def test_bidirectional_of_rnn_equals_bidirectional_lstm_and_passes_finite_differences():
    rng = np.random.default_rng(14)
    a = built(Bidirectional(LSTM(H, return_sequences=True, return_state=True)))
    b = built(Bidirectional(RNN(LSTMCell(H), return_sequences=True, return_state=True)))
    assert isinstance(b.backward_layer, RNN) and b.backward_layer.go_backwards
    assert b.backward_layer.cell is not b.forward_layer.cell
    randomize(a, rng)
    b.set_weights(a.get_weights())
    x, init = rng.normal(size=(B, T, D)), [rng.normal(size=(B, H)) for _ in range(4)]
    res_a = run_and_backward(a, x, init, MASKS["left_padding"], np.random.default_rng(3))
    res_b = run_and_backward(b, x, init, MASKS["left_padding"], np.random.default_rng(3))
    assert all(close(p, q) for p, q in zip(res_b[0], res_a[0])) and close(res_b[1], res_a[1])
    assert all(close(p, q) for p, q in zip(res_b[2], res_a[2]))
    assert all(close(res_b[3][k], res_a[3][k]) for k in res_a[3])
    layer = built(Bidirectional(RNN(GRUCell(2), return_sequences=True)), (T, 2))
    randomize(layer, rng)
    check_finite_differences(layer, rng.normal(size=(B, T, 2)), None, MASKS["gaps"])


# -- config, errors, diagnostics ------------------------------------------------------------------------

CONFIG_CELLS = {
    "simple_rnn": lambda: SimpleRNNCell(3, activation="relu", dropout=0.1, seed=4),
    "lstm": lambda: LSTMCell(3, unit_forget_bias=False, recurrent_activation="tanh", kernel_initializer="he_normal"),
    "gru": lambda: GRUCell(3, reset_after=False, use_bias=False, recurrent_dropout=0.2),
    "stack": lambda: StackedRNNCells([LSTMCell(3), GRUCell(2)]),
    "list": lambda: [SimpleRNNCell(2), LSTMCell(3)],
}


@pytest.mark.parametrize("kind", list(CONFIG_CELLS))
def test_get_config_round_trip(kind):
    layer = RNN(CONFIG_CELLS[kind](), return_sequences=True, go_backwards=True, unroll=True, name="r")
    config = json.loads(json.dumps(layer.get_config()))      # plain JSON, as a saved model holds it
    assert config["cell"]["class_name"] == ("StackedRNNCells" if kind in ("stack", "list") else
                                            type(layer.cell).__name__)
    copy = LAYER_CLASSES["RNN"](**config)
    assert copy.get_config() == config
    x = np.random.default_rng(0).normal(size=(2, T, D)).astype(np.float32)
    layer.build((T, D))
    copy.build((T, D))
    copy.set_weights(layer.get_weights())
    np.testing.assert_array_equal(copy(x), layer(x))


def test_saved_model_with_rnn_layers_loads(tmp_path):
    model = rnnkit.Sequential([Input((T, D)), RNN([LSTMCell(3), GRUCell(2)], return_sequences=True),
                               Bidirectional(RNN(SimpleRNNCell(2))), Dense(1)], seed=5)
    x = np.random.default_rng(1).normal(size=(4, T, D)).astype(np.float32)
    model.save(tmp_path / "m.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "m.rnnkit")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


class NoStateCell(Layer):
    def call(self, inputs, states):
        return inputs, states


def test_clear_errors():
    with pytest.raises(ValueError, match="state_size"):
        RNN(NoStateCell())
    with pytest.raises(TypeError, match="call"):
        RNN(object())
    with pytest.raises(ValueError, match="non-empty list"):
        RNN([])
    with pytest.raises(ValueError, match="Unknown cell class 'MinimalRNNCell'"):
        RNN({"class_name": "MinimalRNNCell", "config": {}})
    with pytest.raises(ValueError, match="units"):
        LSTMCell(0)
    with pytest.raises(ValueError, match="dropout"):
        GRUCell(3, dropout=1.5)
    x = np.zeros((B, T, D), dtype=np.float32)
    with pytest.raises(ValueError, match="2 state array"):
        RNN(LSTMCell(H))(x, initial_state=[np.zeros((B, H))] * 3)
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        RNN(LSTMCell(H))(x, initial_state=[np.zeros((B, H)), np.zeros((B, 5))])
    with pytest.raises(ValueError, match=r"\[\[\(B, 4\), \(B, 4\)\], \[\(B, 2\)\]\]"):
        RNN([LSTMCell(H), GRUCell(2)])(x, initial_state=[np.zeros((B, H))] * 2)

    class WrongWidth(MinimalRNNCell):
        def call(self, inputs, states):
            return inputs, [inputs]                          # (B, D) but state_size says H

    with pytest.raises(ValueError, match="output of shape"):
        RNN(WrongWidth(H))(x)

    class ForwardOnly(Layer):
        state_size = H

        def call(self, inputs, states):
            return states[0], states

    layer = RNN(ForwardOnly())
    y = layer(x)                                             # inference needs no backward
    with pytest.raises(NotImplementedError, match="no backward"):
        layer.backward(np.ones_like(y))


def test_diagnostics_skip_rnn_layers():
    from rnnkit.diagnostics import find_nonfinite_origin, gradient_flow

    model = rnnkit.Sequential([Input((T, D)), RNN(LSTMCell(3), return_sequences=True), LSTM(3), Dense(1)], seed=2)
    model.compile("sgd", "mse")
    x, y = np.random.default_rng(2).normal(size=(4, T, D)), np.zeros((4, 1))
    assert list(gradient_flow(model, x, y, jacobian_samples=2).norms) == ["lstm"]
    assert find_nonfinite_origin(model, x, y) is None


def test_bidirectional_stack_of_cells_outputs_the_last_cell(float64):
    """Bidirectional(RNN(stack)): each direction's output is the top cell's, not the first state."""
    from rnnkit.layers import RNN, Bidirectional, GRUCell, LSTMCell

    x = np.random.default_rng(0).normal(size=(3, 5, 4))
    forward = RNN([LSTMCell(3, seed=0), GRUCell(2, seed=1)], return_sequences=True)
    layer = Bidirectional(forward, merge_mode=None)
    yf, yb = layer(x)
    np.testing.assert_allclose(yf, layer.forward_layer(x), rtol=1e-12)
    assert yf.shape == yb.shape == (3, 5, 2)
