"""Arguments checked with the same care as files: optimizer settings, ``set_weights``, layer arguments,
Embedding indices, a refused ``fit`` that leaves the model as it was, and the NaN guard on the update.

Each check: the error type, a message that names the argument, what was expected and what was given,
and nothing changed after it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnkit
from rnnkit.layers import LSTM, Bidirectional, Dense, Dropout, Embedding, Masking, RepeatVector
from rnnkit.optimizers import SGD, Adagrad, Adam, RMSprop

NAN, INF = float("nan"), float("inf")


# -- optimizer hyper-parameters ------------------------------------------------------------------

RANGES = [  # (class, argument, refused values, the range the message names)
    (Adam, "epsilon", [0.0, -1e-7, NAN, INF], r"a finite number > 0"),
    (RMSprop, "epsilon", [0.0, -1.0, NAN, INF], r"a finite number > 0"),
    (Adagrad, "epsilon", [0.0, -1.0, NAN, INF], r"a finite number > 0"),
    (Adam, "beta_1", [1.0, -0.1, 1.5, NAN, INF], r"in \[0, 1\)"),
    (Adam, "beta_2", [1.0, -0.1, NAN, -INF], r"in \[0, 1\)"),
    (RMSprop, "rho", [1.0, -0.5, NAN], r"in \[0, 1\)"),
    (RMSprop, "momentum", [1.0, -0.1, NAN], r"in \[0, 1\)"),
    (SGD, "momentum", [1.0, 2, -0.1, NAN, INF], r"in \[0, 1\)"),
    (Adagrad, "initial_accumulator_value", [-0.1, NAN, INF], r"a finite number >= 0"),
    (SGD, "learning_rate", [-0.1, NAN, INF, -INF], r"a finite number >= 0"),
    (Adam, "learning_rate", [-1e-3, NAN, INF], r"a finite number >= 0"),
]


@pytest.mark.parametrize("cls, arg, values, wanted", RANGES, ids=[f"{c.__name__}-{a}" for c, a, _, _ in RANGES])
def test_optimizer_value_out_of_range(cls, arg, values, wanted):
    """Each out-of-range or non-finite value is a ValueError naming the argument, the range and the value."""
    for value in values:
        with pytest.raises(ValueError, match=rf"^{arg} must be {wanted}, got {re_value(value)}\.$"):
            cls(**{arg: value})


def re_value(value) -> str:
    import re

    return re.escape(repr(value))


@pytest.mark.parametrize("cls, arg", [(Adam, "epsilon"), (Adam, "beta_1"), (RMSprop, "rho"), (SGD, "momentum"),
                                      (Adagrad, "initial_accumulator_value"), (SGD, "learning_rate")])
@pytest.mark.parametrize("value", [True, "0.1", None, [0.1], np.array([0.1])])
def test_optimizer_value_wrong_type(cls, arg, value):
    """Bools, strings, None and arrays are a TypeError naming the argument and the type given."""
    with pytest.raises(TypeError, match=rf"^{arg} must be .*, got {type(value).__name__}: "):
        cls(**{arg: value})


@pytest.mark.parametrize("arg", ["clipnorm", "clipvalue", "global_clipnorm"])
@pytest.mark.parametrize("value, error", [(0.0, ValueError), (-1.0, ValueError), (NAN, ValueError),
                                          (INF, ValueError), (True, TypeError), ("1", TypeError)])
def test_optimizer_clipping_values(arg, value, error):
    """Clipping thresholds must be positive finite numbers."""
    with pytest.raises(error, match=rf"^{arg} must be a positive"):
        SGD(**{arg: value})


@pytest.mark.parametrize("cls, arg", [(Adam, "amsgrad"), (SGD, "nesterov"), (RMSprop, "centered")])
@pytest.mark.parametrize("value", [1, "yes", None])
def test_optimizer_flags_must_be_bools(cls, arg, value):
    with pytest.raises(TypeError, match=rf"^{arg} must be True or False, got {type(value).__name__}"):
        cls(**{arg: value})


def test_optimizer_values_at_the_edges_are_accepted():
    """The closed ends of the ranges are accepted, and kept as floats."""
    assert Adam(beta_1=0, beta_2=0.0, epsilon=1e-300).beta_1 == 0.0
    assert SGD(momentum=0).momentum == 0.0
    assert RMSprop(rho=0.0, momentum=0.0).rho == 0.0
    assert Adagrad(initial_accumulator_value=0).initial_accumulator_value == 0.0
    assert isinstance(Adam(learning_rate=np.float32(0.01)).learning_rate, float)
    assert Adam(amsgrad=np.bool_(True)).amsgrad is True


@pytest.mark.parametrize("make", [lambda: SGD(learning_rate=0), lambda: Adam(learning_rate=0.0),
                                  lambda: RMSprop(learning_rate=0, momentum=0.5)])
def test_learning_rate_zero_leaves_the_weights_alone(make):
    """learning_rate=0 is allowed, as in Keras, and a step with it changes no weight."""
    opt = make()
    p = np.array([1.0, -2.0, 3.0])
    before = p.copy()
    for _ in range(3):
        opt.apply([p], [np.array([0.5, -1.0, 2.0])])
    np.testing.assert_array_equal(p, before)
    assert opt.iterations == 3


def test_optimizer_deserialize_refuses_bad_settings():
    """Settings read back from a config go through the same checks."""
    with pytest.raises(ValueError, match=r"epsilon must be a finite number > 0, got nan"):
        rnnkit.optimizers.deserialize({"class_name": "adam", "config": {"epsilon": NAN}})
    with pytest.raises(TypeError, match=r"learning_rate must be a finite number >= 0, got str"):
        rnnkit.optimizers.deserialize({"class_name": "sgd", "config": {"learning_rate": "0.1"}})


def trained_adam_state():
    params = [np.zeros((2, 3), np.float32), np.zeros(3, np.float32)]
    opt = Adam(learning_rate=0.1)
    opt.apply(params, [np.ones((2, 3), np.float32), np.ones(3, np.float32)])
    return opt, params, {k: np.array(v, copy=True) for k, v in opt.get_state().items()}


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update({"0/v": np.full((2, 3), 1e39)}),
     r"parameter 0 \(v\) holds values that are not finite in float32"),
    (lambda s: s.update({"1/m": np.array([0.0, NAN, 0.0])}), r"parameter 1 \(m\) holds values that are not finite"),
    (lambda s: s.update({"1/m": np.zeros(4)}), r"parameter 1 \(m\) is missing or has the wrong shape: expected "
                                               r"\(3,\), got \(4,\)"),
    (lambda s: s.pop("0/m"), r"parameter 0 \(m\) is missing .* got NoneType"),
    (lambda s: s.update({"0/m": np.full((2, 3), "a")}), r"parameter 0 \(m\) must be numeric, got dtype <U1"),
    (lambda s: s.pop("iterations"), r"needs 'iterations', one integer >= 0, got None"),
    (lambda s: s.update({"iterations": np.array([-1])}), r"needs 'iterations', one integer >= 0"),
    (lambda s: s.update({"iterations": np.array([1.5])}), r"needs 'iterations', one integer >= 0"),
])
def test_optimizer_set_state_checks_everything_first(change, message):
    """A slot that is not finite in the parameters' dtype (or missing, misshapen, not numeric) or a bad step
    count is refused before the optimizer changes."""
    opt, params, state = trained_adam_state()
    bad = dict(state)
    change(bad)
    with pytest.raises(ValueError, match=message):
        opt.set_state(bad, params)
    after = opt.get_state()
    assert after.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(after[key], state[key])
    opt.set_state(state, params)                             # the good state is taken
    assert opt.iterations == 1


# -- set_weights: finite in the model's dtype ------------------------------------------------------

def two_dense(dtype: str, seed: int = 0) -> rnnkit.Model:
    with rnnkit.backend.floatx_scope(dtype):
        model = rnnkit.Sequential([Dense(3, input_shape=(2,)), Dense(2)], seed=seed)
    return model


@pytest.mark.parametrize("dtype, huge", [("float32", 1e39), ("float32", -3.5e38), ("float16", 7e4)])
def test_set_weights_refuses_values_that_overflow_the_dtype(dtype, huge):
    """A value finite in float64 but infinite in the model's dtype is refused, naming the weight, the value
    and the dtype; no weight changes, not even those of the layers before it."""
    model = two_dense(dtype)
    before = model.get_weights()
    new = [np.full_like(w, 0.5, dtype=np.float64) for w in before]
    new[2][1, 0] = huge
    with pytest.raises(ValueError, match=rf"Weight 'kernel' of layer 'dense_1' holds {re_value(huge)} at index "
                                         rf"\(1, 0\), which is not finite in {dtype}"):
        model.set_weights(new)
    for old, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, now)


def test_set_weights_takes_large_values_that_fit():
    """The same value is fine where the dtype holds it, and is written."""
    with rnnkit.backend.floatx_scope("float64"):
        model = two_dense("float64")
    new = [np.full_like(w, 0.5) for w in model.get_weights()]
    new[2][1, 0] = 1e39
    model.set_weights(new)
    assert model.get_weights()[2][1, 0] == 1e39


def test_set_weights_still_refuses_nan():
    model = two_dense("float32")
    before = model.get_weights()
    new = [w.copy() for w in before]
    new[0][0, 0] = NAN
    with pytest.raises(ValueError, match=r"Weight 'kernel' of layer 'dense' contains NaN or infinite values"):
        model.set_weights(new)
    np.testing.assert_array_equal(model.get_weights()[0], before[0])


# -- layer arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("n, error, message", [
    (2.0, TypeError, r"n must be a positive integer, got float: 2\.0"),
    (True, TypeError, r"n must be a positive integer, got bool: True"),
    ("3", TypeError, r"n must be a positive integer, got str: '3'"),
    (0, ValueError, r"n must be a positive integer, got 0"),
    (-2, ValueError, r"n must be a positive integer, got -2"),
])
def test_repeat_vector_n(n, error, message):
    with pytest.raises(error, match=message):
        RepeatVector(n)
    assert RepeatVector(np.int64(3)).n == 3


@pytest.mark.parametrize("rate, error", [("0.5", TypeError), (True, TypeError), (None, TypeError),
                                         (1.0, ValueError), (-0.1, ValueError), (NAN, ValueError),
                                         (INF, ValueError)])
def test_dropout_rate(rate, error):
    with pytest.raises(error, match=rf"Dropout rate must be a number in \[0, 1\), got .*{re_value(rate)}"):
        Dropout(rate)


@pytest.mark.parametrize("noise_shape, error, message", [
    (3, TypeError, r"noise_shape must be a tuple such as \(None, 1, features\) or None, got int: 3"),
    ("ab", TypeError, r"noise_shape must be a tuple .* got str: 'ab'"),
    ((None, 1.5), TypeError, r"noise_shape entries must be positive integers or None, got float 1\.5"),
    ((None, True), TypeError, r"noise_shape entries must be positive integers or None, got bool True"),
    ((None, 0), ValueError, r"noise_shape entries must be positive integers or None, got \(None, 0\)"),
    ((), ValueError, r"noise_shape needs the batch axis"),
])
def test_dropout_noise_shape_type(noise_shape, error, message):
    with pytest.raises(error, match=message):
        Dropout(0.5, noise_shape=noise_shape)


@pytest.mark.parametrize("noise_shape", [(None, 1), (None, 2, 1), (None, 1, 1, 1)])
def test_dropout_noise_shape_must_fit_the_input(noise_shape):
    """A noise_shape of the wrong rank or size is refused when the layer is added, and the model is unchanged."""
    model = rnnkit.Sequential([Dense(4, input_shape=(5, 3))], seed=0)
    layer = Dropout(0.5, noise_shape=noise_shape)
    with pytest.raises(ValueError, match=r"noise_shape .* does not fit inputs of shape \(None, 5, 4\): it needs "
                                         r"3 entries \(batch axis first\), each None, 1 or the input's size"):
        model.add(layer)
    assert len(model.layers) == 1 and not layer.built
    model.add(Dropout(0.5, noise_shape=(None, 1, 4)))       # one that fits is accepted
    assert model.output_shape == (None, 5, 4)


def test_dropout_noise_shape_checked_on_direct_calls():
    layer = Dropout(0.5, noise_shape=(None, 1, 7), seed=0)
    layer(np.ones((2, 3, 7)), training=True)
    with pytest.raises(ValueError, match=r"does not fit inputs of shape \(2, 3, 4\)"):
        layer(np.ones((2, 3, 4)), training=True)


@pytest.mark.parametrize("value, error, message", [
    ("0", TypeError, r"mask_value must be a number, got str: '0'"),
    (True, TypeError, r"mask_value must be a number, got bool: True"),
    (None, TypeError, r"mask_value must be a number, got NoneType"),
    (NAN, ValueError, r"mask_value must be a finite number, got nan"),
    (-INF, ValueError, r"mask_value must be a finite number, got -inf"),
])
def test_masking_mask_value(value, error, message):
    with pytest.raises(error, match=message):
        Masking(mask_value=value)
    assert Masking(mask_value=np.int32(-1)).mask_value == -1.0


@pytest.mark.parametrize("kwargs, error, message", [
    ({"shape": (3,), "batch_size": 2.0}, TypeError, r"batch_size must be a positive integer or None, got float: 2\.0"),
    ({"shape": (3,), "batch_size": True}, TypeError, r"batch_size must be a positive integer or None, got bool"),
    ({"shape": (3,), "batch_size": "8"}, TypeError, r"batch_size must be a positive integer or None, got str"),
    ({"shape": (3,), "batch_size": 0}, ValueError, r"batch_size must be a positive integer or None, got 0"),
    ({"shape": (3,), "batch_size": -4}, ValueError, r"batch_size must be a positive integer or None, got -4"),
    ({"batch_shape": 5}, TypeError, r"batch_shape must be a tuple such as \(32, 10, 8\), got int: 5"),
    ({"batch_shape": ()}, ValueError, r"batch_shape needs the batch axis first"),
    ({"batch_shape": (0, 3)}, ValueError, r"batch_size must be a positive integer or None, got 0"),
    ({"shape": (3, 0)}, ValueError, r"shape must hold positive integers .*got \(3, 0\)"),
    ({"shape": (3, 2.5)}, ValueError, r"shape must hold positive integers .*got \(3, 2\.5\)"),
    ({"shape": 3.0}, TypeError, r"shape must be a tuple of positive integers, got 3\.0"),
    ({}, ValueError, r"Input needs a shape"),
])
def test_input_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        rnnkit.Input(**kwargs)
    assert rnnkit.Input(shape=(3,), batch_size=np.int64(4)).shape == (4, 3)


def test_callbacks_type_is_checked():
    """``callbacks=`` holding something other than Callback objects is a TypeError naming the type;
    the model is not trained."""
    model = two_dense("float32")
    model.compile("sgd", "mse")
    before = model.get_weights()
    for bad in (["not a callback"], [rnnkit.callbacks.History(), 3]):
        with pytest.raises(TypeError, match=r"callbacks must be rnnkit Callback instances, got (str|int)"):
            model.fit(np.ones((4, 2)), np.ones((4, 2)), callbacks=bad, verbose=0)
    for old, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, now)


# -- Embedding: indices are integers ---------------------------------------------------------------

VOCAB = 3000


def marked_table(layer: Embedding) -> None:
    """Row 2049 holds 1 and row 2048 holds -1 (both exact in float16), every other row 0."""
    table = layer.params["embeddings"]
    table[...] = 0
    table[2049], table[2048] = 1, -1


def sequential_embedding(dtype: str) -> rnnkit.Model:
    with rnnkit.backend.floatx_scope(dtype):
        model = rnnkit.Sequential([Embedding(VOCAB, 1, input_shape=(1,))], seed=0)
    marked_table(model.layers[0])
    return model


def functional_embedding(dtype: str, input_dtype=None) -> rnnkit.Model:
    with rnnkit.backend.floatx_scope(dtype):
        inp = rnnkit.Input((1,), dtype=input_dtype)
        model = rnnkit.Model(inp, Embedding(VOCAB, 1, seed=0)(inp))
    marked_table(model.layers[1])
    return model


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("make", [sequential_embedding, functional_embedding,
                                  lambda d: functional_embedding(d, "int32")],
                         ids=["sequential", "functional", "functional-int-input"])
@pytest.mark.parametrize("given", [np.array([[2049]]), np.array([[2049.0]]), [[2049]]], ids=["int", "float", "list"])
def test_embedding_looks_up_index_2049(dtype, make, given):
    """Index 2049 reads row 2049 in float16 and float32 models (float16 would round it to 2048), whether
    the indices come as integers, as whole floats or as a list."""
    model = make(dtype)
    assert model.dtype == np.dtype(dtype)
    assert model.predict(given, verbose=0)[0, 0, 0] == 1.0
    assert model(given)[0, 0, 0] == 1.0
    assert model.predict(np.array([[2048], [2049], [2050]]), verbose=0).ravel().tolist() == [-1.0, 1.0, 0.0]


def test_embedding_layer_called_directly_in_float16():
    with rnnkit.backend.floatx_scope("float16"):
        layer = Embedding(VOCAB, 1)
        layer.build((1,))
    marked_table(layer)
    assert layer(np.array([[2049.0]]))[0, 0, 0] == 1.0
    assert layer([[2049], [2048]]).ravel().tolist() == [1.0, -1.0]
    table = layer.params["embeddings"]
    np.testing.assert_array_equal(layer(np.array([[True, False]]))[0], table[[1, 0]])   # rows, not a mask


def test_embedding_index_above_float32_precision():
    """2**24 + 1 is not a float32 number: a float32 model reads that row, not row 2**24."""
    big = 2**24 + 1
    with rnnkit.backend.floatx_scope("float32"):
        model = rnnkit.Sequential([Embedding(big + 1, 1, input_shape=(1,), embeddings_initializer="zeros")])
    table = model.layers[0].params["embeddings"]
    table[big], table[big - 1] = 5, -5
    assert model.predict(np.array([[big]]), verbose=0)[0, 0, 0] == 5.0


def test_embedding_training_updates_row_2049_in_float16():
    """The gradient lands on the row that was read: after one SGD step only row 2049 has moved."""
    model = sequential_embedding("float16")
    model.compile(SGD(learning_rate=0.5), "mse")
    before = model.get_weights()[0].copy()
    model.fit(np.array([[2049]]), np.zeros((1, 1, 1)), epochs=1, verbose=0)
    moved = np.flatnonzero(model.get_weights()[0][:, 0] != before[:, 0])
    assert moved.tolist() == [2049]


@pytest.mark.parametrize("indices, message", [
    ([[VOCAB]], rf"expects indices in \[0, {VOCAB}\), got values from {VOCAB} to {VOCAB} \(the first out of "
                rf"range: {VOCAB} at position \(0, 0\)\)"),
    ([[3], [-1]], rf"expects indices in \[0, {VOCAB}\), got values from -1 to 3 \(the first out of range: -1 at "
                  r"position \(1, 0\)\)"),
    ([[1e30]], r"expects indices in \[0, 3000\), got values from 1e\+30 to 1e\+30"),
    ([[2.5]], r"expects integer indices, got non-integer value 2\.5 at position \(0, 0\)"),
])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_embedding_refuses_bad_indices(indices, message, dtype):
    """Out-of-range indices are an error (as in Keras on CPU); so are non-integer ones. predict and fit
    refuse them before anything changes."""
    model = sequential_embedding(dtype)
    model.compile(SGD(learning_rate=0.1), "mse")
    before = model.get_weights()
    x = np.array(indices)
    with pytest.raises(ValueError, match=r"Layer 'embedding' \(Embedding\) " + message):
        model.predict(x, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.fit(x, np.zeros((len(x), 1, 1)), verbose=0)
    np.testing.assert_array_equal(before[0], model.get_weights()[0])
    assert model.optimizer.iterations == 0


def test_embedding_direct_call_refuses_non_numbers_and_nan():
    layer = Embedding(10, 2)
    with pytest.raises(TypeError, match=r"expects integer indices, got an array of dtype <U1"):
        layer(np.array([["a"]]))
    with pytest.raises(ValueError, match=r"expects integer indices, got non-integer value nan at position \(0, 1\)"):
        layer(np.array([[1.0, NAN]]))


def test_embedding_matches_torch_in_float16():
    """torch.nn.functional.embedding on the same float16 table reads the same rows, and refuses an index
    out of range too (rnnkit: ValueError, torch: IndexError)."""
    torch = pytest.importorskip("torch")
    layer = sequential_embedding("float16").layers[0]
    layer.params["embeddings"][...] = np.random.default_rng(0).normal(size=(VOCAB, 1)).astype(np.float16)
    idx = np.array([[0, 2047, 2048, 2049, 2051, VOCAB - 1]])
    ours = layer(idx)
    theirs = torch.nn.functional.embedding(torch.from_numpy(idx), torch.from_numpy(layer.params["embeddings"]))
    np.testing.assert_array_equal(ours, theirs.numpy())
    with pytest.raises(IndexError):
        torch.nn.functional.embedding(torch.tensor([[VOCAB]]), torch.from_numpy(layer.params["embeddings"]))
    with pytest.raises(ValueError):
        layer(np.array([[VOCAB]]))


# -- a refused fit leaves an unbuilt model unbuilt -------------------------------------------------

def unbuilt(layers) -> rnnkit.Model:
    model = rnnkit.Sequential(layers, seed=3)
    model.compile("adam", "mse")
    return model


@pytest.mark.parametrize("layers", [lambda: [LSTM(4), Dense(2)], lambda: [Bidirectional(LSTM(3)), Dense(2)]],
                         ids=["lstm", "bidirectional"])
@pytest.mark.parametrize("bad", [
    {"y": np.zeros((6, 3))},
    {"y": np.zeros((5, 2))},
    {"y": np.zeros((6, 2)), "validation_data": (np.zeros((2, 4, 3)), np.zeros((2, 5)))},
    {"y": np.zeros((6, 2)), "validation_split": 0.9},
], ids=["y-shape", "y-count", "validation-y", "validation-split"])
def test_refused_fit_leaves_model_unbuilt(layers, bad):
    """x alone would build the model; a fit refused for y (or the validation data) leaves it unbuilt, and a
    later fit builds it exactly as a fresh model would (same weights, from the model's seed)."""
    x = np.random.default_rng(0).normal(size=(6, 4, 3))
    model = unbuilt(layers())
    with pytest.raises(ValueError):
        model.fit(x, verbose=0, **bad)
    assert not model.built
    assert all(not layer.built and not layer.params for layer in model.layers)
    assert all(not layer._inbound_nodes for layer in model.layers)
    assert model.input_shape is None and not hasattr(model, "inputs")
    with pytest.raises(ValueError, match=r"is not built yet"):
        model.set_weights([])
    y = np.zeros((6, 2))
    model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    fresh = unbuilt(layers())
    fresh.fit(x, y, epochs=1, verbose=0, shuffle=False)
    assert model.built and model.count_params() == fresh.count_params()
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_refused_train_on_batch_leaves_model_unbuilt():
    model = unbuilt([LSTM(4), Dense(2)])
    with pytest.raises(ValueError, match=r"outputs \(None, 2\) but y has shape \(6, 3\)"):
        model.train_on_batch(np.zeros((6, 4, 3)), np.zeros((6, 3)))
    assert not model.built and all(not layer.params for layer in model.layers)
    model.train_on_batch(np.zeros((6, 4, 3)), np.zeros((6, 2)))
    assert model.built and model.optimizer.iterations == 1


def test_refused_fit_of_built_model_changes_nothing():
    model = two_dense("float32")
    model.compile("adam", "mse")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"outputs \(None, 2\) but y has shape \(4, 3\)"):
        model.fit(np.ones((4, 2)), np.ones((4, 3)), verbose=0)
    assert model.built
    for old, now in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, now)
    assert model.optimizer.iterations == 0


