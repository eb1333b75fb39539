"""LayerNormalization and BatchNormalization against the three references.

* Central finite differences in float64: ``L = sum(w * y)`` for a fixed random ``w``, so
  ``dL/dy = w``; input, ``gamma`` and ``beta`` gradients within 1e-6 relative. A training-mode
  BatchNormalization forward moves its moving statistics, so every evaluation of ``L`` first
  puts them back: each one starts from the same state.
* Keras 3 (PyTorch backend), on the same arrays and weights: outputs in training and inference,
  the moving statistics after several training calls, with and without a mask, and Keras'
  own autograd gradients for the masked batch statistics; float32 with rtol 1e-5 (Keras computes
  these layers in float32 on that backend even when asked for float64).
* PyTorch in float64: ``F.layer_norm`` and ``F.batch_norm(training=True)``, outputs and
  gradients within 1e-8 relative.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradcheck import numeric_grad, rel_error
from rnnkit import initializers
from rnnkit.layers import LAYER_CLASSES, BatchNormalization, LayerNormalization

TOL = 1e-6          # finite differences
TORCH_TOL = 1e-8    # PyTorch, float64
B, T, D = 4, 5, 3

#: (B, T) masks: True marks a real step; "fully_masked_row" leaves one example out entirely
MASKS = {
    "gaps": np.array([[1, 0, 1, 1, 0],
                      [0, 1, 1, 0, 1],
                      [1, 1, 0, 1, 1],
                      [1, 1, 1, 1, 0]], dtype=bool),
    "fully_masked_row": np.array([[0, 0, 0, 0, 0],
                                  [1, 1, 0, 1, 1],
                                  [1, 0, 1, 1, 1],
                                  [0, 0, 1, 1, 1]], dtype=bool),
}


# -- helpers ---------------------------------------------------------------------------------

def randomize(layer, rng):
    """Non-trivial gamma and beta (and moving statistics, variance kept positive)."""
    for name, p in layer.params.items():
        if name == "moving_variance":
            p[...] = rng.uniform(0.5, 2.0, size=p.shape)
        else:
            p[...] = rng.normal(size=p.shape)


def built(layer, x, rng):
    layer.build(x.shape[1:])
    randomize(layer, rng)
    return layer


def check_gradients(layer, x, rng, **forward_kwargs):
    """Finite differences for the input and every trainable weight; returns the relative errors."""
    moving = {k: layer.params[k].copy() for k in layer.non_trainable_weights}

    def run():
        for k, v in moving.items():               # every evaluation starts from the same state
            layer.params[k][...] = v
        return layer.forward(x, **forward_kwargs)

    w = rng.normal(size=run().shape)

    def loss():
        return float((w * run()).sum())

    run()
    dx = layer.backward(w)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert set(grads) == set(layer.params) - set(layer.non_trainable_weights)
    errors = {"x": rel_error(dx, numeric_grad(loss, x))}
    for name in grads:
        errors[name] = rel_error(grads[name], numeric_grad(loss, layer.params[name]))
    assert max(errors.values()) < TOL, errors
    return errors


def keras_twin(layer, x_shape):
    """The Keras 3 layer with the same settings and weights as ``layer``."""
    config = {k: v for k, v in layer.get_config().items()
              if k not in ("name", "seed") and not k.endswith("initializer")}
    twin = getattr(keras.layers, type(layer).__name__)(**config)
    twin.build(x_shape)
    twin.set_weights(layer.get_weights())
    return twin


def keras_call(twin, x, **kwargs) -> np.ndarray:
    """Call a Keras layer on torch tensors (NumPy float64 inputs would be cast to float32 first)."""
    if kwargs.get("mask") is not None:
        kwargs["mask"] = torch.tensor(kwargs["mask"])
    return keras.ops.convert_to_numpy(twin(torch.tensor(x), **kwargs))


def assert_close(actual, expected):
    """float32 against float32: rtol 1e-5 (and atol 1e-6 for values near 0)."""
    assert actual.dtype == expected.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


# -- finite differences ----------------------------------------------------------------------

@pytest.mark.usefixtures("float64")
class TestFiniteDifferences:

    @pytest.mark.parametrize("axis", [-1, [1, 2], 1])
    def test_layer_norm(self, rng, axis):
        x = rng.normal(size=(B, T, D)) * 2.0 + 0.5
        check_gradients(built(LayerNormalization(axis=axis), x, rng), x, rng)

    @pytest.mark.parametrize("center,scale", [(False, True), (True, False), (False, False)])
    def test_layer_norm_center_scale_off(self, rng, center, scale):
        x = rng.normal(size=(B, T, D))
        layer = built(LayerNormalization(center=center, scale=scale), x, rng)
        assert list(layer.params) == [n for n, on in (("gamma", scale), ("beta", center)) if on]
        check_gradients(layer, x, rng)

    @pytest.mark.parametrize("shape", [(6, D), (B, T, D)])
    def test_batch_norm_training(self, rng, shape):
        x = rng.normal(size=shape) * 1.5 - 0.3
        check_gradients(built(BatchNormalization(), x, rng), x, rng, training=True)

    @pytest.mark.parametrize("mask_name", sorted(MASKS))
    def test_batch_norm_training_masked(self, rng, mask_name):
        x = rng.normal(size=(B, T, D)) + 0.7
        check_gradients(built(BatchNormalization(), x, rng), x, rng, training=True, mask=MASKS[mask_name])

    def test_batch_norm_training_masked_feature_axis_1(self, rng):
        x = rng.normal(size=(B, T, D))
        layer = built(BatchNormalization(axis=1), x, rng)
        assert layer.params["gamma"].shape == (T,)
        check_gradients(layer, x, rng, training=True, mask=MASKS["gaps"])

    def test_batch_norm_mask_on_2d_inputs(self, rng):
        x = rng.normal(size=(6, D))
        mask = np.array([1, 1, 0, 1, 0, 1], dtype=bool)
        check_gradients(built(BatchNormalization(), x, rng), x, rng, training=True, mask=mask)

    @pytest.mark.parametrize("mask", [None, MASKS["gaps"]])
    def test_batch_norm_inference(self, rng, mask):
        x = rng.normal(size=(B, T, D))
        layer = built(BatchNormalization(), x, rng)
        before = layer.get_weights()
        check_gradients(layer, x, rng, training=False, mask=mask)
        for a, b in zip(layer.get_weights(), before):
            np.testing.assert_array_equal(a, b)       # inference leaves the moving statistics alone

    def test_batch_norm_center_scale_off(self, rng):
        x = rng.normal(size=(B, T, D))
        layer = built(BatchNormalization(center=False, scale=False), x, rng)
        assert layer.grads == {}
        check_gradients(layer, x, rng, training=True, mask=MASKS["gaps"])

    def test_batch_norm_not_trainable_runs_as_inference(self, rng):
        """Keras 3: a frozen BatchNormalization uses its moving statistics even when training."""
        x = rng.normal(size=(B, T, D))
        layer = built(BatchNormalization(), x, rng)
        layer.trainable = False
        moving = layer.get_weights()[2:]
        y = layer.forward(x, training=True)
        np.testing.assert_array_equal(y, layer.forward(x, training=False))
        for a, b in zip(layer.get_weights()[2:], moving):
            np.testing.assert_array_equal(a, b)
        check_gradients(layer, x, rng, training=True)


# -- Keras 3 ---------------------------------------------------------------------------------

class TestKerasParity:
    """float32 only: on the torch backend Keras 3 computes both layers in float32 whatever the dtype
    (its ``result_type(float64, float32)`` is float32 there), so a float64 comparison would measure
    Keras' rounding."""

    @pytest.mark.parametrize("shape,masked", [((8, D), False), ((B, T, D), False), ((B, T, D), True)])
    def test_batch_norm_training_then_inference(self, rng, shape, masked):
        layer = BatchNormalization(momentum=0.8)
        layer.build(shape[1:])
        randomize(layer, rng)
        twin = keras_twin(layer, shape)
        for step in range(4):
            x = (rng.normal(size=shape) * (1 + step) + step).astype(np.float32)
            mask = rng.random(shape[:2]) > 0.3 if masked else None
            assert_close(layer(x, training=True, mask=mask), keras_call(twin, x, training=True, mask=mask))
        for ours, theirs in zip(layer.get_weights(), twin.get_weights()):
            assert_close(ours, theirs)
        x = rng.normal(size=shape).astype(np.float32)
        assert_close(layer(x, training=False), keras_call(twin, x, training=False))

    @pytest.mark.parametrize("kwargs", [dict(axis=1), dict(center=False, epsilon=1e-2, momentum=0.5),
                                        dict(scale=False, momentum=0.0), dict(momentum=1.0)])
    def test_batch_norm_options_masked(self, rng, kwargs):
        x = (rng.normal(size=(B, T, D)) + 1.0).astype(np.float32)
        layer = built(BatchNormalization(**kwargs), x, rng)
        twin = keras_twin(layer, x.shape)
        for mask in MASKS.values():
            assert_close(layer(x, training=True, mask=mask), keras_call(twin, x, training=True, mask=mask))
        for ours, theirs in zip(layer.get_weights(), twin.get_weights()):
            assert_close(ours, theirs)

    def test_batch_norm_fully_masked_batch(self, rng):
        """Keras divides by the count plus 1e-7, so an all-padding batch has statistics 0, not NaN."""
        x = rng.normal(size=(B, T, D)).astype(np.float32)
        layer = built(BatchNormalization(), x, rng)
        twin = keras_twin(layer, x.shape)
        mask = np.zeros((B, T), dtype=bool)
        y = layer(x, training=True, mask=mask)
        assert np.isfinite(y).all()
        assert_close(y, keras_call(twin, x, training=True, mask=mask))
        for ours, theirs in zip(layer.get_weights(), twin.get_weights()):
            assert_close(ours, theirs)

    def test_batch_norm_not_trainable(self, rng):
        x = rng.normal(size=(B, T, D)).astype(np.float32)
        layer = built(BatchNormalization(), x, rng)
        twin = keras_twin(layer, x.shape)
        layer.trainable, twin.trainable = False, False
        assert_close(layer(x, training=True), keras_call(twin, x, training=True))
        for ours, theirs in zip(layer.get_weights(), twin.get_weights()):
            assert_close(ours, theirs)

    @pytest.mark.usefixtures("float64")
    @pytest.mark.parametrize("mask_name", sorted(MASKS))
    def test_batch_norm_masked_gradients_match_keras_autograd(self, rng, mask_name):
        """Keras' own masked statistics, differentiated by torch autograd (in float32), give our backward."""
        x = rng.normal(size=(B, T, D)) - 0.4
        mask = MASKS[mask_name]
        layer = built(BatchNormalization(), x, rng)
        twin = keras_twin(layer, x.shape)
        w = rng.normal(size=x.shape)
        xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
        (twin(xt, training=True, mask=torch.tensor(mask)) * torch.tensor(w)).sum().backward()
        layer.forward(x, training=True, mask=mask)
        dx = layer.backward(w)
        assert rel_error(dx, xt.grad.numpy()) < 1e-5
        assert rel_error(layer.grads["gamma"], twin.gamma.value.grad.numpy()) < 1e-5
        assert rel_error(layer.grads["beta"], twin.beta.value.grad.numpy()) < 1e-5

    # (a single axis other than the last is left out: Keras' torch backend hands it to F.layer_norm,
    # which only normalises trailing axes, and fails)
    @pytest.mark.parametrize("kwargs", [dict(), dict(axis=[1, 2]), dict(axis=[-2, -1], epsilon=1e-5),
                                        dict(center=False), dict(scale=False, center=False)])
    def test_layer_norm(self, rng, kwargs):
        x = (rng.normal(size=(B, T, D)) * 3 + 1).astype(np.float32)
        layer = built(LayerNormalization(**kwargs), x, rng)
        twin = keras_twin(layer, x.shape)
        assert [v.path.split("/")[-1] for v in twin.weights] == layer.weight_names
        assert_close(layer(x), keras_call(twin, x))

    @pytest.mark.parametrize("kwargs", [dict(), dict(center=False), dict(scale=False),
                                        dict(center=False, scale=False)])
    def test_batch_norm_weight_names_and_order(self, kwargs):
        layer = BatchNormalization(**kwargs)
        layer.build((T, D))
        twin = keras.layers.BatchNormalization(**kwargs)
        twin.build((None, T, D))
        assert [v.path.split("/")[-1] for v in twin.weights] == layer.weight_names
        assert [v.shape for v in twin.weights] == [p.shape for p in layer.params.values()]
        for ours, theirs in zip(layer.get_weights(), twin.get_weights()):
            np.testing.assert_array_equal(ours, theirs)    # same initial values


