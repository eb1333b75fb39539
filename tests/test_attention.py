"""``Attention`` and ``AdditiveAttention`` against the three references.

* central finite differences in float64: ``L = sum(w_y * y) (+ sum(w_s * scores))`` must give the
  gradients of every input and every weight to a relative error below 1e-6, with masks, the causal
  mask, returned scores and dropout (the masks pinned by resetting the layer's ``_rng`` before
  every forward, as in ``test_gradients_gated.py``);
* Keras 3 (PyTorch backend) in float32, on the same arrays and weights: outputs, scores and the
  output mask;
* the same attention written in PyTorch, float64: outputs and every gradient by autograd.

Rows whose keys are all masked are left out of the finite-difference checks: Keras (and so
rnnkit) subtracts 1e9 from their scores, which rounds them to ~1e-7 in float64, below what a
1e-6 step can resolve. Their forward values are checked against Keras.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

from gradcheck import numeric_grad, rel_error
from rnnkit.layers import LAYER_CLASSES, AdditiveAttention, Attention, Input

TOL = 1e-6          # finite differences
TORCH_TOL = 1e-8    # PyTorch, float64
KERAS_RTOL = 1e-5   # Keras, float32

B, TQ, TV, D, DV = 2, 3, 4, 3, 2

#: name -> (rnnkit factory, Keras factory); both take dropout= and seed=
CONFIGS = {
    "dot": (lambda **kw: Attention(**kw), lambda **kw: keras.layers.Attention(**kw)),
    "dot_scaled": (lambda **kw: Attention(use_scale=True, **kw),
                   lambda **kw: keras.layers.Attention(use_scale=True, **kw)),
    "concat": (lambda **kw: Attention(score_mode="concat", **kw),
               lambda **kw: keras.layers.Attention(score_mode="concat", **kw)),
    "concat_scaled": (lambda **kw: Attention(use_scale=True, score_mode="concat", **kw),
                      lambda **kw: keras.layers.Attention(use_scale=True, score_mode="concat", **kw)),
    "additive": (lambda **kw: AdditiveAttention(**kw), lambda **kw: keras.layers.AdditiveAttention(**kw)),
    "additive_unscaled": (lambda **kw: AdditiveAttention(use_scale=False, **kw),
                          lambda **kw: keras.layers.AdditiveAttention(use_scale=False, **kw)),
}

#: (B, Tq) query masks and (B, Tv) value masks; True marks a real step. With the causal mask every
#: query row still sees key 0, which both value masks keep.
Q_MASK = np.array([[1, 0, 1],
                   [1, 1, 0]], dtype=bool)
V_MASK = np.array([[1, 1, 0, 1],
                   [1, 0, 1, 0]], dtype=bool)
#: a value mask whose second sample has no real key at all (Keras' bias then cancels in the softmax)
V_MASK_EMPTY_ROW = np.array([[1, 0, 1, 1],
                             [0, 0, 0, 0]], dtype=bool)


# -- helpers ------------------------------------------------------------------------------------

def make(config, **kw):
    return CONFIGS[config][0](**kw)


def inputs_for(rng, with_key, dtype=np.float64):
    """[query, value] or [query, value, key]; a separate key lets the value have DV != D features."""
    q = rng.normal(size=(B, TQ, D))
    if with_key:
        return [a.astype(dtype) for a in (q, rng.normal(size=(B, TV, DV)), rng.normal(size=(B, TV, D)))]
    return [a.astype(dtype) for a in (q, rng.normal(size=(B, TV, D)))]


def built(layer, inputs, rng):
    """Build on the inputs' shapes and move every weight off its initial value (ones for scalars)."""
    layer.build([x.shape[1:] for x in inputs])
    for p in layer.params.values():
        p[...] = rng.uniform(0.5, 1.5, size=p.shape)
    return layer


def as_list(out):
    return out if isinstance(out, list) else [out]


