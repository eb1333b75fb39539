"""Keras model files: Keras 3 ``.keras`` and legacy ``.h5`` into rnnkit, rnnkit ``.keras`` into Keras.

Keras builds, trains a little and saves each model once per module (Keras is slow to import and
build); rnnkit loads the files and must predict what Keras predicts, carry the compile settings
and the optimizer's state, and keep training. The other way, rnnkit's ``.keras`` files must load
in ``keras.saving.load_model`` and predict the same.
"""

from __future__ import annotations

import json
import sys
import warnings
import zipfile

import numpy as np
import pytest

import rnnkit
from rnnkit.errors import ModelFileError

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
L = keras.layers
TOL32 = 1e-6


def _seq_lstm():
    model = keras.Sequential([keras.Input((6,), dtype="int32"), L.Embedding(11, 5, mask_zero=True),
                              L.LSTM(7, return_sequences=True), L.GRU(4, reset_after=False),
                              L.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _seq_misc():
    return keras.Sequential([keras.Input((5, 3)), L.Masking(0.0), L.SimpleRNN(4, activation="relu"),
                             L.RepeatVector(3), L.GRU(4, return_sequences=True),
                             L.TimeDistributed(L.Dense(2, activation="tanh")), L.Conv1D(4, 2, padding="same"),
                             L.MaxPooling1D(2, padding="same"), L.AveragePooling1D(1), L.Flatten(), L.Dropout(0.3),
                             L.Reshape((4, 2)), L.Permute((2, 1)), L.GlobalAveragePooling1D(),
                             L.Dense(1, activation="sigmoid")])


def _functional():
    inp = keras.Input((5, 3))
    a = L.Bidirectional(L.LSTM(4, return_sequences=True))(inp)
    b = L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode="sum")(inp)
    b = L.Dense(8)(b)
    c = L.Concatenate()([a, b])
    c = L.BatchNormalization()(c)
    att = L.Attention(use_scale=True)([c, c])
    add = L.Add()([att, c])
    mul = L.Multiply()([add, L.Activation("sigmoid")(c)])
    avg = L.Average()([mul, L.Subtract()([add, c])])
    avg = L.LayerNormalization()(avg)
    x = L.AdditiveAttention()([avg, c])
    low = L.Minimum()([L.GlobalAveragePooling1D()(x), L.Dense(16)(L.GlobalAveragePooling1D()(avg))])
    pooled = L.Maximum()([L.GlobalMaxPooling1D()(x), low])
    out = L.Dense(2, activation="softmax")(pooled)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _nested():
    inner = keras.Sequential([keras.Input((4, 3)), L.SimpleRNN(3, return_sequences=True), L.Dense(2)], name="inner")
    inp = keras.Input((4, 3))
    x = inner(inp)
    x = L.Dot(axes=(2, 2))([x, x])
    out = L.Dense(1)(L.Flatten()(x))
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.RMSprop(0.002), loss="mse")
    return model


