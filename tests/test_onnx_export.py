"""``rnnkit.export.to_onnx``: the written file, run in onnxruntime, gives rnnkit's predictions.

Every model gets random weights *and biases* (the initializers' zero biases would hide a wrong bias
layout), is written once and run at several batch sizes and sequence lengths from that one file.
float32 models match within 1e-5; float64 models (written in float64, their recurrences as a ``Scan``)
within 1e-10, and their LSTM against PyTorch's too. An Embedding's input keeps the ``Input``'s integer type.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rnnkit import Input, Model  # noqa: E402
from rnnkit.export import to_onnx  # noqa: E402
from rnnkit.layers import (  # noqa: E402
    GRU,
    LSTM,
    Activation,
    Add,
    Bidirectional,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Masking,
    Multiply,
    SimpleRNN,
    TimeDistributed,
)
from rnnkit.models import Sequential  # noqa: E402

D, V = 3, 9
SHAPES = [(1, 1), (2, 5), (4, 7)]            # (batch, time): the same file runs all of them


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.5, size=w.shape) for w in model.get_weights()])


def _session(model, tmp_path):
    path = to_onnx(model, tmp_path / "model.onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _ids(rng, b, t, lengths=None):
    """Indices in [1, V), zero-padded at the end to ``lengths`` (post-padding)."""
    x = rng.integers(1, V, size=(b, t)).astype(np.int64)
    if lengths is not None:
        for row, n in enumerate(lengths):
            x[row, n:] = 0
    return x


def _check(model, sess, feeds_list, atol=1e-5):
    names = [i.name for i in sess.get_inputs()]
    for feeds in feeds_list:
        expected = model.predict(feeds if len(feeds) > 1 else feeds[0], verbose=0)
        expected = expected if isinstance(expected, list) else [expected]
        got = sess.run(None, dict(zip(names, feeds)))
        assert len(got) == len(expected)
        for e, g in zip(expected, got):
            assert g.shape == e.shape, (g.shape, e.shape)
            np.testing.assert_allclose(g, e, atol=atol, rtol=0)


def _float_feeds(rng, n_inputs=1):
    return [[rng.normal(size=(b, t, D)).astype(np.float32) for _ in range(n_inputs)] for b, t in SHAPES]


RECURRENT = [
    ("simple_rnn", lambda **kw: SimpleRNN(4, **kw)),
    ("simple_rnn_relu", lambda **kw: SimpleRNN(4, activation="relu", **kw)),
    ("lstm", lambda **kw: LSTM(4, **kw)),
    ("gru_reset_after", lambda **kw: GRU(4, **kw)),
    ("gru_reset_before", lambda **kw: GRU(4, reset_after=False, **kw)),
    ("gru_no_bias", lambda **kw: GRU(4, use_bias=False, **kw)),
]


@pytest.mark.parametrize("kind", [k for k, _ in RECURRENT])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_recurrent_sequential(tmp_path, kind, return_sequences, go_backwards):
    make = dict(RECURRENT)[kind]
    model = Sequential([Input((None, D)), make(return_sequences=return_sequences, go_backwards=go_backwards),
                        Dense(2, activation="softmax")])
    _randomize(model)
    _check(model, _session(model, tmp_path), _float_feeds(np.random.default_rng(1)))


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru_reset_after", "gru_reset_before"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional(tmp_path, kind, merge_mode, return_sequences):
    make = dict(RECURRENT)[kind]
    model = Sequential([Input((None, D)), Bidirectional(make(return_sequences=return_sequences),
                                                        merge_mode=merge_mode), Dense(3)])
    _randomize(model)
    _check(model, _session(model, tmp_path), _float_feeds(np.random.default_rng(2)))


@pytest.mark.parametrize("kind", ["lstm", "gru_reset_after", "simple_rnn"])
def test_return_state_functional(tmp_path, kind):
    make = dict(RECURRENT)[kind]
    x = Input((None, D))
    outs = make(return_sequences=True, return_state=True)(x)
    bi = Bidirectional(make(return_state=True))(outs[0])
    model = Model(x, [*outs, *bi])
    _randomize(model)
    _check(model, _session(model, tmp_path), _float_feeds(np.random.default_rng(3)))


def test_stacked_and_merges_functional(tmp_path):
    a, b = Input((None, D)), Input((None, D))
    ha = LSTM(4, return_sequences=True)(a)
    hb = GRU(4, return_sequences=True, go_backwards=True)(b)
    s = Add()([ha, hb])
    m = Multiply()([ha, hb])
    c = Concatenate()([s, m, Dropout(0.5)(ha)])
    y = SimpleRNN(5)(Activation("tanh")(Dense(6, activation="relu")(c)))
    model = Model([a, b], Dense(2, activation="sigmoid")(y))
    _randomize(model)
    _check(model, _session(model, tmp_path), _float_feeds(np.random.default_rng(4), n_inputs=2))


@pytest.mark.parametrize("kind", [k for k, _ in RECURRENT])
@pytest.mark.parametrize("options", [dict(), dict(return_sequences=True), dict(go_backwards=True),
                                     dict(return_sequences=True, go_backwards=True),
                                     dict(return_sequences=True, zero_output_for_mask=True)])
def test_embedding_mask_as_sequence_lens(tmp_path, kind, options):
    make = dict(RECURRENT)[kind]
    model = Sequential([Input((None,), dtype="int64"), Embedding(V, D, mask_zero=True), make(**options),
                        TimeDistributed(Dense(2)) if options.get("return_sequences") else Dense(2)])
    _randomize(model)
    sess = _session(model, tmp_path)
    rng = np.random.default_rng(5)
    _check(model, sess, [[_ids(rng, 1, 1)], [_ids(rng, 3, 6, lengths=[6, 2, 4])],
                         [_ids(rng, 4, 9, lengths=[1, 9, 3, 5])]])


@pytest.mark.parametrize("kind", ["lstm", "gru_reset_after"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_embedding_mask_bidirectional_functional(tmp_path, kind, return_sequences):
    make = dict(RECURRENT)[kind]
    ids = Input((None,), dtype="int64")
    e = Embedding(V, D, mask_zero=True)(ids)
    h = Bidirectional(make(return_sequences=True))(e)
    y = Bidirectional(make(return_sequences=return_sequences, return_state=True))(Dense(4)(h))
    model = Model(ids, y)
    _randomize(model)
    sess = _session(model, tmp_path)
    rng = np.random.default_rng(6)
    _check(model, sess, [[_ids(rng, 2, 4, lengths=[4, 1])], [_ids(rng, 3, 8, lengths=[8, 3, 5])]])


def test_embedding_unmasked_and_returns_path(tmp_path):
    model = Sequential([Input((None,), dtype="int64"), Embedding(V, D), GRU(3), Activation("softmax")])
    _randomize(model)
    path = to_onnx(model, str(tmp_path / "m.onnx"), opset=14)
    assert path == tmp_path / "m.onnx" and path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]        # no temporary file left behind
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    _check(model, sess, [[_ids(rng, 2, 3)], [_ids(rng, 5, 6)]])
    assert onnx.load(str(path)).opset_import[0].version == 14


def test_matches_pytorch_lstm_reference(tmp_path):
    """The exported LSTM against PyTorch with the same weights (a reference independent of rnnkit's code)."""
    torch = pytest.importorskip("torch")
    model = Sequential([Input((None, D)), LSTM(4, return_sequences=True)])
    _randomize(model)
    W, U, b = model.get_weights()
    ref = torch.nn.LSTM(D, 4, batch_first=True)
    order = np.concatenate([np.arange(k * 4, (k + 1) * 4) for k in (0, 1, 2, 3)])   # i, f, g, o in both
    with torch.no_grad():
        ref.weight_ih_l0.copy_(torch.tensor(W[:, order].T))
        ref.weight_hh_l0.copy_(torch.tensor(U[:, order].T))
        ref.bias_ih_l0.copy_(torch.tensor(b[order]))
        ref.bias_hh_l0.zero_()
    sess = _session(model, tmp_path)
    x = np.random.default_rng(8).normal(size=(3, 6, D)).astype(np.float32)
    expected = ref(torch.tensor(x))[0].detach().numpy()
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], expected, atol=1e-5, rtol=0)


