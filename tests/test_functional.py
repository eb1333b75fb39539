"""Functional models: whole graphs against central finite differences, and the graph's structure.

Every model is built from ``rnnkit.Input`` tensors and layer calls, compiled with a real loss,
and ``loss_and_gradients`` (the gradient of every trainable weight) is compared with central
finite differences of the loss that ``test_on_batch`` reports, in float64: branches and merges,
a layer called twice, a model used as a layer (twice), an encoder whose LSTM states start a
decoder, attention with query and value masks, several outputs with loss weights, a state
computed by a layer, and regularized layers.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from gradcheck import numeric_grad, rel_error
from rnnkit import Input, Model
from rnnkit.layers import (
    GRU,
    LSTM,
    Add,
    AdditiveAttention,
    Attention,
    Bidirectional,
    Concatenate,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    Multiply,
    SimpleRNN,
    Subtract,
)

TOL = 1e-6
B, T, D, H = 3, 5, 3, 4


def check_model(model, x, y, tol=TOL):
    """Every trainable weight's analytic gradient against central differences of the loss."""
    _, grads = model.loss_and_gradients(x, y)
    weights = model.trainable_weights
    assert len(grads) == len(weights) > 0
    loss = lambda: model.test_on_batch(x, y, return_dict=True)["loss"]
    for w, g in zip(weights, grads):
        err = rel_error(g, numeric_grad(loss, w))
        assert err < tol, (w.shape, err)
    return grads


def onehot_targets(rng, shape, k):
    return rnnkit.one_hot(rng.integers(0, k, size=shape), k)


# -- graph builders: (model, x, y) ---------------------------------------------------------------

def branch_and_merge(rng):
    a, b = Input((T, D), name="seq"), Input((2,), name="side")
    h = LSTM(H, return_sequences=True, seed=0)(a)
    p = GlobalAveragePooling1D()(h)
    q = Dense(H, activation="tanh", seed=1)(b)
    merged = Concatenate()([Concatenate()([p, q]), Add()([p, q]), Multiply()([p, q])])
    out = Dense(3, activation="softmax", seed=2)(merged)
    model = Model([a, b], out)
    model.compile("sgd", "categorical_crossentropy")
    x = [rng.normal(size=(B, T, D)), rng.normal(size=(B, 2))]
    return model, x, onehot_targets(rng, (B,), 3)


def shared_layers(rng):
    a, b = Input((T, D)), Input((T + 2, D))
    rnn = GRU(H, seed=3)                          # one GRU read two sequences of different lengths
    dense = Dense(H, activation="tanh", seed=4)   # and one Dense both of its results
    ha, hb = dense(rnn(a)), dense(rnn(b))
    out = Dense(1, seed=5)(Add()([ha, Multiply()([ha, hb])]))
    model = Model([a, b], out)
    model.compile("sgd", "mse")
    return model, [rng.normal(size=(B, T, D)), rng.normal(size=(B, T + 2, D))], rng.normal(size=(B, 1))


def nested_model(rng):
    inner_in = Input((T, D))
    inner = Model(inner_in, Dense(2, activation="tanh", seed=7)(SimpleRNN(H, seed=6)(inner_in)), name="encoder")
    a, b = Input((T, D)), Input((T, D))
    out = Dense(1, seed=8)(Subtract()([inner(a), inner(b)]))     # the same model applied to both inputs
    model = Model([a, b], out)
    model.compile("sgd", "mse")
    return model, [rng.normal(size=(B, T, D)), rng.normal(size=(B, T, D))], rng.normal(size=(B, 1))


def encoder_decoder(rng):
    e_in, d_in = Input((None, D)), Input((None, D + 1))
    _, h, c = LSTM(H, return_state=True, seed=9)(e_in)
    seq, _, _ = LSTM(H, return_sequences=True, return_state=True, seed=10)(d_in, initial_state=[h, c])
    out = Dense(D + 1, activation="softmax", seed=11)(seq)
    model = Model([e_in, d_in], out)
    model.compile("rmsprop", "categorical_crossentropy")
    x = [rng.normal(size=(B, T, D)), rng.normal(size=(B, T - 1, D + 1))]
    return model, x, onehot_targets(rng, (B, T - 1), D + 1)


