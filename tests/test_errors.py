"""Bad inputs get a clear error (what was expected, what was given) before anything changes."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit import cli
from rnnkit.layers import Dense, Dropout, SimpleRNN
from rnnkit.optimizers import SGD, Adagrad, Adam, RMSprop

TIMESTEPS, FEATURES, CLASSES, N = 3, 5, 4, 6


# -- helpers -------------------------------------------------------------------------------

def make_model(compiled: bool = True, loss: str = "categorical_crossentropy", **compile_kwargs):
    """A built SimpleRNN + Dense softmax model for inputs (N, TIMESTEPS, FEATURES)."""
    model = rnnkit.Sequential(
        [SimpleRNN(8, input_shape=(TIMESTEPS, FEATURES)), Dense(CLASSES, activation="softmax")], seed=0
    )
    if compiled:
        model.compile(optimizer=compile_kwargs.pop("optimizer", "adam"), loss=loss, **compile_kwargs)
    return model


def data(n: int = N, seed: int = 0):
    """Random inputs and one-hot targets that fit ``make_model``."""
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, TIMESTEPS, FEATURES))
    y = rnnkit.one_hot(r.integers(0, CLASSES, size=n), CLASSES)
    return x, y


def assert_same_weights(before, after):
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert a.shape == b.shape
        assert np.array_equal(a, b)


def train_calls(model, x, y):
    """The three ways of training or evaluating that must refuse bad data before any update."""
    return {
        "fit": lambda: model.fit(x, y, epochs=1, batch_size=2, verbose=0),
        "train_on_batch": lambda: model.train_on_batch(x, y),
        "evaluate": lambda: model.evaluate(x, y, verbose=0),
    }


CALLS = ["fit", "train_on_batch", "evaluate"]


# -- not compiled --------------------------------------------------------------------------

@pytest.mark.parametrize("call", CALLS)
def test_training_before_compile(call):
    """fit / train_on_batch / evaluate on an uncompiled model raise NotCompiledError and change nothing."""
    model = make_model(compiled=False)
    x, y = data()
    before = model.get_weights()
    with pytest.raises(rnnkit.NotCompiledError, match=r"must be compiled before .*model\.compile\("):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())
    assert not model.compiled


def test_not_compiled_error_is_a_runtime_error():
    """NotCompiledError can be caught as RuntimeError or as rnnkit's base error."""
    assert issubclass(rnnkit.NotCompiledError, RuntimeError)
    assert issubclass(rnnkit.NotCompiledError, rnnkit.RnnkitError)


# -- input shape ------------------------------------------------------------------------------

@pytest.mark.parametrize("call", CALLS)
def test_two_dimensional_input_to_recurrent_model(call):
    """A 2-D x given to a SimpleRNN model names the expected (None, T, D) shape and the given one."""
    model = make_model()
    _, y = data()
    x = np.zeros((N, TIMESTEPS * FEATURES))
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 3, 5\).*got an array of shape \(6, 15\)"):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())


def test_single_sample_without_batch_axis_gets_batch_hint():
    """An x shaped like one sample (T, D) is reported with the hint to add the batch axis."""
    model = make_model()
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 3, 5\).*\(3, 5\).*batch axis"):
        model.predict(np.zeros((TIMESTEPS, FEATURES)))


def test_class_index_windows_to_recurrent_model_suggest_one_hot():
    """x of class indices (N, T), as sliding_windows returns, should be told to one-hot encode.

    The hint to one-hot encode exists in checks.check_input_shape, but any 2-D x to a
    recurrent model gets the "batch axis is missing; wrap a single sample as x[None]" hint
    instead, which is wrong advice for (samples, timesteps) indices.
    """
    model = make_model()
    _, y = data()
    x = np.random.default_rng(0).integers(0, FEATURES, size=(N, TIMESTEPS))
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"one_hot"):
        model.fit(x, y, epochs=1, verbose=0)
    assert_same_weights(before, model.get_weights())


