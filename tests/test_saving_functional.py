"""Saving functional models: the graph as JSON, shared layers, nested models, compile state, weights only.

A loaded model must compute exactly what the saved one computes, keep training exactly as it
would have (optimizer state included), keep a shared layer shared, and get back its losses,
loss weights and metrics whether they were given as names or objects. A file whose graph
description is altered fails with ``ModelFileError`` and a reason, never with a traceback
from deep inside or by building something the file does not describe.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit import Input, Model
from rnnkit.layers import (
    GRU,
    LSTM,
    Add,
    Attention,
    BatchNormalization,
    Bidirectional,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    GlobalAveragePooling1D,
)
from rnnkit.losses import CategoricalCrossentropy
from rnnkit.metrics import BinaryAccuracy, CategoricalAccuracy
from test_saving import edit_model_config

B, T, D = 6, 5, 3


def rich_model():
    """Two inputs, two outputs, a shared LSTM, a nested model used thrice, attention with masks, a
    frozen layer and batch normalization's moving statistics."""
    ids, series = Input((None,), dtype="int32", name="ids"), Input((T, D), name="series")
    emb = Embedding(11, 4, mask_zero=True, seed=0)(ids)
    shared = LSTM(5, return_sequences=True, seed=1)
    a, b = shared(emb), shared(Dense(4, seed=2)(series))
    inner_in = Input((None, 5))
    inner = Model(inner_in, Dense(3, activation="tanh", seed=3)(GlobalAveragePooling1D()(inner_in)), name="pool")
    context = Attention(use_scale=True)([a, b])
    merged = Concatenate()([inner(a), inner(context), BatchNormalization()(inner(b))])
    frozen = Dense(4, seed=4, name="frozen")
    frozen.trainable = False
    cls = Dense(3, activation="softmax", name="cls", seed=6)(Add()([frozen(merged), Dense(4, seed=7)(merged)]))
    reg = Dense(1, name="reg", seed=8)(Bidirectional(GRU(2, seed=9))(b))
    return Model({"ids": ids, "series": series}, [cls, reg], name="rich")


def rich_data(seed=0):
    r = np.random.default_rng(seed)
    ids = r.integers(1, 11, size=(B, 7))
    ids[0, 5:] = 0
    ids[2, 3:] = 0
    x = {"ids": ids, "series": r.normal(size=(B, T, D))}
    y = [rnnkit.one_hot(r.integers(0, 3, size=B), 3), r.normal(size=(B, 1))]
    return x, y


def compiled_rich_model():
    model = rich_model()
    model.compile(rnnkit.optimizers.Adam(0.01), loss=[CategoricalCrossentropy(label_smoothing=0.1), "mse"],
                  loss_weights=[1.0, 0.5], metrics=[[CategoricalAccuracy(name="acc")], ["mae"]])
    return model