# -- PyTorch ---------------------------------------------------------------------------------

@pytest.mark.usefixtures("float64")
class TestTorchParity:

    @pytest.mark.parametrize("axis", [-1, [1, 2]])
    def test_layer_norm(self, rng, axis):
        x = rng.normal(size=(B, T, D)) * 2 + 1
        layer = built(LayerNormalization(axis=axis), x, rng)
        w = rng.normal(size=x.shape)
        xt = torch.tensor(x, requires_grad=True)
        gamma, beta = (torch.tensor(layer.params[k], requires_grad=True) for k in ("gamma", "beta"))
        yt = F.layer_norm(xt, tuple(gamma.shape), gamma, beta, eps=layer.epsilon)
        (yt * torch.tensor(w)).sum().backward()
        y = layer.forward(x)
        dx = layer.backward(w)
        assert rel_error(y, yt.detach().numpy()) < TORCH_TOL
        assert rel_error(dx, xt.grad.numpy()) < TORCH_TOL
        assert rel_error(layer.grads["gamma"], gamma.grad.numpy()) < TORCH_TOL
        assert rel_error(layer.grads["beta"], beta.grad.numpy()) < TORCH_TOL

    @pytest.mark.parametrize("shape", [(8, D), (B, T, D)])
    def test_batch_norm_training(self, rng, shape):
        x = rng.normal(size=shape) * 2 - 1
        layer = built(BatchNormalization(momentum=0.9), x, rng)
        m = layer.momentum
        mean0, var0 = layer.params["moving_mean"].copy(), layer.params["moving_variance"].copy()
        w = rng.normal(size=x.shape)
        # PyTorch wants the features on axis 1: (B, T, D) -> (B, D, T)
        xt = torch.tensor(x, requires_grad=True)
        gamma, beta = (torch.tensor(layer.params[k], requires_grad=True) for k in ("gamma", "beta"))
        running_mean, running_var = torch.tensor(mean0), torch.tensor(var0)
        yt = F.batch_norm(xt.transpose(1, -1), running_mean, running_var, gamma, beta, training=True,
                          momentum=1.0 - m, eps=layer.epsilon).transpose(1, -1)
        (yt * torch.tensor(w)).sum().backward()
        y = layer.forward(x, training=True)
        dx = layer.backward(w)
        assert rel_error(y, yt.detach().numpy()) < TORCH_TOL
        assert rel_error(dx, xt.grad.numpy()) < TORCH_TOL
        assert rel_error(layer.grads["gamma"], gamma.grad.numpy()) < TORCH_TOL
        assert rel_error(layer.grads["beta"], beta.grad.numpy()) < TORCH_TOL
        # same momentum rule; PyTorch averages the unbiased variance, Keras (and rnnkit) the biased one
        n = x.size // D
        np.testing.assert_allclose(layer.params["moving_mean"], running_mean.numpy(), rtol=1e-12)
        torch_batch_var = (running_var.numpy() - m * var0) / (1 - m)
        our_batch_var = (layer.params["moving_variance"] - m * var0) / (1 - m)
        np.testing.assert_allclose(our_batch_var, torch_batch_var * (n - 1) / n, rtol=1e-10)