def attention_with_masks(rng, layer):
    q_in, v_in = Input((None,), dtype="int32"), Input((None,), dtype="int32")
    big = rnnkit.initializers.RandomNormal(stddev=1.0)   # scores far from 0, so every gradient is sizeable
    q = LSTM(H, return_sequences=True, seed=12)(Embedding(7, D, big, mask_zero=True, seed=13)(q_in))
    v = LSTM(H, return_sequences=True, seed=14)(Embedding(7, D, big, mask_zero=True, seed=15)(v_in))
    context = layer([q, v])
    pooled = GlobalAveragePooling1D()(Concatenate()([q, context]))
    model = Model([q_in, v_in], Dense(2, activation="softmax", seed=16)(pooled))
    model.compile("sgd", "sparse_categorical_crossentropy")
    xq = np.array([[1, 2, 3, 0], [4, 5, 0, 0], [6, 1, 2, 3]])
    xv = np.array([[3, 2, 1, 4, 0], [1, 2, 0, 0, 0], [5, 5, 5, 5, 5]])
    return model, [xq, xv], np.array([0, 1, 1])


def two_outputs(rng):
    inp = Input((T, D))
    h = LSTM(H, seed=17)(inp)
    cls = Dense(3, activation="softmax", name="cls", seed=18)(h)
    reg = Dense(2, name="reg", seed=19)(Concatenate()([h, cls]))   # cls is an output and read further on
    model = Model(inp, [cls, reg])
    model.compile("sgd", loss=["categorical_crossentropy", "mse"], loss_weights=[1.0, 0.3])
    return model, rng.normal(size=(B, T, D)), [onehot_targets(rng, (B,), 3), rng.normal(size=(B, 2))]


def state_from_a_layer(rng):
    seq, side = Input((T, D)), Input((2,))
    h0 = Dense(H, activation="tanh", seed=20)(side)
    out = GRU(H, reset_after=False, seed=21)(seq, initial_state=h0)
    model = Model([seq, side], Dense(1, seed=22)(out))
    model.compile("sgd", "mse")
    return model, [rng.normal(size=(B, T, D)), rng.normal(size=(B, 2))], rng.normal(size=(B, 1))


def bidirectional_states(rng):
    inp = Input((T, D))
    out, hf, cf, hb, cb = Bidirectional(LSTM(H, return_state=True, seed=23))(inp)
    model = Model(inp, Dense(2, seed=24)(Concatenate()([out, hf, cb])))
    model.compile("sgd", "mse")
    return model, rng.normal(size=(B, T, D)), rng.normal(size=(B, 2))


def regularized(rng):
    """Every kind of penalty: on kernels, recurrent kernels, biases and outputs, inside a wrapper too."""
    from rnnkit.regularizers import L1, L1L2, L2

    inp = Input((T, D))
    h = LSTM(H, return_sequences=True, kernel_regularizer="l2", recurrent_regularizer=L1(0.02),
             bias_regularizer=L1L2(0.01, 0.03), activity_regularizer=L2(0.05), seed=26)(inp)
    h = Bidirectional(GRU(3, kernel_regularizer=L2(0.1), recurrent_regularizer="l1", seed=27))(h)
    out = Dense(2, kernel_regularizer=L2(0.2), bias_regularizer="l2", activity_regularizer=L1(0.1), seed=28)(h)
    model = Model(inp, out)
    model.compile("sgd", "mse")
    return model, rng.normal(size=(B, T, D)), rng.normal(size=(B, 2))


