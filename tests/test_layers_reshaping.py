"""Reshape, Flatten, Permute and the global 1-D poolings against finite differences and Keras 3.

Gradients: ``L = sum(w * y)`` for a fixed random ``w``; ``backward(w)`` must match central
differences in float64 (relative error < 1e-6), with masks for the poolings. Keras: the
same arrays (and masks) give the same outputs, and no mask passes through these layers.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from keras.src import backend as keras_backend

from gradcheck import numeric_grad, rel_error
from rnnkit.layers import LAYER_CLASSES, Flatten, GlobalAveragePooling1D, GlobalMaxPooling1D, Permute, Reshape

TOL = 1e-6
B, T, D = 3, 5, 4

#: (B, T) masks, True marks a real step
MASKS = {
    "right_padding": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=bool),
    "gaps": np.array([[1, 0, 1, 0, 1], [0, 1, 1, 0, 1], [0, 0, 0, 0, 1]], dtype=bool),
}
#: a sample whose steps are all masked (the second)
FULLY_MASKED = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 1, 1, 1]], dtype=bool)


def distinct(rng, shape):
    """Values at least 0.1 apart, so the maximum never ties (not even under a finite-difference step)."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.1 + rng.uniform(0, 0.01, n)).reshape(shape)


def check_grad(layer, x, rng, **kwargs):
    layer.build(x.shape[1:])
    y = layer.forward(x, **kwargs)
    assert y.shape[1:] == layer.compute_output_shape(x.shape[1:])
    w = rng.normal(size=y.shape)
    dx = layer.backward(w)
    assert dx.shape == x.shape
    numeric = numeric_grad(lambda: float((w * layer.forward(x, **kwargs)).sum()), x)
    assert rel_error(dx, numeric) < TOL


def keras_call(keras_layer, x, mask=None):
    """Keras' output and the mask it leaves on it, for an input carrying ``mask``."""
    t = torch.tensor(x)
    if mask is not None:
        keras_backend.set_keras_mask(t, torch.tensor(mask))
    out = keras_layer(t)
    return out.detach().numpy(), keras_backend.get_keras_mask(out)


def assert_matches_keras_mean(ours, theirs):
    """Keras' torch backend takes the mean in float32 even in a float64 layer (its dtype
    promotion caps at float32), so the inputs are exact in float32 and the tolerance is float32's."""
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())


# -- gradients -----------------------------------------------------------------------------------

RESHAPING = {
    "reshape": (lambda: Reshape((-1, 2)), (B, T, D)),
    "reshape_no_minus_one": (lambda: Reshape((2, 10)), (B, T, D)),
    "reshape_to_vector": (lambda: Reshape((T * D,)), (B, T, D)),
    "flatten": (lambda: Flatten(), (B, T, D)),
    "flatten_rank4": (lambda: Flatten(), (B, 2, T, D)),
    "flatten_channels_first": (lambda: Flatten(data_format="channels_first"), (B, 2, T, D)),
    "permute_2_1": (lambda: Permute((2, 1)), (B, T, D)),
    "permute_3_1_2": (lambda: Permute((3, 1, 2)), (B, 2, T, D)),
}


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("case", list(RESHAPING))
def test_reshaping_gradients(case, rng):
    make, shape = RESHAPING[case]
    check_grad(make(), rng.normal(size=shape), rng)


POOLS = {"average": GlobalAveragePooling1D, "max": GlobalMaxPooling1D}


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("mask", [None, *MASKS, "fully_masked"])
def test_pooling_gradients(pool, data_format, keepdims, mask, rng):
    m = FULLY_MASKED if mask == "fully_masked" else MASKS.get(mask)
    shape = (B, T, D) if data_format == "channels_last" else (B, D, T)
    check_grad(POOLS[pool](data_format=data_format, keepdims=keepdims), distinct(rng, shape), rng, mask=m)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("case", ["reshape", "flatten_channels_first", "permute_2_1", "average", "average_masked",
                                  "max"])
