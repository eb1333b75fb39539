"""Parity with Keras 3 (PyTorch backend): training, evaluation and inference match step for step.

Every test builds the Keras model first (with ``keras.utils.set_random_seed(0)``), copies *its*
initial weights into the rnnkit model with ``set_weights`` and then runs both the same way,
with ``shuffle=False``, so that any difference can only come from rnnkit's arithmetic.

Tolerances: both sides compute in float32, but in a different order (NumPy/BLAS versus
torch kernels, fused softmax cross-entropy versus Keras' clipped ``log``), so the values
agree to float32 rounding (~1e-7 relative) per operation; a few hundred chained operations
over 5 epochs of Adam keep them within 1e-4 relative, which is what is asserted.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import rnnkit
from rnnkit.demo import ARTICLE_TEXT
from rnnkit.diagnostics.telemetry import TELEMETRY_KEYS

RTOL = 1e-4


def keras_keys(history: dict) -> list[str]:
    """The History keys Keras also has: rnnkit adds gradient telemetry (grad_norm, ...) of its own."""
    return sorted(k for k in history if k not in TELEMETRY_KEYS)


def max_rel_err(actual, expected) -> float:
    """Largest ``|a - e| / max(|e|, 1e-6)`` over all entries (the 1e-6 avoids dividing by 0)."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    return float(np.max(np.abs(a - e) / np.maximum(np.abs(e), 1e-6)))


def assert_rel(actual, expected, rtol=RTOL, what=""):
    err = max_rel_err(actual, expected)
    assert err <= rtol, f"{what}: max relative error {err:.3g} > {rtol:g}\n{actual}\n{expected}"


def article_data():
    """The article's data computed as its Keras code does it (sorted chars, 3-char windows)."""
    text = ARTICLE_TEXT
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    seqs = [[index[c] for c in text[i:i + 3]] for i in range(len(text) - 3)]
    labels = [index[text[i + 3]] for i in range(len(text) - 3)]
    eye = np.eye(len(chars), dtype=np.float32)
    return chars, eye[np.array(seqs)], eye[np.array(labels)]


