"""Merge layers against finite differences, Keras 3 and (for Dot) PyTorch.

Gradients: ``L = sum(w * y)`` for a fixed random ``w``, so ``backward(w)`` must give dL/dx_i
for every input, checked by central differences in float64 (relative error < 1e-6).
Keras: the same arrays, with Keras masks attached to the inputs as a Keras model would
attach them, must give the same output and the same output mask.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from keras.src import backend as keras_backend

import rnnkit
from gradcheck import numeric_grad, rel_error
from rnnkit.layers import LAYER_CLASSES, Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract

TOL = 1e-6
B, T, D = 2, 4, 3

#: (B, T) timestep masks, True marks a real step; with MASK_B, each pattern of the two occurs
MASK_A = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)
MASK_B = np.array([[1, 0, 1, 0], [0, 0, 1, 1]], dtype=bool)

ELEMENTWISE = {"Add": Add, "Subtract": Subtract, "Multiply": Multiply, "Average": Average,
               "Maximum": Maximum, "Minimum": Minimum}


# -- helpers ---------------------------------------------------------------------------------

def distinct(rng, *shapes):
    """Arrays whose values are all at least 0.1 apart, so that max/min never tie (not even
    under a finite-difference step)."""
    sizes = [int(np.prod(s)) for s in shapes]
    values = (rng.permutation(sum(sizes)) - sum(sizes) / 2) * 0.1 + rng.uniform(0, 0.01, sum(sizes))
    return [v.reshape(s) for v, s in zip(np.split(values, np.cumsum(sizes)[:-1]), shapes)]


def check_grads(layer, inputs, rng, **kwargs):
    """Finite differences of every input's gradient; the layer is built from the inputs' shapes."""
    layer.build([x.shape[1:] for x in inputs])
    y = layer.forward(inputs, **kwargs)
    assert y.shape[1:] == layer.compute_output_shape([x.shape[1:] for x in inputs])
    w = rng.normal(size=y.shape)
    grads = layer.backward(w)
    assert isinstance(grads, list) and len(grads) == len(inputs)

    def loss():
        return float((w * layer.forward(inputs, **kwargs)).sum())

    for i, (x, g) in enumerate(zip(inputs, grads)):
        assert g.shape == x.shape
        err = rel_error(g, numeric_grad(loss, x))
        assert err < TOL, f"input {i}: {err:.3g}"


def to_keras(x, mask=None):
    """A float64 tensor carrying ``mask`` the way a Keras layer's output does."""
    t = torch.tensor(x)
    if mask is not None:
        keras_backend.set_keras_mask(t, torch.tensor(mask))
    return t


def keras_merge(keras_layer, inputs, masks=None):
    """Keras' output and output mask (None without one) on these arrays."""
    masks = masks or [None] * len(inputs)
    out = keras_layer([to_keras(x, m) for x, m in zip(inputs, masks)])
    mask = keras_backend.get_keras_mask(out)
    return out.detach().numpy(), None if mask is None else mask.numpy()


def assert_matches_keras(ours, theirs):
    """float64 where Keras computed in float64; Keras' torch backend does Maximum, Minimum and
    matmul in float32, and there the tolerance is float32's."""
    tol = 1e-12 if theirs.dtype == np.float64 else 1e-6
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * np.abs(theirs).max())


# -- gradients ---------------------------------------------------------------------------------

@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("axis,shapes", [
    (-1, [(B, T, 2), (B, T, 3), (B, T, 1)]),
    (2, [(B, T, 2), (B, T, 3)]),
    (1, [(B, 1, D), (B, 3, D), (B, 2, D)]),
    (1, [(B, 2), (B, 5)]),
])
def test_concatenate_gradients(axis, shapes, rng):
    check_grads(Concatenate(axis=axis), [rng.normal(size=s) for s in shapes], rng)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_gradients(name, rng):
    n = 2 if name == "Subtract" else 3
    check_grads(ELEMENTWISE[name](), distinct(rng, *[(B, T, D)] * n), rng)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("shapes", [
    [(B, T, D), (B, 1, D)],
    [(B, T, D), (B, D)],          # Keras lines up ranks as (B, 1, D)
    [(B, T, 1), (B, 1, D)],       # both stretch
], ids=["size1", "lower_rank", "both"])
def test_elementwise_broadcasting_gradients(name, shapes, rng):
    check_grads(ELEMENTWISE[name](), distinct(rng, *shapes), rng)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("name", ["Multiply", "Maximum", "Minimum"])
