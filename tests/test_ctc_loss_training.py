"""The CTC loss in model.compile: y_true (B, L) against an output (B, T, K), the gradient end to end against finite
differences, Keras 3's keras.losses.CTC, masks, training, and the errors fit gives."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import rnnkit
from gradcheck import numeric_grad, rel_error
from rnnkit import losses
from rnnkit.ctc import ctc_loss
from rnnkit.layers import GRU, Dense, Masking

pytestmark = pytest.mark.usefixtures("float64")

Y = np.array([[1, 2, 2], [3, 0, 0], [0, 0, 0]])              # labels padded with 0 (the blank), Keras 3's layout


def _model(activation="softmax", loss=None, masking=False):
    model = rnnkit.Sequential(seed=3)
    if masking:
        model.add(Masking(input_shape=(7, 3)))
        model.add(GRU(5, return_sequences=True))
    else:
        model.add(GRU(5, return_sequences=True, input_shape=(7, 3)))
    model.add(Dense(4, activation=activation))
    model.compile(optimizer="adam", loss=losses.CTC() if loss is None else loss)
    return model


def test_end_to_end_gradient_matches_finite_differences(rng):
    model = _model()
    x = rng.normal(size=(3, 7, 3))
    value, grads = model.loss_and_gradients(x, Y)
    expected = ctc_loss(Y, model.predict(x, verbose=0), [3, 1, 0], [7, 7, 7]).mean()
    assert value == pytest.approx(expected, rel=1e-12)
    for weight, grad in zip(model.weights, grads):
        num = numeric_grad(lambda: model.loss_and_gradients(x, Y)[0], weight)
        assert rel_error(grad, num) < 1e-6


def test_softmax_output_and_logits_give_the_same_loss_and_gradients(rng):
    """CTC() on a softmax output (computed from its logits) is CTC(from_logits=True) on a linear one."""
    x = rng.normal(size=(3, 7, 3))
    probs, logits = _model("softmax", "ctc"), _model("linear", losses.CTC(from_logits=True))
    assert isinstance(probs.loss, losses.CTC) and probs.loss.from_logits is False
    v1, g1 = probs.loss_and_gradients(x, Y)
    v2, g2 = logits.loss_and_gradients(x, Y)
    assert v1 == pytest.approx(v2, rel=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_matches_keras_losses_ctc(rng):
    logits = rng.normal(size=(3, 7, 4))
    theirs = keras.ops.convert_to_numpy(keras.losses.CTC()(Y, logits))
    # Keras 3 computes CTC in float32 whatever it is given
    assert losses.CTC(from_logits=True)(Y, logits) == pytest.approx(float(theirs), rel=1e-6)
    per_sequence = keras.ops.convert_to_numpy(keras.losses.ctc(Y, logits))
    np.testing.assert_allclose(losses.ctc(Y, logits, from_logits=True), per_sequence, rtol=1e-6)


def test_output_mask_sets_the_input_lengths(rng):
    model = _model(masking=True)
    x = rng.normal(size=(3, 7, 3))
    x[0, 5:] = 0.0                                            # sequence 0 is 5 steps long, sequence 2 is 4
    x[2, 4:] = 0.0
    value, grads = model.loss_and_gradients(x, Y)
    expected = ctc_loss(Y, model.predict(x, verbose=0), [3, 1, 0], [5, 7, 4]).mean()
    assert value == pytest.approx(expected, rel=1e-12)
    kernel = model.weights[0]
    num = numeric_grad(lambda: model.loss_and_gradients(x, Y)[0], kernel)
    assert rel_error(grads[0], num) < 1e-6


def test_training_learns_a_toy_alignment():
    """Inputs spell their labels as one-hot pulses at random steps; after training the decoding is right."""
    rng = np.random.default_rng(0)
    n, T, K = 64, 8, 4
    x = np.zeros((n, T, K - 1))
    y = np.zeros((n, 3), dtype=np.int64)
    for i in range(n):
        labels = rng.integers(1, K, size=rng.integers(1, 4))
        steps = np.sort(rng.choice(T, size=len(labels), replace=False))
        x[i, steps, labels - 1] = 1.0
        y[i, :len(labels)] = labels
    model = rnnkit.Sequential(seed=0)
    model.add(GRU(12, return_sequences=True, input_shape=(T, K - 1)))
    model.add(Dense(K, activation="softmax"))
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=0.03), loss="ctc")
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    paths, _ = rnnkit.ctc.ctc_decode(model.predict(x, verbose=0), np.full(n, T))
    exact = np.mean([list(p[p >= 0]) == list(t[t > 0]) for p, t in zip(paths[0], y)])
    assert exact > 0.9


def test_fit_errors_say_what_ctc_expects(rng):
    model = _model()
    x = rng.normal(size=(3, 7, 3))
    with pytest.raises(ValueError, match=r"ctc expects y of shape \(batch_size, max_label_length\).*shape \(3, 7, 4\)"):
        model.fit(x, np.zeros((3, 7, 4)), verbose=0)
    with pytest.raises(ValueError, match=r"y row 0 is \[1, 0, 2\]: 0 is the blank and may only pad the end"):
        model.fit(x, np.array([[1, 0, 2], [1, 0, 0], [1, 0, 0]]), verbose=0)
    with pytest.raises(ValueError, match=r"integer labels in \[1, 4\) padded with 0 for ctc, got values from 0 to 4"):
        model.fit(x, np.array([[1, 4, 0], [1, 0, 0], [1, 0, 0]]), verbose=0)
    with pytest.raises(ValueError, match=r"y row 2 has labels \[1, 1, 2, 2, 3, 3\], which need at least 9 "
                                         r"time steps \(a repeated label needs a blank step between\), but the "
                                         r"output has 7"):
        model.fit(x, np.array([[1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 2, 2, 3, 3]]), verbose=0)
    # with a mask, the lengths are known only in the batch: the error comes before the update
    masked = _model(masking=True)
    x[:, 4:] = 0.0                                            # every sequence is 4 steps long
    before = [w.copy() for w in masked.weights]
    with pytest.raises(ValueError, match=r"cannot be aligned: its 4 labels \[1, 1, 2, 2\] need at least 6 time steps"
                                         r" .* output_length is 4"):
        masked.fit(x, np.array([[1, 0, 0, 0], [1, 1, 2, 2], [2, 0, 0, 0]]), verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, masked.weights))   # nothing changed


def test_ctc_is_registered_and_serialises():
    assert isinstance(losses.get("ctc"), losses.CTC) and isinstance(losses.get(losses.ctc), losses.CTC)
    loss = losses.CTC(from_logits=True, name="my_ctc")
    config = json.loads(json.dumps(losses.serialize(loss)))
    assert config == {"class_name": "ctc", "config": {"name": "my_ctc", "reduction": "sum_over_batch_size",
                                                      "from_logits": True}}
    back = losses.deserialize(config)
    assert type(back) is losses.CTC and back.get_config() == loss.get_config() and back.fuses_with is None
    assert losses.deserialize({"class_name": "CTC", "config": {}}).fuses_with == "softmax"


def test_accuracy_metric_with_ctc_is_refused_before_training():
    model = rnnkit.Sequential([rnnkit.Input((6, 3)), GRU(4, return_sequences=True), Dense(5, activation="softmax")],
                              seed=0)
    model.compile(optimizer="adam", loss="ctc", metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(0).standard_normal((2, 6, 3))
    with pytest.raises(ValueError, match=r"cannot be used with the CTC loss.*character_error_rate"):
        model.fit(x, np.array([[1, 2], [3, 0]]), epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