# -- errors ----------------------------------------------------------------------------------------------
def test_unsupported_layers_are_all_named(tmp_path):
    model = Sequential([Input((None, D)), Masking(), LSTM(4, recurrent_activation="linear", return_sequences=True),
                        SimpleRNN(3, activation="softmax")])
    with pytest.raises(ValueError) as err:
        to_onnx(model, tmp_path / "m.onnx")
    text = str(err.value)
    assert text.count("layer '") == 3
    assert "Masking" in text and "recurrent_activation='linear'" in text and "activation='softmax'" in text
    assert not (tmp_path / "m.onnx").exists() and not list(tmp_path.iterdir())


def test_time_distributed_recurrent_wrapper_and_nested_model_are_refused(tmp_path):
    inner = Sequential([Input((None, D)), Dense(2)])
    x = Input((None, D))
    model = Model(x, TimeDistributed(Embedding(V, 2))(inner(x)))
    with pytest.raises(ValueError) as err:
        to_onnx(model, tmp_path / "m.onnx")
    assert "nested model" in str(err.value) and "wraps Embedding" in str(err.value)


def test_stateful_is_refused(tmp_path):
    model = Sequential([Input((None, D), batch_size=2), GRU(3, stateful=True)])
    with pytest.raises(ValueError, match="stateful"):
        to_onnx(model, tmp_path / "m.onnx")


