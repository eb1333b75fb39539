"""Regularizers, constraints, the loss arguments Keras has, and their serialisation.

References: Keras 3 (PyTorch backend) computes each regularizer, constraint and loss on the same
float64 arrays; torch autograd in float64 gives the gradients (through Keras' own functions, so
the gradient is that of Keras' formula, and through independent torch formulas); Embedding's
gradient is checked by central finite differences.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rnnkit
from gradcheck import numeric_grad, rel_error
from rnnkit import constraints, losses, metrics, regularizers
from rnnkit.layers import GRU, LSTM, Bidirectional, Dense, Embedding, SimpleRNN


@pytest.fixture
def w(rng):
    """A float64 weight with exact zeros (L1's kink) and a zero column (the constraints' epsilon)."""
    a = rng.normal(size=(5, 4)) * 1.5
    a[1, 2] = 0.0
    a[:, 3] = 0.0
    return a


def _grad_through(fn, a: np.ndarray) -> tuple[float, np.ndarray]:
    t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    value = fn(t)
    value.backward()
    return float(value.detach()), t.grad.numpy()


# -- regularizers -------------------------------------------------------------------------

REGULARIZERS = [
    # (ours, Keras', the same penalty written in torch)
    (regularizers.L1(0.03), keras.regularizers.L1(0.03), lambda t: 0.03 * t.abs().sum()),
    (regularizers.L2(0.07), keras.regularizers.L2(0.07), lambda t: 0.07 * (t * t).sum()),
    (regularizers.L1L2(l1=0.02, l2=0.05), keras.regularizers.L1L2(l1=0.02, l2=0.05),
     lambda t: 0.02 * t.abs().sum() + 0.05 * (t * t).sum()),
    (regularizers.L1(), keras.regularizers.L1(), lambda t: 0.01 * t.abs().sum()),
    (regularizers.L2(), keras.regularizers.L2(), lambda t: 0.01 * (t * t).sum()),
    (regularizers.L1L2(l2=0.3), keras.regularizers.L1L2(l2=0.3), lambda t: 0.3 * (t * t).sum()),
]


@pytest.mark.parametrize("ours,theirs,formula", REGULARIZERS, ids=lambda r: repr(r) if hasattr(r, "get_config") else "")
def test_regularizer_value_and_gradient(ours, theirs, formula, w):
    torch_value, torch_grad = _grad_through(formula, w)
    value, grad = ours(w), ours.gradient(w)
    assert isinstance(value, float)
    assert abs(value - torch_value) <= 1e-10 * max(1.0, abs(torch_value))
    assert grad.shape == w.shape and grad.dtype == w.dtype
    assert np.abs(grad - torch_grad).max() <= 1e-10
    # Keras' own ops, differentiated by torch. Keras' L1 keeps its factor as a float32 tensor
    # (L1(0.03) holds 0.029999999329...), so the comparison uses the factor Keras actually holds.
    same_factor = type(ours)(**theirs.get_config())
    keras_value, keras_grad = _grad_through(theirs, w)
    assert abs(same_factor(w) - keras_value) <= 1e-10 * max(1.0, abs(keras_value))
    assert np.abs(same_factor.gradient(w) - keras_grad).max() <= 1e-10
    assert np.all(grad[:, 3] == 0.0) and grad[1, 2] == 0.0   # sign(0) = 0, as autograd of |w|


def test_regularizer_keeps_float32(w):
    w32 = w.astype(np.float32)
    reg = regularizers.L1L2(0.1, 0.2)
    assert reg.gradient(w32).dtype == np.float32
    assert reg(w32) == pytest.approx(reg(w), rel=1e-6)


def test_regularizer_names_aliases_and_defaults():
    assert regularizers.get(None) is None
    assert regularizers.get("l2") == regularizers.L2(0.01)
    assert regularizers.get("L1") == regularizers.L1(0.01)
    assert regularizers.get("l1_l2") == regularizers.L1L2(l1=0.01, l2=0.01)    # the documented string default
    assert regularizers.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}           # the class default, as Keras 3
    assert regularizers.l2(0.1) == regularizers.L2(0.1) and regularizers.l1 is regularizers.L1
    assert regularizers.l1_l2(0.01).get_config() == keras.regularizers.l1_l2(0.01).get_config()
    reg = regularizers.L2(0.5)
    assert regularizers.get(reg) is reg
    assert regularizers.get("l2") is not regularizers.get("l2")


@pytest.mark.parametrize("reg", [regularizers.L1(0.2), regularizers.L2(0.3), regularizers.L1L2(0.1, 0.4),
                                 regularizers.L1L2()])
def test_regularizer_serialization_round_trip(reg):
    config = json.loads(json.dumps(regularizers.serialize(reg)))
    back = regularizers.deserialize(config)
    assert type(back) is type(reg) and back.get_config() == reg.get_config()
    assert regularizers.get(config) == reg
    assert regularizers.serialize(None) is None and regularizers.deserialize(None) is None


@pytest.mark.parametrize("keras_reg", [keras.regularizers.L1(0.2), keras.regularizers.L2(0.3),
                                       keras.regularizers.L1L2(0.1, 0.4)])
def test_regularizer_loads_keras_configs(keras_reg, w):
    ours = regularizers.deserialize(keras.regularizers.serialize(keras_reg))
    assert ours.get_config() == keras_reg.get_config()
    assert abs(ours(w) - float(keras_reg(w))) <= 1e-10


def test_regularizer_errors():
    with pytest.raises(ValueError, match="Unknown regularizer 'l3'. Valid regularizer names are: l1, l1_l2, l2"):
        regularizers.get("l3")
    with pytest.raises(TypeError, match="Expected a regularizer name"):
        regularizers.get(0.01)
    with pytest.raises(ValueError, match=r"l2 must be a finite number >= 0, got -0.1"):
        regularizers.L2(-0.1)
    with pytest.raises(ValueError, match="l1 must be a finite number >= 0"):
        regularizers.L1L2(l1=float("nan"))
    with pytest.raises(ValueError, match="l1 must be a finite number >= 0"):
        regularizers.L1("0.1")
    with pytest.raises(ValueError, match="Invalid config for regularizer 'l2'"):
        regularizers.deserialize({"class_name": "l2", "config": {"l1": 0.1}})
    with pytest.raises(ValueError, match="Unknown regularizer 'OrthogonalRegularizer'"):
        regularizers.deserialize({"class_name": "OrthogonalRegularizer", "config": {}})
    with pytest.raises(TypeError, match="Expected a Regularizer"):
        regularizers.serialize("l2")


# -- constraints ---------------------------------------------------------------------------

CONSTRAINTS = [
    (constraints.MaxNorm(), keras.constraints.MaxNorm()),
    (constraints.MaxNorm(0.7, axis=1), keras.constraints.MaxNorm(0.7, axis=1)),
    (constraints.MaxNorm(1.0, axis=[0, 1]), keras.constraints.MaxNorm(1.0, axis=[0, 1])),
    (constraints.NonNeg(), keras.constraints.NonNeg()),
    (constraints.UnitNorm(), keras.constraints.UnitNorm()),
    (constraints.UnitNorm(axis=1), keras.constraints.UnitNorm(axis=1)),
    (constraints.MinMaxNorm(), keras.constraints.MinMaxNorm()),
    (constraints.MinMaxNorm(0.5, 2.0, rate=0.3, axis=1), keras.constraints.MinMaxNorm(0.5, 2.0, rate=0.3, axis=1)),
    (constraints.MinMaxNorm(3.0, 4.0), keras.constraints.MinMaxNorm(3.0, 4.0)),
]


@pytest.mark.parametrize("ours,theirs", CONSTRAINTS, ids=lambda c: repr(c))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_constraint_matches_keras(ours, theirs, dtype, w):
    a = w.astype(dtype)
    expected = keras.ops.convert_to_numpy(theirs(a))
    projected = ours(a)
    assert projected.shape == a.shape and projected.dtype == dtype
    np.testing.assert_allclose(projected, expected, rtol=1e-6, atol=0)
    assert np.all(projected[:, 3] == 0.0)                   # the epsilon keeps a zero column at zero
    assert ours.get_config() == theirs.get_config()


def test_constraints_project():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 3)) * 3
    assert np.all(np.linalg.norm(constraints.MaxNorm(1.5)(a), axis=0) <= 1.5)
    np.testing.assert_allclose(np.linalg.norm(constraints.UnitNorm()(a), axis=0), 1.0, rtol=1e-6)
    norms = np.linalg.norm(constraints.MinMaxNorm(2.0, 2.5)(a), axis=0)
    assert np.all((norms >= 2.0 - 1e-6) & (norms <= 2.5))


def test_constraint_names_and_serialization():
    assert constraints.get(None) is None
    for name, cls in [("max_norm", constraints.MaxNorm), ("non_neg", constraints.NonNeg),
                      ("unit_norm", constraints.UnitNorm), ("min_max_norm", constraints.MinMaxNorm),
                      ("MaxNorm", constraints.MaxNorm)]:
        assert type(constraints.get(name)) is cls
    assert constraints.max_norm(3) == constraints.MaxNorm(3)
    for c in [constraints.MaxNorm(3, axis=1), constraints.NonNeg(), constraints.UnitNorm(axis=[0, 1]),
              constraints.MinMaxNorm(0.1, 0.9, 0.5, 1)]:
        config = json.loads(json.dumps(constraints.serialize(c)))
        assert constraints.deserialize(config) == c and constraints.get(config) == c
    keras_config = keras.constraints.serialize(keras.constraints.MinMaxNorm(0.2, 0.8, 0.5))
    assert constraints.deserialize(keras_config) == constraints.MinMaxNorm(0.2, 0.8, 0.5)


def test_constraint_errors():
    with pytest.raises(ValueError, match="Unknown constraint 'maxnorm'. Valid constraint names are: max_norm, "):
        constraints.get("maxnorm")
    with pytest.raises(ValueError, match=r"max_value must be a finite number in \[0.0, inf\], got -1"):
        constraints.MaxNorm(-1)
    with pytest.raises(ValueError, match=r"rate must be a finite number in \[0.0, 1.0\], got 1.5"):
        constraints.MinMaxNorm(rate=1.5)
    with pytest.raises(ValueError, match=r"min_value \(2\) must not exceed max_value \(1\)"):
        constraints.MinMaxNorm(2, 1)
    with pytest.raises(TypeError, match="axis must be an integer or a list of integers, got 0.5"):
        constraints.UnitNorm(axis=0.5)
    with pytest.raises(ValueError, match="Invalid config for constraint 'non_neg'"):
        constraints.deserialize({"class_name": "non_neg", "config": {"axis": 0}})


# -- layers ---------------------------------------------------------------------------------

def _recurrent_penalties():
    return dict(kernel_regularizer="l2", recurrent_regularizer=regularizers.L1(0.02),
                bias_regularizer={"class_name": "l1_l2", "config": {"l1": 0.1, "l2": 0.2}},
                activity_regularizer="l1", kernel_constraint="max_norm",
                recurrent_constraint=constraints.UnitNorm(axis=1), bias_constraint="non_neg")


RECURRENT_KEYS = ({"kernel", "recurrent_kernel", "bias"}, {"kernel", "recurrent_kernel", "bias"})

LAYERS = {
    "dense": (lambda: Dense(3, kernel_regularizer="l2", bias_regularizer=regularizers.L1(0.2),
                            activity_regularizer="l1", kernel_constraint="max_norm", bias_constraint="non_neg"),
              (4,), ({"kernel", "bias"}, {"kernel", "bias"})),
    "dense_kernel_only": (lambda: Dense(3, use_bias=False, kernel_regularizer="l1", bias_regularizer="l2",
                                        bias_constraint="non_neg"), (4,), ({"kernel"}, set())),
    "embedding": (lambda: Embedding(7, 3, embeddings_regularizer="l2", embeddings_constraint="unit_norm",
                                    activity_regularizer=regularizers.L2(0.1), mask_zero=True),
                  (5,), ({"embeddings"}, {"embeddings"})),
    "simple_rnn": (lambda: SimpleRNN(3, **_recurrent_penalties()), (5, 4), RECURRENT_KEYS),
    "lstm": (lambda: LSTM(3, **_recurrent_penalties(), return_sequences=True), (5, 4), RECURRENT_KEYS),
    "gru": (lambda: GRU(3, **_recurrent_penalties(), reset_after=False), (5, 4), RECURRENT_KEYS),
    "gru_partial": (lambda: GRU(3, recurrent_regularizer="l2"), (5, 4), ({"recurrent_kernel"}, set())),
}


@pytest.mark.parametrize("key", sorted(LAYERS))
def test_layer_penalties_wired_and_round_trip(key):
    make, input_shape, (reg_keys, con_keys) = LAYERS[key]
    layer = make()
    layer.build(input_shape)
    assert set(layer.regularizers) == reg_keys and set(layer.constraints) == con_keys
    assert set(layer.regularizers) <= set(layer.params) and set(layer.constraints) <= set(layer.params)
    assert all(isinstance(r, regularizers.Regularizer) for r in layer.regularizers.values())
    assert all(isinstance(c, constraints.Constraint) for c in layer.constraints.values())
    config = json.loads(json.dumps(layer.get_config()))
    copy = type(layer)(**config)
    assert copy.get_config() == layer.get_config()
    assert copy.regularizers == layer.regularizers and copy.constraints == layer.constraints
    assert copy.activity_regularizer == layer.activity_regularizer


def test_penalty_arguments_land_under_their_weight_names():
    layer = LSTM(2, **_recurrent_penalties())
    assert layer.regularizers == {"kernel": regularizers.L2(0.01), "recurrent_kernel": regularizers.L1(0.02),
                                  "bias": regularizers.L1L2(0.1, 0.2)}
    assert layer.constraints == {"kernel": constraints.MaxNorm(), "recurrent_kernel": constraints.UnitNorm(axis=1),
                                 "bias": constraints.NonNeg()}
    assert layer.activity_regularizer == regularizers.L1(0.01)
    dense = Dense(2, activity_regularizer="l2")
    assert dense.regularizers == {} and dense.constraints == {} and dense.activity_regularizer == regularizers.L2()


@pytest.mark.parametrize("layer", [Dense(2), Embedding(4, 2), SimpleRNN(2), LSTM(2), GRU(2)],
                         ids=lambda layer: type(layer).__name__)
def test_configs_without_penalties_are_unchanged(layer):
    config = layer.get_config()
    assert not [k for k in config if k.endswith(("_regularizer", "_constraint"))]
    assert "unroll" not in config and "implementation" not in config
    assert layer.regularizers == {} and layer.constraints == {} and layer.activity_regularizer is None


def test_bidirectional_copies_penalties_and_round_trips():
    layer = Bidirectional(LSTM(3, kernel_regularizer=regularizers.L2(0.3), recurrent_constraint="max_norm",
                               unroll=True, implementation=1, return_sequences=True))
    for sub in (layer.forward_layer, layer.backward_layer):
        assert sub.regularizers == {"kernel": regularizers.L2(0.3)}
        assert sub.constraints == {"recurrent_kernel": constraints.MaxNorm()}
        assert sub.unroll is True and sub.implementation == 1
    assert layer.forward_layer.regularizers["kernel"] is not layer.backward_layer.regularizers["kernel"]
    config = json.loads(json.dumps(layer.get_config()))
    copy = Bidirectional(**config)
    assert copy.get_config() == layer.get_config()
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    assert copy(x).shape == (2, 4, 6)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_unroll_and_implementation_are_accepted_and_change_nothing(cls, rng):
    x = rng.normal(size=(2, 5, 3))
    plain = cls(4, seed=3, return_sequences=True)
    keras_style = cls(4, seed=3, return_sequences=True, unroll=True, implementation=1)
    assert keras_style.get_config() == {**plain.get_config(), "unroll": True, "implementation": 1}
    np.testing.assert_array_equal(keras_style(x), plain(x))
    assert cls(4, unroll=np.bool_(False), implementation=np.int64(2)).get_config() == cls(4).get_config()


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_unroll_and_implementation_are_checked(cls):
    with pytest.raises(TypeError, match="unroll must be True or False, got str: 'yes'"):
        cls(2, unroll="yes")
    with pytest.raises(ValueError, match=r"implementation must be 1 or 2 \(as in Keras\), got 3"):
        cls(2, implementation=3)
    with pytest.raises(ValueError, match="implementation must be 1 or 2"):
        cls(2, implementation=True)


def test_layer_rejects_bad_penalties():
    with pytest.raises(ValueError, match="Unknown regularizer 'l3'"):
        Dense(2, kernel_regularizer="l3")
    with pytest.raises(ValueError, match="Unknown constraint 'positive'"):
        LSTM(2, recurrent_constraint="positive")
    with pytest.raises(TypeError, match="Expected a regularizer name"):
        Embedding(3, 2, activity_regularizer=0.01)


# -- Embedding of any rank --------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 3, 4)])
def test_embedding_any_rank_forward_mask_and_gradient(shape, rng, float64):
    layer = Embedding(5, 3, mask_zero=True, seed=0)
    idx = rng.integers(0, 5, size=shape)
    idx.reshape(-1)[:2] = [0, 3]                           # a padding index and a repeated index
    idx.reshape(-1)[2] = 3
    y = layer(idx)
    assert layer.input_shape == shape[1:] and layer.output_shape == (*shape[1:], 3)
    assert y.shape == (*shape, 3)
    np.testing.assert_array_equal(y, layer.params["embeddings"][idx])
    mask = layer.compute_mask(idx, None)
    assert mask.shape == shape and np.array_equal(mask, idx != 0)
    g = rng.normal(size=y.shape)                           # L = sum(y * g)
    layer.backward(g)
    table = layer.params["embeddings"]
    num = numeric_grad(lambda: float((layer.forward(idx) * g).sum()), table)
    assert rel_error(layer.grads["embeddings"], num) < 1e-8


def test_embedding_keeps_integer_indices(rng):
    layer = Embedding(9, 2)
    assert Embedding.input_kind == "int"
    idx = np.array([[1, 8], [0, 4]], dtype=np.int32)
    assert layer.as_input_arrays(idx) is idx                  # not cast to float
    np.testing.assert_array_equal(layer(idx), layer(idx.astype(float)))
    with pytest.raises(ValueError, match=r"expects indices in \[0, 9\), got values from 0 to 9"):
        layer(np.array([[0, 9]]))
    with pytest.raises(ValueError, match="takes one array of indices, got a list of 2 inputs"):
        Embedding(9, 2).build([(3,), (3,)])


def test_embedding_of_rank_three_in_a_model(rng):
    model = rnnkit.Sequential([Embedding(6, 2, input_shape=(3, 4), embeddings_regularizer="l2"), Dense(1)], seed=0)
    x = rng.integers(0, 6, size=(5, 3, 4))
    assert model.predict(x, verbose=0).shape == (5, 3, 4, 1)


# -- losses ----------------------------------------------------------------------------------

SHAPE = (4, 3, 5)


def _smooth_categorical(y, s):
    return y * (1 - s) + s / y.shape[-1]


def _smooth_binary(y, s):
    return y * (1 - s) + 0.5 * s


def _data(kind: str, rng):
    """(y_true, y_pred) for the loss kind: probabilities, logits, labels."""
    labels = rng.integers(0, SHAPE[-1], size=SHAPE[:-1])
    onehot = np.eye(SHAPE[-1])[labels]
    logits = rng.normal(size=SHAPE) * 2
    if kind == "categorical":
        return onehot, logits
    if kind == "sparse":
        return labels, logits
    return rng.integers(0, 2, size=SHAPE).astype(np.float64), logits


def _probabilities(kind: str, z: np.ndarray) -> np.ndarray:
    if kind == "binary":
        return 1 / (1 + np.exp(-z))
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _torch_reference(kind: str, from_logits: bool, smoothing: float):
    """The Keras formula written in torch: mean over positions of the per-position loss."""
    eps = 1e-7

    def loss(y, p):
        if kind == "sparse":
            if from_logits:
                return F.cross_entropy(p.reshape(-1, SHAPE[-1]), y.reshape(-1))
            q = torch.clamp(p / p.sum(-1, keepdim=True), eps, 1 - eps)
            return F.nll_loss(torch.log(q).reshape(-1, SHAPE[-1]), y.reshape(-1))
        if kind == "categorical":
            y = _smooth_categorical(y, smoothing)
            logq = F.log_softmax(p, -1) if from_logits else torch.log(torch.clamp(p / p.sum(-1, keepdim=True),
                                                                                  eps, 1 - eps))
            return -(y * logq).sum(-1).mean()
        y = _smooth_binary(y, smoothing)
        if from_logits:
            return F.binary_cross_entropy_with_logits(p, y, reduction="none").mean(-1).mean()
        return F.binary_cross_entropy(torch.clamp(p, eps, 1 - eps), y, reduction="none").mean(-1).mean()

    return loss


LOSS_CASES = [
    # (kind, ours, Keras' class, from_logits, label_smoothing)
    ("categorical", losses.CategoricalCrossentropy(from_logits=True), keras.losses.CategoricalCrossentropy,
     True, 0.0),
    ("categorical", losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
     keras.losses.CategoricalCrossentropy, True, 0.1),
    ("categorical", losses.CategoricalCrossentropy(label_smoothing=0.25), keras.losses.CategoricalCrossentropy,
     False, 0.25),
    ("sparse", losses.SparseCategoricalCrossentropy(from_logits=True), keras.losses.SparseCategoricalCrossentropy,
     True, 0.0),
    ("sparse", losses.SparseCategoricalCrossentropy(), keras.losses.SparseCategoricalCrossentropy, False, 0.0),
    ("binary", losses.BinaryCrossentropy(from_logits=True), keras.losses.BinaryCrossentropy, True, 0.0),
    ("binary", losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.2), keras.losses.BinaryCrossentropy,
     True, 0.2),
    ("binary", losses.BinaryCrossentropy(label_smoothing=0.3), keras.losses.BinaryCrossentropy, False, 0.3),
]


def _close_to_keras(kind: str, ours, theirs) -> bool:
    """Keras computes the cross-entropies over classes in float64; its ``ops.mean`` (binary
    cross-entropy's mean over the last axis, MSE, MAE, and the loss classes' reduction) casts
    to float32 inside, so those agree to float32 rounding only."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if kind in ("categorical", "sparse"):
        return np.abs(ours - theirs).max() <= 1e-10 * max(1.0, np.abs(theirs).max())
    return np.allclose(ours, theirs, rtol=1e-6, atol=0)