def check_grads(layer, inputs, rng, training=False, **call):
    """Finite differences for every input and weight; returns the largest relative error."""
    def run():
        if training:
            layer._rng = np.random.default_rng(7)
        return as_list(layer.forward(inputs, training=training, **call))

    ws = [rng.normal(size=o.shape) for o in run()]
    loss = lambda: float(sum((w * o).sum() for w, o in zip(ws, run())))
    run()
    d_inputs = layer.backward(ws if call.get("return_attention_scores") else ws[0])
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert isinstance(d_inputs, list) and len(d_inputs) == len(inputs)
    worst = 0.0
    for i, (x, dx) in enumerate(zip(inputs, d_inputs)):
        assert dx.shape == x.shape
        err = rel_error(dx, numeric_grad(loss, x))
        assert err < TOL, f"input {i}: {err:.3g}"
        worst = max(worst, err)
    assert list(grads) == list(layer.params)
    for name, p in layer.params.items():
        assert grads[name].shape == p.shape, name
        err = rel_error(grads[name], numeric_grad(loss, p))
        assert err < TOL, f"{name}: {err:.3g}"
        worst = max(worst, err)
    return worst


# -- finite differences --------------------------------------------------------------------------

@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("with_key", [False, True])
def test_gradients_plain(config, with_key, rng):
    inputs = inputs_for(rng, with_key)
    check_grads(built(make(config), inputs, rng), inputs, rng)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("masks", ["query", "value", "both"])
@pytest.mark.parametrize("causal", [False, True])
def test_gradients_masked(config, masks, causal, rng):
    inputs = inputs_for(rng, with_key=True)
    mask = [Q_MASK if masks != "value" else None, V_MASK if masks != "query" else None]
    check_grads(built(make(config), inputs, rng), inputs, rng, mask=mask, use_causal_mask=causal)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("config", list(CONFIGS))
def test_gradients_with_scores(config, rng):
    """A loss on both outputs: gradients flow back from the returned attention distribution too."""
    inputs = inputs_for(rng, with_key=False)
    check_grads(built(make(config), inputs, rng), inputs, rng, mask=[Q_MASK, V_MASK], use_causal_mask=True,
                return_attention_scores=True)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("return_attention_scores", [False, True])
def test_gradients_dropout_in_training(config, return_attention_scores, rng):
    inputs = inputs_for(rng, with_key=True)
    layer = built(make(config, dropout=0.4), inputs, rng)
    check_grads(layer, inputs, rng, training=True, mask=[None, V_MASK],
                return_attention_scores=return_attention_scores)
    # the masks were really in use: some weights dropped, the rest scaled by 1 / (1 - rate)
    layer._rng = np.random.default_rng(7)
    out, w = layer.forward(inputs, training=True, mask=[None, V_MASK], return_attention_scores=True)
    a = layer.forward(inputs, mask=[None, V_MASK], return_attention_scores=True)[1]
    dropped = (w == 0) & (a > 0)
    assert dropped.any() and (~dropped & (a > 0)).any()
    np.testing.assert_allclose(w[~dropped], a[~dropped] / 0.6, rtol=1e-12)
    np.testing.assert_allclose(out, w @ inputs[1], rtol=1e-12)


@pytest.mark.usefixtures("float64")
def test_gradient_of_scores_only(rng):
    """``[None, d_scores]`` and ``[zeros, d_scores]`` are the same backward."""
    inputs = inputs_for(rng, with_key=True)
    layer = built(make("additive"), inputs, rng)
    layer.forward(inputs, return_attention_scores=True)
    ds = rng.normal(size=(B, TQ, TV))
    with_none = layer.backward([None, ds])
    with_zeros = layer.backward([np.zeros((B, TQ, DV)), ds])
    for a, b in zip(with_none, with_zeros):
        np.testing.assert_array_equal(a, b)
    assert np.all(with_none[1] == 0.0), "the value only reaches the result"


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("config", ["dot", "additive"])
def test_masked_keys_and_query_rows_get_no_gradient(config, rng):
    inputs = inputs_for(rng, with_key=True)
    layer = built(make(config), inputs, rng)
    layer.forward(inputs, mask=[Q_MASK, V_MASK])
    dq, dv, dk = layer.backward(rng.normal(size=(B, TQ, DV)))
    assert np.all(dv[~V_MASK] == 0.0) and np.all(dk[~V_MASK] == 0.0) and np.all(dq[~Q_MASK] == 0.0)
    assert np.all(np.abs(dv[V_MASK]).sum(axis=-1) > 0) and np.all(np.abs(dq[Q_MASK]).sum(axis=-1) > 0)