@pytest.mark.parametrize("masks", [[MASK_A, MASK_B, MASK_A], [None, MASK_B, None], [MASK_A, None, MASK_B]],
                         ids=["all_masked", "middle_masked", "some_masked"])
def test_masked_elementwise_gradients(name, masks, rng):
    check_grads(ELEMENTWISE[name](), distinct(rng, *[(B, T, D)] * 3), rng, mask=masks)


DOT_CASES = {
    "axes1_time": (1, [(B, T, D), (B, T, 2)]),            # (B, D, 2)
    "axes2_features": (2, [(B, T, D), (B, 5, D)]),        # (B, T, 5)
    "axes_1_2": ((1, 2), [(B, T, D), (B, 5, T)]),         # (B, D, 5)
    "axes_2_1_rank2": ((2, 1), [(B, T, D), (B, D)]),      # (B, T)
    "axes_minus1_vectors": (-1, [(B, D), (B, D)]),        # (B, 1)
    "axes_3_2_rank4": ((3, 2), [(B, 2, T, D), (B, 5, D)]),  # (B, 2, T, 5)
}


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("case", list(DOT_CASES))
def test_dot_gradients(case, normalize, rng):
    axes, shapes = DOT_CASES[case]
    check_grads(Dot(axes=axes, normalize=normalize), [rng.normal(size=s) for s in shapes], rng)


@pytest.mark.usefixtures("float64")
def test_dot_normalize_gradient_where_the_norm_is_clamped(rng):
    """A vector shorter than eps = 1e-7 is divided by eps (as Keras), so its gradient is dy / eps."""
    x1, x2 = rng.normal(size=(B, T, D)), rng.normal(size=(B, T, D))
    x1[0, :, 1] = rng.normal(size=T) * 1e-9         # one sample's vectors along the dot axis
    layer = Dot(axes=1, normalize=True)
    inputs = [x1, x2]
    w = rng.normal(size=layer(inputs).shape)         # (B, D, D)
    g1 = layer.backward(w)[0]
    numeric = numeric_grad(lambda: float((w * layer.forward(inputs)).sum()), x1, eps=1e-11)
    x2_hat = x2 / np.linalg.norm(x2, axis=1, keepdims=True)
    np.testing.assert_allclose(g1[0, :, 1], x2_hat[0] @ w[0, 1] / 1e-7, rtol=1e-12)
    assert rel_error(g1[0, :, 1], numeric[0, :, 1]) < TOL


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("make", [Add, Subtract, Average, Multiply, Maximum, Minimum, lambda: Concatenate(axis=1),
                                  lambda: Dot(axes=2, normalize=True), lambda: Dot(axes=1)],
                         ids=["add", "subtract", "average", "multiply", "maximum", "minimum", "concatenate",
                              "dot_normalize", "dot"])
def test_call_state_lets_a_shared_layer_reverse_an_earlier_call(make, rng):
    """Forward A, keep its call state, forward B (other values, another length, no masks), restore A:
    backward must give A's gradients."""
    layer = make()
    first, second = distinct(rng, (B, T, D), (B, T, D)), distinct(rng, (B, 6, D), (B, 6, D))
    kwargs = {"mask": [MASK_A, MASK_B]} if layer.consumes_mask else {}
    w = rng.normal(size=layer(first, **kwargs).shape)
    expected = layer.backward(w)
    layer.forward(first, **kwargs)
    state = layer.get_call_state()
    layer.forward(second)
    layer.set_call_state(state)
    for g, e in zip(layer.backward(w), expected):
        np.testing.assert_array_equal(g, e)


