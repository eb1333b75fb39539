"""Conv1D against Keras 3, PyTorch and central finite differences, and inside models.

Keras 3 (torch backend, float64, weights copied with ``set_weights``): the same outputs for every
padding / stride / dilation combination, both data formats and grouped kernels, and no mask on the
output. PyTorch (``torch.nn.functional.conv1d``, float64, 1e-10): outputs and the gradients of the
input, kernel and bias for ``L = sum(w * y)``; torch's layout is ``x (B, C, T)`` and ``weight (F, C / G, K)``,
and it has no "causal" padding (nor "same" with strides), so the test pads by hand from the rule
written here. Finite differences: relative error < 1e-6 in float64.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import torch
from keras.src import backend as keras_backend

import rnnkit
from gradcheck import numeric_grad, rel_error
from rnnkit import Input, Model
from rnnkit.layers import (
    GRU,
    LAYER_CLASSES,
    LSTM,
    Bidirectional,
    Conv1D,
    Dense,
    Embedding,
    GlobalAveragePooling1D,
    MaxPooling1D,
)

B, C, F = 2, 4, 6
#: (padding, strides, dilation_rate); Keras refuses strides > 1 together with dilation_rate > 1
GEOMETRIES = [(p, s, d) for p in ("valid", "same", "causal") for s, d in ((1, 1), (2, 1), (3, 1), (1, 2), (1, 3))]


def make_conv(rng, kernel_size, padding, strides, dilation_rate, channels=C, **kwargs):
    """A built float64 Conv1D with random (non-zero) kernel and bias."""
    layer = Conv1D(F, kernel_size, strides=strides, padding=padding, dilation_rate=dilation_rate, **kwargs)
    layer.build((channels, None) if kwargs.get("data_format") == "channels_first" else (None, channels))
    layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    return layer


def keras_conv(layer, steps):
    """Keras' Conv1D with the same settings and weights as ``layer`` (float64)."""
    k = keras.layers.Conv1D(layer.filters, layer.kernel_size, strides=layer.strides, padding=layer.padding,
                            data_format=layer.data_format, dilation_rate=layer.dilation_rate, groups=layer.groups,
                            use_bias=layer.use_bias, activation=layer.activation.name, dtype="float64")
    channels = layer.params["kernel"].shape[1] * layer.groups
    k.build((None, steps, channels) if layer.data_format == "channels_last" else (None, channels, steps))
    k.set_weights(layer.get_weights())
    return k