@pytest.mark.usefixtures("float64")
def test_call_state_restores_an_earlier_call(rng):
    """A shared layer: the caller saves each call's state and restores it for that call's backward."""
    layer = built(make("concat_scaled"), inputs_for(rng, with_key=False), rng)
    first, second = inputs_for(rng, with_key=False), inputs_for(rng, with_key=False)
    dy = rng.normal(size=(B, TQ, D))
    layer.forward(first, mask=[None, V_MASK])
    expected = layer.backward(dy), {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(first, mask=[None, V_MASK])
    state = layer.get_call_state()
    layer.forward(second, use_causal_mask=True, return_attention_scores=True)
    layer.set_call_state(state)
    got = layer.backward(dy)
    for a, b in zip(got, expected[0]):
        np.testing.assert_array_equal(a, b)
    for k in layer.grads:
        np.testing.assert_array_equal(layer.grads[k], expected[1][k])


# -- Keras 3 ---------------------------------------------------------------------------------------

def keras_pair(config, inputs, rng, **kw):
    """An rnnkit and a Keras layer built on ``inputs`` (float32) with the same random weights."""
    ours = make(config, **kw)
    theirs = CONFIGS[config][1](**kw)
    theirs(inputs)
    built(ours, inputs, rng)
    assert [w.name for w in theirs.weights] == list(ours.params)
    theirs.set_weights(ours.get_weights())
    return ours, theirs


def assert_close_to_keras(ours, theirs, what):
    """rtol 1e-5 with an atol of one float32 rounding of an O(1) term, for results that cancel to near 0."""
    theirs = keras.ops.convert_to_numpy(theirs)
    assert ours.shape == theirs.shape and ours.dtype == np.float32, what
    np.testing.assert_allclose(ours, theirs, rtol=KERAS_RTOL, atol=1e-7, err_msg=what)


#: name -> (a separate key, [query_mask, value_mask], use_causal_mask)
KERAS_CASES = {
    "plain": (False, None, False),
    "query_mask": (True, [Q_MASK, None], False),
    "value_mask_causal": (False, [None, V_MASK], True),
    "both_masks": (True, [Q_MASK, V_MASK], False),
    "empty_value_row_causal": (True, [Q_MASK, V_MASK_EMPTY_ROW], True),
}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_keras_parity(config, case, rng):
    with_key, mask, causal = KERAS_CASES[case]
    inputs = inputs_for(rng, with_key, np.float32)
    ours, theirs = keras_pair(config, inputs, rng)
    call = dict(mask=mask, use_causal_mask=causal, return_attention_scores=True)
    out, scores = ours(inputs, **call)
    k_out, k_scores = theirs(inputs, **call)
    assert_close_to_keras(out, k_out, "result")
    assert_close_to_keras(scores, k_scores, "scores")
    assert_close_to_keras(ours(inputs, mask=mask, use_causal_mask=causal), k_out, "result without scores")
    k_mask = theirs.compute_mask(inputs, mask)
    our_mask = ours.compute_mask(inputs, mask)
    if k_mask is None:
        assert our_mask is None
    else:
        np.testing.assert_array_equal(our_mask, keras.ops.convert_to_numpy(k_mask))


@pytest.mark.parametrize("config", ["dot_scaled", "concat_scaled", "additive"])
def test_keras_parity_dropout_layer_in_inference(config, rng):
    """With ``dropout`` set, inference (and training=False) is the plain attention, as in Keras."""
    inputs = inputs_for(rng, True, np.float32)
    ours, theirs = keras_pair(config, inputs, rng, dropout=0.5, seed=3)
    assert_close_to_keras(ours(inputs, training=False), theirs(inputs, training=False), "result")


@pytest.mark.parametrize("config", list(CONFIGS))
def test_weights_as_keras_creates_them(config):
    """Names, shapes, order and initial values (Keras' ``ones``; glorot-uniform for the additive scale)."""
    ours, theirs = make(config, seed=0), CONFIGS[config][1]()
    shapes = [(None, TQ, D), (None, TV, D)]
    ours.build([s[1:] for s in shapes])
    theirs.build(shapes)
    assert list(ours.params) == [w.name for w in theirs.weights]
    for w, p in zip(theirs.weights, ours.get_weights()):
        assert p.shape == tuple(w.shape) and p.dtype == np.float32
        if config == "additive":
            limit = np.sqrt(6.0 / (D + D))                    # fan_in = fan_out = D for a vector
            assert np.all(np.abs(p) <= limit) and np.all(np.abs(keras.ops.convert_to_numpy(w)) <= limit)
            assert len(np.unique(p)) == D
        else:
            np.testing.assert_array_equal(p, keras.ops.convert_to_numpy(w))


# -- PyTorch, float64 ------------------------------------------------------------------------------

def torch_attention(kind, q, v, k, scale, c, q_mask, v_mask, causal):
    """The same attention written with torch operations: ``(result, scores)``."""
    if kind == "dot":
        s = q @ k.transpose(-1, -2)
        if scale is not None:
            s = s * scale
    elif kind == "concat":
        u = q[:, :, None, :] + k[:, None, :, :]
        s = c * torch.tanh(u if scale is None else scale * u).sum(-1)
    else:
        t = torch.tanh(q[:, :, None, :] + k[:, None, :, :])
        s = (t if scale is None else t * scale).sum(-1)
    keep = torch.ones(s.shape, dtype=torch.bool)
    if v_mask is not None:
        keep = keep & torch.as_tensor(v_mask)[:, None, :]
    if causal:
        keep = keep & torch.tril(torch.ones(s.shape[-2:], dtype=torch.bool))
    a = torch.softmax(torch.where(keep, s, s - 1e9), dim=-1)
    y = a @ v
    if q_mask is not None:
        y = torch.where(torch.as_tensor(q_mask)[..., None], y, torch.zeros_like(y))
    return y, a


#: config -> (score function, use_causal_mask)
TORCH_CASES = {
    "dot": ("dot", False), "dot_scaled": ("dot", True), "concat": ("concat", False),
    "concat_scaled": ("concat", True), "additive": ("additive", False), "additive_unscaled": ("additive", True),
}


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("config", list(TORCH_CASES))
@pytest.mark.parametrize("masks", [False, True])
@pytest.mark.parametrize("with_key", [False, True])
def test_torch_parity(config, masks, with_key, rng):
    kind, causal = TORCH_CASES[config]
    inputs = inputs_for(rng, with_key)
    layer = built(make(config), inputs, rng)
    q_mask, v_mask = (Q_MASK, V_MASK) if masks else (None, None)
    out, scores = layer.forward(inputs, mask=[q_mask, v_mask], use_causal_mask=causal,
                                return_attention_scores=True)
    w_out, w_scores = rng.normal(size=out.shape), rng.normal(size=scores.shape)
    d_inputs = layer.backward([w_out, w_scores])

    t_inputs = [torch.tensor(x, requires_grad=True) for x in inputs]
    t_params = {k: torch.tensor(p, requires_grad=True) for k, p in layer.params.items()}
    scale = t_params.get("scale")
    c = t_params.get("concat_score_weight")
    t_q, t_v = t_inputs[:2]
    t_k = t_inputs[2] if with_key else t_v
    t_out, t_scores = torch_attention(kind, t_q, t_v, t_k, scale, c, q_mask, v_mask, causal)
    ((t_out * torch.tensor(w_out)).sum() + (t_scores * torch.tensor(w_scores)).sum()).backward()

    assert rel_error(out, t_out.detach().numpy()) < TORCH_TOL
    assert rel_error(scores, t_scores.detach().numpy()) < TORCH_TOL
    for i, (d, t) in enumerate(zip(d_inputs, t_inputs)):
        assert rel_error(d, t.grad.numpy()) < TORCH_TOL, f"input {i}"
    assert list(layer.grads) == list(t_params)
    for name, t in t_params.items():
        assert rel_error(layer.grads[name], t.grad.numpy()) < TORCH_TOL, name


# -- shapes, config, registration ------------------------------------------------------------------

def test_output_shapes():
    layer = Attention()
    assert layer.compute_output_shape([(3, 4), (5, 2), (5, 4)]) == (3, 2)
    assert layer.output_shape_for_call([(3, 4), (5, 2), (5, 4)]) == (3, 2)
    assert layer.output_shape_for_call([(None, 4), (None, 2), (None, 4)], return_attention_scores=True) == \
        [(None, 2), (None, None)]
    assert layer.output_shape_for_call([(3, 4), (5, 4)], return_attention_scores=True,
                                       use_causal_mask=True) == [(3, 4), (3, 5)]


def test_symbolic_call_shapes():
    q, v = Input(shape=(None, 4)), Input(shape=(6, 4))
    out, scores = AdditiveAttention()([q, v], return_attention_scores=True)
    assert out.shape == (None, None, 4) and scores.shape == (None, None, 6)
    assert Attention()([q, v]).shape == (None, None, 4)


@pytest.mark.parametrize("layer", [Attention(use_scale=True, score_mode="concat", dropout=0.25, seed=4,
                                             name="att"), AdditiveAttention(use_scale=False, dropout=0.1)])
def test_get_config_round_trip(layer):
    config = layer.get_config()
    assert LAYER_CLASSES[type(layer).__name__] is type(layer)
    again = type(layer)(**config)
    assert again.get_config() == config
    expected = {"use_scale", "dropout", "seed", "name"} | ({"score_mode"} if type(layer) is Attention else set())
    assert set(config) == expected


def test_mask_passes_to_output_as_query_mask(rng):
    layer = Attention()
    inputs = inputs_for(rng, False, np.float32)
    assert layer.compute_mask(inputs, None) is None
    assert layer.compute_mask(inputs, [None, V_MASK]) is None
    np.testing.assert_array_equal(layer.compute_mask(inputs, [Q_MASK, V_MASK, None]), Q_MASK)


# -- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("shapes,match", [
    ((3, 4), r"'att' \(Attention\) must be called on a list of inputs \[query, value\]"),
    ([(3, 4)], r"takes a list of 2 or 3 inputs .*got 1"),
    ([(3, 4)] * 4, r"takes a list of 2 or 3 inputs .*got 4"),
    ([(3, 4), (5,)], r"expects a value of rank 3 .*\(None, 5\)"),
    ([(3, 4, 1), (5, 4)], r"expects a query of rank 3"),
    ([(3, 4), (5, 3)], r"query and the value \(the key when none is given\) need the same number of features.*"
                       r"\(None, 3, 4\).*\(None, 5, 3\)"),
    ([(3, 4), (5, 2), (5, 3)], r"query and the key need the same number of features"),
    ([(3, 4), (5, 2), (6, 4)], r"value and the key need the same number of timesteps.*\(None, 5, 2\).*"
                               r"\(None, 6, 4\)"),
])
def test_bad_input_shapes(shapes, match):
    with pytest.raises(ValueError, match=match):
        Attention(name="att").build(shapes)