def test_masked_multiply_is_refused(tmp_path):
    ids = Input((None,), dtype="int64")
    e = Embedding(V, D, mask_zero=True)(ids)
    model = Model(ids, LSTM(2)(Multiply()([e, e])))
    with pytest.raises(ValueError, match="Multiply"):
        to_onnx(model, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


def test_bad_arguments(tmp_path):
    model = Sequential([Input((None, D)), SimpleRNN(2)])
    with pytest.raises(ValueError, match="opset"):
        to_onnx(model, tmp_path / "m.onnx", opset=9)
    with pytest.raises(TypeError, match="Sequential or Model"):
        to_onnx(SimpleRNN(2), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="path"):
        to_onnx(model, 3)
    assert not list(tmp_path.iterdir())


def test_unbuilt_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        to_onnx(Sequential([LSTM(2)]), tmp_path / "m.onnx")


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)          # `import onnx` now raises ImportError
    model = Sequential([Input((None, D)), SimpleRNN(2)])
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[onnx\]'"):
        to_onnx(model, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())


# -- input dtypes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int32", "int64", "int16", "uint8"])
@pytest.mark.parametrize("mask_zero", [False, True])
def test_embedding_input_keeps_the_integer_dtype_of_the_rnnkit_input(tmp_path, dtype, mask_zero):
    model = Sequential([Input((None,), dtype=dtype), Embedding(V, D, mask_zero=mask_zero), LSTM(3)])
    _randomize(model)
    sess = _session(model, tmp_path)
    assert sess.get_inputs()[0].type == f"tensor({dtype})"
    rng = np.random.default_rng(9)
    _check(model, sess, [[_ids(rng, 2, 5, lengths=[5, 2]).astype(dtype)], [_ids(rng, 3, 1).astype(dtype)]])


def test_a_float_input_feeding_an_embedding_is_declared_int64(tmp_path):
    model = Sequential([Input((None,)), Embedding(V, D), GRU(2)])
    _randomize(model)
    sess = _session(model, tmp_path)
    assert model.inputs[0].dtype.kind == "f" and sess.get_inputs()[0].type == "tensor(int64)"
    _check(model, sess, [[_ids(np.random.default_rng(10), 2, 4)]])


def test_functional_model_with_an_int32_and_a_float_input(tmp_path):
    ids, feats = Input((None,), dtype="int32", name="ids"), Input((None, D), name="feats")
    h = Concatenate()([Embedding(V, D)(ids), feats])
    model = Model([ids, feats], SimpleRNN(3)(h))
    _randomize(model)
    sess = _session(model, tmp_path)
    assert [i.type for i in sess.get_inputs()] == ["tensor(int32)", "tensor(float)"]
    rng = np.random.default_rng(11)
    _check(model, sess, [[_ids(rng, 2, 4).astype(np.int32), rng.normal(size=(2, 4, D)).astype(np.float32)]])


# -- float64 models: float64 weights and computation, the recurrence written out as a Scan ---------------
def _double_session(model, tmp_path, opset=None):
    path = to_onnx(model, tmp_path / "model.onnx", opset=opset)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    floats = [t for t in proto.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE)]
    assert floats and all(t.data_type == onnx.TensorProto.DOUBLE for t in floats)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert all(o.type == "tensor(double)" for o in sess.get_outputs())
    return sess


@pytest.mark.parametrize("kind", [k for k, _ in RECURRENT])
@pytest.mark.parametrize("options", [dict(), dict(return_sequences=True), dict(go_backwards=True),
                                     dict(return_sequences=True, go_backwards=True, return_state=True)])