@pytest.mark.parametrize("kind,ours,keras_cls,from_logits,smoothing", LOSS_CASES,
                         ids=lambda v: repr(v) if isinstance(v, losses.Loss) else None)
def test_loss_arguments_match_keras_and_torch(kind, ours, keras_cls, from_logits, smoothing, rng):
    y, z = _data(kind, rng)
    pred = z if from_logits else _probabilities(kind, z)
    extra = {} if kind == "sparse" else {"label_smoothing": smoothing}
    theirs = keras_cls(from_logits=from_logits, dtype="float64", reduction=None, **extra)   # per position
    keras_values = keras.ops.convert_to_numpy(theirs(y, pred))
    value, grad = ours.value_and_grad(y, pred)
    assert _close_to_keras(kind, ours.values(y, pred), keras_values)
    assert _close_to_keras(kind, value, keras_values.mean())
    assert ours(y, pred) == value
    # gradient: torch autograd in float64 through the formula written in torch, and through Keras' own loss
    p_t = torch.tensor(pred, requires_grad=True)
    y_t = torch.tensor(y)
    _torch_reference(kind, from_logits, smoothing)(y_t, p_t).backward()
    assert np.abs(grad - p_t.grad.numpy()).max() <= 1e-8
    p_t.grad = None
    theirs(y_t, p_t).mean().backward()
    keras_grad = p_t.grad.numpy()
    tol = 1e-8 if kind in ("categorical", "sparse") else 1e-6 * np.abs(keras_grad).max()   # float32 inside Keras
    assert np.abs(grad - keras_grad).max() <= tol