def test_bad_arguments_and_calls(rng):
    with pytest.raises(ValueError, match=r"score_mode.*got score_mode='add'"):
        Attention(score_mode="add")
    with pytest.raises(ValueError, match=r"AdditiveAttention dropout must be a number in \[0, 1\), got 1.0"):
        AdditiveAttention(dropout=1.0)
    inputs = inputs_for(rng, False, np.float32)
    layer = Attention(name="att")
    with pytest.raises(ValueError, match=r"'att' \(Attention\) must be called on a list of inputs"):
        layer(inputs[0])
    layer(inputs)
    with pytest.raises(ValueError, match=r"mask=\[query_mask, value_mask\] \(a list.*got a ndarray"):
        layer(inputs, mask=V_MASK)
    with pytest.raises(ValueError, match=r"mask list of 2 or 3 entries.*got 1"):
        layer(inputs, mask=[Q_MASK])
    with pytest.raises(ValueError, match=r"the value mask must have shape \(2, 4\).*got \(2, 3\)"):
        layer(inputs, mask=[None, Q_MASK])
    with pytest.raises(ValueError, match=r"the same batch size"):
        layer([inputs[0], inputs[1][:1]])
    additive = AdditiveAttention(name="add")
    additive(inputs)
    with pytest.raises(ValueError, match=r"'add' \(AdditiveAttention\) was built for inputs of shape "
                                         r"\[\(None, 3, 3\), \(None, 4, 3\)\] and cannot be called"):
        additive([np.zeros((B, TQ, 5)), np.zeros((B, TV, 5))])
    layer(inputs, return_attention_scores=True)
    with pytest.raises(ValueError, match=r"returned \[result, scores\], so backward takes \[d_result, d_scores\]"):
        layer.backward(np.zeros((B, TQ, D)))