@pytest.mark.parametrize("call", CALLS)
def test_wrong_feature_count(call):
    """Input with the wrong number of features names the expected and the given shape."""
    model = make_model()
    _, y = data()
    x = np.zeros((N, TIMESTEPS, FEATURES + 2))
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 3, 5\).*got an array of shape \(6, 3, 7\)"):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())


@pytest.mark.parametrize("call", CALLS)
def test_wrong_timesteps_when_fixed(call):
    """With input_shape=(3, 5) the timesteps are fixed; 4 steps are refused with both shapes named."""
    model = make_model()
    _, y = data()
    x = np.zeros((N, TIMESTEPS + 1, FEATURES))
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 3, 5\).*got an array of shape \(6, 4, 5\)"):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())


def test_variable_timesteps_accept_any_length():
    """input_shape=(None, D) accepts sequences of any length (the contrast to the fixed case)."""
    model = rnnkit.Sequential([SimpleRNN(4, input_shape=(None, FEATURES)), Dense(2)], seed=0)
    assert model.predict(np.zeros((2, 7, FEATURES))).shape == (2, 2)
    with pytest.raises(ValueError, match=r"expects input of shape \(None, None, 5\)"):
        model.predict(np.zeros((2, 7, FEATURES + 1)))


def test_predict_wrong_shape():
    """predict checks the input shape just as fit does."""
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 3, 5\).*\(2, 3, 6\)"):
        make_model().predict(np.zeros((2, TIMESTEPS, FEATURES + 1)))


def test_unbuilt_model_with_wrong_rank_is_not_poisoned():
    """A model without an input shape that is given 2-D x once must still accept correct x afterwards.

    The failed call must not keep the bad input shape (nor half-built layers) on the model.
    """
    model = rnnkit.Sequential([SimpleRNN(8), Dense(CLASSES, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = data()
    with pytest.raises(ValueError, match=r"3-D input"):
        model.fit(np.zeros((N, TIMESTEPS)), y, epochs=1, verbose=0)
    assert model.input_shape is None
    assert not any(layer.built for layer in model.layers)
    assert model.get_weights() == []
    model.fit(x, y, epochs=1, verbose=0)
    assert model.input_shape == (TIMESTEPS, FEATURES)


# -- targets ------------------------------------------------------------------------------

@pytest.mark.parametrize("call", CALLS)
def test_x_y_length_mismatch(call):
    """x and y with different sample counts name both counts."""
    model = make_model()
    x, _ = data()
    _, y = data(n=N - 1)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"same number of samples, got 6 and 5"):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())


@pytest.mark.parametrize("call", CALLS)
def test_class_indices_given_to_categorical_crossentropy(call):
    """Class indices with categorical_crossentropy: the message suggests one_hot or the sparse loss."""
    model = make_model()
    x, _ = data()
    y = np.arange(N) % CLASSES
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"outputs \(None, 4\) but y has shape \(6,\)") as info:
        train_calls(model, x, y)[call]()
    assert "one_hot" in str(info.value)
    assert "sparse_categorical_crossentropy" in str(info.value)
    assert_same_weights(before, model.get_weights())


def test_class_index_column_given_to_categorical_crossentropy():
    """Class indices as a column (N, 1), the layout the sparse loss accepts, get the same hint."""
    model = make_model()
    x, _ = data()
    y = (np.arange(N) % CLASSES)[:, None]
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"outputs \(None, 4\) but y has shape \(6, 1\)") as info:
        model.fit(x, y, epochs=1, verbose=0)
    assert "one_hot" in str(info.value)
    assert "sparse_categorical_crossentropy" in str(info.value)
    assert_same_weights(before, model.get_weights())


def test_y_with_wrong_number_of_classes():
    """One-hot targets of the wrong depth name the model's output shape and y's shape."""
    model = make_model()
    x, _ = data()
    y = rnnkit.one_hot(np.arange(N) % 3, CLASSES + 1)
    with pytest.raises(ValueError, match=r"outputs \(None, 4\) but y has shape \(6, 5\)"):
        model.train_on_batch(x, y)