# -- Keras: outputs and masks ----------------------------------------------------------------

@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("masks", [None, [MASK_A, MASK_B], [None, MASK_B], [MASK_A, None]],
                         ids=["unmasked", "both_masked", "second_masked", "first_masked"])
def test_elementwise_matches_keras(name, masks, rng):
    inputs = distinct(rng, (B, T, D), (B, T, D))
    ours = ELEMENTWISE[name]()
    kwargs = {"mask": masks} if ours.consumes_mask and masks is not None else {}
    y = ours(inputs, **kwargs)
    k_y, k_mask = keras_merge(getattr(keras.layers, name)(dtype="float64"), inputs, masks)
    assert_matches_keras(y, k_y)
    mask = ours.compute_mask(inputs, masks)
    if k_mask is None:
        assert mask is None
    else:
        np.testing.assert_array_equal(mask, k_mask)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("name", ["Add", "Multiply", "Maximum", "Average"])
def test_three_inputs_and_broadcasting_match_keras(name, rng):
    inputs = distinct(rng, (B, T, D), (B, 1, D), (B, D))
    y = ELEMENTWISE[name]()(inputs)
    assert y.shape == (B, T, D)
    assert_matches_keras(y, keras_merge(getattr(keras.layers, name)(dtype="float64"), inputs)[0])


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("name", ["Multiply", "Maximum", "Minimum"])
def test_masked_three_inputs_match_keras(name, rng):
    inputs, masks = distinct(rng, *[(B, T, D)] * 3), [MASK_A, None, MASK_B]
    y = ELEMENTWISE[name]()(inputs, mask=masks)
    assert_matches_keras(y, keras_merge(getattr(keras.layers, name)(dtype="float64"), inputs, masks)[0])


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("axis,shapes", [(-1, [(B, T, 2), (B, T, 3)]), (1, [(B, 3, D), (B, 2, D)]),
                                         (1, [(B, 2), (B, 5)])], ids=["features", "time", "vectors"])
@pytest.mark.parametrize("which", ["both", "first", "second", "none"])
def test_concatenate_matches_keras(axis, shapes, which, rng):
    inputs = [rng.normal(size=s) for s in shapes]
    full = [rng.random(s[:-1]) > 0.4 for s in shapes]
    masks = {"both": full, "first": [full[0], None], "second": [None, full[1]], "none": None}[which]
    ours = Concatenate(axis=axis)
    k_y, k_mask = keras_merge(keras.layers.Concatenate(axis=axis, dtype="float64"), inputs, masks)
    assert_matches_keras(ours(inputs), k_y)
    mask = ours.compute_mask(inputs, masks)
    if which == "none":
        assert mask is None and k_mask is None
    else:
        np.testing.assert_array_equal(mask, k_mask)


def test_concatenate_mask_on_the_time_axis_joins_the_masks():
    """Spelled out: (B, 2) and (B, 3) masks give a (B, 5) mask; an unmasked input counts as all True."""
    inputs = [np.zeros((1, 2, 3)), np.zeros((1, 3, 3))]
    mask = Concatenate(axis=1).compute_mask(inputs, [np.array([[True, False]]), None])
    np.testing.assert_array_equal(mask, [[True, False, True, True, True]])
    mask = Concatenate(axis=-1).compute_mask([np.zeros((1, 2, 3))] * 2, [np.array([[True, False]]), None])
    np.testing.assert_array_equal(mask, [[True, True]])     # OR with an all-True mask


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("case", list(DOT_CASES))
def test_dot_matches_keras(case, normalize, rng):
    axes, shapes = DOT_CASES[case]
    # values exact in float32: Keras' torch backend multiplies in float32
    inputs = [rng.normal(size=s).astype(np.float32).astype(np.float64) for s in shapes]
    ours = Dot(axes=axes, normalize=normalize)
    k_y, _ = keras_merge(keras.layers.Dot(axes=axes, normalize=normalize, dtype="float64"), inputs, [MASK_A, None])
    assert_matches_keras(ours(inputs), k_y)
    assert ours.compute_mask(inputs, [MASK_A, None]) is None