# -- weights, state, configuration -----------------------------------------------------------

def test_batch_norm_weights_and_grads(rng):
    layer = BatchNormalization()
    layer.build((T, D))
    assert layer.weight_names == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert layer.trainable_weight_names == ["gamma", "beta"]
    assert set(layer.grads) == {"gamma", "beta"}
    values = [rng.normal(size=D).astype(np.float32) for _ in range(3)] + [np.full(D, 2.0, np.float32)]
    layer.set_weights(values)
    for got, want in zip(layer.get_weights(), values):
        np.testing.assert_array_equal(got, want)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    layer.forward(x, training=True)
    layer.backward(np.ones_like(x))
    assert set(layer.grads) == {"gamma", "beta"}       # backward adds no entry for the moving statistics
    with pytest.raises(ValueError, match="moving_variance.*expects shape"):
        layer.set_weights(values[:3] + [np.ones(D + 1)])
    with pytest.raises(ValueError, match="expects 4 weight arrays"):
        layer.set_weights(values[:2])


def test_layer_norm_weights():
    layer = LayerNormalization(axis=[2, 1])
    layer.build((T, D))
    assert layer.weight_names == ["gamma", "beta"]
    assert [p.shape for p in layer.get_weights()] == [(T, D), (T, D)]
    assert layer.accepts_input_shape((T, D)) and not layer.accepts_input_shape((T + 1, D))
    bn = BatchNormalization()
    bn.build((T, D))
    assert bn.accepts_input_shape((T + 1, D)) and not bn.accepts_input_shape((T, D + 1))