@pytest.mark.parametrize("bad", [CLASSES, CLASSES + 10, -1])
@pytest.mark.parametrize("call", CALLS)
def test_sparse_labels_out_of_range(call, bad):
    """Sparse labels outside [0, classes) are refused with the valid range and the values seen."""
    model = make_model(loss="sparse_categorical_crossentropy")
    x, _ = data()
    y = np.arange(N) % CLASSES
    y[2] = bad
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"integer class labels in \[0, 4\).*got values from"):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())


def test_sparse_labels_not_integers():
    """Fractional sparse labels are refused before training."""
    model = make_model(loss="sparse_categorical_crossentropy")
    x, _ = data()
    y = np.full(N, 1.5)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"integer class labels in \[0, 4\)"):
        model.train_on_batch(x, y)
    assert_same_weights(before, model.get_weights())


def test_sparse_labels_with_wrong_shape():
    """One-hot targets given to the sparse loss name the expected label shape."""
    model = make_model(loss="sparse_categorical_crossentropy")
    x, y = data()
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy expects integer class labels of shape"):
        model.fit(x, y, epochs=1, verbose=0)


# -- non-finite values ----------------------------------------------------------------------

@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["x", "y"])
@pytest.mark.parametrize("call", CALLS)
def test_nan_or_inf_in_data(call, where, value):
    """NaN or inf in x or y is refused, naming the array and the first bad index."""
    model = make_model()
    x, y = data()
    if where == "x":
        x[1, 2, 3] = value
        index = r"\(1, 2, 3\)"
    else:
        y[4, 0] = value
        index = r"\(4, 0\)"
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"{where} contains 1 NaN or infinite value\(s\), the first at index {index}"):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())


def test_nan_in_sparse_labels():
    """NaN among sparse labels is refused as non-finite."""
    model = make_model(loss="sparse_categorical_crossentropy")
    x, _ = data()
    y = (np.arange(N) % CLASSES).astype(float)
    y[0] = np.nan
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"y contains 1 NaN or infinite"):
        model.train_on_batch(x, y)
    assert_same_weights(before, model.get_weights())


def test_nan_in_validation_data():
    """NaN in validation_data is found before the first training step."""
    model = make_model()
    x, y = data()
    xv, yv = data(seed=1)
    xv[0, 0, 0] = np.nan
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"validation_data x contains 1 NaN"):
        model.fit(x, y, validation_data=(xv, yv), epochs=1, verbose=0)
    assert_same_weights(before, model.get_weights())


def test_predict_nan():
    """predict refuses NaN input too."""
    x, _ = data()
    x[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"x contains 1 NaN or infinite value"):
        make_model().predict(x)


# -- unknown names --------------------------------------------------------------------------

def test_unknown_optimizer_lists_valid_names():
    """An unknown optimizer name lists every valid one and leaves the model uncompiled."""
    model = make_model(compiled=False)
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamw'.*adagrad, adam, rmsprop, sgd"):
        model.compile(optimizer="adamw", loss="categorical_crossentropy")
    assert not model.compiled


def test_unknown_loss_lists_valid_names():
    """An unknown loss name lists the valid ones."""
    model = make_model(compiled=False)
    with pytest.raises(ValueError, match=r"Unknown loss 'crossentropy'.*binary_crossentropy.*categorical_crossentropy"
                                         r".*mean_squared_error.*sparse_categorical_crossentropy"):
        model.compile(optimizer="adam", loss="crossentropy")
    assert not model.compiled


def test_missing_loss_lists_valid_names():
    """compile without a loss says so and lists the valid loss names."""
    with pytest.raises(ValueError, match=r"compile needs a loss.*Valid loss names are: .*mse"):
        make_model(compiled=False).compile(optimizer="adam")


