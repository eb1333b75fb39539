"""MaxPooling1D and AveragePooling1D against Keras 3, PyTorch, a loop reference and finite differences.

Keras 3 (torch backend): the same outputs for every pool size / stride / padding and both data
formats. With "same", the padded steps take no part in the maximum or the mean (TensorFlow's
rule, and Keras' own on its main branch). The installed Keras 3.15.1 torch backend breaks that rule
in one case: when the "same" zeros cannot be split evenly it pads by repeating the edge steps, and
the average then counts those copies; there the output is checked against the loop reference only.
PyTorch (``max_pool1d`` / ``avg_pool1d``, float64): outputs and input gradients with "valid"
padding, and the maximum with "same" padding applied by hand (-inf). Finite differences: relative
error < 1e-6 for ``L = sum(w * y)`` in float64, on inputs whose values are far apart so that the
maximum never ties.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from keras.src import backend as keras_backend

import rnnkit
from gradcheck import numeric_grad, rel_error
from rnnkit import Input
from rnnkit.layers import LAYER_CLASSES, AveragePooling1D, Conv1D, Dense, Flatten, MaxPooling1D

B, C = 2, 3
CLASSES = {"max": (MaxPooling1D, keras.layers.MaxPooling1D), "average": (AveragePooling1D,
                                                                         keras.layers.AveragePooling1D)}
#: (pool_size, strides): strides None means pool_size, as in Keras
WINDOWS = [(1, None), (2, None), (3, None), (2, 1), (3, 2), (2, 3), (4, 1)]


def distinct(rng, shape):
    """Values at least 0.1 apart, so the maximum never ties (not even under a finite-difference step)."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) * 0.1 + rng.uniform(0, 0.01, n)).reshape(shape)


