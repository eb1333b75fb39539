"""What the gated layers, masks, dropout, state and wrappers do, checked with plain asserts.

* a masked step carries the state over unchanged: padded runs equal runs on the real steps alone;
* masked losses and metrics count the real steps only;
* ``stateful=True`` carries state across calls, ``reset_states`` forgets it;
* variational dropout: one mask per sequence, reused at every step, off at inference;
* clear errors for the usual mistakes;
* ``save`` / ``load_model`` round trips give identical predictions.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit.layers import (
    GRU,
    LSTM,
    Bidirectional,
    Dense,
    Dropout,
    Embedding,
    Input,
    Masking,
    RepeatVector,
    SimpleRNN,
    TimeDistributed,
)

B, T, D, H = 3, 6, 3, 4

MASKS = {
    "left_padding": np.array([[0, 0, 0, 1, 1, 1],
                              [0, 1, 1, 1, 1, 1],
                              [1, 1, 1, 1, 1, 1]], dtype=bool),
    "right_padding": np.array([[1, 1, 1, 0, 0, 0],
                               [1, 1, 1, 1, 1, 0],
                               [1, 1, 1, 1, 1, 1]], dtype=bool),
    "gaps": np.array([[1, 0, 1, 0, 0, 1],
                      [0, 1, 1, 0, 1, 1],
                      [1, 1, 0, 1, 1, 0]], dtype=bool),
}

CELLS = {
    "simple_rnn": lambda units=H, **kw: SimpleRNN(units, **kw),
    "lstm": lambda units=H, **kw: LSTM(units, **kw),
    "gru_reset_after": lambda units=H, **kw: GRU(units, reset_after=True, **kw),
    "gru_reset_before": lambda units=H, **kw: GRU(units, reset_after=False, **kw),
}


def randomize_biases(layer, rng, scale=0.5):
    for name, p in layer.params.items():
        if name.split("/")[-1] == "bias":
            p[...] = rng.normal(size=p.shape) * scale


def garbage_at_masked_steps(rng, mask, features=D):
    """Real steps hold data, masked steps hold large junk that must be ignored."""
    x = rng.normal(size=(*mask.shape, features))
    x[~mask] = rng.normal(size=(int((~mask).sum()), features)) * 100.0
    return x


# -- masks: a masked step leaves the state unchanged -------------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("pattern", list(MASKS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_run_equals_run_on_real_steps_alone(cell, pattern, go_backwards, rng, float64):
    mask = MASKS[pattern]
    layer = CELLS[cell](return_state=True, go_backwards=go_backwards, seed=1)
    layer.build((T, D))
    randomize_biases(layer, rng)
    x = garbage_at_masked_steps(rng, mask)
    out, *states = layer(x, mask=mask)
    assert len(states) == layer.n_states
    for b in range(B):
        alone = layer(x[b:b + 1, mask[b]])          # (1, L_b, D), no mask
        np.testing.assert_allclose(out[b], alone[0][0], rtol=0, atol=1e-12)
        for s, s_alone in zip(states, alone[1:]):
            np.testing.assert_allclose(s[b], s_alone[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", list(CELLS))
def test_masked_step_repeats_previous_output_without_zero_output(cell, rng, float64):
    """return_sequences without zero_output_for_mask: a masked step outputs the carried state (Keras)."""
    mask = MASKS["gaps"]
    layer = CELLS[cell](return_sequences=True, seed=2)
    x = garbage_at_masked_steps(rng, mask)
    y = layer(x, mask=mask)
    for b in range(B):
        for t in range(T):
            if not mask[b, t]:
                expected = y[b, t - 1] if t > 0 else np.zeros(H)
                np.testing.assert_array_equal(y[b, t], expected)


@pytest.mark.parametrize("cell", list(CELLS))
def test_zero_output_for_mask(cell, rng, float64):
    mask = MASKS["gaps"]
    plain = CELLS[cell](return_sequences=True, seed=2)
    zeroed = CELLS[cell](return_sequences=True, zero_output_for_mask=True, seed=2)
    x = garbage_at_masked_steps(rng, mask)
    y0, y1 = plain(x, mask=mask), zeroed(x, mask=mask)
    assert np.all(y1[~mask] == 0.0)
    np.testing.assert_array_equal(y1[mask], y0[mask])


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("pattern", list(MASKS))
def test_bidirectional_masked_steps_are_zero_and_real_steps_match(cell, merge_mode, pattern, rng, float64):
    """Inside Bidirectional, zero_output_for_mask is forced: masked steps are 0 in both directions,
    and at the real steps each direction equals its run on the real steps alone."""
    mask = MASKS[pattern]
    bi = Bidirectional(CELLS[cell](return_sequences=True, seed=3), merge_mode=merge_mode)
    bi.build((T, D))
    randomize_biases(bi, rng)
    assert bi.forward_layer.zero_output_for_mask and bi.backward_layer.zero_output_for_mask
    x = garbage_at_masked_steps(rng, mask)
    out = bi(x, mask=mask)
    yf, yb = bi._outputs
    for y in (out if isinstance(out, list) else [out]):
        assert np.all(y[~mask] == 0.0)
    for b in range(B):
        xs = x[b:b + 1, mask[b]]
        f_alone = bi.forward_layer(xs)[0]
        b_alone = bi.backward_layer(xs)[0][::-1]    # the backward layer reads reversed; back into time order
        np.testing.assert_allclose(yf[b, mask[b]], f_alone, rtol=0, atol=1e-12)
        np.testing.assert_allclose(yb[b, mask[b]], b_alone, rtol=0, atol=1e-12)
    expected = {"concat": lambda: np.concatenate([yf, yb], -1), "sum": lambda: yf + yb,
                "mul": lambda: yf * yb, "ave": lambda: (yf + yb) / 2, None: lambda: [yf, yb]}[merge_mode]()
    if merge_mode is None:
        assert isinstance(out, list) and len(out) == 2
        np.testing.assert_array_equal(out[0], expected[0])
        np.testing.assert_array_equal(out[1], expected[1])
    else:
        np.testing.assert_array_equal(out, expected)


def test_bidirectional_final_states_with_padding(rng, float64):
    """return_sequences=False: the forward half is the last real step's state, the backward half the
    state after reading the real steps from last to first."""
    mask = MASKS["left_padding"]
    bi = Bidirectional(LSTM(H, return_state=True, seed=4))
    x = garbage_at_masked_steps(rng, mask)
    out, hf, cf, hb, cb = bi(x, mask=mask)
    for b in range(B):
        xs = x[b:b + 1, mask[b]]
        f = bi.forward_layer(xs)
        bb = bi.backward_layer(xs)
        np.testing.assert_allclose(out[b], np.concatenate([f[0][0], bb[0][0]]), atol=1e-12, rtol=0)
        np.testing.assert_allclose(cf[b], f[2][0], atol=1e-12, rtol=0)
        np.testing.assert_allclose(cb[b], bb[2][0], atol=1e-12, rtol=0)


def test_mask_with_wrong_shape_is_refused(rng):
    layer = LSTM(H, seed=0)
    with pytest.raises(ValueError, match=r"mask of shape \(6, 3\), expected \(3, 6\)"):
        layer(rng.normal(size=(B, T, D)), mask=np.ones((T, B), dtype=bool))


# -- masked losses and metrics ------------------------------------------------------------------------

def _embedding_tagger(seed=0):
    model = rnnkit.Sequential([
        Embedding(7, 4, mask_zero=True, input_shape=(T,)),
        LSTM(5, return_sequences=True),
        TimeDistributed(Dense(3, activation="softmax")),
    ], seed=seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _tokens(rng, n=5):
    x = rng.integers(1, 7, size=(n, T))
    x[0, :2] = 0          # left padding
    x[1, 4:] = 0          # right padding
    x[2, [1, 3]] = 0      # gaps
    x[4, 1:] = 0          # only one real step
    return x


def test_masked_loss_and_accuracy_count_real_steps_only(rng):
    model = _embedding_tagger()
    x = _tokens(rng)
    y = rng.integers(0, 3, size=x.shape)
    mask = x != 0
    p = model.predict(x).astype(np.float64)
    ce = -np.log(np.clip(np.take_along_axis(p, y[..., None], -1)[..., 0], 1e-7, 1 - 1e-7))
    expected_loss = ce[mask].mean()
    expected_acc = (p.argmax(-1) == y)[mask].mean()
    logs = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert logs["accuracy"] == pytest.approx(expected_acc, abs=1e-12)
    # the check (rel 1e-5) can tell the masked-steps mean from the real-steps mean by a wide margin
    assert abs(ce[~mask].mean() - expected_loss) > 10 * 1e-5 * expected_loss
    # accuracy in several batches is still a mean over all real steps (position weighted)
    logs2 = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    assert logs2["accuracy"] == pytest.approx(expected_acc, abs=1e-12)
    # labels at padded steps do not matter
    y2 = np.where(mask, y, (y + 1) % 3)
    assert model.evaluate(x, y2, batch_size=len(x), verbose=0, return_dict=True) == logs
    assert model.test_on_batch(x, y2, return_dict=True) == model.test_on_batch(x, y, return_dict=True)


def test_masked_loss_with_masking_layer_and_mse(rng):
    model = rnnkit.Sequential([
        Masking(mask_value=0.0, input_shape=(T, D)),
        Bidirectional(GRU(4, return_sequences=True), merge_mode="sum"),
        TimeDistributed(Dense(2)),
    ], seed=1)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    mask = MASKS["gaps"]
    x = rng.normal(size=(B, T, D))
    x[~mask] = 0.0
    y = rng.normal(size=(B, T, 2))
    p = model.predict(x).astype(np.float64)
    logs = model.evaluate(x, y, batch_size=B, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(((p - y) ** 2).mean(-1)[mask].mean(), rel=1e-5)
    assert logs["mae"] == pytest.approx(np.abs(p - y).mean(-1)[mask].mean(), rel=1e-5)
    assert np.all(p[~mask] == model.layers[-1].params["bias"])   # zero features in, bias out


def test_masked_training_ignores_padded_labels(rng):
    """Two models fitted on labels that differ only at padded steps end with identical weights."""
    x = _tokens(rng, n=6)
    y = rng.integers(0, 3, size=x.shape)
    y2 = np.where(x != 0, y, (y + 1) % 3)
    a, b = _embedding_tagger(seed=5), _embedding_tagger(seed=5)
    b.set_weights(a.get_weights())
    ha = a.fit(x, y, batch_size=3, epochs=2, verbose=0, shuffle=False)
    hb = b.fit(x, y2, batch_size=3, epochs=2, verbose=0, shuffle=False)
    assert ha.history == hb.history
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


# -- stateful ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
def test_stateful_halves_equal_whole(cell, rng, float64):
    layer = CELLS[cell](return_sequences=True, stateful=True, seed=6)
    layer.build((None, D))
    randomize_biases(layer, rng)
    x = rng.normal(size=(B, T, D))
    whole = layer(x)
    whole_states = [s.copy() for s in layer.states]
    layer.reset_states()
    first = layer(x[:, :T // 2])
    second = layer(x[:, T // 2:])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=0, atol=1e-12)
    for s, w in zip(layer.states, whole_states):
        np.testing.assert_allclose(s, w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", list(CELLS))
def test_reset_states_forgets(cell, rng, float64):
    layer = CELLS[cell](stateful=True, seed=7)
    stateless = CELLS[cell](seed=7)
    x1, x2 = rng.normal(size=(B, T, D)), rng.normal(size=(B, T, D))
    fresh = stateless(x2)
    layer(x1)
    carried = layer(x2)
    assert not np.allclose(carried, fresh)
    layer.reset_states()
    assert layer.states is None
    np.testing.assert_array_equal(layer(x2), fresh)
    # reset_states(states) starts from given states
    init = [rng.normal(size=(B, H)) for _ in range(layer.n_states)]
    layer.reset_states(init)
    np.testing.assert_array_equal(layer(x2), stateless(x2, initial_state=init))


def test_reset_states_on_non_stateful_layer_is_refused():
    with pytest.raises(ValueError, match="not stateful"):
        LSTM(3).reset_states()


def test_stateful_different_batch_size_is_refused(rng):
    layer = LSTM(H, stateful=True, seed=0)
    layer(rng.normal(size=(3, T, D)))
    with pytest.raises(ValueError, match=r"batch size 3 but got a batch of 2"):
        layer(rng.normal(size=(2, T, D)))
    layer.reset_states()
    layer(rng.normal(size=(2, T, D)))   # fine after a reset


def _stateful_model(seed=0):
    model = rnnkit.Sequential([LSTM(4, stateful=True, return_sequences=True, input_shape=(T, D)),
                               GRU(3, stateful=True), Dense(1)], seed=seed)
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_stateful_fit_with_indivisible_batch_size_raises_before_training(rng):
    model = _stateful_model()
    before = model.get_weights()
    x, y = rng.normal(size=(10, T, D)), rng.normal(size=(10, 1))
    with pytest.raises(ValueError, match=r"10 training samples do not split into batches of 4"):
        model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == 0
    assert all(layer.states is None for layer in model.layers[:2])
    model.fit(x, y, batch_size=5, epochs=1, verbose=0, shuffle=False)   # a divisor is fine


def test_stateful_fit_with_validation_split_checks_the_training_part(rng):
    """10 samples, validation_split=0.2: 8 train in batches of 5 and 3, so the stateful check must
    refuse before training, not fail in the middle of the epoch after weights have changed."""
    model = _stateful_model()
    before = model.get_weights()
    x, y = rng.normal(size=(10, T, D)), rng.normal(size=(10, 1))
    with pytest.raises(ValueError):
        model.fit(x, y, batch_size=5, validation_split=0.2, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_model_reset_states(rng):
    model = _stateful_model()
    x = rng.normal(size=(B, T, D))
    p1 = model.predict(x, batch_size=B)
    p2 = model.predict(x, batch_size=B)
    assert not np.allclose(p1, p2)             # the state was carried into the second call
    model.reset_states()
    assert all(layer.states is None for layer in model.layers[:2])
    np.testing.assert_array_equal(model.predict(x, batch_size=B), p1)


def test_model_stateful_halves_equal_whole(rng, float64):
    model = rnnkit.Sequential([Input(shape=(None, D)), LSTM(4, stateful=True, return_sequences=True),
                               GRU(3, stateful=True, return_sequences=True), TimeDistributed(Dense(2))], seed=3)
    x = rng.normal(size=(B, T, D))
    whole = model.predict(x, batch_size=B)
    model.reset_states()
    halves = np.concatenate([model.predict(x[:, :T // 2], batch_size=B),
                             model.predict(x[:, T // 2:], batch_size=B)], axis=1)
    np.testing.assert_allclose(halves, whole, rtol=0, atol=1e-12)


# -- variational dropout ---------------------------------------------------------------------------

@pytest.mark.parametrize("cell", list(CELLS))
def test_input_dropout_mask_is_the_same_at_every_step(cell, rng, float64):
    layer = CELLS[cell](return_sequences=True, dropout=0.5, seed=8)
    reference = CELLS[cell](return_sequences=True, seed=8)     # the same weights, no dropout
    layer.build((T, D))
    reference.build((T, D))
    reference.set_weights(layer.get_weights())
    x = rng.normal(size=(B, T, D))
    y = layer(x, training=True)
    m = layer._in_mask
    assert m.shape == (B, D)
    assert set(np.unique(m)) <= {0.0, 2.0} and (m == 0).any() and (m == 2).any()
    np.testing.assert_allclose(y, reference(x * m[:, None, :]), rtol=0, atol=1e-12)


def test_recurrent_dropout_mask_is_the_same_at_every_step(rng, float64):
    """SimpleRNN written out by hand with the layer's own (B, H) recurrent mask at every step."""
    layer = SimpleRNN(H, return_sequences=True, recurrent_dropout=0.5, seed=9)
    layer.build((T, D))
    randomize_biases(layer, rng)
    x = rng.normal(size=(B, T, D))
    y = layer(x, training=True)
    rm = layer._rec_mask
    assert rm.shape == (B, H) and (rm == 0).any()
    W, U, b = layer.params["kernel"], layer.params["recurrent_kernel"], layer.params["bias"]
    h = np.zeros((B, H))
    for t in range(T):
        h = np.tanh(x[:, t] @ W + (h * rm) @ U + b)
        np.testing.assert_allclose(y[:, t], h, rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", list(CELLS))
def test_dropout_is_off_at_inference(cell, rng, float64):
    layer = CELLS[cell](return_sequences=True, dropout=0.5, recurrent_dropout=0.5, seed=10)
    reference = CELLS[cell](return_sequences=True, seed=10)
    x = rng.normal(size=(B, T, D))
    y = layer(x, training=False)
    reference.build((T, D))
    reference.set_weights(layer.get_weights())
    assert layer._in_mask is None and layer._rec_mask is None
    np.testing.assert_array_equal(y, reference(x))
    np.testing.assert_array_equal(layer(x), y)
    assert not np.allclose(layer(x, training=True), y)


def test_dropout_masks_differ_between_sequences_and_calls(rng):
    layer = LSTM(H, dropout=0.5, recurrent_dropout=0.5, seed=11)
    x = rng.normal(size=(8, T, D))
    layer(x, training=True)
    m1, r1 = layer._in_mask.copy(), layer._rec_mask.copy()
    assert len({row.tobytes() for row in m1}) > 1
    layer(x, training=True)
    assert not np.array_equal(m1, layer._in_mask) or not np.array_equal(r1, layer._rec_mask)


@pytest.mark.parametrize("shape", [(1, T, D), (B, 1, D), (1, 1, D)])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_input_dropout_leaves_the_callers_array_alone(shape, go_backwards, rng):
    """Dropout in training must not write into the array it was given (batch of one, or one step)."""
    layer = LSTM(H, dropout=0.5, go_backwards=go_backwards, seed=12)
    x = rng.normal(size=shape).astype(np.float32)
    x_before = x.copy()
    layer(x, training=True)
    np.testing.assert_array_equal(x, x_before)


def test_dropout_in_fit_leaves_training_data_alone(rng):
    """fit(shuffle=False, batch_size=1) passes slices of the user's array to the first layer."""
    model = rnnkit.Sequential([LSTM(3, dropout=0.5, input_shape=(T, D)), Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    x = rng.normal(size=(4, T, D)).astype(np.float32)
    x_before = x.copy()
    model.fit(x, np.zeros((4, 1), np.float32), batch_size=1, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(x, x_before)


# -- clear errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("second", [
    lambda: LSTM(3), lambda: GRU(3), lambda: SimpleRNN(3), lambda: Bidirectional(LSTM(3)),
])
def test_recurrent_after_non_sequence_output(second):
    model = rnnkit.Sequential([LSTM(4, input_shape=(T, D))])
    with pytest.raises(ValueError, match=r"expects 3-D input.*return_sequences=True"):
        model.add(second())
    assert len(model.layers) == 1


def test_time_distributed_after_non_sequence_output():
    model = rnnkit.Sequential([GRU(4, input_shape=(T, D))])
    with pytest.raises(ValueError, match=r"return_sequences=True"):
        model.add(TimeDistributed(Dense(2)))


def test_lstm_set_weights_with_gru_weights():
    lstm, gru = LSTM(4, input_shape=(T, D)), GRU(4)
    lstm.build((T, D))
    gru.build((T, D))
    before = lstm.get_weights()
    with pytest.raises(ValueError) as info:
        lstm.set_weights(gru.get_weights())
    message = str(info.value)
    assert "kernel (3, 16), recurrent_kernel (4, 16), bias (16,)" in message
    assert "(3, 12)" in message
    for a, b in zip(before, lstm.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_gru_set_weights_with_other_reset_placement():
    after, before = GRU(4, reset_after=True), GRU(4, reset_after=False)
    after.build((T, D))
    before.build((T, D))
    with pytest.raises(ValueError, match=r"weight 'bias' expects shape \(2, 12\), got \(12,\)"):
        after.set_weights(before.get_weights())


def test_unknown_merge_mode_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown merge_mode 'stack'.*concat, sum, mul, ave, None"):
        Bidirectional(LSTM(3), merge_mode="stack")


@pytest.mark.parametrize("layer", [Dense(3), Dropout(0.5), TimeDistributed(Dense(2))])
def test_bidirectional_of_non_recurrent_layer(layer):
    with pytest.raises((TypeError, ValueError), match=r"recurrent layer.*got (Dense|Dropout|TimeDistributed)"):
        Bidirectional(layer)


def test_bidirectional_of_stateful_layer():
    with pytest.raises(ValueError, match="stateful"):
        Bidirectional(LSTM(3, stateful=True))


@pytest.mark.parametrize("make,what", [
    (lambda: Bidirectional(LSTM(3, return_sequences=True), merge_mode=None), "merge_mode=None"),
    (lambda: LSTM(3, return_state=True), "return_state=True"),
    (lambda: GRU(3, return_state=True, return_sequences=True), "return_state=True"),
    (lambda: Bidirectional(GRU(3, return_state=True)), "return_state=True"),
])
def test_sequential_refuses_layers_with_several_outputs(make, what):
    model = rnnkit.Sequential([Input(shape=(T, D))])
    with pytest.raises(ValueError, match=what.replace("=", r"=").replace(".", r"\.")):
        model.add(make())
    assert model.layers == []
    model.add(LSTM(2))   # still usable


@pytest.mark.parametrize("inner", [lambda: LSTM(3), lambda: GRU(3), lambda: SimpleRNN(3)])
def test_time_distributed_over_recurrent_layer(inner):
    with pytest.raises(ValueError, match="not a recurrent one"):
        TimeDistributed(inner())


def test_embedding_not_first():
    model = rnnkit.Sequential([Dense(3, input_shape=(T,))])
    with pytest.raises(ValueError, match="must be the first layer"):
        model.add(Embedding(10, 3))
    assert len(model.layers) == 1


def _embedding_model():
    model = rnnkit.Sequential([Embedding(5, 3, input_shape=(4,)), LSTM(3), Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.mark.parametrize("bad", [5, 9, -1])
def test_embedding_index_out_of_range_at_fit_single_batch(bad):
    model = _embedding_model()
    before = model.get_weights()
    x = np.array([[1, 2, 3, 4], [0, 1, 2, bad]])
    with pytest.raises(ValueError, match=r"indices in \[0, 5\)"):
        model.fit(x, np.zeros((2, 1)), verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_embedding_index_out_of_range_at_fit_in_a_later_batch():
    """The bad index sits in the last batch: the fit must refuse before the first update."""
    model = _embedding_model()
    before = model.get_weights()
    x = np.array([[1, 2, 3, 4]] * 3 + [[1, 2, 3, 9]])
    with pytest.raises(ValueError, match=r"indices in \[0, 5\)"):
        model.fit(x, np.zeros((4, 1)), batch_size=1, verbose=0, shuffle=False)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_embedding_non_integer_indices():
    model = _embedding_model()
    with pytest.raises(ValueError, match="integer indices"):
        model.predict(np.array([[1.5, 2, 3, 4]]))


# -- save / load round trips ---------------------------------------------------------------------------

def _float_data(rng, n=6, pad=True):
    x = rng.normal(size=(n, T, D))
    if pad:
        x[0, :2] = 0.0
        x[1, 4:] = 0.0
        x[2, 3] = 0.0
    return x


MODELS = {
    "lstm_gru_after": (lambda: [LSTM(4, return_sequences=True, input_shape=(T, D)),
                                GRU(3, reset_after=True), Dense(2, activation="softmax")],
                       "categorical_crossentropy", "float"),
    "masking_gru_before_td": (lambda: [Masking(input_shape=(T, D)),
                                       GRU(4, reset_after=False, return_sequences=True, go_backwards=True),
                                       TimeDistributed(Dense(3, activation="softmax"))],
                              "categorical_crossentropy", "float_seq"),
    "bidirectional_concat": (lambda: [Masking(input_shape=(T, D)),
                                      Bidirectional(LSTM(3, return_sequences=True), merge_mode="concat"),
                                      GRU(2), Dense(2, activation="softmax")],
                             "categorical_crossentropy", "float"),
    "bidirectional_sum": (lambda: [Bidirectional(GRU(3, return_sequences=True, reset_after=False),
                                                 merge_mode="sum", input_shape=(T, D)),
                                   Dropout(0.3), TimeDistributed(Dense(3, activation="softmax"))],
                          "categorical_crossentropy", "float_seq"),
    "bidirectional_mul": (lambda: [Bidirectional(SimpleRNN(3), merge_mode="mul", input_shape=(T, D)),
                                   Dense(2, activation="softmax")],
                          "categorical_crossentropy", "float"),
    "bidirectional_ave": (lambda: [Bidirectional(LSTM(3, dropout=0.2, recurrent_dropout=0.2,
                                                      go_backwards=True), merge_mode="ave",
                                                 input_shape=(T, D)),
                                   Dense(2, activation="softmax")],
                          "categorical_crossentropy", "float"),
    "embedding_bidirectional": (lambda: [Embedding(8, 4, mask_zero=True, input_shape=(T,)),
                                         Bidirectional(GRU(3, return_sequences=True)),
                                         Dropout(0.2), TimeDistributed(Dense(3, activation="softmax"))],
                                "sparse_categorical_crossentropy", "tokens"),
    "repeat_vector": (lambda: [Dense(4, activation="tanh", input_shape=(D,)), RepeatVector(T),
                               LSTM(3, return_sequences=True, unit_forget_bias=False),
                               GRU(3, return_sequences=True, activation="relu",
                                   recurrent_activation="tanh"),
                               TimeDistributed(Dense(2))],
                      "mse", "vector"),
}


def _model_data(kind, rng, n=6):
    if kind == "tokens":
        x = rng.integers(1, 8, size=(n, T))
        x[0, :2] = 0
        x[1, 4:] = 0
        return x, rng.integers(0, 3, size=(n, T))
    if kind == "vector":
        return rng.normal(size=(n, D)), rng.normal(size=(n, T, 2))
    if kind == "float_seq":
        return _float_data(rng, n), rnnkit.one_hot(rng.integers(0, 3, size=(n, T)), 3)
    return _float_data(rng, n), rnnkit.one_hot(rng.integers(0, 2, size=n), 2)


def test_stateful_model_roundtrip(tmp_path, rng):
    model = rnnkit.Sequential([LSTM(4, stateful=True, return_sequences=True, input_shape=(T, D)),
                               GRU(3, stateful=True, reset_after=False), Dense(1)], seed=2)
    model.compile(optimizer="rmsprop", loss="mse")
    x, y = rng.normal(size=(6, T, D)), rng.normal(size=(6, 1))
    model.fit(x, y, batch_size=3, epochs=2, verbose=0, shuffle=False)
    model.save(tmp_path / "stateful.safetensors")
    loaded = rnnkit.load_model(tmp_path / "stateful.safetensors")
    assert [layer.stateful for layer in loaded.layers[:2]] == [True, True]
    model.reset_states()
    x_new = rng.normal(size=(3, T, D))
    first = loaded.predict(x_new, batch_size=3)
    np.testing.assert_array_equal(first, model.predict(x_new, batch_size=3))
    # both carry their state into the next call, identically
    np.testing.assert_array_equal(loaded.predict(x_new, batch_size=3), model.predict(x_new, batch_size=3))
    assert not np.array_equal(loaded.predict(x_new, batch_size=3), first)


def _pin_dropout_streams(model):
    for i, layer in enumerate(model.layers):
        subs = [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]
        for j, sub in enumerate(subs):
            if hasattr(sub, "_rng"):
                sub._rng = np.random.default_rng([i, j])


@pytest.mark.parametrize("name", list(MODELS))
def test_seeded_models_are_reproducible(name):
    """Sequential(seed=...) gives every layer without its own seed reproducible initial weights,
    wrapped layers (Bidirectional, TimeDistributed) included."""
    layers, _, _ = MODELS[name]
    a, b = rnnkit.Sequential(layers(), seed=4), rnnkit.Sequential(layers(), seed=4)
    for layer_a, layer_b in zip(a.layers, b.layers):
        for key in layer_a.params:
            np.testing.assert_array_equal(layer_a.params[key], layer_b.params[key],
                                          err_msg=f"{layer_a.name}/{key}")


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("floatx", ["float32", "float64"])
def test_save_load_roundtrip(name, floatx, tmp_path, rng, request):
    if floatx == "float64":
        request.getfixturevalue("float64")
    layers, loss, kind = MODELS[name]
    model = rnnkit.Sequential(layers(), seed=4)
    model.compile(optimizer="adam", loss=loss)
    x, y = _model_data(kind, rng)
    model.fit(x, y, batch_size=3, epochs=2, verbose=0)      # non-trivial weights and optimizer state
    path = tmp_path / f"{name}.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert [type(layer).__name__ for layer in loaded.layers] == [type(layer).__name__ for layer in model.layers]
    assert loaded.get_config() == model.get_config()
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype == np.dtype(floatx)
        np.testing.assert_array_equal(a, b)
    x_new, y_new = _model_data(kind, np.random.default_rng(99), n=5)
    np.testing.assert_array_equal(loaded.predict(x_new), model.predict(x_new))
    assert loaded.evaluate(x_new, y_new, verbose=0) == model.evaluate(x_new, y_new, verbose=0)
    # and training goes on identically (optimizer state restored); the dropout streams are not
    # part of the file, so both models get the same fresh ones
    for m in (model, loaded):
        _pin_dropout_streams(m)
    loaded.train_on_batch(x, y)
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(loaded.predict(x_new), model.predict(x_new))