# -- PyTorch: Dot in float64 ---------------------------------------------------------------------

#: the same cases as einsum formulas, an independent statement of Keras' batch_dot
DOT_EINSUM = {
    "axes1_time": "btd,bte->bde",
    "axes2_features": "btd,bsd->bts",
    "axes_1_2": "btd,bst->bds",
    "axes_2_1_rank2": "btd,bd->bt",
    "axes_minus1_vectors": "bd,bd->b",
    "axes_3_2_rank4": "bctd,bsd->bcts",
}


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("case", list(DOT_CASES))
def test_dot_matches_torch(case, normalize, rng):
    axes, shapes = DOT_CASES[case]
    inputs = [rng.normal(size=s) for s in shapes]
    if normalize:
        inputs[0][0] = 0.0                          # a zero vector: the norm is clamped to eps
    layer = Dot(axes=axes, normalize=normalize)
    y = layer(inputs)
    w = rng.normal(size=y.shape)
    grads = layer.backward(w)

    t1, t2 = (torch.tensor(x, requires_grad=True) for x in inputs)
    a1, a2 = layer.resolved_axes(t1.ndim, t2.ndim)
    u1, u2 = t1, t2
    if normalize:
        u1 = t1 / torch.linalg.vector_norm(t1, dim=a1, keepdim=True).clamp(min=1e-7)
        u2 = t2 / torch.linalg.vector_norm(t2, dim=a2, keepdim=True).clamp(min=1e-7)
    t_y = torch.einsum(DOT_EINSUM[case], u1, u2).reshape(y.shape)
    (t_y * torch.tensor(w)).sum().backward()
    assert rel_error(y, t_y.detach().numpy()) < 1e-8
    assert rel_error(grads[0], t1.grad.numpy()) < 1e-8
    assert rel_error(grads[1], t2.grad.numpy()) < 1e-8


# -- shapes, configs, errors -------------------------------------------------------------------

@pytest.mark.parametrize("layer,shapes,expected", [
    (Concatenate(axis=1), [(None, 3), (5, 3)], (None, 3)),
    (Concatenate(axis=-1), [(None, 3), (7, 2)], (7, 5)),
    (Add(), [(4, 3), (3,)], (4, 3)),
    (Multiply(), [(4, 1), (1, 3)], (4, 3)),
    (Dot(axes=2), [(None, 3), (5, 3)], (None, 5)),
    (Dot(axes=(1, 2)), [(4, 3), (5, 4)], (3, 5)),
    (Dot(axes=1), [(3,), (3,)], (1,)),
])
def test_compute_output_shape(layer, shapes, expected):
    assert layer.compute_output_shape(shapes) == expected


@pytest.mark.parametrize("layer", [Concatenate(axis=1, name="cat"), Add(), Subtract(), Multiply(), Average(),
                                   Maximum(), Minimum(), Dot(axes=(1, 2), normalize=True), Dot(axes=-1)])
def test_config_rebuilds_the_layer(layer):
    clone = LAYER_CLASSES[type(layer).__name__](**layer.get_config())
    assert clone.get_config() == layer.get_config()
    if isinstance(layer, Dot):
        assert (clone.axes, clone.normalize) == (layer.axes, layer.normalize)


def test_concatenate_shape_errors_name_the_layer_and_both_shapes():
    message = ("Layer 'concatenate' (Concatenate) cannot concatenate inputs of shapes (None, 3, 4) and "
               "(None, 5, 4) on axis -1: all other axes must match")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Concatenate().check_input_shape([(3, 4), (5, 4)])
    with pytest.raises(ValueError, match=r"Layer 'cat' .* shapes \(None, 3, 4\) and \(None, 4\): .* same rank"):
        Concatenate(name="cat").build([(3, 4), (4,)])
    with pytest.raises(ValueError, match=r"on axis 3: it has axes 1..2"):
        Concatenate(axis=3).check_input_shape([(3, 4), (3, 4)])