def test_functional_model_round_trip_is_exact_and_keeps_training_identically(tmp_path):
    model = compiled_rich_model()
    x, y = rich_data()
    for i in range(2):
        model.train_on_batch(*rich_data(i))
    path = tmp_path / "rich.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.input_names == ["ids", "series"] and loaded.output_names == ["cls", "reg"]
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not loaded.get_layer("frozen").trainable
    for p, q in zip(loaded.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_array_equal(p, q)
    # the shared LSTM is one layer in the loaded model too: one set of weights, called twice
    lstm = [layer for layer in loaded.layers if isinstance(layer, LSTM)]
    assert len(lstm) == 1 and len([n for n in loaded.graph.nodes if n.layer is lstm[0]]) == 2
    assert loaded.optimizer.iterations == model.optimizer.iterations == 2
    # compile state, given as objects, is back: the next steps give the same numbers
    assert loaded.metrics_names == model.metrics_names
    for i in range(2, 4):
        np.testing.assert_allclose(loaded.train_on_batch(*rich_data(i), return_dict=True)["loss"],
                                   model.train_on_batch(*rich_data(i), return_dict=True)["loss"], rtol=0, atol=0)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_metric_and_loss_objects_survive_saving_a_sequential(tmp_path):
    model = rnnkit.Sequential([Input((T, D)), LSTM(4, seed=0), Dense(1, activation="sigmoid", seed=1)])
    model.compile("adam", loss=rnnkit.losses.BinaryCrossentropy(label_smoothing=0.2),
                  metrics=[BinaryAccuracy(threshold=0.7, name="strict")])
    path = tmp_path / "seq.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert loaded.compiled
    metric = loaded.heads[0].metric_requests[0]
    assert isinstance(metric, BinaryAccuracy) and metric.threshold == 0.7 and metric.name == "strict"
    assert loaded.loss.label_smoothing == 0.2
    x, y = np.random.default_rng(0).normal(size=(B, T, D)), np.ones((B, 1))
    assert loaded.evaluate(x, y, verbose=0, return_dict=True) == model.evaluate(x, y, verbose=0, return_dict=True)


def test_sequential_holding_a_functional_model_round_trips(tmp_path):
    inner_in = Input((T, D))
    inner = Model(inner_in, GRU(4, seed=0)(inner_in), name="encoder")
    model = rnnkit.Sequential([Input((T, D)), inner, Dense(2, seed=1)])
    path = tmp_path / "nested.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    x = np.random.default_rng(1).normal(size=(B, T, D))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert isinstance(loaded.layers[0], Model) and loaded.layers[0].name == "encoder"


def test_a_call_with_training_true_stays_so(tmp_path):
    """Monte Carlo dropout: Dropout(...)(x, training=True) drops in predict too, after loading as before."""
    inp = Input((8,))
    model = Model(inp, Dropout(0.5, seed=0)(Dense(8, seed=1)(inp), training=True))
    path = tmp_path / "mc.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert [n.training for n in loaded.graph.nodes] == [None, True]
    out = loaded.predict(np.ones((4, 8)), verbose=0)
    assert (out == 0).any() and not np.array_equal(out, loaded.predict(np.ones((4, 8)), verbose=0))


def test_save_weights_and_load_weights(tmp_path):
    model = rich_model()
    x, _ = rich_data()
    path = tmp_path / "rich.weights.safetensors"
    model.save_weights(path)
    other = rich_model()                              # same architecture, other weights
    for w in other.weights:
        w += 1.0
    other.load_weights(path)
    for p, q in zip(other.predict(x, verbose=0), model.predict(x, verbose=0)):
        np.testing.assert_array_equal(p, q)
    inp = Input((T, D))
    different = Model(inp, Dense(2, name="cls")(GRU(3)(inp)))
    before = different.get_weights()
    with pytest.raises(rnnkit.ModelFileError, match="weight 'layers/gru/kernel' is missing"):
        different.load_weights(path)
    assert all(np.array_equal(a, b) for a, b in zip(before, different.get_weights()))


@pytest.mark.parametrize("edit, reason", [
    (lambda c: c["layers"][3].update(class_name="os.system"), "unknown layer class 'os.system'"),
    (lambda c: c["layers"][3]["inbound_nodes"][0].update(args={"tensor": ["nowhere", 0, 0]}),
     "read tensors that no layer of the model makes"),
    (lambda c: c.update(output_layers={"tensor": ["cls", 5, 0]}), "invalid"),
    (lambda c: c["layers"][3]["inbound_nodes"][0].update(args={"evil": 1}), "invalid value"),
])
def test_altered_graph_description_is_a_model_file_error(tmp_path, edit, reason):
    path = tmp_path / "rich.safetensors"
    compiled_rich_model().save(path)
    edit_model_config(path, edit)
    with pytest.raises(rnnkit.ModelFileError, match=reason):
        rnnkit.load_model(path)


def test_graph_with_an_input_from_outside_cannot_be_saved(tmp_path):
    inp = Input((T, D))
    h = LSTM(3)(inp)
    model = Model(h, Dense(1)(h))                     # an intermediate tensor as the input
    with pytest.raises(ValueError, match="comes from outside the model"):
        model.save(tmp_path / "x.safetensors")
    assert not list(tmp_path.iterdir())