@pytest.mark.parametrize("kind,ours,keras_cls,from_logits,smoothing", LOSS_CASES,
                         ids=lambda v: repr(v) if isinstance(v, losses.Loss) else None)
def test_loss_float32_against_keras(kind, ours, keras_cls, from_logits, smoothing, rng):
    y, z = _data(kind, rng)
    pred = (z if from_logits else _probabilities(kind, z)).astype(np.float32)
    extra = {} if kind == "sparse" else {"label_smoothing": smoothing}
    keras_value = float(keras_cls(from_logits=from_logits, **extra)(y, pred))     # Keras computes in float32
    value, grad = ours.value_and_grad(y, pred)
    assert grad.dtype == np.float32
    assert value == pytest.approx(keras_value, rel=1e-6)


@pytest.mark.parametrize("name,act", [("categorical", "softmax"), ("binary", "sigmoid")])
def test_fused_path_with_label_smoothing_equals_unfused(name, act, rng):
    """What the engine does for a softmax/sigmoid output (from_logits=False): the logits path gives the
    same value and gradient as probabilities + loss + activation, label smoothing included."""
    loss = losses.deserialize({"class_name": f"{name}_crossentropy", "config": {"label_smoothing": 0.15}})
    y, z = _data(name, rng)
    a = rnnkit.activations.get(act)
    p = a(z)
    value, dp = loss.value_and_grad(y, p)
    fused_value, dz = loss.value_and_grad_from_logits(y, z)
    assert abs(value - fused_value) < 1e-10
    assert rel_error(dz, a.backward(dp, p)) < 1e-8