def test_unknown_metric_lists_valid_names():
    """An unknown metric fails at compile time, listing the valid names, and the model stays uncompiled."""
    model = make_model(compiled=False)
    with pytest.raises(ValueError, match=r"Unknown metric 'acuracy'.*accuracy.*categorical_accuracy"):
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["acuracy"])
    assert not model.compiled


@pytest.mark.parametrize("layer", [lambda: SimpleRNN(4, activation="relux"), lambda: Dense(4, activation="relux")])
def test_unknown_activation_lists_valid_names(layer):
    """An unknown activation name lists linear, relu, sigmoid, softmax, tanh."""
    with pytest.raises(ValueError, match=r"Unknown activation 'relux'.*linear, relu, sigmoid, softmax, tanh"):
        layer()


@pytest.mark.parametrize("kwarg", ["kernel_initializer", "recurrent_initializer", "bias_initializer"])
def test_unknown_initializer_lists_valid_names(kwarg):
    """An unknown initializer name lists the valid ones."""
    with pytest.raises(ValueError, match=r"Unknown initializer 'glorot'.*glorot_normal, glorot_uniform.*orthogonal"):
        SimpleRNN(4, **{kwarg: "glorot"})


def test_wrong_type_for_a_name():
    """A number where an optimizer name or object is expected is a TypeError saying what was expected."""
    with pytest.raises(TypeError, match=r"Expected a optimizer name \(str\) or a Optimizer instance, got int"):
        make_model(compiled=False).compile(optimizer=3, loss="mse")


# -- sizes and counts -----------------------------------------------------------------------

@pytest.mark.parametrize("cls", [SimpleRNN, Dense])
@pytest.mark.parametrize("units", [0, -3])
def test_non_positive_units(cls, units):
    """units <= 0 is a ValueError naming the value."""
    with pytest.raises(ValueError, match=rf"units must be a positive integer, got {units}"):
        cls(units)


@pytest.mark.parametrize("cls", [SimpleRNN, Dense])
@pytest.mark.parametrize("units, shown", [(2.5, r"float: 2\.5"), ("50", r"str: '50'"), (True, r"bool: True")])
def test_non_integer_units(cls, units, shown):
    """Non-integer units are a TypeError naming the type and the value."""
    with pytest.raises(TypeError, match=rf"units must be a positive integer, got {shown}"):
        cls(units)


@pytest.mark.parametrize("batch_size", [0, -1])
@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_non_positive_batch_size(call, batch_size):
    """batch_size <= 0 is refused by fit, evaluate and predict before any work."""
    model = make_model()
    x, y = data()
    before = model.get_weights()
    calls = {
        "fit": lambda: model.fit(x, y, batch_size=batch_size, verbose=0),
        "evaluate": lambda: model.evaluate(x, y, batch_size=batch_size, verbose=0),
        "predict": lambda: model.predict(x, batch_size=batch_size),
    }
    with pytest.raises(ValueError, match=rf"batch_size must be a positive integer, got {batch_size}"):
        calls[call]()
    assert_same_weights(before, model.get_weights())


def test_non_integer_batch_size():
    """A float batch_size is a TypeError."""
    model = make_model()
    x, y = data()
    with pytest.raises(TypeError, match=r"batch_size must be a positive integer, got float: 2\.0"):
        model.fit(x, y, batch_size=2.0, verbose=0)


@pytest.mark.parametrize("epochs", [0, -2])
def test_non_positive_epochs(epochs):
    """epochs <= 0 is refused before training."""
    model = make_model()
    x, y = data()
    before = model.get_weights()
    with pytest.raises(ValueError, match=rf"epochs must be a positive integer, got {epochs}"):
        model.fit(x, y, epochs=epochs, verbose=0)
    assert_same_weights(before, model.get_weights())


def test_non_integer_epochs():
    """A fractional epochs is a TypeError."""
    model = make_model()
    x, y = data()
    with pytest.raises(TypeError, match=r"epochs must be a positive integer, got float: 2\.5"):
        model.fit(x, y, epochs=2.5, verbose=0)


# -- non-numeric input ----------------------------------------------------------------------