def test_call_state_lets_a_shared_layer_reverse_an_earlier_call(case, rng):
    """Forward A, keep its call state, forward B (another length), restore A: backward gives A's gradient."""
    make, shape = RESHAPING[case] if case in RESHAPING else (lambda: POOLS[case.split("_")[0]](), (B, T, D))
    layer = make()
    kwargs = {"mask": MASKS["gaps"]} if case == "average_masked" else {}
    first = distinct(rng, shape)
    second = distinct(rng, (B, 2 * shape[1], *shape[2:])) if case != "reshape" else distinct(rng, (B, 2, 2 * D))
    w = rng.normal(size=layer(first, **kwargs).shape)
    expected = layer.backward(w)
    layer.forward(first, **kwargs)
    state = layer.get_call_state()
    layer.forward(second)
    layer.set_call_state(state)
    np.testing.assert_array_equal(layer.backward(w), expected)


# -- Keras: outputs and masks -----------------------------------------------------------------------

KERAS_RESHAPING = {
    "reshape": (Reshape((-1, 2)), lambda: keras.layers.Reshape((-1, 2), dtype="float64"), (B, T, D)),
    "flatten": (Flatten(), lambda: keras.layers.Flatten(dtype="float64"), (B, T, D)),
    "flatten_channels_first": (Flatten("channels_first"),
                               lambda: keras.layers.Flatten("channels_first", dtype="float64"), (B, 2, T, D)),
    "permute": (Permute((2, 1)), lambda: keras.layers.Permute((2, 1), dtype="float64"), (B, T, D)),
    "permute_3_1_2": (Permute((3, 1, 2)), lambda: keras.layers.Permute((3, 1, 2), dtype="float64"), (B, 2, T, D)),
}


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("case", list(KERAS_RESHAPING))
def test_reshaping_matches_keras_and_drops_the_mask(case, rng):
    ours, make_keras, shape = KERAS_RESHAPING[case]
    x = rng.normal(size=shape)
    mask = rng.random(shape[:-1]) > 0.3
    with pytest.warns(UserWarning, match="destroy the mask"):     # Keras says so itself
        k_y, k_mask = keras_call(make_keras(), x, mask)
    np.testing.assert_array_equal(ours(x), k_y)           # only moves values: exactly equal
    assert k_mask is None and ours.compute_mask(x, mask) is None


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("mask", [None, *MASKS])
def test_average_pooling_matches_keras(data_format, keepdims, mask, rng):
    m = MASKS.get(mask)
    x = rng.normal(size=(B, T, D) if data_format == "channels_last" else (B, D, T)).astype(np.float32).astype(float)
    ours = GlobalAveragePooling1D(data_format=data_format, keepdims=keepdims)
    k_y, k_mask = keras_call(keras.layers.GlobalAveragePooling1D(data_format, keepdims, dtype="float64"), x, m)
    assert_matches_keras_mean(ours(x, mask=m), k_y)
    assert k_mask is None and ours.compute_mask(x, m) is None


@pytest.mark.usefixtures("float64")
def test_average_pooling_of_a_fully_masked_sample_is_zero_where_keras_gives_nan(rng):
    """The one place we leave Keras 3: 0 / 0 there is NaN, which would poison the loss."""
    x = rng.normal(size=(B, T, D)).astype(np.float32).astype(float)
    y = GlobalAveragePooling1D()(x, mask=FULLY_MASKED)
    k_y, _ = keras_call(keras.layers.GlobalAveragePooling1D(dtype="float64"), x, FULLY_MASKED)
    assert np.isnan(k_y[1]).all()
    np.testing.assert_array_equal(y[1], 0.0)
    assert_matches_keras_mean(y[[0, 2]], k_y[[0, 2]])


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_max_pooling_matches_keras_which_ignores_the_mask(data_format, keepdims, rng):
    x = rng.normal(size=(B, T, D) if data_format == "channels_last" else (B, D, T))
    ours = GlobalMaxPooling1D(data_format=data_format, keepdims=keepdims)
    with pytest.warns(UserWarning, match="destroy the mask"):
        k_y, k_mask = keras_call(keras.layers.GlobalMaxPooling1D(data_format, keepdims, dtype="float64"), x,
                                 MASKS["gaps"])
    assert not ours.consumes_mask
    np.testing.assert_array_equal(ours(x), k_y)
    np.testing.assert_array_equal(ours(x, mask=MASKS["gaps"]), k_y)   # accepted and ignored, as in Keras
    assert k_mask is None and ours.compute_mask(x, MASKS["gaps"]) is None