def keras_article_model(optimizer="adam"):
    keras.utils.set_random_seed(0)
    _, X, _ = article_data()
    V = X.shape[-1]
    model = keras.Sequential([keras.Input((3, V)), keras.layers.SimpleRNN(50, activation="relu"),
                              keras.layers.Dense(V, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def rnnkit_article_model(keras_model, optimizer="adam"):
    """The article's model in rnnkit, starting from the Keras model's weights."""
    V = keras_model.input_shape[-1]
    model = rnnkit.Sequential(seed=0)
    model.add(rnnkit.layers.SimpleRNN(50, input_shape=(3, V), activation="relu"))
    model.add(rnnkit.layers.Dense(V, activation="softmax"))
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    model.set_weights(keras_model.get_weights())
    return model


def assert_accuracy_close(actual, expected, n):
    """Accuracies are fractions of ``n`` samples, so they must count the same hits. (Keras reports
    them as float32, rnnkit as float64, hence the rounding to a count.) Only a near-tie between two
    outputs, closer than the ~1e-7 the two sides differ by, could be broken differently; none
    occurs with these seeds, so the counts are required to be equal."""
    hits = np.rint(np.asarray(actual, dtype=np.float64) * n)
    np.testing.assert_array_equal(hits, np.rint(np.asarray(expected, dtype=np.float64) * n))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def test_char_dataset_matches_the_article():
    """rnnkit.char_dataset gives exactly the article's vocabulary and one-hot X (48, 3, 17), y (48, 17)."""
    chars, X, y = article_data()
    vocab, Xr, yr = rnnkit.char_dataset(ARTICLE_TEXT, 3)
    assert vocab.chars == chars
    assert Xr.shape == (48, 3, 17) and yr.shape == (48, 17)
    assert Xr.dtype == np.float32 and yr.dtype == np.float32
    np.testing.assert_array_equal(Xr, X)
    np.testing.assert_array_equal(yr, y)


def test_article_model_trains_like_keras():
    """The article's model (SimpleRNN relu + softmax, Adam, categorical CE), 5 epochs of batches
    32 and 16: per-epoch loss, accuracy, the final weights and the predictions all match Keras."""
    _, X, y = article_data()
    km = keras_article_model()
    rm = rnnkit_article_model(km)
    kh = km.fit(X, y, epochs=5, batch_size=32, shuffle=False, verbose=0).history
    rh = rm.fit(X, y, epochs=5, batch_size=32, shuffle=False, verbose=0).history
    assert keras_keys(rh) == sorted(kh) == ["accuracy", "loss"]
    assert_rel(rh["loss"], kh["loss"], what="loss")
    assert_accuracy_close(rh["accuracy"], kh["accuracy"], len(X))
    kw, rw = km.get_weights(), rm.get_weights()
    assert [w.shape for w in rw] == [w.shape for w in kw]
    for i, (a, e) in enumerate(zip(rw, kw)):
        # Each weight moved by 10 Adam steps of ~1e-3; both sides agree to float32 rounding of
        # those steps, so the absolute error is at most ~1e-6 (1e-4 relative to weights ~1e-2..1).
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-6, err_msg=f"weight {i}")
    np.testing.assert_allclose(rm.predict(X, verbose=0), km.predict(X, verbose=0), rtol=1e-4, atol=1e-6)


def test_validation_split_matches_keras():
    """validation_split=0.25 holds out the LAST 12 samples (as Keras, before any shuffling):
    training on the first 36 (batches 32 and 4) gives Keras' loss, accuracy, val_loss, val_accuracy."""
    _, X, y = article_data()
    km = keras_article_model()
    rm = rnnkit_article_model(km)
    kh = km.fit(X, y, epochs=5, batch_size=32, shuffle=False, verbose=0, validation_split=0.25).history
    rh = rm.fit(X, y, epochs=5, batch_size=32, shuffle=False, verbose=0, validation_split=0.25).history
    assert keras_keys(rh) == sorted(kh)
    assert_rel(rh["loss"], kh["loss"], what="loss")
    assert_rel(rh["val_loss"], kh["val_loss"], what="val_loss")
    assert_accuracy_close(rh["accuracy"], kh["accuracy"], 36)
    assert_accuracy_close(rh["val_accuracy"], kh["val_accuracy"], 12)


def test_validation_data_matches_keras():
    """validation_data=(x, y) is evaluated after every epoch with the epoch's final weights, as Keras."""
    _, X, y = article_data()
    km = keras_article_model()
    rm = rnnkit_article_model(km)
    kh = km.fit(X[:40], y[:40], epochs=3, batch_size=16, shuffle=False, verbose=0,
                validation_data=(X[40:], y[40:])).history
    rh = rm.fit(X[:40], y[:40], epochs=3, batch_size=16, shuffle=False, verbose=0,
                validation_data=(X[40:], y[40:])).history
    assert_rel(rh["loss"], kh["loss"], what="loss")
    assert_rel(rh["val_loss"], kh["val_loss"], what="val_loss")


OPTIMIZERS = [
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("RMSprop", {}),
    ("Adagrad", {}),
    ("Adam", {"clipnorm": 0.1}),
    ("Adam", {"global_clipnorm": 0.5}),
    ("SGD", {"clipvalue": 0.01}),
]


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{'-'.join(k) or 'default'}" for n, k in OPTIMIZERS])
def test_optimizers_train_like_keras(name, kwargs):
    """Each optimizer (update rule, Keras defaults, and clipping) gives Keras' losses over 3 epochs."""
    _, X, y = article_data()
    km = keras_article_model(getattr(keras.optimizers, name)(**kwargs))
    rm = rnnkit_article_model(km, getattr(rnnkit.optimizers, name)(**kwargs))
    kh = km.fit(X, y, epochs=3, batch_size=32, shuffle=False, verbose=0).history
    rh = rm.fit(X, y, epochs=3, batch_size=32, shuffle=False, verbose=0).history
    assert_rel(rh["loss"], kh["loss"], what=f"{name}{kwargs} loss")
    # the weights have drifted the same way too
    for a, e in zip(rm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-6)


def small_rnn_data(kind):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 5, 3)).astype(np.float32)
    if kind == "sparse":
        return x, rng.integers(0, 4, size=40), 4, "softmax"
    if kind == "regression":
        return x, rng.normal(size=(40, 2)).astype(np.float32), 2, None
    return x, rng.integers(0, 2, size=(40, 1)).astype(np.float32), 1, "sigmoid"


LOSS_CASES = [
    ("sparse_categorical_crossentropy", ["accuracy"], "sparse"),
    ("mse", ["mae"], "regression"),
    ("mae", ["mae"], "regression"),
    ("binary_crossentropy", ["accuracy"], "binary"),
]