def _functional_embedding_mask():
    """Keras 3 writes the mask of Embedding(mask_zero=True) into a functional config as an op NotEqual(x, 0)
    passed as mask= to the layers below: rnnkit recognises it and propagates the mask itself."""
    inp = keras.Input((6,), dtype="int32")
    h = L.Embedding(11, 4, mask_zero=True)(inp)
    h = L.Bidirectional(L.LSTM(5, return_sequences=True))(h)
    h = L.GRU(3)(h)
    model = keras.Model(inp, L.Dense(2, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _functional_masking():
    """Masking(c) becomes Any(NotEqual(x, c), axis=-1) in a Keras 3 functional config."""
    inp = keras.Input((5, 3))
    h = L.LSTM(4, return_sequences=True)(L.Masking(0.5)(inp))
    model = keras.Model(inp, L.Dense(1)(L.SimpleRNN(2)(h)))
    model.compile(optimizer="sgd", loss="mse")
    return model


def _data(model, rng):
    shape = tuple(model.inputs[0].shape[1:])
    if model.inputs[0].dtype.startswith("int"):
        x = rng.integers(0, 11, size=(8, *shape)).astype("int32")
        x[: len(x) // 2, shape[0] // 2:] = 0                    # padded rows: the mask matters
        return x
    x = rng.normal(size=(8, *shape)).astype("float32")
    x[: len(x) // 2, shape[0] // 2:] = 0.5                      # steps Masking(0.5) leaves out
    return x


def _targets(model, rng, n=8):
    out = model.outputs[0].shape[-1]
    if model.loss == "sparse_categorical_crossentropy":
        return rng.integers(0, out, size=(n,))
    if model.loss == "categorical_crossentropy":
        return np.eye(out, dtype="float32")[rng.integers(0, out, size=n)]
    return rng.normal(size=(n, out)).astype("float32")


MODELS = {"seq_lstm": _seq_lstm, "seq_misc": _seq_misc, "functional": _functional, "nested": _nested,
          "functional_embedding_mask": _functional_embedding_mask, "functional_masking": _functional_masking}


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """Every model of ``MODELS`` built (and trained one epoch when compiled) by Keras, saved both ways."""
    folder = tmp_path_factory.mktemp("keras_files")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    out = {}
    for name, make in MODELS.items():
        model = make()
        x = _data(model, rng)
        if model.compiled:
            model.fit(x, _targets(model, rng), epochs=1, batch_size=4, shuffle=False, verbose=0)
        model.save(folder / f"{name}.keras")
        with warnings.catch_warnings():
            # Keras' legacy HDF5 writer hands h5py arrays in a way NumPy 2 deprecates
            warnings.simplefilter("ignore", DeprecationWarning)
            model.save(folder / f"{name}.h5")
        out[name] = (model, x, folder)
    return out


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_file_predicts_what_keras_predicts(keras_files, name, suffix):
    kmodel, x, folder = keras_files[name]
    model = rnnkit.load_model(folder / f"{name}{suffix}")
    np.testing.assert_allclose(model.predict(x, verbose=0), kmodel.predict(x, verbose=0), atol=TOL32, rtol=0)
    assert [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"] == [
        layer.name for layer in kmodel.layers if type(layer).__name__ != "InputLayer"]


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_compile_state_and_optimizer_state_arrive(keras_files, suffix):
    kmodel, x, folder = keras_files["seq_lstm"]
    model = rnnkit.load_model(folder / f"seq_lstm{suffix}")
    assert model.compiled and type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    assert model._compile_args["loss"] == "sparse_categorical_crossentropy"
    assert model._compile_args["metrics"] == ["accuracy"]
    assert model.optimizer.iterations == int(kmodel.optimizer.iterations.numpy()) == 2
    assert not rnnkit.load_model(folder / f"seq_lstm{suffix}", compile=False).compiled


def test_training_continues_as_in_keras(keras_files):
    """One more Adam step from the restored slots gives Keras' weights (float32 tolerance)."""
    kmodel, x, folder = keras_files["seq_lstm"]
    model = rnnkit.load_model(folder / "seq_lstm.keras")
    clone = keras.saving.load_model(folder / "seq_lstm.keras")
    y = np.arange(len(x)) % 3
    clone.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0)
    model.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0)
    for mine, ref in zip(model.get_weights(), clone.get_weights()):
        np.testing.assert_allclose(mine, ref, atol=2e-5, rtol=1e-4)
    losses = model.fit(x, y, epochs=15, batch_size=len(x), verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_functional_compile_state_arrives(keras_files):
    _, _, folder = keras_files["functional"]
    model = rnnkit.load_model(folder / "functional.keras")
    config = model.optimizer.get_config()
    assert type(model.optimizer).__name__ == "SGD" and config["momentum"] == pytest.approx(0.9)
    assert config["learning_rate"] == pytest.approx(0.05)
    nested = rnnkit.load_model(folder / "nested.h5")
    assert type(nested.optimizer).__name__ == "RMSprop" and nested.optimizer.iterations == 2


def test_loss_and_metric_objects_arrive_and_unsupported_settings_are_named(tmp_path):
    kmodel = keras.Sequential([keras.Input((3,)), L.Dense(2)])
    kmodel.compile(optimizer=keras.optimizers.Adagrad(0.1), loss=keras.losses.MeanSquaredError(),
                   metrics=[keras.metrics.MeanAbsoluteError(), "mse"])
    kmodel.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    kmodel.save(tmp_path / "objects.keras")
    model = rnnkit.load_model(tmp_path / "objects.keras")
    assert type(model._compile_args["loss"]).__name__ == "MeanSquaredError"
    assert type(model._compile_args["metrics"][0]).__name__ == "MeanAbsoluteError"
    assert model._compile_args["metrics"][1] == "mse"
    assert type(model.optimizer).__name__ == "Adagrad" and model.optimizer.iterations == 1
    kmodel.compile(optimizer=keras.optimizers.Adam(weight_decay=0.1),
                   loss=keras.losses.MeanSquaredError(reduction="sum"))
    kmodel.save(tmp_path / "unsupported.keras")
    with pytest.raises(ModelFileError, match=r"(?s)\(2\):.*weight_decay=0.1.*reduction='sum'"):
        rnnkit.load_model(tmp_path / "unsupported.keras")
    assert not rnnkit.load_model(tmp_path / "unsupported.keras", compile=False).compiled


def test_float64_model_loads_exactly(tmp_path):
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")          # so that Keras computes in float64 too
    try:
        kmodel = keras.Sequential([keras.Input((4, 3), dtype="float64"), L.LSTM(5, dtype="float64"),
                                   L.Dense(2, dtype="float64")])
        kmodel.save(tmp_path / "m64.keras")
        x = np.random.default_rng(3).normal(size=(3, 4, 3))
        reference = kmodel.predict(x, verbose=0)
    finally:
        keras.config.set_floatx(previous)
    model = rnnkit.load_model(tmp_path / "m64.keras")
    assert model.dtype == np.float64 and reference.dtype == np.float64
    assert all(a.dtype == np.float64 and np.array_equal(a, b) for a, b in zip(model.get_weights(),
                                                                              kmodel.get_weights()))
    # Keras' torch LSTM rounds through float32 inside, so the float64 check is against rnnkit built by hand
    np.testing.assert_allclose(model.predict(x, verbose=0), reference, atol=TOL32, rtol=0)
    with rnnkit.backend.floatx_scope("float64"):
        direct = rnnkit.Sequential([rnnkit.layers.LSTM(5, input_shape=(4, 3)), rnnkit.layers.Dense(2)])
    direct.set_weights(kmodel.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), direct.predict(x, verbose=0), atol=1e-15, rtol=0)


# -- rnnkit -> Keras ---------------------------------------------------------------------------

def _rnnkit_models():
    from rnnkit import layers as R

    seq = rnnkit.Sequential([R.Embedding(9, 4, input_shape=(5,)), R.Bidirectional(R.LSTM(3, return_sequences=True)),
                             R.GRU(3, reset_after=False, return_sequences=True), R.Conv1D(2, 3, padding="causal"),
                             R.Flatten(), R.Dense(2, activation="softmax")], seed=1)
    seq.compile(optimizer=rnnkit.optimizers.Adam(0.02), loss="categorical_crossentropy", metrics=["accuracy"])
    inp = rnnkit.Input((5, 3))
    a = R.TimeDistributed(R.Dense(4, kernel_regularizer="l2"))(inp)
    b = R.SimpleRNN(4, return_sequences=True)(inp)
    c = R.LayerNormalization()(R.Concatenate()([a, b]))
    c = R.Attention(use_scale=True)([c, c])
    c = R.BatchNormalization()(R.Add()([c, R.Dense(8)(c)]))
    out = R.Dense(1)(R.GlobalMaxPooling1D()(c))
    func = rnnkit.Model(inp, out, name="func")
    func.compile(optimizer=rnnkit.optimizers.RMSprop(0.01, momentum=0.5), loss="mse")
    return {"seq": seq, "func": func}


def _rnnkit_data(model, rng):
    if model.name.startswith("seq"):
        return rng.integers(0, 9, size=(6, 5)), np.eye(2)[rng.integers(0, 2, size=6)]
    return rng.normal(size=(6, 5, 3)), rng.normal(size=(6, 1))


@pytest.mark.parametrize("name", ["seq", "func"])
def test_rnnkit_keras_file_loads_in_keras(tmp_path, name):
    rng = np.random.default_rng(5)
    model = _rnnkit_models()[name]
    x, y = _rnnkit_data(model, rng)
    model.fit(x, y, epochs=2, batch_size=3, verbose=0)
    model.save(tmp_path / "m.keras")
    assert (tmp_path / "m.keras").read_bytes()[:4] == b"PK\x03\x04"
    kmodel = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(kmodel.predict(x.astype(kmodel.inputs[0].dtype), verbose=0),
                               model.predict(x, verbose=0), atol=TOL32, rtol=0)
    assert kmodel.optimizer.learning_rate.numpy() == pytest.approx(model.optimizer.learning_rate)
    assert type(kmodel.optimizer).__name__ == type(model.optimizer).__name__
    assert int(kmodel.optimizer.iterations.numpy()) == model.optimizer.iterations == 4
    again = rnnkit.load_model(tmp_path / "m.keras")
    assert np.array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert again.optimizer.iterations == 4
    # both continue with one identical full-batch step from the same optimizer state
    kmodel.fit(x.astype(kmodel.inputs[0].dtype), y, epochs=1, batch_size=6, shuffle=False, verbose=0)
    again.fit(x, y, epochs=1, batch_size=6, shuffle=False, verbose=0)
    trainable = [w for layer in kmodel.layers for w in layer.trainable_weights]
    for mine, ref in zip(again.trainable_weights, trainable):
        np.testing.assert_allclose(mine, ref.numpy(), atol=1e-4, rtol=1e-3)


def _more_rnnkit_models():
    from rnnkit import layers as R

    out = {"cells": rnnkit.Sequential([R.RNN(R.LSTMCell(3), return_sequences=True, input_shape=(6, 4)),
                                       R.RNN(R.StackedRNNCells([R.GRUCell(3), R.SimpleRNNCell(2, use_bias=False)]))]),
           "misc": rnnkit.Sequential([R.SimpleRNN(3, return_sequences=True, input_shape=(6, 4)), R.MaxPooling1D(2),
                                      R.AveragePooling1D(1), R.Reshape((9,)), R.RepeatVector(2), R.Permute((2, 1)),
                                      R.GlobalAveragePooling1D(), R.Activation("relu"), R.Dropout(0.1), R.Dense(2)])}
    inp = rnnkit.Input((6, 4))
    a = R.Dense(4)(inp)
    dot = R.Dot(axes=(2, 2))([R.Subtract()([a, inp]), R.Multiply()([a, inp])])
    avg = R.Average()([R.Maximum()([a, inp]), R.Minimum()([a, inp])])
    att = R.Attention(score_mode="concat")([R.AdditiveAttention()([avg, inp]), inp])
    out["merges"] = rnnkit.Model(inp, R.Concatenate()([R.GlobalMaxPooling1D()(dot), R.GlobalAveragePooling1D()(att)]))
    inp = rnnkit.Input((6, 4))
    inner = rnnkit.Sequential([R.LSTM(3, return_sequences=True, input_shape=(6, 4)), R.Dense(2)], name="inner")
    seq, h = R.GRU(3, return_state=True, return_sequences=True)(inp)
    shared = R.Dense(3)
    out["states_nested_shared"] = rnnkit.Model(inp, R.Concatenate()([
        R.GRU(3)(seq, initial_state=h), R.Flatten()(inner(inp)), R.Add()([shared(h), shared(h)])]))
    return out


@pytest.mark.parametrize("name", ["cells", "misc", "merges", "states_nested_shared"])
def test_more_rnnkit_models_load_in_keras(tmp_path, name):
    model = _more_rnnkit_models()[name]
    x = np.random.default_rng(2).normal(size=(3, 6, 4)).astype("float32")
    model.save(tmp_path / "m.keras")
    kmodel = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(kmodel.predict(x, verbose=0), model.predict(x, verbose=0), atol=TOL32, rtol=1e-6)
    assert np.array_equal(rnnkit.load_model(tmp_path / "m.keras").predict(x, verbose=0), model.predict(x, verbose=0))


def test_keras_file_bytes_are_deterministic(tmp_path):
    model = _rnnkit_models()["func"]
    model.save(tmp_path / "a.keras")
    model.save(tmp_path / "b.keras")
    assert (tmp_path / "a.keras").read_bytes() == (tmp_path / "b.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.keras") as archive:
        assert sorted(i.filename for i in archive.infolist()) == ["config.json", "metadata.json", "model.weights.h5"]
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert json.loads(archive.read("config.json"))["class_name"] == "Functional"


def test_other_suffixes_still_write_rnnkit_files(tmp_path):
    model = _rnnkit_models()["seq"]
    x = np.random.default_rng(0).integers(0, 9, size=(2, 5))
    for name in ("m.safetensors", "m.h5", "m.rnnkit"):
        model.save(tmp_path / name)
        assert (tmp_path / name).read_bytes()[:4] not in (b"PK\x03\x04", b"\x89HDF")
        assert np.array_equal(rnnkit.load_model(tmp_path / name).predict(x, verbose=0), model.predict(x, verbose=0))


# -- Keras 2 legacy files ----------------------------------------------------------------------

def _keras2_file(path, weights):
    """A Keras 2.x-style HDF5 model (list-form nodes, ``batch_input_shape``, ``:0`` weight names)."""
    config = {"class_name": "Model", "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, 4, 3], "dtype": "float32", "sparse": False, "ragged": False,
                    "name": "input_1"}},
        {"class_name": "LSTM", "name": "lstm", "inbound_nodes": [[["input_1", 0, 0, {}]]],
         "config": {"name": "lstm", "trainable": True, "dtype": "float32", "return_sequences": False,
                    "return_state": False, "go_backwards": False, "stateful": False, "unroll": False,
                    "time_major": False, "units": 2, "activation": "tanh", "recurrent_activation": "sigmoid",
                    "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                    "recurrent_initializer": {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": None}},
                    "bias_initializer": {"class_name": "Zeros", "config": {}}, "unit_forget_bias": True,
                    "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
                    "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None,
                    "bias_constraint": None, "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2}},
        {"class_name": "Dense", "name": "dense", "inbound_nodes": [[["lstm", 0, 0, {}]]],
         "config": {"name": "dense", "trainable": True, "dtype": "float32", "units": 1, "activation": "linear",
                    "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                    "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
                    "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
                    "bias_constraint": None}}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]},
        "keras_version": "2.15.0", "backend": "tensorflow"}
    training = {"loss": "mse", "metrics": None, "weighted_metrics": None, "loss_weights": None,
                "optimizer_config": {"class_name": "Adam", "config": {"name": "Adam", "learning_rate": 0.005,
                                                                      "decay": 0.0, "beta_1": 0.9, "beta_2": 0.999,
                                                                      "epsilon": 1e-07, "amsgrad": False,
                                                                      "is_legacy_optimizer": False}}}
    names = {"lstm": ["lstm/lstm_cell/kernel:0", "lstm/lstm_cell/recurrent_kernel:0", "lstm/lstm_cell/bias:0"],
             "dense": ["dense/kernel:0", "dense/bias:0"]}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["training_config"] = json.dumps(training)
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = np.array([b"input_1", b"lstm", b"dense"])
        group.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S1")
        for layer, wnames in names.items():
            g = group.create_group(layer)
            g.attrs["weight_names"] = np.array([n.encode() for n in wnames])
            for n in wnames:
                g.create_dataset(n, data=weights[n])