@pytest.mark.usefixtures("float64")
def test_saved_call_state_reverses_that_call(rng):
    """A shared layer: restoring the first call's state makes backward reverse the first call."""
    layer = built(BatchNormalization(), rng.normal(size=(B, T, D)), rng)
    x1, x2, dy = (rng.normal(size=(B, T, D)) for _ in range(3))
    layer.forward(x1, training=True, mask=MASKS["gaps"])
    state = layer.get_call_state()
    want = layer.backward(dy), {k: g.copy() for k, g in layer.grads.items()}
    layer.forward(x2, training=False)
    layer.set_call_state(state)
    np.testing.assert_array_equal(layer.backward(dy), want[0])
    for k, g in want[1].items():
        np.testing.assert_array_equal(layer.grads[k], g)
    assert len(state) == len(BatchNormalization.call_state)


def test_need_input_grad_false_still_sets_weight_grads(rng):
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    for layer in (LayerNormalization(), BatchNormalization()):
        layer.build((T, D))
        layer.need_input_grad = False
        layer.forward(x, training=True)
        assert layer.backward(np.ones_like(x)) is None
        assert np.abs(layer.grads["gamma"]).sum() > 0 and np.all(layer.grads["beta"] == B * T)


def test_masks_pass_through():
    mask = MASKS["gaps"]
    assert LayerNormalization().compute_mask(None, mask) is mask
    assert BatchNormalization().compute_mask(None, mask) is mask
    assert BatchNormalization.consumes_mask and not LayerNormalization.consumes_mask