@pytest.mark.parametrize("loss,metrics,kind", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_losses_and_metrics_like_keras(loss, metrics, kind):
    """A small tanh SimpleRNN trained 3 epochs (batches 16, 16, 8) with each loss: per-epoch loss
    and metric values equal Keras' (sparse labels, regression, sigmoid + binary CE)."""
    x, y, out, act = small_rnn_data(kind)
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((5, 3)), keras.layers.SimpleRNN(8),
                           keras.layers.Dense(out, activation=act)])
    km.compile(optimizer="adam", loss=loss, metrics=metrics)
    rm = rnnkit.Sequential(seed=0)
    rm.add(rnnkit.layers.SimpleRNN(8, input_shape=(5, 3)))
    rm.add(rnnkit.layers.Dense(out, activation=act))
    rm.compile(optimizer="adam", loss=loss, metrics=metrics)
    rm.set_weights(km.get_weights())
    kh = km.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history
    rh = rm.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history
    assert keras_keys(rh) == sorted(kh)
    for key in kh:
        if key == "accuracy":
            assert_accuracy_close(rh[key], kh[key], len(x))
        else:
            assert_rel(rh[key], kh[key], what=f"{loss} {key}")


def test_evaluate_and_predict_like_keras():
    """evaluate (loss and accuracy, sample-weighted over uneven batches) and predict give
    Keras' values on the same weights (non-zero biases included)."""
    _, X, y = article_data()
    km = keras_article_model()
    rng = np.random.default_rng(3)
    weights = [w + rng.normal(scale=0.1, size=w.shape).astype(np.float32) for w in km.get_weights()]
    km.set_weights(weights)
    rm = rnnkit_article_model(km)
    for batch_size in (32, 20, 48):
        ke = km.evaluate(X, y, batch_size=batch_size, verbose=0)
        re = rm.evaluate(X, y, batch_size=batch_size, verbose=0)
        np.testing.assert_allclose(re, ke, rtol=0, atol=1e-5)
        np.testing.assert_allclose(rm.predict(X, batch_size=batch_size, verbose=0),
                                   km.predict(X, batch_size=batch_size, verbose=0), rtol=0, atol=1e-5)
    assert rm.predict(X, verbose=0).dtype == np.float32


@pytest.mark.parametrize("return_sequences,go_backwards,activation",
                         [(True, False, "tanh"), (True, True, "tanh"), (False, True, "relu"), (True, True, "relu")])
def test_simple_rnn_forward_like_keras(return_sequences, go_backwards, activation):
    """SimpleRNN's outputs with return_sequences / go_backwards (Keras 3 keeps the reversed order
    of the outputs when going backwards) equal keras.layers.SimpleRNN's on the same weights."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    keras.utils.set_random_seed(0)
    kl = keras.layers.SimpleRNN(7, activation=activation, return_sequences=return_sequences,
                                go_backwards=go_backwards)
    kl.build((None, 6, 3))
    weights = kl.get_weights()
    weights[2] = rng.normal(scale=0.1, size=weights[2].shape).astype(np.float32)   # non-zero bias
    kl.set_weights(weights)
    expected = keras.ops.convert_to_numpy(kl(x))
    rl = rnnkit.layers.SimpleRNN(7, activation=activation, return_sequences=return_sequences,
                                 go_backwards=go_backwards)
    rl.build((6, 3))
    rl.set_weights(weights)
    got = rl(x)
    assert got.shape == expected.shape == ((4, 6, 7) if return_sequences else (4, 7))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_stacked_backwards_rnn_trains_like_keras():
    """Backpropagation through return_sequences and go_backwards: a stacked model
    SimpleRNN(return_sequences, go_backwards) -> SimpleRNN -> Dense trains like Keras."""
    x, y, out, act = small_rnn_data("sparse")
    keras.utils.set_random_seed(0)
    km = keras.Sequential([keras.Input((5, 3)),
                           keras.layers.SimpleRNN(6, return_sequences=True, go_backwards=True),
                           keras.layers.SimpleRNN(5), keras.layers.Dense(out, activation=act)])
    km.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rm = rnnkit.Sequential(seed=0)
    rm.add(rnnkit.layers.SimpleRNN(6, return_sequences=True, go_backwards=True, input_shape=(5, 3)))
    rm.add(rnnkit.layers.SimpleRNN(5))
    rm.add(rnnkit.layers.Dense(out, activation=act))
    rm.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rm.set_weights(km.get_weights())
    kh = km.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history
    rh = rm.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0).history
    assert_rel(rh["loss"], kh["loss"], what="loss")
    for a, e in zip(rm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-6)