# -- the NaN guard checks the update ---------------------------------------------------------------

OVERFLOWING = {  # optimizers whose step overflows float32 once learning_rate is set to 1e39
    "sgd-momentum": lambda: SGD(learning_rate=0.01, momentum=0.9),
    "adam": lambda: Adam(learning_rate=0.01),
    "rmsprop-centered": lambda: RMSprop(learning_rate=0.01, centered=True, momentum=0.5),
    "adagrad": lambda: Adagrad(learning_rate=0.01),
}


def regression(one_weight: bool = False):
    """A small float32 regression; with ``one_weight`` a single kernel, so the optimizer keeps its slots
    per weight instead of in one flat array per slot."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 3)).astype(np.float32)
    y = (x @ rng.normal(size=(3, 2)) * 50).astype(np.float32)
    layers = ([Dense(2, input_shape=(3,), use_bias=False)] if one_weight else
              [Dense(4, input_shape=(3,), activation="tanh"), Dense(2)])
    return rnnkit.Sequential(layers, seed=1), x, y


def optimizer_state(opt) -> dict:
    return {k: np.array(v, copy=True) for k, v in opt.get_state().items()}


@pytest.mark.parametrize("name", list(OVERFLOWING))
@pytest.mark.parametrize("one_weight", [False, True], ids=["flat-slots", "per-weight-slots"])
def test_update_that_overflows_is_undone(name, one_weight):
    """A step whose update turns a weight into inf (learning rate 1e39 in float32, finite loss and gradients)
    stops training with NonFiniteError; the weights and the optimizer's slots and step count are exactly
    those before the failed step, and the message says that, not that the weights are the last finite ones."""
    model, x, y = regression(one_weight)
    model.compile(OVERFLOWING[name](), "mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)      # two good steps: the slots hold something
    assert (model.optimizer._flat_slots is None) == one_weight
    weights, state = model.get_weights(), optimizer_state(model.optimizer)
    assert model.optimizer.iterations == 2 and len(state) > 1
    model.optimizer.learning_rate = 1e39
    with pytest.raises(rnnkit.NonFiniteError) as info:
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    message = str(info.value)
    assert "at epoch 1/1, batch 1/2: the loss (" in message
    assert "are finite, but after the optimizer's update weight 'kernel' of layer " in message
    assert "This step's update was undone: the weights and the optimizer state are as they were before it." \
        in message
    assert "last finite" not in message and "lower the learning rate (now 1e+39)" in message
    report = info.value.report
    assert report.layer in ("dense", "dense_1") and report.quantity == "weight 'kernel' after the update"
    assert report.value in ("inf", "-inf", "nan") and math.isfinite(report.loss) and math.isfinite(report.grad_norm)
    for old, now in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(old, now)
    after = optimizer_state(model.optimizer)
    assert after.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(state[key], after[key])
    model.optimizer.learning_rate = 0.01                    # and training goes on from there
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.optimizer.iterations == 4 and all(np.isfinite(w).all() for w in model.get_weights())


def test_overflow_on_the_first_step_is_undone_by_train_on_batch():
    """Before the first step the optimizer has no slots; the undone step leaves it so, and the weights as built."""
    model, x, y = regression()
    model.compile(Adam(learning_rate=1e39), "mse")
    weights = model.get_weights()
    with pytest.raises(rnnkit.NonFiniteError, match=r"^Training stopped: the loss .* are finite, but after the "
                                                   r"optimizer's update weight") as info:
        model.train_on_batch(x, y)
    assert "Pass train_on_batch(..., terminate_on_nan=False)" in str(info.value)
    assert model.optimizer.iterations == 0 and list(optimizer_state(model.optimizer)) == ["iterations"]
    for old, now in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(old, now)


def test_overflowing_update_applied_when_asked():
    """terminate_on_nan=False keeps Keras' behaviour: the update is applied (and the weights are not finite)."""
    model, x, y = regression()
    model.compile(SGD(learning_rate=1e39), "mse")
    model.train_on_batch(x, y, terminate_on_nan=False)
    assert not all(np.isfinite(w).all() for w in model.get_weights())
    assert model.optimizer.iterations == 1


def test_fit_takes_one_callback_and_refuses_a_non_list():
    import rnnkit
    from rnnkit.callbacks import History, LambdaCallback
    from rnnkit.layers import Dense as _Dense

    model = rnnkit.Sequential([rnnkit.Input((3,)), _Dense(1)], seed=0)
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3)), np.ones((4, 1))
    seen = []
    model.fit(x, y, epochs=2, verbose=0, callbacks=LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch)))
    assert seen == [0, 1]
    with pytest.raises(TypeError, match=r"callbacks must be a list of rnnkit Callback instances, got int"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=3)
    assert isinstance(History(), rnnkit.callbacks.Callback)


def test_layer_set_weights_refuses_values_that_overflow_the_dtype():
    from rnnkit.layers import Dense as _Dense

    layer = _Dense(2, name="head")
    layer.build((3,))
    before = layer.get_weights()
    with pytest.raises(ValueError, match=r"Weight 'bias' of layer 'head' holds 1e\+39 at index \(1,\), which is "
                                         r"not finite in float32"):
        layer.set_weights([np.zeros((3, 2)), np.array([0.0, 1e39])])
    for old, now in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(old, now)