def test_keras2_legacy_h5_loads(tmp_path):
    rng = np.random.default_rng(7)
    kmodel = keras.Sequential([keras.Input((4, 3)), L.LSTM(2), L.Dense(1)])
    kmodel.set_weights([rng.normal(size=w.shape).astype("float32") for w in kmodel.get_weights()])
    w = kmodel.get_weights()
    _keras2_file(tmp_path / "k2.h5", dict(zip(["lstm/lstm_cell/kernel:0", "lstm/lstm_cell/recurrent_kernel:0",
                                                "lstm/lstm_cell/bias:0", "dense/kernel:0", "dense/bias:0"], w)))
    model = rnnkit.load_model(tmp_path / "k2.h5")
    x = rng.normal(size=(5, 4, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), kmodel.predict(x, verbose=0), atol=TOL32, rtol=0)
    assert type(model.optimizer).__name__ == "Adam" and model.optimizer.learning_rate == pytest.approx(0.005)
    assert model._compile_args["loss"] == "mse"


# -- what rnnkit cannot load -----------------------------------------------------------------

def test_unsupported_layers_and_arguments_are_all_named(tmp_path):
    inp = keras.Input((8, 3))
    x = L.UpSampling1D(2, name="up")(inp)
    x = L.LSTM(3, return_sequences=True, activation="gelu", name="odd_lstm")(x)
    x = L.Conv1D(2, 3, name="conv")(x)
    x = L.ZeroPadding1D(1, name="pad")(x)
    keras.Model(inp, L.Dense(1, name="out")(L.Flatten()(x))).save(tmp_path / "bad.keras")
    with pytest.raises(ModelFileError) as info:
        rnnkit.load_model(tmp_path / "bad.keras")
    message = str(info.value)
    assert "'up' (UpSampling1D): rnnkit has no such layer" in message
    assert "'pad' (ZeroPadding1D): rnnkit has no such layer" in message
    assert "'odd_lstm' (LSTM): activation 'gelu'" in message
    assert "(3):" in message and "'conv'" not in message


def test_missing_h5py_says_how_to_install(monkeypatch, tmp_path, keras_files):
    _, _, folder = keras_files["seq_misc"]
    model = _rnnkit_models()["func"]
    monkeypatch.setitem(sys.modules, "h5py", None)
    for action in (lambda: rnnkit.load_model(folder / "seq_misc.keras"), lambda: model.save(tmp_path / "m.keras")):
        with pytest.raises(ImportError, match=r'pip install "rnnkit\[keras\]"'):
            action()
    assert not (tmp_path / "m.keras").exists()


def test_a_mask_op_rnnkit_does_not_recompute_is_named(tmp_path):
    """A NotEqual written by the user (the Embedding below has no mask_zero) is not one of the mask ops
    rnnkit propagates itself: it is reported, not dropped."""
    inp = keras.Input((4,), dtype="int32")
    h = L.Embedding(5, 2)(inp)
    out = L.LSTM(2)(h, mask=keras.ops.not_equal(inp, 0))
    path = tmp_path / "custom_mask.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(ModelFileError, match=r"\(NotEqual\): rnnkit has no such layer"):
        rnnkit.load_model(path)