@pytest.mark.parametrize("call", CALLS)
def test_string_input(call):
    """Strings as x are a TypeError that names the dtype and shows an element."""
    model = make_model()
    _, y = data()
    x = np.full((N, TIMESTEPS, FEATURES), "a")
    before = model.get_weights()
    with pytest.raises(TypeError, match=r"x must hold numbers, got an array of dtype <U1 \(first element: .*'a'.*\)"):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())


def test_string_targets():
    """Strings as y are a TypeError naming y."""
    model = make_model()
    x, _ = data()
    y = np.full((N, CLASSES), "b")
    with pytest.raises(TypeError, match=r"y must hold numbers, got an array of dtype <U1"):
        model.train_on_batch(x, y)


def test_string_sparse_labels():
    """String labels for the sparse loss are a TypeError naming y."""
    model = make_model(loss="sparse_categorical_crossentropy")
    x, _ = data()
    with pytest.raises(TypeError, match=r"y must hold numbers"):
        model.train_on_batch(x, ["cat"] * N)


@pytest.mark.parametrize("call", CALLS)
def test_object_array_input(call):
    """An object array (here holding None) is a TypeError naming dtype object."""
    model = make_model()
    _, y = data()
    x = np.empty((N, TIMESTEPS, FEATURES), dtype=object)
    before = model.get_weights()
    with pytest.raises(TypeError, match=r"x must hold numbers, got an array of dtype object \(first element: None\)"):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())


@pytest.mark.parametrize("call", CALLS)
def test_ragged_input(call):
    """Sequences of different lengths are a ValueError asking for a rectangular array."""
    model = make_model()
    _, y = data(n=2)
    x = [[[0.0] * FEATURES] * TIMESTEPS, [[0.0] * FEATURES] * (TIMESTEPS - 1)]
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"x must be a rectangular numeric array \(all sequences the same length\)"):
        train_calls(model, x, y)[call]()
    assert_same_weights(before, model.get_weights())


def test_none_and_empty_input():
    """x=None and an empty x are refused with what was expected."""
    model = make_model()
    with pytest.raises(ValueError, match=r"x is required, got None"):
        model.predict(None)
    with pytest.raises(ValueError, match=r"x is empty \(shape \(0, 3, 5\)\)"):
        model.predict(np.zeros((0, TIMESTEPS, FEATURES)))


# -- set_weights ----------------------------------------------------------------------------

def test_set_weights_wrong_count_names_layers_and_counts():
    """Too few arrays: the message gives the total expected, each layer's weights and the count given."""
    model = make_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"expects 5 weight arrays \(simple_rnn: kernel .*; dense: kernel .*\), got 4"):
        model.set_weights(before[:-1])
    assert_same_weights(before, model.get_weights())


def test_set_weights_wrong_count_names_expected_shapes():
    """Too many arrays: the message names each layer and the shapes it expects.

    A count alone does not tell the user which arrays to give; the per-layer check already
    lists "kernel (5, 8), recurrent_kernel (8, 8), ..." but the model-level count check does not.
    """
    model = make_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"simple_rnn") as info:
        model.set_weights([*before, np.zeros(3)])
    assert "(5, 8)" in str(info.value)      # simple_rnn kernel
    assert "(8, 4)" in str(info.value)      # dense kernel
    assert_same_weights(before, model.get_weights())


def test_set_weights_wrong_shape_leaves_everything_unchanged():
    """A bad shape in the last layer names that layer, the weight and the expected shape; no layer changes."""
    model = make_model()
    before = model.get_weights()
    new = [w + 1.0 for w in before]
    new[-2] = new[-2].T  # dense kernel (8, 4) given as (4, 8)
    with pytest.raises(ValueError, match=r"Layer 'dense' \(Dense\) weight 'kernel' expects shape \(8, 4\), "
                                         r"got \(4, 8\)"):
        model.set_weights(new)
    assert_same_weights(before, model.get_weights())