@pytest.mark.parametrize("layer", [
    LayerNormalization(axis=[1, 2], epsilon=1e-5, center=False, gamma_initializer="random_normal", name="ln"),
    BatchNormalization(axis=1, momentum=0.9, epsilon=1e-2, scale=False, beta_initializer="glorot_uniform",
                       moving_mean_initializer="ones", moving_variance_initializer="zeros", seed=3),
], ids=["layer_norm", "batch_norm"])
def test_get_config_round_trip(layer):
    config = layer.get_config()
    for key in [k for k in config if k.endswith("initializer")]:
        assert isinstance(config[key], dict)
        assert isinstance(initializers.get(config[key]), initializers.Initializer)
    clone = LAYER_CLASSES[type(layer).__name__](**config)
    assert clone.get_config() == config
    assert config["axis"] == layer.axis and config["epsilon"] == layer.epsilon


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make,error,match", [
    (lambda: LayerNormalization(axis="last"), TypeError, "axis.*int or a list of ints.*'last'"),
    (lambda: LayerNormalization(axis=[]), ValueError, "at least one axis"),
    (lambda: LayerNormalization(axis=[1, 2.0]), TypeError, "Each entry.*2.0"),
    (lambda: LayerNormalization(epsilon=0), ValueError, "epsilon must be a positive number.*got 0"),
    (lambda: BatchNormalization(epsilon=-1e-3), ValueError, "epsilon must be a positive number"),
    (lambda: BatchNormalization(axis=[1, 2]), TypeError, "BatchNormalization axis must be an integer"),
    (lambda: BatchNormalization(momentum=1.5), ValueError, r"momentum must be a number in \[0, 1\].*1.5"),
    (lambda: BatchNormalization(momentum=-0.1), ValueError, r"momentum must be a number in \[0, 1\]"),
    (lambda: LayerNormalization(beta_initializer="nope"), ValueError, "Unknown initializer 'nope'"),
])
def test_constructor_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("layer,shape,match", [
    (BatchNormalization(axis=3, name="bn"), (T, D), r"'bn'.*axis 3 is out of range.*\(None, 5, 3\)"),
    (LayerNormalization(axis=[-4], name="ln"), (T, D), r"'ln'.*axis -4 is out of range.*\(None, 5, 3\)"),
    (BatchNormalization(axis=0, name="bn"), (T, D), r"'bn'.*batch axis.*\(None, 5, 3\)"),
    (LayerNormalization(axis=-1, name="ln"), (T, None), r"'ln'.*size of the normalised axis 2.*\(None, 5, None\)"),
    (BatchNormalization(axis=1, name="bn"), (None, D), r"'bn'.*size of the normalised axis 1.*\(None, None, 3\)"),
    (LayerNormalization(axis=[-1, 2], name="ln"), (T, D), r"'ln'.*same axis twice.*\(None, 5, 3\)"),
], ids=["bn_out_of_range", "ln_out_of_range", "batch_axis", "ln_unknown_size", "bn_unknown_size", "ln_duplicate"])
def test_shape_errors(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer.build(shape)


def test_mask_shape_error(rng):
    layer = BatchNormalization(name="bn")
    layer.build((T, D))
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    with pytest.raises(ValueError, match=r"'bn'.*mask of shape \(4, 5\).*got a mask of shape \(4, 4\)"):
        layer.forward(x, training=True, mask=np.ones((B, T - 1), dtype=bool))