def same_zeros(steps, pool_size, strides):
    """How many steps "same" pads in all (TensorFlow's rule: enough for ceil(T / s) windows)."""
    return max(0, (-(-steps // strides) - 1) * strides + pool_size - steps)


def reference_pool(x, mode, pool_size, strides, padding):
    """The pooling of channels_last ``x (B, T, C)`` written as a loop over the output steps."""
    steps = x.shape[1]
    left = same_zeros(steps, pool_size, strides) // 2 if padding == "same" else 0
    n_out = (steps - 1) // strides + 1 if padding == "same" else (steps - pool_size) // strides + 1
    out = []
    for t in range(n_out):
        lo = t * strides - left
        window = x[:, max(lo, 0):min(lo + pool_size, steps)]        # the real steps of window t
        out.append(window.max(axis=1) if mode == "max" else window.mean(axis=1))
    return np.stack(out, axis=1)


# -- Keras ---------------------------------------------------------------------------------------

@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("mode", list(CLASSES))
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_forward_matches_keras_and_the_loop_reference(mode, padding, data_format, rng):
    ours_cls, keras_cls = CLASSES[mode]
    for pool_size, strides in WINDOWS:
        for steps in (7, 8):
            layer = ours_cls(pool_size, strides, padding=padding, data_format=data_format)
            ref = keras_cls(pool_size, strides, padding=padding, data_format=data_format, dtype="float64")
            shape = (B, steps, C) if data_format == "channels_last" else (B, C, steps)
            x = distinct(rng, shape)
            ours = layer(x)
            x_last = x if data_format == "channels_last" else x.transpose(0, 2, 1)
            expected = reference_pool(x_last, mode, pool_size, strides or pool_size, padding)
            if data_format == "channels_first":
                expected = expected.transpose(0, 2, 1)
            np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)
            assert ours.shape[1:] == layer.compute_output_shape(shape[1:]) == ref.compute_output_shape(shape)[1:]
            uneven = padding == "same" and same_zeros(steps, pool_size, strides or pool_size) % 2 == 1
            if mode == "average" and uneven:
                continue                       # Keras 3.15.1's torch backend averages in copies of edge steps
            theirs = ref(torch.tensor(x)).detach().numpy()
            # Keras' torch backend averages in float32 even in a float64 layer; the maximum is exact
            tol = 1e-12 if mode == "max" else 1e-6
            np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * np.abs(x).max())


def test_defaults_names_and_no_mask_as_in_keras(rng):
    assert MaxPooling1D().pool_size == keras.layers.MaxPooling1D().pool_size == (2,)
    with pytest.raises(TypeError, match="pool_size"):       # as in Keras, AveragePooling1D has no default
        AveragePooling1D()
    for ours_cls, keras_cls in CLASSES.values():
        layer, ref = ours_cls(3), keras_cls(3)
        assert (layer.pool_size, layer.strides, layer.padding) == (ref.pool_size, ref.strides, ref.padding)
        assert ref.name.startswith(ours_cls.default_name())
        x = rng.normal(size=(B, 6, C))
        mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
        layer(x)
        assert layer.compute_mask(x, mask) is None
        t = torch.tensor(x, dtype=torch.float32)
        keras_backend.set_keras_mask(t, torch.tensor(mask))
        with pytest.warns(UserWarning, match="destroy the mask"):      # Keras says so, and drops it
            out = ref(t)
        assert keras_backend.get_keras_mask(out) is None
    assert MaxPooling1D.default_name() == "max_pooling1d"
    assert AveragePooling1D.default_name() == "average_pooling1d"


# -- PyTorch -------------------------------------------------------------------------------------

def torch_pool(mode, x, pool_size, strides, padding):
    """Torch's pooling of channels_last ``x (B, T, C)``; "same" is padded by Keras' rule (max only)."""
    xt = x.transpose(1, 2)                                                     # (B, C, T)
    if padding == "same":
        total = same_zeros(x.shape[1], pool_size, strides)
        xt = torch.nn.functional.pad(xt, (total // 2, total - total // 2), value=-torch.inf)
    pool = torch.nn.functional.max_pool1d if mode == "max" else torch.nn.functional.avg_pool1d
    return pool(xt, pool_size, strides).transpose(1, 2)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("mode,padding", [("max", "valid"), ("max", "same"), ("average", "valid")])
def test_forward_and_gradients_match_torch(mode, padding, rng):
    for pool_size, strides in WINDOWS:
        for steps in (7, 8):
            layer = CLASSES[mode][0](pool_size, strides, padding=padding)
            x = distinct(rng, (B, steps, C))
            y = layer(x)
            w = rng.normal(size=y.shape)
            dx = layer.backward(w)
            xt = torch.tensor(x, requires_grad=True)
            yt = torch_pool(mode, xt, pool_size, strides or pool_size, padding)
            (yt * torch.tensor(w)).sum().backward()
            np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


# -- finite differences --------------------------------------------------------------------------

@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("mode", list(CLASSES))
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("pool_size,strides", [(2, None), (3, 2), (2, 3), (3, 1)])
def test_gradients_match_finite_differences(mode, padding, data_format, pool_size, strides, rng):
    layer = CLASSES[mode][0](pool_size, strides, padding=padding, data_format=data_format)
    x = distinct(rng, (B, 7, C) if data_format == "channels_last" else (B, C, 7))
    y = layer(x)
    w = rng.normal(size=y.shape)
    dx = layer.backward(w)
    assert dx.shape == x.shape
    numeric = numeric_grad(lambda: float((w * layer.forward(x)).sum()), x)
    assert rel_error(dx, numeric) < 1e-6


def test_average_of_same_padding_counts_only_real_steps():
    """T = 5, pool 2, stride 2, "same": the last window holds one real step, whose value is its mean."""
    x = np.arange(5, dtype="float64").reshape(1, 5, 1)
    y = AveragePooling1D(2, padding="same")(x)
    assert np.array_equal(y[0, :, 0], [0.5, 2.5, 4.0])


# -- in models -----------------------------------------------------------------------------------

def test_model_with_pooling_trains_saves_and_loads(tmp_path, rng):
    x = rng.normal(size=(32, 12, 2)).astype("float32")
    y = np.stack([x[:, :, 0].max(axis=1), x[:, :, 1].mean(axis=1)], axis=1)
    model = rnnkit.Sequential([Input((None, 2)), Conv1D(4, 3, padding="same"), MaxPooling1D(2, strides=1),
                               AveragePooling1D(3, padding="same"), Conv1D(2, 1)], seed=0)
    model.compile("adam", "mse")
    model.fit(x, y[:, None, :].repeat(4, axis=1), epochs=3, batch_size=8, verbose=0)
    path = tmp_path / "pool.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert loaded.get_config() == model.get_config()
    for steps in (12, 9):
        z = rng.normal(size=(2, steps, 2)).astype("float32")
        assert np.array_equal(loaded.predict(z, verbose=0), model.predict(z, verbose=0))
        assert model.predict(z, verbose=0).shape == (2, -(-(steps - 1) // 3), 2)


@pytest.mark.usefixtures("float64")
def test_model_gradients_match_finite_differences(rng):
    model = rnnkit.Sequential([Input((8, 2)), Conv1D(3, 2, seed=1), MaxPooling1D(2, padding="same"),
                               AveragePooling1D(2, strides=1, data_format="channels_last"), Flatten(),
                               Dense(2, seed=2)])
    model.compile("sgd", "mse")
    x, y = distinct(rng, (B, 8, 2)), rng.normal(size=(B, 2))
    _, grads = model.loss_and_gradients(x, y)
    loss = lambda: model.test_on_batch(x, y, return_dict=True)["loss"]
    for weight, g in zip(model.trainable_weights, grads):
        assert rel_error(g, numeric_grad(loss, weight)) < 1e-6


def test_config_round_trip():
    for cls in (MaxPooling1D, AveragePooling1D):
        layer = cls((3,), strides=[2], padding="SAME", data_format="channels_first", name="p")
        config = layer.get_config()
        assert config == {"name": "p", "pool_size": [3], "strides": [2], "padding": "same",
                          "data_format": "channels_first"}
        assert LAYER_CLASSES[cls.__name__](**config).get_config() == config


# -- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,words", [
    (dict(pool_size=0), ValueError, "pool_size"),
    (dict(pool_size=(2, 2)), ValueError, "tuple of one"),
    (dict(pool_size=2.0), TypeError, "pool_size"),
    (dict(strides=0), ValueError, "strides"),
    (dict(padding="causal"), ValueError, "'valid', 'same'"),
    (dict(data_format="NWC"), ValueError, "data_format"),
    (dict(pool_size=2**31), ValueError, r"pool_size must be at most 2147483647"),
    (dict(pool_size=[2**63]), ValueError, r"pool_size must be at most 2147483647"),
    (dict(strides=2**31), ValueError, r"strides must be at most 2147483647"),
])
def test_bad_arguments(kwargs, error, words):
    for cls in (MaxPooling1D, AveragePooling1D):
        with pytest.raises(error, match=words):
            cls(**{"pool_size": 2, **kwargs})


def test_bad_inputs(rng):
    with pytest.raises(ValueError, match="at least 3 steps, got 2"):
        MaxPooling1D(3).build((2, 4))
    with pytest.raises(ValueError, match="rank 3"):
        AveragePooling1D(2).build((4,))
    layer = MaxPooling1D(4)
    layer.build((None, 2))
    with pytest.raises(ValueError, match="at least 4 steps, got 3"):
        layer(rng.normal(size=(1, 3, 2)))
    assert AveragePooling1D(4, padding="same")(rng.normal(size=(1, 3, 2))).shape == (1, 1, 2)


@pytest.mark.parametrize("cls", [MaxPooling1D, AveragePooling1D])
def test_a_same_padded_window_far_longer_than_the_input_is_refused(cls, rng, float64):
    from rnnkit.layers.conv import MAX_PADDING_STEPS

    with pytest.raises(ValueError, match=r"padding='same' and pool_size=2147483647.*4 steps.*would add 2147483643 "):
        cls(2**31 - 1, padding="same").build((4, 2))
    layer = cls(2**31 - 1, padding="same")
    layer.build((None, 2))                      # any length: refused when a short one comes, before padding it
    with pytest.raises(ValueError, match="would add"):
        layer(rng.normal(size=(1, 4, 2)))
    # up to MAX_PADDING_STEPS zeros are fine (the window over 4 real steps pools just those)
    x = rng.normal(size=(1, 4, 2))
    y = cls(MAX_PADDING_STEPS + 4, padding="same")(x)
    expected = x.max(axis=1, keepdims=True) if cls is MaxPooling1D else x.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=f"would add {MAX_PADDING_STEPS + 1} zeros"):
        cls(MAX_PADDING_STEPS + 5, padding="same")(x)