def test_layer_set_weights_wrong_count_names_expected_shapes():
    """Layer.set_weights with the wrong count names the layer and each expected shape."""
    model = make_model()
    layer = model.layers[0]
    before = layer.get_weights()
    with pytest.raises(ValueError, match=r"Layer 'simple_rnn' \(SimpleRNN\) expects 3 weight arrays "
                                         r"\(kernel \(5, 8\), recurrent_kernel \(8, 8\), bias \(8,\)\), got 2"):
        layer.set_weights(before[:2])
    assert_same_weights(before, layer.get_weights())


def test_set_weights_non_finite_and_non_numeric():
    """NaN weights and string weights are refused without changing the model."""
    model = make_model()
    before = model.get_weights()
    bad = [w.copy() for w in before]
    bad[0][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"Weight 'kernel' of layer 'simple_rnn' contains NaN"):
        model.set_weights(bad)
    bad = [w.copy() for w in before]
    bad[1] = np.full(bad[1].shape, "x")
    with pytest.raises(TypeError, match=r"Weight 'recurrent_kernel' of layer 'simple_rnn' must be numeric"):
        model.set_weights(bad)
    assert_same_weights(before, model.get_weights())


# -- one_hot ---------------------------------------------------------------------------------

@pytest.mark.parametrize("indices, shown", [([0, 1, -1], "-1"), ([0, 3, 1], "3"), ([[7]], "7")])
def test_one_hot_index_out_of_range(indices, shown):
    """Indices outside [0, depth) are an error naming the range and an offending index."""
    with pytest.raises(ValueError, match=rf"one_hot indices must lie in \[0, 3\), got 1 outside it \(e\.g\. {shown}\)"):
        rnnkit.one_hot(indices, 3)


@pytest.mark.parametrize("depth", [0, -2, 2.5, True])
def test_one_hot_bad_depth(depth):
    """depth must be a positive integer."""
    with pytest.raises(ValueError, match=rf"depth must be a positive integer, got {depth!r}"):
        rnnkit.one_hot([0, 1], depth)


def test_one_hot_non_integer_indices():
    """Fractional indices are a TypeError."""
    with pytest.raises(TypeError, match=r"one_hot expects integer indices, got dtype float64"):
        rnnkit.one_hot([0.5, 1.0], 3)


# -- text helpers ----------------------------------------------------------------------------

def test_generate_text_seed_with_unknown_characters():
    """A seed text with characters outside the vocabulary names them and the vocabulary."""
    vocab = rnnkit.CharVocabulary("hello world")
    model = rnnkit.Sequential([SimpleRNN(4, input_shape=(3, len(vocab))),
                               Dense(len(vocab), activation="softmax")], seed=0)
    with pytest.raises(ValueError, match=r"not in the vocabulary: 'XZ'\. The vocabulary is ' dehlorw'"):
        rnnkit.generate_text(model, vocab, "heXlZo", length=5)


def test_generate_text_seed_too_short():
    """A seed text shorter than the model's window says how many characters are needed."""
    vocab = rnnkit.CharVocabulary("hello world")
    model = rnnkit.Sequential([SimpleRNN(4, input_shape=(3, len(vocab))),
                               Dense(len(vocab), activation="softmax")], seed=0)
    with pytest.raises(ValueError, match=r"seed_text must have at least seq_length=3 characters, got 2"):
        rnnkit.generate_text(model, vocab, "he", length=5)


@pytest.mark.parametrize("helper", [rnnkit.sliding_windows, rnnkit.char_dataset])
@pytest.mark.parametrize("text, seq_length", [("abc", 3), ("abc", 5), ("a", 1)])
def test_text_helpers_seq_length_too_long(helper, text, seq_length):
    """seq_length >= len(text) leaves no window: the message gives both numbers."""
    with pytest.raises(ValueError, match=rf"seq_length \({seq_length}\) must be smaller than the text length "
                                         rf"\({len(text)}\)"):
        helper(text, seq_length)