def from_logits(rng):
    inp = Input((T, D))
    logits = Dense(4, seed=29)(SimpleRNN(H, seed=30)(inp))
    model = Model(inp, logits)
    model.compile("sgd", rnnkit.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, rng.normal(size=(B, T, D)), rng.integers(0, 4, size=B)


GRAPHS = {
    "branch_and_merge": branch_and_merge,
    "shared_layers": shared_layers,
    "nested_model": nested_model,
    "encoder_decoder": encoder_decoder,
    "dot_attention": lambda rng: attention_with_masks(rng, Attention(use_scale=True)),
    "concat_attention": lambda rng: attention_with_masks(rng, Attention(score_mode="concat", use_scale=True)),
    "additive_attention": lambda rng: attention_with_masks(rng, AdditiveAttention(seed=25)),
    "two_outputs": two_outputs,
    "state_from_a_layer": state_from_a_layer,
    "bidirectional_states": bidirectional_states,
    "regularized": regularized,
    "from_logits": from_logits,
}


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("name", GRAPHS)
def test_graph_gradients_match_finite_differences(name, rng):
    model, x, y = GRAPHS[name](rng)
    grads = check_model(model, x, y)
    assert all(np.abs(g).max() > 0 for g in grads), "some weight got no gradient"


@pytest.mark.usefixtures("float64")
def test_regularization_is_in_the_loss_as_keras_computes_it(rng):
    """loss = data loss + sum of weight penalties + sum of activity penalties / batch size."""
    model, x, y = regularized(rng)
    lstm, bidir, dense = (layer for layer in model.layers[1:])
    penalty = sum(reg(layer.params[name]) for layer in (lstm, bidir, dense) for name, reg in layer.regularizers.items())
    assert set(bidir.regularizers) == {"forward/kernel", "forward/recurrent_kernel", "backward/kernel",
                                       "backward/recurrent_kernel"}
    h = lstm(x)
    out = model.predict(x, verbose=0)
    activity = lstm.activity_regularizer(h) / B + dense.activity_regularizer(out) / B
    data = float(np.mean((out - y) ** 2))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(data + penalty + activity, rel=1e-12)


@pytest.mark.usefixtures("float64")
def test_shared_layer_gradient_is_the_sum_over_its_calls(rng):
    """A Dense called on two inputs gets the sum of the two calls' gradients: check against the
    same graph with two Dense layers holding equal weights."""
    a, b = Input((D,)), Input((D,))
    shared = Dense(2, seed=0)
    model = Model([a, b], Add()([shared(a), shared(b)]))
    d1, d2 = Dense(2, seed=0), Dense(2, seed=0)
    twin = Model([a, b], Add()([d1(a), d2(b)]))
    for m in (model, twin):
        m.compile("sgd", "mse")
    x, y = [rng.normal(size=(4, D)), rng.normal(size=(4, D))], rng.normal(size=(4, 2))
    _, g_shared = model.loss_and_gradients(x, y)
    _, g_twin = twin.loss_and_gradients(x, y)
    np.testing.assert_allclose(g_shared[0], g_twin[0] + g_twin[2], rtol=1e-12)
    np.testing.assert_allclose(g_shared[1], g_twin[1] + g_twin[3], rtol=1e-12)


@pytest.mark.usefixtures("float64")
def test_output_with_no_loss_gets_no_gradient_and_its_layer_zero(rng):
    inp = Input((D,))
    used, unused = Dense(2, name="used", seed=0), Dense(2, name="unused", seed=1)
    model = Model(inp, [used(inp), unused(inp)])
    model.compile("sgd", loss={"used": "mse"})
    x, y = rng.normal(size=(4, D)), rng.normal(size=(4, 2))
    _, grads = model.loss_and_gradients(x, {"used": y})
    assert np.abs(grads[0]).max() > 0 and not grads[2].any() and not grads[3].any()
    check_model(model, x, {"used": y})


# -- structure -------------------------------------------------------------------------------------------

def test_layers_are_listed_in_keras_order():
    """Farthest from the outputs first, ties in order of discovery from the outputs (as keras.Model)."""
    a, b = Input((3,), name="a"), Input((3,), name="b")
    x1 = Dense(2, name="d1")(b)
    x3 = Dense(2, name="d3")(Dense(2, name="d2")(a))
    out = Dense(1, name="out")(Concatenate(name="cat")([x3, x1]))
    assert [layer.name for layer in Model([a, b], out).layers] == ["a", "d2", "b", "d3", "d1", "cat", "out"]
    e_in, d_in = Input((None, 5)), Input((None, 6))
    _, h, c = LSTM(4, return_state=True)(e_in)
    o, _, _ = LSTM(4, return_sequences=True, return_state=True)(d_in, initial_state=[h, c])
    model = Model([e_in, d_in], Dense(6, activation="softmax")(o))
    assert [layer.name for layer in model.layers] == ["input_layer", "input_layer_1", "lstm", "lstm_1", "dense"]
    assert model.layers[2].output[1] is h


def test_symbolic_tensors_have_keras_shapes_and_dtypes():
    x = Input((None, 5), batch_size=8, name="chars")
    assert x.shape == (8, None, 5) and x.dtype == np.float32 and x.name == "chars"
    out, h, c = LSTM(3, return_sequences=True, return_state=True)(x)
    assert out.shape == (8, None, 3) and h.shape == (8, 3) and c.shape == (8, 3)
    ids = Input((7,), dtype="int32")
    assert ids.dtype == np.int32 and Embedding(10, 4)(ids).shape == (None, 7, 4)
    with pytest.raises(TypeError, match="cannot be unpacked.*return_state=True"):
        a, b = LSTM(3)(x)
    with pytest.raises(TypeError, match="symbolic: it has a shape but no values"):
        np.asarray(x)


def test_inference_sub_models_share_the_trained_weights(rng):
    """The encoder and decoder models of Keras' seq2seq example, built from the trained model's tensors."""
    e_in, d_in = Input((None, 4)), Input((None, 5))
    encoder = LSTM(6, return_state=True, seed=0)
    _, h, c = encoder(e_in)
    decoder = LSTM(6, return_sequences=True, return_state=True, seed=1)
    seq, _, _ = decoder(d_in, initial_state=[h, c])
    dense = Dense(5, activation="softmax", seed=2)
    model = Model([e_in, d_in], dense(seq))
    model.compile("adam", "categorical_crossentropy")
    x = [rng.normal(size=(8, 6, 4)), rng.normal(size=(8, 3, 5))]
    y = onehot_targets(rng, (8, 3), 5)
    model.fit(x, y, epochs=2, verbose=0)
    encoder_model = Model(model.input[0], model.layers[2].output[1:])
    h_in, c_in = Input((6,)), Input((6,))
    seq2, h2, c2 = model.layers[3](model.input[1], initial_state=[h_in, c_in])
    decoder_model = Model([model.input[1], h_in, c_in], [model.layers[4](seq2), h2, c2])
    states = encoder_model.predict(x[0], verbose=0)
    step, _, _ = decoder_model.predict([x[1], *states], verbose=0)
    np.testing.assert_allclose(step, model.predict(x, verbose=0), rtol=1e-5, atol=1e-7)
    before = step.copy()
    model.fit(x, y, epochs=1, verbose=0)                 # training the big model moves the small ones too
    assert not np.allclose(decoder_model.predict([x[1], *encoder_model.predict(x[0], verbose=0)], verbose=0)[0],
                           before)
    assert encoder_model.count_params() == encoder.count_params()


def test_dict_inputs_and_outputs(rng):
    a, b = Input((2,), name="a"), Input((3,), name="b")
    h = Concatenate()([a, b])
    model = Model({"left": a, "right": b}, {"p": Dense(2, activation="softmax")(h), "q": Dense(1)(h)})
    assert model.input_names == ["left", "right"] and model.output_names == ["p", "q"]
    model.compile("adam", loss={"p": "sparse_categorical_crossentropy", "q": "mse"}, metrics={"p": ["accuracy"]})
    x = {"right": rng.normal(size=(6, 3)), "left": rng.normal(size=(6, 2))}
    history = model.fit(x, {"p": rng.integers(0, 2, 6), "q": rng.normal(size=(6, 1))}, epochs=1, verbose=0)
    assert {"loss", "p_loss", "q_loss", "p_accuracy"} <= set(history.history)
    out = model.predict(x, verbose=0)
    assert set(out) == {"p", "q"} and out["p"].shape == (6, 2) and out["q"].shape == (6, 1)
    direct = model(x)
    np.testing.assert_allclose(direct["q"], out["q"], rtol=1e-6)


def test_get_layer_and_layer_input_output():
    inp = Input((4,), name="x")
    dense = Dense(3, name="hidden")
    h = dense(inp)
    model = Model(inp, Dense(1, name="head")(h))
    assert model.get_layer("hidden") is dense and model.get_layer(index=0).name == "x"
    assert dense.input is inp and dense.output is h
    with pytest.raises(ValueError, match="No layer named 'nope'.*'hidden'"):
        model.get_layer("nope")
    dense(Input((4,)))
    with pytest.raises(ValueError, match="called 2 times.*ambiguous"):
        _ = dense.output


def test_model_used_in_a_sequential_and_a_sequential_in_a_model(rng):
    inner = rnnkit.Sequential([Input((T, D)), LSTM(H, seed=0), Dense(2, seed=1)], name="inner")
    inp = Input((T, D))
    outer = Model(inp, Dense(1, seed=2)(inner(inp)))
    stacked = rnnkit.Sequential([Input((T, D)), inner, Dense(1, seed=2)])
    x = rng.normal(size=(B, T, D))
    np.testing.assert_allclose(outer.predict(x, verbose=0), stacked.predict(x, verbose=0), rtol=1e-6)
    assert outer.count_params() == stacked.count_params() == inner.count_params() + 3


def test_masks_flow_from_embedding_through_the_graph(rng):
    """Embedding(mask_zero) -> LSTM(return_sequences) -> Dense: padded steps leave the loss, and a layer
    called with an initial state gets no mask by itself (Keras 3 passes it only to one-tensor calls)."""
    ids = Input((None,), dtype="int32")
    emb = Embedding(6, 3, mask_zero=True, seed=0)(ids)
    seq = LSTM(4, return_sequences=True, seed=1)(emb)
    model = Model(ids, Dense(2, seed=2)(seq))
    model.compile("sgd", "mse")
    x = np.array([[1, 2, 0, 0], [3, 4, 5, 0]])
    y = rng.normal(size=(2, 4, 2))
    y_changed = y.copy()
    y_changed[x == 0] += 10.0                               # targets at padded steps do not count
    assert model.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y_changed, verbose=0), abs=0)
    run = model._run
    assert np.array_equal(run.masks[seq.id], x != 0)