def test_symbolic_call_reports_the_shapes():
    a, b = rnnkit.layers.Input(shape=(3, 4)), rnnkit.layers.Input(shape=(5, 4))
    with pytest.raises(ValueError, match=r"Layer 'add' \(Add\) cannot combine inputs of shapes \(None, 3, 4\) and "
                                         r"\(None, 5, 4\)"):
        Add()([a, b])
    assert Concatenate(axis=1)([a, b]).shape == (None, 8, 4)
    assert Dot(axes=2)([a, b]).shape == (None, 3, 5)


@pytest.mark.parametrize("layer", [Concatenate(), Add(), Subtract(), Dot(axes=1)])
def test_single_shape_or_empty_list_is_refused(layer):
    with pytest.raises(ValueError, match=r"takes a list of inputs .*got a single input of shape \(None, 3, 4\)"):
        layer.check_input_shape((3, 4))
    with pytest.raises(ValueError, match=r"(at least one input|exactly 2 inputs), got (an empty list|0)"):
        layer.check_input_shape([])


@pytest.mark.parametrize("layer", [Subtract(), Dot(axes=1)])
def test_two_input_layers_refuse_three(layer):
    with pytest.raises(ValueError, match=r"takes exactly 2 inputs, got 3: \[\(None, 3\), \(None, 3\), \(None, 3\)\]"):
        layer.check_input_shape([(3,), (3,), (3,)])


def test_dot_shape_errors():
    with pytest.raises(ValueError, match=r"Layer 'dot' \(Dot\) cannot take the dot product of inputs of shapes "
                                         r"\(None, 3, 4\) and \(None, 5, 3\) along axes \(2, 2\): their sizes 4 and 3"):
        Dot(axes=2).check_input_shape([(3, 4), (5, 3)])
    with pytest.raises(ValueError, match=r"cannot take axes=\(1, 3\) of inputs of shapes \(None, 4\) and "
                                         r"\(None, 5, 4\): an input of rank 3 has axes 1..2"):
        Dot(axes=(1, 3)).build([(4,), (5, 4)])


@pytest.mark.parametrize("kwargs,error,match", [
    ({"axes": "1"}, TypeError, "an integer or a pair of integers, got '1'"),
    ({"axes": (1, 2, 3)}, TypeError, r"a pair of integers, got \(1, 2, 3\)"),
    ({"axes": (1.0, 2)}, TypeError, "a pair of integers"),
    ({"axes": True}, TypeError, "a pair of integers"),
    ({"axes": 0}, ValueError, "axis 0, the batch axis"),
    ({"axes": (2, 0)}, ValueError, "axis 0, the batch axis"),
])
def test_dot_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Dot(**kwargs)


def test_concatenate_constructor_errors():
    with pytest.raises(ValueError, match="axis=0 is the batch axis"):
        Concatenate(axis=0)
    with pytest.raises(TypeError, match="axis must be an integer, got str"):
        Concatenate(axis="-1")


def test_elementwise_shape_errors():
    with pytest.raises(ValueError, match=r"Layer 'multiply' \(Multiply\) cannot combine inputs of shapes "
                                         r"\(None, 4, 3\) and \(None, 4, 2\): sizes must be equal or 1"):
        Multiply().check_input_shape([(4, 3), (4, 3), (4, 2)])
    with pytest.raises(ValueError, match=r"shapes \(None, 4, 1\) and \(None, 5, 1\)"):   # inputs, not (None, 4, 3)
        Add().check_input_shape([(4, 1), (1, 3), (5, 1)])


def test_mask_list_must_match_the_inputs():
    x = [np.zeros((B, T, D))] * 2
    with pytest.raises(ValueError, match="one mask .* per input: a list of 2, got 1"):
        Add().compute_mask(x, [MASK_A])
    with pytest.raises(ValueError, match="a list of 2, got a single array"):
        Maximum().forward(x, mask=MASK_A)