@pytest.mark.parametrize("helper", [rnnkit.sliding_windows, rnnkit.char_dataset])
def test_text_helpers_empty_text(helper):
    """An empty text is refused with what is needed."""
    with pytest.raises(ValueError, match=r"The text is empty; give at least seq_length \+ 1 characters"):
        helper("", 3)


@pytest.mark.parametrize("helper", [rnnkit.sliding_windows, rnnkit.char_dataset])
def test_text_helpers_bad_seq_length(helper):
    """seq_length must be a positive integer."""
    with pytest.raises(ValueError, match=r"seq_length must be a positive integer, got 0"):
        helper("hello", 0)
    with pytest.raises(TypeError, match=r"seq_length must be a positive integer, got float"):
        helper("hello", 2.0)


@pytest.mark.parametrize("helper", [rnnkit.sliding_windows, rnnkit.char_dataset])
def test_text_helpers_non_string(helper):
    """A non-string text is a TypeError."""
    with pytest.raises(TypeError, match=r"expects a str, got list"):
        helper(["h", "e", "l", "l", "o"], 2)


# -- optimizer arguments ---------------------------------------------------------------------

@pytest.mark.parametrize("cls", [SGD, Adam, RMSprop, Adagrad])
@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf")])
def test_optimizer_bad_learning_rate(cls, lr):
    """A negative or non-finite learning rate is refused, naming the value (0 is allowed, as in Keras)."""
    with pytest.raises(ValueError, match=r"learning_rate must be a finite number >= 0, got"):
        cls(learning_rate=lr)


@pytest.mark.parametrize("cls", [SGD, Adam, RMSprop, Adagrad])
def test_optimizer_learning_rate_wrong_type(cls):
    """A string learning rate is a TypeError."""
    with pytest.raises(TypeError, match=r"learning_rate must be a finite number >= 0, got str: '0.1'"):
        cls(learning_rate="0.1")


@pytest.mark.parametrize("cls", [SGD, Adam, RMSprop, Adagrad])
@pytest.mark.parametrize("given", [
    {"clipnorm": 1.0, "clipvalue": 0.5},
    {"clipnorm": 1.0, "global_clipnorm": 2.0},
    {"clipvalue": 0.5, "global_clipnorm": 2.0},
    {"clipnorm": 1.0, "clipvalue": 0.5, "global_clipnorm": 2.0},
])
def test_optimizer_more_than_one_clipping(cls, given):
    """Only one of clipnorm / clipvalue / global_clipnorm; the message names the ones given."""
    with pytest.raises(ValueError, match=r"Only one of clipnorm, clipvalue and global_clipnorm can be set; got "
                                         + ", ".join(given)):
        cls(**given)


@pytest.mark.parametrize("arg", ["clipnorm", "clipvalue", "global_clipnorm"])
def test_optimizer_negative_clipping(arg):
    """A negative clipping threshold is refused."""
    with pytest.raises(ValueError, match=rf"{arg} must be a positive finite number, got -1\.0"):
        Adam(**{arg: -1.0})


def test_optimizer_other_ranges():
    """beta_1, rho and momentum outside their ranges are refused, naming the valid range."""
    with pytest.raises(ValueError, match=r"beta_1 must be in \[0, 1\), got 1\.0"):
        Adam(beta_1=1.0)
    with pytest.raises(ValueError, match=r"rho must be in \[0, 1\), got -0\.5"):
        RMSprop(rho=-0.5)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 2"):
        SGD(momentum=2)


# -- model structure -------------------------------------------------------------------------

def test_recurrent_after_non_sequence_output_at_add():
    """Stacking SimpleRNN on one without return_sequences is refused at add, and the model is unchanged."""
    model = rnnkit.Sequential([SimpleRNN(4, input_shape=(TIMESTEPS, FEATURES))], seed=0)
    before = model.get_weights()
    second = SimpleRNN(2)
    with pytest.raises(ValueError, match=r"Layer 'simple_rnn_1' \(SimpleRNN\) expects 3-D input.*got shape "
                                         r"\(None, 4\).*return_sequences=True"):
        model.add(second)
    assert [layer.name for layer in model.layers] == ["simple_rnn"]
    assert second.name is None and not second.built
    assert_same_weights(before, model.get_weights())
    model.add(Dense(2))  # the model is still usable


