"""``Perplexity`` and ``BitsPerCharacter``: exp of the epoch's mean cross-entropy (not a mean of per-batch
exponentials) and the mean cross-entropy in bits, checked by hand over uneven batches, with masks, and
against PyTorch's cross-entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rnnkit
from rnnkit import metrics
from rnnkit.layers import GRU, Dense, Embedding


def lm(mask_zero: bool = False, V: int = 6):
    return rnnkit.Sequential([rnnkit.Input(shape=(None,), dtype="int32"), Embedding(V, 4, mask_zero=mask_zero),
                              GRU(5, return_sequences=True), Dense(V, activation="softmax")], seed=0)


def data(n: int = 7, T: int = 5, V: int = 6):
    rng = np.random.default_rng(0)
    return rng.integers(1, V, size=(n, T)), rng.integers(0, V, size=(n, T))


def hand_cross_entropy(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """-log p(label) at every position, nats."""
    return -np.log(np.take_along_axis(probs, labels[..., None], axis=-1)[..., 0])


def test_perplexity_is_exp_of_the_mean_over_all_positions_of_uneven_batches(float64):
    model = lm()
    x, y = data()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["perplexity", "bits_per_character", "bpc"])
    logs = model.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)       # batches of 3, 3 and 1
    ce = hand_cross_entropy(model.predict(x, verbose=0), y)                      # (7, 5)
    assert logs["perplexity"] == pytest.approx(math.exp(ce.mean()), rel=1e-12)
    assert logs["bits_per_character"] == pytest.approx(ce.mean() / math.log(2), rel=1e-12)
    assert logs["bpc"] == logs["bits_per_character"]
    assert logs["perplexity"] == pytest.approx(math.exp(logs["loss"]), rel=1e-9)
    assert logs["perplexity"] == pytest.approx(2 ** logs["bits_per_character"], rel=1e-12)
    # what a mean of per-batch perplexities would give instead: not the same number
    per_batch = [math.exp(ce[i:i + 3].mean()) for i in (0, 3, 6)]
    assert abs(np.mean(per_batch) - logs["perplexity"]) > 1e-4


def test_perplexity_over_a_training_epoch_matches_pytorch(float64):
    """``fit`` accumulates the metric over the epoch's batches, each before its update: PyTorch's
    cross-entropy of the same predictions, summed over positions, gives the same figure."""
    import torch

    model = lm()
    x, y = data(n=8)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["perplexity"])
    batch_ce = []
    real_step = model._train_step

    def step(xs, ys, *args, **kwargs):                  # the predictions each batch is scored on: before its update
        probs = model.predict_on_batch(xs[0])
        batch_ce.append(torch.nn.functional.nll_loss(torch.from_numpy(np.log(probs)).reshape(-1, 6),
                                                     torch.from_numpy(ys[0]).reshape(-1), reduction="sum"))
        return real_step(xs, ys, *args, **kwargs)

    model._train_step = step
    history = model.fit(x, y, batch_size=3, epochs=1, shuffle=False, verbose=0)      # 3, 3, 2
    expected = math.exp(float(sum(batch_ce)) / y.size)
    assert history.history["perplexity"][0] == pytest.approx(expected, rel=1e-10)


def test_masked_positions_are_left_out(float64):
    model = lm(mask_zero=True)
    x, y = data()
    x[:, 3:] = 0                                                                  # padding
    x[0, :] = [1, 2, 3, 4, 5]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["perplexity", "bpc"])
    logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    ce = hand_cross_entropy(model.predict(x, verbose=0), y)[x != 0]
    assert logs["perplexity"] == pytest.approx(math.exp(ce.mean()), rel=1e-12)
    assert logs["bpc"] == pytest.approx(ce.mean() / math.log(2), rel=1e-12)


def test_one_hot_targets_and_logits():
    probs = np.array([[[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]], [[0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]])   # (2, 2, 3)
    labels = np.array([[1, 0], [2, 1]])
    ce = -np.log([0.5, 0.6, 0.8, 0.3])
    m = metrics.Perplexity()
    s, c = m.update(labels, probs)
    assert (s, c) == (pytest.approx(ce.sum()), 4.0) and m.result(s, c) == pytest.approx(math.exp(ce.mean()))
    one_hot = rnnkit.one_hot(labels, 3)
    assert m.update(one_hot, probs)[0] == pytest.approx(ce.sum())
    logits = np.log(probs) + 3.0                                                  # the same softmax
    m_logits = metrics.BitsPerCharacter(from_logits=True)
    assert m_logits.update(labels, logits)[0] == pytest.approx(ce.sum() / math.log(2))
    assert m_logits.update(one_hot, logits)[0] == pytest.approx(ce.sum() / math.log(2))
    assert m.update(labels[..., None], probs)[0] == pytest.approx(ce.sum())       # labels (..., 1)


def test_a_zero_probability_is_clipped_as_keras_clips_it():
    s, c = metrics.Perplexity().update(np.array([0]), np.array([[0.0, 1.0]]))
    assert s == pytest.approx(-math.log(1e-7))


def test_names_serialisation_and_saving(tmp_path):
    for name, cls in (("perplexity", metrics.Perplexity), ("bits_per_character", metrics.BitsPerCharacter),
                      ("bpc", metrics.BitsPerCharacter)):
        assert isinstance(metrics.get(name, None, (None, 5), (None, 5, 6)), cls)
    m = metrics.Perplexity(name="ppl", from_logits=True)
    back = metrics.deserialize(metrics.serialize(m))
    assert isinstance(back, metrics.Perplexity) and back.get_config() == {"name": "ppl", "from_logits": True}
    assert isinstance(metrics.deserialize({"class_name": "BitsPerCharacter", "config": {}}), metrics.BitsPerCharacter)
    assert "perplexity" in metrics.names() and "bits_per_character" in metrics.names()
    model = lm()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["perplexity", m])
    x, y = data()
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    model.save(tmp_path / "lm.keras")
    after = rnnkit.load_model(tmp_path / "lm.keras").evaluate(x, y, verbose=0, return_dict=True)
    assert after["perplexity"] == pytest.approx(before["perplexity"], rel=1e-6)
    assert after["ppl"] == pytest.approx(before["ppl"], rel=1e-6)


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"from_logits must be True or False, got str: 'yes'"):
        metrics.Perplexity(from_logits="yes")
    with pytest.raises(ValueError, match=r"Unknown metric 'perplexty'\. Valid metric names are: .*perplexity"):
        lm().compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["perplexty"])