def test_from_logits_is_an_attribute_and_is_never_fused():
    for cls in (losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy, losses.BinaryCrossentropy):
        assert cls().from_logits is False and cls().fuses_with in ("softmax", "sigmoid")
        assert cls(from_logits=True).from_logits is True and cls(from_logits=True).fuses_with is None
    assert losses.MeanSquaredError().from_logits is False


def test_from_logits_uses_the_output_as_logits(rng):
    loss = losses.BinaryCrossentropy(from_logits=True)
    y, z = _data("binary", rng)
    assert loss.value_and_grad(y, z)[0] == loss.value_and_grad_from_logits(y, z)[0]
    np.testing.assert_array_equal(loss.value_and_grad(y, z)[1], loss.value_and_grad_from_logits(y, z)[1])


FUNCTIONS = [
    ("categorical", losses.categorical_crossentropy, keras.losses.categorical_crossentropy,
     dict(from_logits=True, label_smoothing=0.1)),
    ("categorical", losses.categorical_crossentropy, keras.losses.categorical_crossentropy, {}),
    ("sparse", losses.sparse_categorical_crossentropy, keras.losses.sparse_categorical_crossentropy,
     dict(from_logits=True)),
    ("binary", losses.binary_crossentropy, keras.losses.binary_crossentropy,
     dict(from_logits=True, label_smoothing=0.2)),
    ("binary", losses.binary_crossentropy, keras.losses.binary_crossentropy, {}),
    ("regression", losses.mean_squared_error, keras.losses.mean_squared_error, {}),
    ("regression", losses.mean_absolute_error, keras.losses.mean_absolute_error, {}),
]