def test_recurrent_after_non_sequence_output_at_first_fit():
    """The same mistake in a model built lazily is reported at fit, with return_sequences=True, changing nothing."""
    model = rnnkit.Sequential([SimpleRNN(4), SimpleRNN(2)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    x, _ = data()
    with pytest.raises(ValueError, match=r"return_sequences=True"):
        model.fit(x, np.zeros((N, 2)), epochs=1, verbose=0)
    assert model.get_weights() == []
    assert not any(layer.built for layer in model.layers)
    assert model.input_shape is None


def test_recurrent_after_return_sequences_is_fine():
    """With return_sequences=True on the first layer the stack builds."""
    model = rnnkit.Sequential([SimpleRNN(4, return_sequences=True, input_shape=(TIMESTEPS, FEATURES)),
                               SimpleRNN(2)], seed=0)
    assert model.output_shape == (None, 2)


@pytest.mark.parametrize("thing", ["dense", 3, Dense, np.zeros(3)])
def test_add_non_layer(thing):
    """Sequential.add of something that is not a layer is a TypeError naming what was given."""
    model = rnnkit.Sequential()
    with pytest.raises(TypeError, match=r"Sequential\.add expects an rnnkit layer, got"):
        model.add(thing)
    assert model.layers == []


def test_non_layer_in_constructor():
    """Sequential([...]) checks its items the same way."""
    with pytest.raises(TypeError, match=r"Sequential\.add expects an rnnkit layer, got str: 'dense'"):
        rnnkit.Sequential([SimpleRNN(4, input_shape=(3, 5)), "dense"])


def test_duplicate_explicit_layer_names():
    """Two layers with the same explicit name: the message names the model and the duplicate."""
    model = rnnkit.Sequential([SimpleRNN(4, input_shape=(TIMESTEPS, FEATURES), name="rnn")], seed=0)
    with pytest.raises(ValueError, match=r"Model 'sequential' already has a layer named 'rnn'; names must be unique"):
        model.add(Dense(2, name="rnn"))
    assert [layer.name for layer in model.layers] == ["rnn"]


def test_same_layer_added_twice():
    """Adding one layer object twice is refused."""
    layer = Dense(3)
    model = rnnkit.Sequential([Dense(3, input_shape=(3,)), layer])
    with pytest.raises(ValueError, match=r"Layer 'dense_1' is already in model 'sequential'"):
        model.add(layer)


def test_bad_layer_arguments():
    """Dropout rate and layer names are checked when the layer is made."""
    with pytest.raises(ValueError, match=r"Dropout rate must be a number in \[0, 1\), got 1\.5"):
        Dropout(1.5)
    with pytest.raises(TypeError, match=r"name must be a non-empty string, got ''"):
        Dense(3, name="")
    with pytest.raises(ValueError, match=r"input_shape must hold positive integers.*got \(3, 0\)"):
        SimpleRNN(3, input_shape=(3, 0))


# -- command line ----------------------------------------------------------------------------

def test_cli_demo_text_too_short(capsys):
    """The demo with a text shorter than seq_length exits 2 with one error line on stderr and no traceback."""
    code = cli.main(["demo", "--text", "ab", "--seq-length", "3", "--verbose", "0"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rnnkit demo: error:")
    assert "seq_length (3) must be smaller than the text length (2)" in lines[0]
    assert "Traceback" not in err


def test_cli_demo_start_with_unknown_characters(capsys):
    """A --start text with characters the model has never seen is a one-line error, exit code 2."""
    code = cli.main(["demo", "--text", "abcabcabc", "--start", "abz", "--epochs", "1", "--verbose", "0"])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "not in the vocabulary: 'z'" in lines[0]
    assert "Traceback" not in err