def test_float64_recurrent_matches_rnnkit_to_1e_10(tmp_path, float64, kind, options):
    make = dict(RECURRENT)[kind]
    x = Input((None, D))
    outs = make(**options)(x)
    outs = outs if isinstance(outs, list) else [outs]
    model = Model(x, [Dense(2, activation="tanh")(outs[0]), *outs[1:]])
    _randomize(model)
    assert model.dtype == np.float64
    sess = _double_session(model, tmp_path)
    assert sess.get_inputs()[0].type == "tensor(double)"
    rng = np.random.default_rng(12)
    _check(model, sess, [[rng.normal(size=(b, t, D))] for b, t in SHAPES], atol=1e-10)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru_reset_after", "gru_reset_before"])
@pytest.mark.parametrize("options", [dict(), dict(return_sequences=True), dict(go_backwards=True),
                                     dict(return_sequences=True, go_backwards=True),
                                     dict(return_sequences=True, zero_output_for_mask=True)])
def test_float64_masked_recurrent_matches_rnnkit_to_1e_10(tmp_path, float64, kind, options):
    make = dict(RECURRENT)[kind]
    model = Sequential([Input((None,), dtype="int32"), Embedding(V, D, mask_zero=True), make(**options),
                        TimeDistributed(Dense(2)) if options.get("return_sequences") else Dense(2)])
    _randomize(model)
    sess = _double_session(model, tmp_path)
    rng = np.random.default_rng(13)
    _check(model, sess, [[_ids(rng, 1, 1).astype(np.int32)], [_ids(rng, 3, 6, lengths=[6, 2, 4]).astype(np.int32)],
                         [_ids(rng, 4, 9, lengths=[1, 9, 3, 5]).astype(np.int32)]], atol=1e-10)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru_reset_after", "gru_reset_before"])
@pytest.mark.parametrize("merge_mode", ["concat", "ave"])
def test_float64_bidirectional_stack_matches_rnnkit_to_1e_10(tmp_path, float64, kind, merge_mode):
    make = dict(RECURRENT)[kind]
    ids = Input((None,), dtype="int64")
    h = Bidirectional(make(return_sequences=True), merge_mode=merge_mode)(Embedding(V, D, mask_zero=True)(ids))
    y = Bidirectional(make(return_state=True))(Dense(4, activation="relu")(h))
    model = Model(ids, y)
    _randomize(model)
    sess = _double_session(model, tmp_path)
    rng = np.random.default_rng(14)
    _check(model, sess, [[_ids(rng, 2, 4, lengths=[4, 1])], [_ids(rng, 3, 8, lengths=[8, 3, 5])]], atol=1e-10)


@pytest.mark.parametrize("opset", [14, 18])
def test_float64_lstm_at_other_opsets(tmp_path, float64, opset):
    """Split's output count is an attribute from opset 18 on: both forms are written and run."""
    model = Sequential([Input((None, D)), LSTM(4, return_sequences=True), GRU(3)])
    _randomize(model)
    sess = _double_session(model, tmp_path, opset=opset)
    rng = np.random.default_rng(15)
    _check(model, sess, [[rng.normal(size=(b, t, D))] for b, t in SHAPES], atol=1e-10)


def test_float64_lstm_matches_pytorch_to_1e_10(tmp_path, float64):
    """The float64 Scan against PyTorch's LSTM with the same weights, independently of rnnkit's loops."""
    torch = pytest.importorskip("torch")
    model = Sequential([Input((None, D)), LSTM(4, return_sequences=True)])
    _randomize(model)
    W, U, b = model.get_weights()
    ref = torch.nn.LSTM(D, 4, batch_first=True).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(torch.tensor(W.T))
        ref.weight_hh_l0.copy_(torch.tensor(U.T))
        ref.bias_ih_l0.copy_(torch.tensor(b))
        ref.bias_hh_l0.zero_()
    sess = _double_session(model, tmp_path)
    x = np.random.default_rng(16).normal(size=(3, 6, D))
    expected = ref(torch.tensor(x))[0].detach().numpy()
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], expected, atol=1e-10, rtol=0)


def test_float32_models_keep_the_float32_operators(tmp_path):
    model = Sequential([Input((None, D)), GRU(3)])
    path = to_onnx(model, tmp_path / "m.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "GRU" in ops and "Scan" not in ops