# -- shapes, configs, errors ----------------------------------------------------------------------

@pytest.mark.parametrize("layer,shape,expected", [
    (Reshape((-1, 2)), (5, 4), (10, 2)),
    (Reshape((-1, 2)), (None, 4), (None, 2)),
    (Reshape((2, 10)), (5, 4), (2, 10)),
    (Flatten(), (5, 4), (20,)),
    (Flatten(), (None, 4), (None,)),
    (Permute((2, 1)), (None, 4), (4, None)),
    (GlobalAveragePooling1D(), (None, 4), (4,)),
    (GlobalMaxPooling1D(keepdims=True), (None, 4), (1, 4)),
    (GlobalAveragePooling1D("channels_first", keepdims=True), (4, None), (4, 1)),
    (GlobalMaxPooling1D("channels_first"), (4, None), (4,)),
])
def test_compute_output_shape(layer, shape, expected):
    assert layer.compute_output_shape(shape) == expected


@pytest.mark.parametrize("layer", [Reshape((-1, 2), name="r"), Flatten("channels_first"), Permute((3, 1, 2)),
                                   GlobalAveragePooling1D("channels_first", keepdims=True), GlobalMaxPooling1D()])
def test_config_rebuilds_the_layer(layer):
    config = layer.get_config()
    clone = LAYER_CLASSES[type(layer).__name__](**config)
    assert clone.get_config() == config
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    x = x[..., 0] if isinstance(layer, (GlobalAveragePooling1D, GlobalMaxPooling1D)) else x
    if isinstance(layer, Reshape):
        x = x.reshape(2, 6, 10)
    np.testing.assert_array_equal(clone(x), layer(x))


def test_default_names_are_keras():
    assert GlobalAveragePooling1D().default_name() == "global_average_pooling1d"
    assert GlobalMaxPooling1D().default_name() == "global_max_pooling1d"
    assert (Reshape.default_name(), Flatten.default_name(), Permute.default_name()) == ("reshape", "flatten", "permute")


def test_data_format_none_is_channels_last_as_in_keras():
    assert Flatten(data_format=None).data_format == "channels_last"
    assert GlobalMaxPooling1D(data_format=None).get_config()["data_format"] == "channels_last"


def test_reshape_errors():
    with pytest.raises(ValueError, match=r"Layer 'reshape' \(Reshape\) cannot reshape inputs of shape "
                                         r"\(None, 5, 4\) \(20 values per sample\) to target_shape \(3, -1\)"):
        Reshape((3, -1)).check_input_shape((5, 4))
    with pytest.raises(ValueError, match=r"\(20 values per sample\) to target_shape \(3, 7\)"):
        Reshape((3, 7), name="r").build((5, 4))
    for bad in [(-1, -1), (0, 4), (2, -2), (2.0, 5)]:
        with pytest.raises(ValueError, match="positive integers and at most one -1"):
            Reshape(bad)
    with pytest.raises(TypeError, match="target_shape must be a tuple of integers, got 5"):
        Reshape(5)


def test_permute_errors():
    for bad in [(0, 1), (1, 3), (2, 2), (1.0, 2)]:
        with pytest.raises(ValueError, match=r"permutation of 1..n .* got"):
            Permute(bad)
    with pytest.raises(ValueError, match=r"Layer 'p' \(Permute\) expects inputs of rank 3 .* "
                                         r"got shape \(None, 2, 3, 4\)"):
        Permute((2, 1), name="p").build((2, 3, 4))


def test_flatten_and_pooling_argument_errors():
    with pytest.raises(ValueError, match="data_format must be one of 'channels_last', 'channels_first', got 'NHWC'"):
        Flatten(data_format="NHWC")
    with pytest.raises(ValueError, match="data_format must be one of"):
        GlobalAveragePooling1D(data_format="channels_middle")
    with pytest.raises(TypeError, match="keepdims must be True or False, got 1"):
        GlobalMaxPooling1D(keepdims=1)
    with pytest.raises(ValueError, match=r"\(GlobalAveragePooling1D\) expects inputs of rank 3 .* "
                                         r"got shape \(None, 4\)"):
        GlobalAveragePooling1D().build((4,))