# -- errors -------------------------------------------------------------------------------------------------

def test_wrong_rank_or_size_fails_at_the_call_naming_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Layer 'lstm' \(LSTM\) expects 3-D input.*\(None, 5\)"):
        LSTM(3)(Input((5,)))
    dense = Dense(2, name="proj")
    dense(Input((4,)))
    with pytest.raises(ValueError, match=r"Layer 'proj' \(Dense\) was built for inputs of shape \(None, 4\).*"
                                         r"\(None, 6\)"):
        dense(Input((6,)))
    with pytest.raises(ValueError, match="initial state"):
        LSTM(3)(Input((5, 2)), initial_state=[Input((3,))])


def test_disconnected_graph_and_missing_input_name_the_tensor():
    a, b = Input((3,), name="a"), Input((3,), name="b")
    out = Dense(1)(Add()([a, b]))
    with pytest.raises(ValueError, match=r"needs input 'b'.*not among the model's inputs \[a\]"):
        Model(a, out)
    with pytest.raises(TypeError, match="must be symbolic tensors.*ndarray"):
        Model(a, np.zeros((2, 1)))
    with pytest.raises(ValueError, match="The name 'same' is used by 2 different layers"):
        Model(a, Dense(1, name="same")(Dense(2, name="same")(a)))


