"""Gated layers, masks, dropout, states, wrappers and stacks against central finite differences.

As in ``test_gradients.py``: every output is projected on a fixed random tensor so that
``L = sum_i (w_i * y_i)`` has ``dL/dy_i = w_i``; the analytic gradients of ``L`` with respect
to the input, every weight and (where given) every initial state must match the numeric
ones to a relative error below 1e-6, in float64.

Randomness inside ``forward`` (dropout masks) is pinned by resetting the layer's ``_rng``
to a fresh, fixed Generator before every forward pass, so that every evaluation of ``L``
sees the same masks.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from gradcheck import numeric_grad, rel_error
from rnnkit.layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Masking,
    RepeatVector,
    SimpleRNN,
    TimeDistributed,
)

TOL = 1e-6
pytestmark = pytest.mark.usefixtures("float64")

B, T, D, H = 3, 5, 3, 4

#: (B, T) timestep masks: True marks a real step
MASKS = {
    "left_padding": np.array([[0, 0, 1, 1, 1],
                              [0, 1, 1, 1, 1],
                              [1, 1, 1, 1, 1]], dtype=bool),
    "right_padding": np.array([[1, 1, 1, 0, 0],
                               [1, 1, 1, 1, 0],
                               [1, 1, 1, 1, 1]], dtype=bool),
    "gaps": np.array([[1, 0, 1, 0, 1],
                      [0, 1, 1, 0, 1],
                      [1, 1, 0, 1, 1]], dtype=bool),
    "fully_masked_row": np.array([[0, 0, 0, 0, 0],
                                  [1, 1, 0, 1, 1],
                                  [1, 0, 1, 1, 1]], dtype=bool),
}

#: cell name -> factory(units, **kwargs)
CELLS = {
    "simple_rnn": lambda units, **kw: SimpleRNN(units, **kw),
    "lstm": lambda units, **kw: LSTM(units, **kw),
    "gru_reset_after": lambda units, **kw: GRU(units, reset_after=True, **kw),
    "gru_reset_before": lambda units, **kw: GRU(units, reset_after=False, **kw),
}
GATED = ["lstm", "gru_reset_after", "gru_reset_before"]


# -- helpers ---------------------------------------------------------------------------------

def randomize_biases(layer, rng, scale=0.5):
    """Non-zero biases are part of every check (the initializers give zeros)."""
    for name, p in layer.params.items():
        if name.split("/")[-1] == "bias":
            p[...] = rng.normal(size=p.shape) * scale


def n_outputs(layer) -> int:
    """How many leading entries of the result are outputs (the rest are states)."""
    return 2 if isinstance(layer, Bidirectional) and layer.merge_mode is None else 1


def as_list(out):
    return list(out) if isinstance(out, list) else [out]


def sub_layers(layer):
    return [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]


def fixed_rng_reset(layer, seed=7):
    """Pin the dropout masks: every forward draws from a fresh Generator(seed) (per sub-layer)."""
    def reset():
        for k, sub in enumerate(sub_layers(layer)):
            sub._rng = np.random.default_rng(seed + 100 * k)
    return reset


def check_recurrent(layer, x, rng, mask=None, initial_state=None, training=False, state_weights=True,
                    drop_state_grads=()):
    """Finite differences for a recurrent layer (or Bidirectional) with every option of its forward.

    Returns the largest relative error seen. With ``return_state`` the states also carry
    a projection (``state_weights``); entries listed in ``drop_state_grads`` get ``None``
    as their ``dstates`` entry, i.e. no gradient flows from that state.
    """
    if not layer.built:
        layer.build(x.shape[1:])
    reset = fixed_rng_reset(layer) if training else None

    def run():
        if reset is not None:
            reset()
        return as_list(layer.forward(x, training=training, initial_state=initial_state, mask=mask))

    outs = run()
    n_out = n_outputs(layer)
    ws = [rng.normal(size=o.shape) for o in outs]
    for i in drop_state_grads:
        ws[n_out + i] = np.zeros_like(ws[n_out + i])

    def loss():
        return float(sum((w * o).sum() for w, o in zip(ws, run())))

    run()
    dy = ws[0] if n_out == 1 else ws[:2]
    if layer.return_state:
        dstates = [None if i in drop_state_grads else w for i, w in enumerate(ws[n_out:])]
        dx = layer.backward(dy, dstates=dstates)
    else:
        dx = layer.backward(dy)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    init_grads = None
    if initial_state is not None:
        init_grads = [g.copy() for g in layer.initial_state_grads]

    worst = 0.0
    err = rel_error(dx, numeric_grad(loss, x))
    assert err < TOL, f"input gradient: {err:.3g}"
    worst = max(worst, err)
    assert set(grads) == set(layer.params)
    for name, param in layer.params.items():
        assert param.flags.c_contiguous, name
        err = rel_error(grads[name], numeric_grad(loss, param))
        assert err < TOL, f"{name}: {err:.3g}"
        worst = max(worst, err)
    if initial_state is not None:
        assert len(init_grads) == len(initial_state)
        for k, s in enumerate(initial_state):
            err = rel_error(init_grads[k], numeric_grad(loss, s))
            assert err < TOL, f"initial state {k}: {err:.3g}"
            worst = max(worst, err)
    return worst


def make(cell, units=H, **kw):
    kw.setdefault("seed", 3)
    return CELLS[cell](units, **kw)


def built(layer, rng, shape=(T, D)):
    layer.build(shape)
    randomize_biases(layer, rng)
    return layer


# -- LSTM and GRU: the plain options ------------------------------------------------------------

@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
def test_gated_basic(cell, return_sequences, go_backwards, use_bias, rng):
    layer = built(make(cell, return_sequences=return_sequences, go_backwards=go_backwards, use_bias=use_bias),
                  rng)
    assert ("bias" in layer.params) == use_bias
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng)


@pytest.mark.parametrize("cell", GATED)
def test_gated_single_step_and_single_sample(cell, rng):
    check_recurrent(built(make(cell, return_sequences=True), rng, (1, D)), rng.normal(size=(B, 1, D)), rng)
    check_recurrent(built(make(cell, return_sequences=True), rng), rng.normal(size=(1, T, D)), rng)


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("activation,recurrent_activation", [
    ("relu", "sigmoid"), ("sigmoid", "tanh"), ("linear", "linear"), ("tanh", "relu"),
    ("softmax", "sigmoid"), ("tanh", "softmax"),
])
def test_gated_activations(cell, activation, recurrent_activation, rng):
    """Non-default activations; the gates' activation is applied to each gate's own block."""
    layer = built(make(cell, activation=activation, recurrent_activation=recurrent_activation,
                       return_sequences=True), rng)
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng)


def test_lstm_without_unit_forget_bias(rng):
    layer = built(LSTM(H, unit_forget_bias=False, return_sequences=True, seed=5), rng)
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng)


def test_gru_bias_shapes(rng):
    assert built(GRU(H, reset_after=True, seed=1), rng).params["bias"].shape == (2, 3 * H)
    assert built(GRU(H, reset_after=False, seed=1), rng).params["bias"].shape == (3 * H,)


# -- masks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("pattern", list(MASKS))
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_masked(cell, pattern, zero_output_for_mask, return_sequences, rng):
    layer = built(make(cell, return_sequences=return_sequences, zero_output_for_mask=zero_output_for_mask), rng)
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, mask=MASKS[pattern])


@pytest.mark.parametrize("cell", GATED)
@pytest.mark.parametrize("pattern", ["left_padding", "gaps"])
def test_masked_go_backwards(cell, pattern, rng):
    layer = built(make(cell, return_sequences=True, go_backwards=True, zero_output_for_mask=True), rng)
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, mask=MASKS[pattern])


def test_masked_steps_get_no_input_gradient(rng):
    layer = built(LSTM(H, return_sequences=True, seed=2), rng)
    x, mask = rng.normal(size=(B, T, D)), MASKS["gaps"]
    layer.forward(x, mask=mask)
    dx = layer.backward(rng.normal(size=(B, T, H)))
    assert np.all(dx[~mask] == 0.0) and np.all(np.abs(dx[mask]).sum(axis=-1) > 0)


# -- dropout -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("dropout,recurrent_dropout", [(0.4, 0.0), (0.0, 0.4), (0.3, 0.5)])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_dropout_in_training(cell, dropout, recurrent_dropout, return_sequences, rng):
    layer = built(make(cell, dropout=dropout, recurrent_dropout=recurrent_dropout,
                       return_sequences=return_sequences), rng)
    x = rng.normal(size=(B, T, D))
    check_recurrent(layer, x, rng, training=True)
    fixed_rng_reset(layer)()
    layer.forward(x, training=True)
    if dropout:
        assert (layer._in_mask == 0).any(), "input dropout dropped nothing"
    if recurrent_dropout:
        assert (layer._rec_mask == 0).any(), "recurrent dropout dropped nothing"


@pytest.mark.parametrize("cell", GATED)
def test_dropout_with_mask_and_go_backwards(cell, rng):
    layer = built(make(cell, dropout=0.3, recurrent_dropout=0.3, return_sequences=True, go_backwards=True,
                       zero_output_for_mask=True), rng)
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, mask=MASKS["gaps"], training=True)


# -- states --------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("pattern", [None, "gaps", "fully_masked_row"])
def test_return_state_and_initial_state(cell, return_sequences, pattern, rng):
    """Gradients flow back from the returned states and reach the initial states."""
    layer = built(make(cell, return_sequences=return_sequences, return_state=True), rng)
    x = rng.normal(size=(B, T, D))
    init = [rng.normal(size=(B, H)) for _ in range(layer.n_states)]
    mask = None if pattern is None else MASKS[pattern]
    check_recurrent(layer, x, rng, mask=mask, initial_state=init)


@pytest.mark.parametrize("cell", ["lstm", "gru_reset_after"])
def test_initial_state_without_return_state(cell, rng):
    layer = built(make(cell, return_sequences=True, go_backwards=True), rng)
    init = [rng.normal(size=(B, H)) for _ in range(layer.n_states)]
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, initial_state=init, mask=MASKS["right_padding"])


def test_lstm_gradient_from_cell_state_only(rng):
    """dstates=[None, dc]: only the final cell state carries a gradient."""
    layer = built(LSTM(H, return_state=True, seed=4), rng)
    init = [rng.normal(size=(B, H)), rng.normal(size=(B, H))]
    # the output is h_T itself, so drop the state-h projection and keep the output one
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, initial_state=init, drop_state_grads=(0,))


@pytest.mark.parametrize("cell", GATED)
def test_return_state_with_dropout_and_mask(cell, rng):
    layer = built(make(cell, return_sequences=True, return_state=True, dropout=0.3, recurrent_dropout=0.3), rng)
    init = [rng.normal(size=(B, H)) for _ in range(layer.n_states)]
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, mask=MASKS["left_padding"], initial_state=init,
                    training=True)


# -- Bidirectional --------------------------------------------------------------------------------

MERGE_MODES = ["concat", "sum", "mul", "ave", None]
BI_CELLS = ["lstm", "gru_reset_after", "gru_reset_before"]


def bidirectional(cell, merge_mode, rng, **kw):
    layer = Bidirectional(make(cell, units=3, **kw), merge_mode=merge_mode)
    return built(layer, rng)


@pytest.mark.parametrize("cell", BI_CELLS)
@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("pattern", [None, "gaps"])
def test_bidirectional(cell, merge_mode, return_sequences, pattern, rng):
    layer = bidirectional(cell, merge_mode, rng, return_sequences=return_sequences)
    mask = None if pattern is None else MASKS[pattern]
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, mask=mask)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("pattern", ["left_padding", "fully_masked_row"])
def test_bidirectional_simple_rnn_masked(return_sequences, pattern, rng):
    layer = bidirectional("simple_rnn", "concat", rng, return_sequences=return_sequences)
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, mask=MASKS[pattern])


@pytest.mark.parametrize("cell", ["lstm", "gru_reset_after", "gru_reset_before"])
@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_return_state_and_initial_state(cell, merge_mode, return_sequences, rng):
    layer = bidirectional(cell, merge_mode, rng, return_sequences=return_sequences, return_state=True)
    init = [rng.normal(size=(B, 3)) for _ in range(layer.n_states)]
    mask = MASKS["left_padding" if return_sequences else "right_padding"]
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, mask=mask, initial_state=init)


@pytest.mark.parametrize("merge_mode", ["concat", "mul"])
def test_bidirectional_dropout_in_training(merge_mode, rng):
    layer = bidirectional("lstm", merge_mode, rng, return_sequences=True, dropout=0.3, recurrent_dropout=0.3)
    check_recurrent(layer, rng.normal(size=(B, T, D)), rng, mask=MASKS["gaps"], training=True)


def test_bidirectional_grads_keys(rng):
    layer = bidirectional("lstm", "concat", rng, return_sequences=True)
    x = rng.normal(size=(B, T, D))
    layer.forward(x)
    layer.backward(rng.normal(size=(B, T, 6)))
    assert list(layer.grads) == list(layer.params) == [
        "forward/kernel", "forward/recurrent_kernel", "forward/bias",
        "backward/kernel", "backward/recurrent_kernel", "backward/bias"]


# -- the other new layers -------------------------------------------------------------------------

def check_plain(layer, x, rng, **kwargs):
    """A non-recurrent layer: input gradient (where it has one) and every weight."""
    if not layer.built:
        layer.build(x.shape[1:])
    w = rng.normal(size=layer.forward(x, **kwargs).shape)
    loss = lambda: float((w * layer.forward(x, **kwargs)).sum())
    loss()
    dx = layer.backward(w)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    if dx is not None:
        assert rel_error(dx, numeric_grad(loss, x)) < TOL, "input gradient"
    for name, param in layer.params.items():
        assert rel_error(grads[name], numeric_grad(loss, param)) < TOL, name
    return dx


def test_embedding_weights(rng):
    """Repeated indices add up in the gradient; rows never used get exactly zero."""
    layer = Embedding(7, 3, seed=0)
    x = np.array([[1, 2, 2, 0], [4, 1, 1, 1]])
    dx = check_plain(layer, x, rng)
    assert dx is None
    assert np.all(layer.grads["embeddings"][[3, 5, 6]] == 0.0)


def test_embedding_with_float_indices(rng):
    layer = Embedding(5, 2, mask_zero=True, seed=1)
    check_plain(layer, np.array([[1.0, 4.0, 0.0], [3.0, 0.0, 0.0]]), rng)


@pytest.mark.parametrize("activation", ["linear", "tanh", "softmax", "sigmoid"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_time_distributed_dense(activation, use_bias, rng):
    layer = TimeDistributed(Dense(4, activation=activation, use_bias=use_bias, seed=2))
    layer.build((T, D))
    randomize_biases(layer, rng)
    check_plain(layer, rng.normal(size=(B, T, D)), rng)


def test_time_distributed_backward_from_logits(rng):
    """The fused-loss path: dL/dlogits in, dL/dx and weight gradients out."""
    layer = TimeDistributed(Dense(4, activation="softmax", seed=2))
    layer.build((T, D))
    randomize_biases(layer, rng)
    x = rng.normal(size=(B, T, D))
    w = rng.normal(size=(B, T, 4))
    loss = lambda: (layer.forward(x), float((w * layer.logits).sum()))[1]
    loss()
    assert layer.logits.shape == (B, T, 4)
    dx = layer.backward_from_logits(w)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert rel_error(dx, numeric_grad(loss, x)) < TOL
    for name, param in layer.params.items():
        assert rel_error(grads[name], numeric_grad(loss, param)) < TOL, name


def test_repeat_vector(rng):
    check_plain(RepeatVector(4), rng.normal(size=(B, D)), rng)


def test_dropout_layer_on_sequences_with_noise_shape(rng):
    layer = Dropout(0.5, noise_shape=(None, 1, None), seed=1)
    x = rng.normal(size=(B, T, D))
    layer.build(x.shape[1:])

    def run():
        layer._rng = np.random.default_rng(3)
        return layer.forward(x, training=True)

    w = rng.normal(size=(B, T, D))
    loss = lambda: float((w * run()).sum())
    loss()
    assert rel_error(layer.backward(w), numeric_grad(loss, x)) < TOL


def masked_input(rng, mask, mask_value=0.0):
    x = rng.normal(size=(*mask.shape, D))
    x[~mask] = mask_value
    return x


def grad_on_unmasked(loss, x, keep):
    """Numeric gradient with respect to the unmasked steps only.

    Moving a feature of a masked step off ``mask_value`` would unmask the step, so the
    mask is not differentiable there; Keras treats the mask as a constant, and so do we.
    """
    free = np.ascontiguousarray(x[keep])

    def f():
        x[keep] = free
        return loss()

    num = np.zeros_like(x)
    num[keep] = numeric_grad(f, free)
    x[keep] = free
    return num


@pytest.mark.parametrize("mask_value", [0.0, -1.0])
def test_masking_layer_input_gradient(mask_value, rng):
    mask = MASKS["gaps"]
    layer = Masking(mask_value=mask_value)
    x = masked_input(rng, mask, mask_value)
    layer.build(x.shape[1:])
    assert np.array_equal(layer.compute_mask(x, None), mask)
    w = rng.normal(size=x.shape)
    loss = lambda: float((w * layer.forward(x)).sum())
    loss()
    dx = layer.backward(w)
    assert np.all(dx[~mask] == 0.0)
    assert rel_error(dx, grad_on_unmasked(loss, x, mask)) < TOL


@pytest.mark.parametrize("cell", GATED)
def test_masking_then_recurrent_input_gradient(cell, rng):
    """Masking -> recurrent layer, chained by hand: dL/dx at real steps, exactly zero at padded ones."""
    mask = MASKS["left_padding"]
    masking = Masking()
    rec = built(make(cell, return_sequences=True), rng)
    x = masked_input(rng, mask)
    w = rng.normal(size=(B, T, H))

    def loss():
        y = masking.forward(x)
        return float((w * rec.forward(y, mask=masking.compute_mask(x, None))).sum())

    loss()
    dx = masking.backward(rec.backward(w))
    assert np.all(dx[~mask] == 0.0)
    assert rel_error(dx, grad_on_unmasked(loss, x, mask)) < TOL


# -- whole models through loss_and_gradients ----------------------------------------------------------

def check_model(model, x, y, training=False, reset=None):
    def value():
        if reset is not None:
            reset()
        return model.loss_and_gradients(x, y, training=training)[0]

    if reset is not None:
        reset()
    _, grads = model.loss_and_gradients(x, y, training=training)
    assert len(grads) == len(model.weights) > 0
    worst = 0.0
    for k, (weight, grad) in enumerate(zip(model.weights, grads)):
        assert weight.flags.c_contiguous
        err = rel_error(grad, numeric_grad(value, weight))
        assert err < TOL, f"weight {k} ({weight.shape}): {err:.3g}"
        worst = max(worst, err)
    return worst


def randomize_model_biases(model, rng):
    for layer in model.layers:
        randomize_biases(layer, rng)


def test_stack_masking_bidirectional_lstm_gru_dense(rng):
    model = rnnkit.Sequential([
        Masking(input_shape=(T, D)),
        Bidirectional(LSTM(3, return_sequences=True)),
        GRU(3),
        Dense(2, activation="softmax"),
    ], seed=21)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    randomize_model_biases(model, rng)
    x = masked_input(rng, MASKS["left_padding"])
    y = rnnkit.one_hot(rng.integers(0, 2, size=B), 2)
    check_model(model, x, y)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
def test_stack_masking_bidirectional_gru_sequence_output(merge_mode, rng):
    """Many-to-many with a masked mse loss: the masked positions drop out of the loss."""
    model = rnnkit.Sequential([
        Masking(input_shape=(T, D)),
        Bidirectional(GRU(3, return_sequences=True, reset_after=False), merge_mode=merge_mode),
        TimeDistributed(Dense(2)),
    ], seed=22)
    model.compile(optimizer="sgd", loss="mse")
    randomize_model_biases(model, rng)
    x = masked_input(rng, MASKS["gaps"])
    y = rng.normal(size=(B, T, 2))
    check_model(model, x, y)


def test_stack_embedding_lstm_time_distributed_softmax(rng):
    """Embedding(mask_zero) -> LSTM -> TimeDistributed(Dense(softmax)), sparse CE over real steps only."""
    model = rnnkit.Sequential([
        Embedding(6, 3, mask_zero=True, input_shape=(T,)),
        LSTM(4, return_sequences=True),
        TimeDistributed(Dense(5, activation="softmax")),
    ], seed=23)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    randomize_model_biases(model, rng)
    model.layers[0].params["embeddings"][...] = rng.normal(size=(6, 3))
    x = np.array([[0, 0, 3, 1, 5], [2, 4, 1, 0, 0], [1, 0, 2, 5, 3]])
    y = rng.integers(0, 5, size=(B, T))
    worst = check_model(model, x, y)
    assert worst < TOL
    # the loss ignores the labels of masked steps, and its gradient does too
    value, grads = model.loss_and_gradients(x, y)
    y2 = y.copy()
    y2[x == 0] = (y2[x == 0] + 1) % 5
    value2, grads2 = model.loss_and_gradients(x, y2)
    assert value2 == value
    for g, g2 in zip(grads, grads2):
        np.testing.assert_array_equal(g, g2)
    # the padding row of the embedding gets no gradient
    assert np.all(grads[0][0] == 0.0)


def test_stack_embedding_bidirectional_return_sequences_false(rng):
    model = rnnkit.Sequential([
        Embedding(6, 3, mask_zero=True, input_shape=(T,)),
        Bidirectional(GRU(3), merge_mode="ave"),
        Dense(1, activation="sigmoid"),
    ], seed=24)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    randomize_model_biases(model, rng)
    model.layers[0].params["embeddings"][...] = rng.normal(size=(6, 3))
    x = np.array([[0, 0, 3, 1, 5], [2, 4, 1, 0, 0], [1, 0, 2, 5, 3]])
    check_model(model, x, rng.integers(0, 2, size=(B, 1)).astype(float))


def test_stack_dense_repeat_vector_gru_time_distributed(rng):
    model = rnnkit.Sequential([
        Dense(3, activation="tanh", input_shape=(D,)),
        RepeatVector(4),
        GRU(3, return_sequences=True),
        LSTM(3, return_sequences=True, go_backwards=True),
        TimeDistributed(Dense(2)),
    ], seed=25)
    model.compile(optimizer="sgd", loss="mse")
    randomize_model_biases(model, rng)
    check_model(model, rng.normal(size=(B, D)), rng.normal(size=(B, 4, 2)))


def test_stack_with_dropout_in_training(rng):
    model = rnnkit.Sequential([
        LSTM(3, return_sequences=True, dropout=0.3, recurrent_dropout=0.3, input_shape=(T, D)),
        Dropout(0.3),
        GRU(3, dropout=0.2, recurrent_dropout=0.4),
        Dense(2, activation="softmax"),
    ], seed=26)
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    randomize_model_biases(model, rng)

    def reset():
        model.layers[0]._rng = np.random.default_rng(1)
        model.layers[1]._rng = np.random.default_rng(2)
        model.layers[2]._rng = np.random.default_rng(3)

    x = rng.normal(size=(B, T, D))
    y = rnnkit.one_hot(rng.integers(0, 2, size=B), 2)
    check_model(model, x, y, training=True, reset=reset)
    # and the masks really were in use
    reset()
    train_value = model.loss_and_gradients(x, y, training=True)[0]
    assert train_value != model.loss_and_gradients(x, y, training=False)[0]