@pytest.mark.parametrize("kind,ours,theirs,kwargs", FUNCTIONS, ids=lambda v: getattr(v, "__name__", None))
def test_loss_functions_give_per_position_values(kind, ours, theirs, kwargs, rng):
    y, z = _data(kind, rng) if kind != "regression" else (rng.normal(size=SHAPE), rng.normal(size=SHAPE))
    pred = z if kwargs.get("from_logits") or kind == "regression" else _probabilities(kind, z)
    values = ours(y, pred, **kwargs)
    expected = keras.ops.convert_to_numpy(theirs(y, pred, **kwargs))          # float64 in, float64 out
    assert values.shape == SHAPE[:-1] == expected.shape and values.dtype == np.float64
    assert _close_to_keras(kind, values, expected)
    assert losses.get(ours).name == ours.__name__            # a function names its loss class, as in Keras


def test_regression_functions_match_a_trailing_axis_of_one():
    y, p = np.array([1.0, 2.0, 4.0]), np.array([[1.5], [2.0], [3.0]])
    np.testing.assert_allclose(losses.mean_squared_error(y, p), [0.25, 0.0, 1.0])
    np.testing.assert_allclose(losses.mean_absolute_error(y[:, None], p), [0.5, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"MeanSquaredError needs y_true shaped like y_pred \(3, 1\), got \(2, 1\)"):
        losses.mean_squared_error(y[:2], p)


def test_get_returns_fresh_default_instances():
    for name in ("categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy", "mse", "mae"):
        a, b = losses.get(name), losses.get(name)
        assert a is not b and type(a) is type(b)
        assert a.get_config() == type(a)().get_config()
        assert a.from_logits is False and getattr(a, "label_smoothing", 0.0) == 0.0
    loss = losses.BinaryCrossentropy(from_logits=True)
    assert losses.get(loss) is loss


SERIALIZABLE_LOSSES = [
    losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, name="cce"),
    losses.SparseCategoricalCrossentropy(from_logits=True),
    losses.BinaryCrossentropy(label_smoothing=0.2, reduction="sum_over_batch_size"),
    losses.MeanSquaredError(name="my_mse"),
    losses.MeanAbsoluteError(),
]