def torch_conv(x, kernel, bias, strides, padding, dilation_rate, groups):
    """Torch's conv1d on channels_last ``x (B, T, C)``, padded by Keras' rule; returns ``(B, T_out, F)``."""
    K = kernel.shape[0]
    span = dilation_rate * (K - 1) + 1
    xt = x.transpose(1, 2)                                                      # (B, C, T)
    weight = kernel.permute(2, 1, 0)                                            # (F, C / G, K)
    if padding == "same" and strides == 1:
        pad = "same"                                 # torch's own split: the odd zero at the end too
    else:
        pad = 0
        T = x.shape[1]
        if padding == "causal":
            xt = torch.nn.functional.pad(xt, (span - 1, 0))
        elif padding == "same":
            total = max(0, (-(-T // strides) - 1) * strides + span - T)
            xt = torch.nn.functional.pad(xt, (total // 2, total - total // 2))
    with warnings.catch_warnings():
        # torch warns that "same" with an even kernel pads a copy of x: a cost, not a problem, here
        warnings.filterwarnings("ignore", message="Using padding='same'")
        y = torch.nn.functional.conv1d(xt, weight, bias, stride=strides, padding=pad, dilation=dilation_rate,
                                       groups=groups)
    return y.transpose(1, 2)


# -- Keras ---------------------------------------------------------------------------------------

@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("padding,strides,dilation", GEOMETRIES)
def test_forward_matches_keras(padding, strides, dilation, rng):
    # odd and even kernels on odd and even lengths: every way "same" can split its zeros
    for data_format, kernel_size, steps in (("channels_last", 1, 7), ("channels_last", 2, 7), ("channels_last", 2, 8),
                                            ("channels_last", 3, 8), ("channels_first", 3, 7)):
        layer = make_conv(rng, kernel_size, padding, strides, dilation, data_format=data_format)
        shape = (B, steps, C) if data_format == "channels_last" else (B, C, steps)
        x = rng.normal(size=shape)
        ours = layer(x)
        theirs = keras_conv(layer, steps)(torch.tensor(x)).detach().numpy()
        assert ours.shape == theirs.shape, (kernel_size, steps, ours.shape, theirs.shape)
        assert ours.shape[1:] == layer.compute_output_shape(shape[1:])
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("case", [
    dict(groups=2), dict(groups=2, padding="same", strides=2), dict(groups=3, filters=3, padding="causal"),
    dict(activation="tanh", use_bias=False), dict(activation="softmax", padding="same"),
])
def test_forward_matches_keras_groups_and_activations(case, rng):
    case = dict(case)
    filters, channels = case.pop("filters", F), 6
    layer = Conv1D(filters, 3, **case)
    layer.build((None, channels))
    layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    x = rng.normal(size=(B, 9, channels))
    np.testing.assert_allclose(layer(x), keras_conv(layer, 9)(torch.tensor(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-10)


def test_weights_and_shapes_are_keras_layout():
    layer = Conv1D(10, 3, groups=2)
    layer.build((None, 4))
    ref = keras.layers.Conv1D(10, 3, groups=2)
    ref.build((None, 7, 4))
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in ref.get_weights()] == [(3, 2, 10), (10,)]
    assert layer.count_params() == ref.count_params() == 3 * 2 * 10 + 10
    assert Conv1D.default_name() == "conv1d" and ref.name.startswith("conv1d")
    assert layer.kernel_size == ref.kernel_size == (3,)
    assert layer.strides == ref.strides == (1,)
    assert layer.dilation_rate == ref.dilation_rate == (1,)


def test_no_mask_passes_through_as_in_keras(rng):
    x = rng.normal(size=(B, 6, C))
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    layer = Conv1D(F, 3, padding="same")
    layer(x)
    assert layer.compute_mask(x, mask) is None
    t = torch.tensor(x)
    keras_backend.set_keras_mask(t, torch.tensor(mask))
    with pytest.warns(UserWarning, match="destroy the mask"):      # Keras says so, and drops it
        out = keras_conv(layer, 6)(t)
    assert keras_backend.get_keras_mask(out) is None


@pytest.mark.usefixtures("float64")
def test_masked_embedding_then_conv_matches_keras_model(rng):
    """Embedding(mask_zero=True) -> Conv1D -> GlobalAveragePooling1D: the pooling sees no mask, in both."""
    tokens = np.array([[3, 1, 4, 0, 0, 0], [2, 7, 1, 8, 2, 0]])
    model = rnnkit.Sequential([Input((6,), dtype="int64"), Embedding(9, 4, mask_zero=True), Conv1D(5, 2),
                               GlobalAveragePooling1D()])
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    with warnings.catch_warnings(record=True) as caught:          # Keras says it drops the mask
        warnings.simplefilter("always")
        ref = keras.Sequential([keras.Input((6,), dtype="int64"), keras.layers.Embedding(9, 4, mask_zero=True),
                                keras.layers.Conv1D(5, 2, dtype="float64"), keras.layers.GlobalAveragePooling1D()])
        ref.set_weights(model.get_weights())
        theirs = ref.predict(tokens, verbose=0)
    assert any("destroy the mask" in str(w.message) for w in caught)
    np.testing.assert_allclose(model.predict(tokens, verbose=0), theirs, rtol=1e-6, atol=1e-6)


# -- PyTorch -------------------------------------------------------------------------------------

def check_against_torch(layer, x, rng):
    """Output and the gradients of input, kernel and bias equal torch's for ``L = sum(w * y)``."""
    y = layer(x)
    w = rng.normal(size=y.shape)
    dx = layer.backward(w)
    xt = torch.tensor(x if layer.data_format == "channels_last" else x.transpose(0, 2, 1), requires_grad=True)
    kt = torch.tensor(layer.params["kernel"], requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True) if layer.use_bias else None
    z = torch_conv(xt, kt, bt, layer.strides[0], layer.padding, layer.dilation_rate[0], layer.groups)  # (B, T_out, F)
    if layer.data_format == "channels_first":
        z = z.transpose(1, 2)
    yt = {"linear": z, "tanh": torch.tanh(z)}[layer.activation.name]
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    dx_ref = xt.grad.numpy() if layer.data_format == "channels_last" else xt.grad.numpy().transpose(0, 2, 1)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.grads["kernel"], kt.grad.numpy(), rtol=1e-10, atol=1e-10)
    if layer.use_bias:
        np.testing.assert_allclose(layer.grads["bias"], bt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("padding,strides,dilation", GEOMETRIES)
def test_forward_and_gradients_match_torch(padding, strides, dilation, rng):
    for kernel_size, steps in ((1, 8), (2, 7), (2, 8), (3, 7)):
        layer = make_conv(rng, kernel_size, padding, strides, dilation)
        check_against_torch(layer, rng.normal(size=(B, steps, C)), rng)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("case", [
    dict(groups=2), dict(groups=2, padding="same", strides=2, activation="tanh"), dict(groups=4, padding="causal"),
    dict(use_bias=False, activation="tanh"), dict(data_format="channels_first", padding="same", strides=2),
    dict(data_format="channels_first", groups=2, padding="causal", dilation_rate=2),
])
def test_groups_activation_and_channels_first_match_torch(case, rng):
    channels, steps = 8, 9
    layer = Conv1D(8, 3, **case)
    layer.build((channels, None) if case.get("data_format") == "channels_first" else (None, channels))
    layer.set_weights([rng.normal(size=w.shape) for w in layer.get_weights()])
    shape = (B, steps, channels) if layer.data_format == "channels_last" else (B, channels, steps)
    check_against_torch(layer, rng.normal(size=shape), rng)


@pytest.mark.usefixtures("float64")
def test_longer_sequences_match_torch(rng):
    """A size nearer a real speech model: 2 x 120 steps x 13 features, kernel 11, stride 2."""
    layer = Conv1D(16, 11, strides=2, padding="same")
    layer.build((None, 13))
    check_against_torch(layer, rng.normal(size=(2, 120, 13)), rng)


# -- finite differences --------------------------------------------------------------------------

@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("case", [
    dict(padding="valid", strides=2), dict(padding="same", dilation_rate=2), dict(padding="causal", dilation_rate=2),
    dict(padding="same", strides=3, groups=2), dict(padding="same", strides=4, kernel_size=2),
    dict(padding="causal", data_format="channels_first", activation="tanh"),
])
def test_gradients_match_finite_differences(case, rng):
    case = dict(case)
    layer = Conv1D(4, case.pop("kernel_size", 3), activation=case.pop("activation", "sigmoid"), **case)
    x = rng.normal(size=(2, 4, 7) if layer.data_format == "channels_first" else (2, 7, 4))
    layer.build(x.shape[1:])
    layer.set_weights([rng.normal(size=v.shape) for v in layer.get_weights()])
    y = layer(x)
    w = rng.normal(size=y.shape)
    dx = layer.backward(w)
    loss = lambda: float((w * layer.forward(x)).sum())
    assert rel_error(dx, numeric_grad(loss, x)) < 1e-6
    for name, p in layer.params.items():
        assert rel_error(layer.grads[name], numeric_grad(loss, p)) < 1e-6, name


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_softmax_output_with_crossentropy_matches_finite_differences(data_format, rng):
    """A Conv1D(softmax) output trained with categorical cross-entropy: the fused softmax gradient path."""
    steps = 6
    shape = (steps, 3) if data_format == "channels_last" else (3, steps)
    model = rnnkit.Sequential([Input(shape), Conv1D(4, 3, padding="causal", activation="softmax",
                                                    data_format=data_format, seed=1)])
    model.compile("sgd", "categorical_crossentropy")
    assert model._fused_nodes(), "the softmax + cross-entropy gradient should take the fused path"
    x = rng.normal(size=(B, *shape))
    y = rnnkit.one_hot(rng.integers(0, 4, size=(B, steps) if data_format == "channels_last" else (B, 4)),
                       4 if data_format == "channels_last" else steps)
    _, grads = model.loss_and_gradients(x, y)
    loss = lambda: model.test_on_batch(x, y, return_dict=True)["loss"]
    for weight, g in zip(model.trainable_weights, grads):     # channels_first: the bias gradient is 0
        np.testing.assert_allclose(g, numeric_grad(loss, weight), rtol=1e-6, atol=1e-9)


# -- in models -----------------------------------------------------------------------------------

def speech_like_model(features=5, classes=4, seed=0):
    """Conv1D + pooling + bidirectional GRU + per-step softmax: the usual front of a CTC speech model."""
    inp = Input((None, features))
    h = Conv1D(8, 3, padding="same", activation="relu", seed=seed)(inp)
    h = MaxPooling1D(2, padding="same")(h)
    h = Bidirectional(GRU(6, return_sequences=True, seed=seed + 1))(h)
    out = Dense(classes, activation="softmax", seed=seed + 2)(h)
    return Model(inp, out)


def test_functional_model_takes_any_length_and_summarises(rng):
    model = speech_like_model()
    for steps in (10, 13):
        y = model.predict(rng.normal(size=(3, steps, 5)).astype("float32"), verbose=0)
        assert y.shape == (3, -(-steps // 2), 4)
    conv = model.layers[1]
    assert isinstance(conv, Conv1D) and conv.output_shape == (None, 8)
    lines = []
    model.summary(print_fn=lines.append)
    row = next(line for line in "\n".join(lines).splitlines() if line.lstrip().startswith("conv1d"))
    assert "(None, None, 8)" in row and str(3 * 5 * 8 + 8) in row, row


@pytest.mark.usefixtures("float64")
def test_model_gradients_match_finite_differences(rng):
    inp = Input((7, 3))
    h = Conv1D(4, 3, strides=2, padding="same", activation="tanh", seed=3)(inp)
    h = LSTM(3, seed=4)(h)
    model = Model(inp, Dense(2, seed=5)(h))
    model.compile("sgd", "mse")
    x, y = rng.normal(size=(B, 7, 3)), rng.normal(size=(B, 2))
    _, grads = model.loss_and_gradients(x, y)
    loss = lambda: model.test_on_batch(x, y, return_dict=True)["loss"]
    for weight, g in zip(model.trainable_weights, grads):
        assert rel_error(g, numeric_grad(loss, weight)) < 1e-6


def regression_data(rng, n=64, steps=12):
    """``y = mean_t (0.5 x[t, 0] - x[t + 1, 1])``: a two-tap filter averaged over time, which
    Conv1D(kernel_size=2) + GlobalAveragePooling1D + Dense can represent exactly."""
    x = rng.normal(size=(n, steps, 2)).astype("float32")
    y = (0.5 * x[:, :-1, 0] - x[:, 1:, 1]).mean(axis=1, keepdims=True)
    return x, y


def test_sequential_fit_learns_a_filter(rng):
    x, y = regression_data(rng)
    model = rnnkit.Sequential([Conv1D(4, 2, input_shape=(12, 2)), GlobalAveragePooling1D(), Dense(1)], seed=0)
    model.compile(rnnkit.optimizers.Adam(learning_rate=0.02), "mse")
    history = model.fit(x, y, epochs=40, batch_size=16, verbose=0)
    first, last = history.history["loss"][0], history.history["loss"][-1]
    assert last < 0.05 * first, (first, last)


def test_save_and_load_round_trip(tmp_path, rng):
    model = speech_like_model(seed=7)
    model.compile("adam", "categorical_crossentropy")
    x = rng.normal(size=(4, 11, 5)).astype("float32")
    y = rnnkit.one_hot(rng.integers(0, 4, size=(4, 6)), 4)
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "conv.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert loaded.get_config() == model.get_config()
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    seq = rnnkit.Sequential([Conv1D(3, 2, strides=2, padding="causal", dilation_rate=1, groups=1,
                                    kernel_regularizer="l2", bias_constraint="non_neg", data_format="channels_first",
                                    input_shape=(4, 9))])
    seq.save(tmp_path / "seq.safetensors")
    again = rnnkit.load_model(tmp_path / "seq.safetensors")
    conv = again.layers[0]
    assert conv.get_config() == seq.layers[0].get_config()
    assert (conv.strides, conv.padding, conv.data_format, conv.output_shape) == ((2,), "causal", "channels_first",
                                                                             (3, 5))
    assert "kernel" in conv.regularizers and "bias" in conv.constraints


def test_config_round_trip_and_registration():
    layer = Conv1D(6, (5,), strides=[2], padding="SAME", dilation_rate=1, activation="relu", use_bias=False,
                   kernel_initializer="he_normal", name="front")
    config = layer.get_config()
    assert config["kernel_size"] == [5] and config["strides"] == [2] and config["padding"] == "same"
    assert "bias_initializer" in config and config["use_bias"] is False
    assert LAYER_CLASSES["Conv1D"](**config).get_config() == config


def test_shared_layer_takes_other_lengths_in_both_formats(rng):
    for data_format, shape_a, shape_b in (("channels_last", (6, 3), (9, 3)), ("channels_first", (3, 6), (3, 9))):
        conv = Conv1D(2, 3, padding="same", data_format=data_format, seed=0)
        a, b = Input(shape_a), Input(shape_b)
        model = Model([a, b], [conv(a), conv(b)])
        ya, yb = model.predict([rng.normal(size=(1, *shape_a)), rng.normal(size=(1, *shape_b))], verbose=0)
        assert ya.shape[1:] == conv.compute_output_shape(shape_a) and yb.shape[1:] == conv.compute_output_shape(
            shape_b)


# -- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,words", [
    (dict(filters=0, kernel_size=3), ValueError, "filters"),
    (dict(filters=4, kernel_size=0), ValueError, "kernel_size"),
    (dict(filters=4, kernel_size=-2), ValueError, "kernel_size"),
    (dict(filters=4, kernel_size=(3, 3)), ValueError, "tuple of one"),
    (dict(filters=4, kernel_size="3"), TypeError, "kernel_size"),
    (dict(filters=4, kernel_size=2.5), TypeError, "kernel_size"),
    (dict(filters=4, kernel_size=3, strides=0), ValueError, "strides"),
    (dict(filters=4, kernel_size=3, dilation_rate=0), ValueError, "dilation_rate"),
    (dict(filters=4, kernel_size=3, padding="full"), ValueError, "'valid', 'same', 'causal'"),
    (dict(filters=4, kernel_size=3, padding=None), TypeError, "padding"),
    (dict(filters=4, kernel_size=3, data_format="NWC"), ValueError, "data_format"),
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), ValueError, "dilation_rate"),
    (dict(filters=5, kernel_size=3, groups=2), ValueError, "divisible by groups"),
    (dict(filters=4, kernel_size=3, groups=0), ValueError, "groups"),
    (dict(filters=4, kernel_size=3, activation="swishy"), ValueError, "activation"),
    (dict(filters=4, kernel_size=3, use_bias="yes"), TypeError, "use_bias"),
    (dict(filters=4, kernel_size=2**31), ValueError, r"kernel_size must be at most 2147483647"),
    (dict(filters=4, kernel_size=[2**63]), ValueError, r"kernel_size must be at most 2147483647"),
    (dict(filters=4, kernel_size=3, strides=2**31), ValueError, r"strides must be at most 2147483647"),
    (dict(filters=4, kernel_size=2, dilation_rate=2**31), ValueError, r"dilation_rate must be at most 2147483647"),
    (dict(filters=4, kernel_size=3, dilation_rate=2**30), ValueError, r"receptive field .* got 2147483649"),
])
def test_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        Conv1D(**kwargs)


def test_the_largest_window_is_accepted_where_its_padding_is_sane():
    layer = Conv1D(2, 2**31 - 1, padding="valid")        # the bounds themselves are valid arguments
    assert layer.span == 2**31 - 1
    assert Conv1D(2, 2, dilation_rate=2**31 - 2).span == 2**31 - 1


@pytest.mark.parametrize("padding", ["same", "causal"])
def test_a_receptive_field_far_longer_than_the_input_is_refused(padding, rng):
    # the fuzz finding: a dilation of 2**30 with "same" padding on 4 steps would pad each sequence with 2**30 zeros
    x = Input((4, 3))
    with pytest.raises(ValueError, match=rf"Layer 'wide' \(Conv1D\) with padding='{padding}'.*4 steps.*"
                                         r"would add 1073741824 zeros"):
        Conv1D(2, 2, dilation_rate=2**30, padding=padding, name="wide")(x)
    # a length unknown at build time: refused when the call brings one, before the padding is allocated
    model = Model(y := Input((None, 3)), Conv1D(2, 2, dilation_rate=2**30, padding=padding)(y))
    with pytest.raises(ValueError, match="would add 1073741824 zeros"):
        model.predict(rng.normal(size=(2, 4, 3)), verbose=0)
    # what stays allowed: up to MAX_PADDING_STEPS zeros on short sequences, and as many zeros as steps on long ones
    from rnnkit.layers.conv import MAX_PADDING_STEPS

    span = MAX_PADDING_STEPS + 1
    near = Conv1D(1, 2, dilation_rate=span - 1, padding=padding)
    assert near(rng.normal(size=(1, 4, 3))).shape == (1, 4, 1)
    with pytest.raises(ValueError, match="padding would add"):
        Conv1D(1, 2, dilation_rate=span, padding=padding)(rng.normal(size=(1, 4, 3)))
    long = rng.normal(size=(1, 5 * span, 1))
    assert Conv1D(1, 2, dilation_rate=span, padding=padding)(long).shape == (1, 5 * span, 1)


def test_a_wavenet_dilation_runs_on_short_sequences(rng, float64):
    """A WaveNet's largest dilation (512) on sequences shorter than its receptive field: sane padding, so
    accepted, and the output matches PyTorch's causal convolution (float64)."""
    x = rng.normal(size=(2, 6, 3))
    layer = make_conv(rng, 2, "causal", 1, 512, channels=3)
    y = layer(x)
    kernel, bias = layer.params["kernel"], layer.params["bias"]
    xt = torch.nn.functional.pad(torch.tensor(x.transpose(0, 2, 1)), (512, 0))
    ref = torch.nn.functional.conv1d(xt, torch.tensor(kernel.transpose(2, 1, 0)), torch.tensor(bias), dilation=512)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, ref.numpy().transpose(0, 2, 1), atol=1e-12, rtol=0)


def test_bad_inputs_are_refused_before_anything_changes(rng):
    with pytest.raises(ValueError, match=r"Layer 'conv1d' \(Conv1D\) with padding='valid'.* at least 5 steps, got 4"):
        Conv1D(2, 3, dilation_rate=2).build((4, 3))
    with pytest.raises(ValueError, match="at least 3 steps, got 2"):
        rnnkit.Sequential([Conv1D(2, 3, input_shape=(2, 3))])
    with pytest.raises(ValueError, match="divisible by groups=2"):
        Conv1D(4, 3, groups=2).build((None, 3))
    with pytest.raises(ValueError, match="channel axis"):
        Conv1D(4, 3, data_format="channels_first").build((None, 7))
    with pytest.raises(ValueError, match="rank 3"):
        Conv1D(4, 3).build((7,))
    layer = Conv1D(2, 3)
    layer.build((None, 3))                      # any length: a short one is refused when it comes
    with pytest.raises(ValueError, match="at least 3 steps, got 2"):
        layer(rng.normal(size=(1, 2, 3)))
    with pytest.raises(ValueError, match="built for 3 input channels, got 4"):
        layer(rng.normal(size=(1, 5, 4)))
    model = rnnkit.Sequential([Input((None, 3)), Conv1D(2, 4)])
    with pytest.raises(ValueError, match="at least 4 steps"):
        model.predict(rng.normal(size=(2, 3, 3)), verbose=0)
    assert layer(rng.normal(size=(1, 3, 3))).shape == (1, 1, 2)
    layer.keep_cache = False                    # predict's forward: no backward may follow it
    y = layer(rng.normal(size=(1, 5, 3)))
    with pytest.raises(RuntimeError, match="keep_cache"):
        layer.backward(np.ones_like(y))
