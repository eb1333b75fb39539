"""Every hand-written backward pass against central finite differences in float64.

Each check projects the layer output on a fixed random tensor ``w`` so that the scalar
``L = sum(w * y)`` has ``dL/dy = w``; the analytic gradients of ``L`` with respect to the
input and to every weight must match the numeric ones to a relative error below 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from gradcheck import numeric_grad, rel_error
from rnnkit import losses
from rnnkit.layers import Activation, Dense, Dropout, SimpleRNN

TOL = 1e-6
pytestmark = pytest.mark.usefixtures("float64")


def check_layer(layer, x, rng, reset=None, **kwargs):
    """Compare ``layer.backward`` with finite differences for the input and every weight."""
    def run():
        if reset is not None:
            reset()
        return layer.forward(x, **kwargs)

    if not layer.built:
        layer.build(x.shape[1:])
    w = rng.normal(size=run().shape)
    loss = lambda: float((w * run()).sum())
    run()
    dx = layer.backward(w)
    assert rel_error(dx, numeric_grad(loss, x)) < TOL, "input gradient"
    grads = {k: g.copy() for k, g in layer.grads.items()}
    for name, param in layer.params.items():
        assert rel_error(grads[name], numeric_grad(loss, param)) < TOL, name


@pytest.mark.parametrize("activation", ["linear", "tanh", "relu", "sigmoid", "softmax"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense(activation, use_bias, rng):
    layer = Dense(5, activation=activation, use_bias=use_bias, seed=0)
    check_layer(layer, rng.normal(size=(4, 3)), rng)


def test_dense_on_sequences(rng):
    """Dense on (B, T, D) acts on the last axis at every step."""
    check_layer(Dense(4, activation="tanh", seed=1), rng.normal(size=(3, 5, 2)), rng)


@pytest.mark.parametrize("activation", ["linear", "tanh", "relu", "sigmoid", "softmax"])
def test_activation_layer(activation, rng):
    check_layer(Activation(activation), rng.normal(size=(4, 6)), rng)


def test_dropout_in_training_with_fixed_mask(rng):
    layer = Dropout(0.4, seed=3)
    x = rng.normal(size=(6, 5))
    layer.build(x.shape[1:])
    reset = lambda: setattr(layer, "_rng", np.random.default_rng(7))
    check_layer(layer, x, rng, reset=reset, training=True)
    assert (layer.forward(x, training=True) == 0).any(), "dropout dropped nothing"


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_simple_rnn(activation, return_sequences, go_backwards, rng):
    layer = SimpleRNN(4, activation=activation, return_sequences=return_sequences,
                      go_backwards=go_backwards, seed=2)
    layer.build((6, 3))
    layer.params["bias"][:] = rng.normal(size=4) * 0.1   # a non-zero bias is part of the check
    check_layer(layer, rng.normal(size=(3, 6, 3)), rng)


def test_simple_rnn_without_bias(rng):
    check_layer(SimpleRNN(5, use_bias=False, return_sequences=True, seed=4), rng.normal(size=(2, 4, 3)), rng)


def test_simple_rnn_single_step(rng):
    check_layer(SimpleRNN(3, seed=5), rng.normal(size=(4, 1, 2)), rng)


def test_simple_rnn_initial_state_and_return_state(rng):
    """Gradients reach the initial state, and flow back from the returned final state."""
    layer = SimpleRNN(4, return_sequences=True, return_state=True, seed=6)
    x, h0 = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 4))
    layer.build(x.shape[1:])
    w_seq, w_state = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 4))

    def loss():
        seq, state = layer.forward(x, initial_state=h0)
        return float((w_seq * seq).sum() + (w_state * state).sum())

    loss()
    dx = layer.backward(w_seq, dstates=[w_state])
    dh0 = layer.initial_state_grads[0]
    grads = {k: g.copy() for k, g in layer.grads.items()}
    assert rel_error(dx, numeric_grad(loss, x)) < TOL
    assert rel_error(dh0, numeric_grad(loss, h0)) < TOL
    for name, param in layer.params.items():
        assert rel_error(grads[name], numeric_grad(loss, param)) < TOL, name


# -- losses -----------------------------------------------------------------------------

def _targets(name, rng, shape):
    if name == "sparse_categorical_crossentropy":
        return rng.integers(0, shape[-1], size=shape[:-1])
    if name == "categorical_crossentropy":
        return rnnkit.one_hot(rng.integers(0, shape[-1], size=shape[:-1]), shape[-1])
    if name == "binary_crossentropy":
        return rng.integers(0, 2, size=shape).astype(float)
    return rng.normal(size=shape)


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy",
                                  "binary_crossentropy", "mse", "mae"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 3)])
def test_loss_gradient(name, shape, rng):
    """Gradient with respect to predictions (probabilities for the cross-entropies)."""
    loss = losses.get(name)
    y = _targets(name, rng, shape)
    if "crossentropy" in name and name != "binary_crossentropy":
        p = rng.uniform(0.05, 1.0, size=shape)
        p /= p.sum(axis=-1, keepdims=True)
    elif name == "binary_crossentropy":
        p = rng.uniform(0.05, 0.95, size=shape)
    else:
        p = rng.normal(size=shape)
    value, grad = loss.value_and_grad(y, p)
    assert np.isfinite(value)
    assert rel_error(grad, numeric_grad(lambda: loss.value_and_grad(y, p)[0], p)) < TOL


@pytest.mark.parametrize("name", ["categorical_crossentropy", "sparse_categorical_crossentropy",
                                  "binary_crossentropy"])
def test_loss_gradient_from_logits(name, rng):
    loss = losses.get(name)
    z = rng.normal(size=(4, 3, 5)) * 3
    y = _targets(name, rng, z.shape)
    _, grad = loss.value_and_grad_from_logits(y, z)
    num = numeric_grad(lambda: loss.value_and_grad_from_logits(y, z)[0], z)
    assert rel_error(grad, num) < TOL


@pytest.mark.parametrize("name,act", [("categorical_crossentropy", "softmax"), ("binary_crossentropy", "sigmoid")])
def test_fused_loss_equals_unfused(name, act, rng):
    """The logits path computes the same value and gradient as probabilities + loss + activation."""
    loss = losses.get(name)
    z = rng.normal(size=(6, 4))
    y = _targets(name, rng, z.shape)
    a = rnnkit.activations.get(act)
    p = a(z)
    value, dp = loss.value_and_grad(y, p)
    fused_value, dz = loss.value_and_grad_from_logits(y, z)
    assert abs(value - fused_value) < 1e-12
    assert rel_error(dz, a.backward(dp, p)) < 1e-10


def test_fused_loss_is_stable_for_large_logits():
    loss = losses.get("categorical_crossentropy")
    z = np.array([[1000.0, -1000.0, 0.0]])
    value, grad = loss.value_and_grad_from_logits(np.array([[0.0, 1.0, 0.0]]), z)
    assert np.isfinite(value) and value == pytest.approx(2000.0)
    assert np.isfinite(grad).all()


# -- a whole model ------------------------------------------------------------------------

@pytest.mark.parametrize("loss,last", [("categorical_crossentropy", "softmax"), ("mse", "linear"),
                                       ("binary_crossentropy", "sigmoid")])
def test_sequential_end_to_end(loss, last, rng):
    """Stacked SimpleRNNs + Dense: loss_and_gradients against finite differences on every weight."""
    model = rnnkit.Sequential(seed=11)
    model.add(SimpleRNN(5, return_sequences=True, input_shape=(4, 3)))
    model.add(SimpleRNN(4, activation="relu", go_backwards=True))
    model.add(Dense(3, activation=last))
    model.compile(optimizer="sgd", loss=loss)
    x = rng.normal(size=(5, 4, 3))
    y = _targets(loss if loss != "mse" else "mse", rng, (5, 3))
    _, grads = model.loss_and_gradients(x, y)
    for weight, grad in zip(model.weights, grads):
        num = numeric_grad(lambda: model.loss_and_gradients(x, y)[0], weight)
        assert rel_error(grad, num) < TOL