def test_fit_with_wrong_number_or_names_of_arrays_says_what_was_expected(rng):
    a, b = Input((3,), name="a"), Input((2,), name="b")
    model = Model([a, b], Dense(1, name="out")(Concatenate()([a, b])))
    model.compile("sgd", "mse")
    y = np.zeros((4, 1))
    with pytest.raises(ValueError, match=r"2 inputs \(a, b\), so x must be a list of 2 arrays.*got one array"):
        model.fit(np.zeros((4, 3)), y, verbose=0)
    with pytest.raises(ValueError, match=r"dict with keys \['a', 'c'\].*named \['a', 'b'\]; unknown: \['c'\]"):
        model.fit({"a": np.zeros((4, 3)), "c": np.zeros((4, 2))}, y, verbose=0)
    with pytest.raises(ValueError, match=r"input 'b' expects input of shape \(None, 2\)"):
        model.predict([np.zeros((4, 3)), np.zeros((4, 5))], verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        model.predict([np.zeros((4, 3)), np.zeros((5, 2))], verbose=0)


def test_predict_shows_a_progress_bar_by_default_as_keras(capsys, rng):
    inp = Input((D,))
    model = Model(inp, Dense(2)(inp))
    model.predict(rng.normal(size=(70, D)))
    assert "3/3 [==============================]" in capsys.readouterr().out
    model.predict(rng.normal(size=(70, D)), verbose=0)
    assert capsys.readouterr().out == ""


def test_fit_before_compile_is_a_value_error():
    inp = Input((3,))
    model = Model(inp, Dense(1)(inp))
    with pytest.raises(ValueError, match=r"You must call compile\(\) before using the model"):
        model.fit(np.zeros((2, 3)), np.zeros((2, 1)), verbose=0)


def test_model_without_weights_trains_without_error_and_warns():
    inp = Input((4,))
    model = Model(inp, rnnkit.layers.RepeatVector(3)(inp))
    model.compile("adam", "mse")
    x, y = np.ones((4, 4)), np.zeros((4, 3, 4))
    with pytest.warns(UserWarning, match="no trainable weights"):
        history = model.fit(x, y, epochs=2, verbose=0)
    assert history.history["loss"] == [1.0, 1.0]


def test_diagnostics_see_the_recurrent_layers_of_a_graph(rng):
    """gradient_flow and the NaN origin search work on functional models: the encoder's gradient includes
    what comes back through the state it gives the decoder, and a NaN is traced to the layer that made it."""
    from rnnkit.diagnostics import find_nonfinite_origin, gradient_flow

    a, b = Input((T, D)), Input((T, D))
    h = LSTM(H, name="encoder", seed=0)(a)
    out = Dense(1, seed=2)(GRU(H, name="decoder", seed=1)(b, initial_state=h))
    model = Model([a, b], out)
    model.compile("sgd", "mse")
    x, y = [rng.normal(size=(B, T, D)), rng.normal(size=(B, T, D))], rng.normal(size=(B, 1))
    flow = gradient_flow(model, x, y)
    assert set(flow.layers) == {"encoder", "decoder"}
    assert flow.layers["encoder"].norms[-1] > 0            # the decoder's gradient reached the encoder
    assert find_nonfinite_origin(model, x, y) is None
    model.get_layer("decoder").params["kernel"][0, 0] = np.inf
    report = find_nonfinite_origin(model, x, y)
    assert report.layer == "decoder" and report.step == 0


def test_clone_model_rebuilds_the_graph_with_new_weights(rng):
    model, x, y = shared_layers(rng)
    clone = rnnkit.models.clone_model(model)
    assert [type(a) for a in clone.layers] == [type(a) for a in model.layers]
    assert [a.name for a in clone.layers] == [a.name for a in model.layers]
    assert not any(a is b for a, b in zip(clone.layers, model.layers))
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