@pytest.mark.parametrize("loss", SERIALIZABLE_LOSSES, ids=repr)
def test_loss_serialization_round_trip(loss):
    config = json.loads(json.dumps(losses.serialize(loss)))
    back = losses.deserialize(config)
    assert type(back) is type(loss) and back.get_config() == loss.get_config()
    assert back.name == loss.name and back.from_logits == loss.from_logits and back.fuses_with == loss.fuses_with
    assert losses.get(config).get_config() == loss.get_config()


def test_loss_config_contents():
    assert losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1).get_config() == {
        "name": "categorical_crossentropy", "reduction": "sum_over_batch_size", "from_logits": True,
        "label_smoothing": 0.1}
    assert losses.SparseCategoricalCrossentropy().get_config() == {
        "name": "sparse_categorical_crossentropy", "reduction": "sum_over_batch_size", "from_logits": False}
    assert losses.deserialize({"class_name": "MeanSquaredError", "config": {}}).name == "mean_squared_error"


def test_loss_errors():
    with pytest.raises(ValueError, match="supports only reduction='sum_over_batch_size'.*got reduction='sum'"):
        losses.MeanSquaredError(reduction="sum")
    with pytest.raises(ValueError, match="supports only reduction='sum_over_batch_size'.*got reduction=None"):
        losses.BinaryCrossentropy(reduction=None)
    with pytest.raises(ValueError, match=r"label_smoothing must be a number in \[0, 1\], got 1.5"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(TypeError, match="from_logits must be True or False, got str: 'yes'"):
        losses.BinaryCrossentropy(from_logits="yes")
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        losses.MeanAbsoluteError(name="")
    with pytest.raises(ValueError, match="does not support ignore_class"):
        losses.SparseCategoricalCrossentropy(ignore_class=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'label_smoothing'"):
        losses.SparseCategoricalCrossentropy(label_smoothing=0.1)
    with pytest.raises(ValueError, match="Unknown loss 'hinge'. Valid loss names are: binary_crossentropy"):
        losses.deserialize({"class_name": "hinge", "config": {}})
    with pytest.raises(ValueError, match="Invalid config for loss 'mse'"):
        losses.deserialize({"class_name": "mse", "config": {"from_logits": True}})

    class Custom(losses.MeanSquaredError):
        pass

    with pytest.raises(TypeError, match="Only rnnkit's own losses can be serialised, got an instance of Custom"):
        losses.serialize(Custom())


# -- metrics ---------------------------------------------------------------------------------

SERIALIZABLE_METRICS = [
    metrics.CategoricalAccuracy(), metrics.CategoricalAccuracy(name="acc"), metrics.SparseCategoricalAccuracy(),
    metrics.BinaryAccuracy(threshold=0.3), metrics.BinaryAccuracy(name="accuracy"),
    metrics.MeanAbsoluteError(name="mae"), metrics.MeanSquaredError(),
]


@pytest.mark.parametrize("metric", SERIALIZABLE_METRICS, ids=repr)
def test_metric_serialization_round_trip(metric, rng):
    config = json.loads(json.dumps(metrics.serialize(metric)))
    back = metrics.deserialize(config)
    assert type(back) is type(metric) and back.get_config() == metric.get_config() and back.name == metric.name
    y, p = rng.integers(0, 2, size=(6, 3)).astype(float), rng.uniform(size=(6, 3))
    if isinstance(metric, metrics.SparseCategoricalAccuracy):
        y = rng.integers(0, 3, size=(6,))
    assert back.update(y, p) == metric.update(y, p)
    assert metrics.get(config, None, y.shape, p.shape).get_config() == metric.get_config()


def test_metric_config_and_errors():
    assert metrics.serialize(metrics.BinaryAccuracy(threshold=0.3)) == {
        "class_name": "binary_accuracy", "config": {"name": "binary_accuracy", "threshold": 0.3}}
    assert metrics.deserialize({"class_name": "BinaryAccuracy", "config": {"threshold": 0.7}}).threshold == 0.7
    with pytest.raises(ValueError, match="threshold must be a finite number, got 'high'"):
        metrics.BinaryAccuracy(threshold="high")
    with pytest.raises(ValueError, match="Unknown metric 'auc'"):
        metrics.deserialize({"class_name": "auc", "config": {}})
    with pytest.raises(ValueError, match="Invalid config for metric 'mean_squared_error'"):
        metrics.deserialize({"class_name": "mean_squared_error", "config": {"threshold": 0.5}})
    with pytest.raises(TypeError, match="Expected a metric config"):
        metrics.deserialize("accuracy")
    with pytest.raises(ValueError, match="Unknown metric 'auc'"):
        metrics.check_name({"class_name": "auc"})


# -- in a model ------------------------------------------------------------------------------

def test_model_with_penalties_and_loss_objects_trains_saves_and_restores(tmp_path, rng):
    """The engine adds the penalties to the loss, uses from_logits and label smoothing, applies the
    constraint after the update; saving keeps the loss and metric objects and the layers' penalties."""
    x = rng.normal(size=(6, 4, 3))
    y = rnnkit.one_hot(rng.integers(0, 3, size=6), 3)
    model = rnnkit.Sequential([
        LSTM(5, input_shape=(4, 3), kernel_regularizer=regularizers.L2(0.1),
             recurrent_constraint=constraints.MaxNorm(0.5)),
        Dense(3, activity_regularizer="l1"),
    ], seed=0)
    model.compile(optimizer="sgd", loss=losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
                  metrics=[metrics.CategoricalAccuracy(name="acc")])
    out = model.predict(x, verbose=0)
    kernel = model.layers[0].params["kernel"]
    expected = (losses.categorical_crossentropy(y, out, from_logits=True, label_smoothing=0.1).mean()
                + 0.1 * float((kernel.astype(np.float64) ** 2).sum()) + 0.01 * np.abs(out).sum() / len(x))
    assert model.evaluate(x, y, verbose=0)[0] == pytest.approx(expected, rel=1e-5)
    model.fit(x, y, epochs=1, verbose=0)
    assert np.linalg.norm(model.layers[0].params["recurrent_kernel"], axis=0).max() <= 0.5 + 1e-6
    path = tmp_path / "model.safetensors"
    model.save(path)
    restored = rnnkit.load_model(path)
    assert restored.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert restored.layers[0].regularizers == {"kernel": regularizers.L2(0.1)}
    assert restored.layers[0].constraints == {"recurrent_kernel": constraints.MaxNorm(0.5)}
    assert restored.layers[1].activity_regularizer == regularizers.L1(0.01)
    assert restored.metrics_names == model.metrics_names
