"""The load-fuzz findings fixed one by one, each on a saved file edited the way the fuzzer found it.

* A Sequential model keeps its ``Input(dtype="int32")`` through save and load (it came back float).
* ``Input`` refuses dimensions above ``2**31 - 1`` at construction and in a file.
* The allocation-budget refusal (a file whose layer sizes were altered) names the layer and its weight.
* A valid but absurd ``Conv1D`` / pooling window (a dilation of ``2**31`` with "same" padding) is refused
  in a file as at construction, instead of loading and then needing tens of GiB to predict.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import rnnkit
from rnnkit import Input, Model
from rnnkit.layers import GRU, LSTM, Bidirectional, Conv1D, Dense, Embedding, MaxPooling1D, SimpleRNN
from rnnkit.layers.input_layer import MAX_DIMENSION, InputLayer

T, D, V = 4, 3, 7


def _edit_config(path: Path, edit: Callable[[dict], Any]) -> Path:
    """``path`` rewritten with its architecture passed through ``edit`` (the tensors kept as they are)."""
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    config = json.loads(header["__metadata__"]["model_config"])
    edit(config)
    header["__metadata__"]["model_config"] = json.dumps(config)
    raw = json.dumps(header).encode("utf-8")
    out = path.with_name("edited.rnnkit")
    out.write_bytes(struct.pack("<Q", len(raw)) + raw + blob[8 + n:])
    return out


def _refusal(path: Path) -> str:
    with pytest.raises(rnnkit.ModelFileError) as info:
        rnnkit.load_model(path)
    return str(info.value)


# -- a. Sequential keeps its Input's integer dtype -----------------------------------------------------

@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_sequential_keeps_its_integer_input_dtype(tmp_path, dtype):
    model = rnnkit.Sequential([Input((T,), dtype=dtype), Embedding(V, 3, mask_zero=True, seed=0),
                               Bidirectional(GRU(2, seed=1)), Dense(2, seed=2)])
    model.compile("adam", loss="mse")
    x = np.random.default_rng(0).integers(0, V, size=(5, T)).astype(dtype)
    model.train_on_batch(x, np.zeros((5, 2)))
    model.save(tmp_path / "m.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "m.rnnkit")
    assert model.inputs[0].dtype == np.dtype(dtype)
    assert loaded.inputs[0].dtype == np.dtype(dtype)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # and again: the bytes of a saved, loaded and saved model are those of the first file
    loaded.save(tmp_path / "again.rnnkit")
    assert (tmp_path / "again.rnnkit").read_bytes() == (tmp_path / "m.rnnkit").read_bytes()


def test_sequential_input_dtype_and_batch_size_together(tmp_path):
    model = rnnkit.Sequential([Input((None,), batch_size=2, dtype="int32"), Embedding(V, 3, seed=0),
                               LSTM(2, stateful=True, seed=1)])
    model.save(tmp_path / "m.rnnkit")
    loaded = rnnkit.load_model(tmp_path / "m.rnnkit")
    assert loaded.inputs[0].dtype == np.int32 and loaded.inputs[0].shape == (2, None)
    x = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_float_sequential_configs_are_unchanged():
    """Only an integer (or bool) input dtype is written: a float model's config, and so its file, stays as it was."""
    plain = rnnkit.Sequential([Input((T, D)), SimpleRNN(2)])
    assert "input_dtype" not in plain.get_config()
    assert "input_dtype" not in rnnkit.Sequential([Input((T, D), dtype="float64"), SimpleRNN(2)]).get_config()
    assert rnnkit.Sequential([Input((T,), dtype="int32"), Embedding(V, 2)]).get_config()["input_dtype"] == "int32"


@pytest.mark.parametrize("value", ["float128x", "object", 3, ["int32"]])
def test_a_bad_input_dtype_in_a_file_is_refused(tmp_path, value):
    model = rnnkit.Sequential([Input((T,), dtype="int32"), Embedding(V, 3), Dense(1)])
    model.save(tmp_path / "m.rnnkit")
    message = _refusal(_edit_config(tmp_path / "m.rnnkit", lambda c: c.update(input_dtype=value)))
    assert "dtype" in message, message


def test_an_input_dtype_without_an_input_shape_is_refused(tmp_path):
    model = rnnkit.Sequential([Input((T,), dtype="int32"), Embedding(V, 3), Dense(1)])
    model.save(tmp_path / "m.rnnkit")
    message = _refusal(_edit_config(tmp_path / "m.rnnkit", lambda c: c.update(input_shape=None)))
    assert "input_dtype but no input_shape" in message, message


# -- b. Input dimensions are bounded ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [dict(shape=(2**63, D)), dict(shape=(T, 2**31)), dict(shape=2**40),
                                    dict(batch_shape=(None, 2**31, D))])
def test_input_refuses_dimensions_above_the_int32_limit(kwargs):
    with pytest.raises(ValueError, match=r"at most 2147483647 \(2\*\*31 - 1\)"):
        Input(**kwargs)


def test_input_refuses_a_batch_size_above_the_int32_limit():
    with pytest.raises(ValueError, match="at most 2147483647"):
        Input((T, D), batch_size=2**31)
    assert Input((T, D), batch_size=MAX_DIMENSION).shape == (MAX_DIMENSION, T, D)


def test_the_bound_itself_is_a_valid_dimension():
    assert MAX_DIMENSION == 2**31 - 1
    assert InputLayer(shape=(MAX_DIMENSION, None)).input_shape == (MAX_DIMENSION, None)


@pytest.mark.parametrize("sequential", [True, False])
def test_a_huge_input_dimension_in_a_file_is_refused(tmp_path, sequential):
    if sequential:
        model = rnnkit.Sequential([Input((T, D)), SimpleRNN(2)])
    else:
        x = Input((T, D), name="x")
        model = Model(x, SimpleRNN(2)(x))
    model.save(tmp_path / "m.rnnkit")

    def edit(config):
        if sequential:
            config["input_shape"] = [2**63, D]
        else:
            config["layers"][0]["config"]["shape"] = [2**63, D]
    message = _refusal(_edit_config(tmp_path / "m.rnnkit", edit))
    assert "at most 2147483647" in message, message


# -- c. the allocation budget names the layer ------------------------------------------------------

def _budget_refusal(tmp_path, model, edit) -> str:
    model.save(tmp_path / "m.rnnkit")
    return _refusal(_edit_config(tmp_path / "m.rnnkit", edit))


def test_the_budget_refusal_names_the_layer_and_weight_in_a_sequential_model(tmp_path):
    model = rnnkit.Sequential([Input((T, D)), LSTM(4, name="encoder"), Dense(2, name="head")])
    message = _budget_refusal(tmp_path, model, lambda c: c["layers"][1]["config"].update(units=10**6))
    assert "layer 'head' (Dense), weight 'kernel'" in message, message
    assert "layer sizes in its metadata were altered" in message and "(4, 1000000)" in message, message
    message = _budget_refusal(tmp_path, model, lambda c: c["layers"][0]["config"].update(units=400))
    assert "layer 'encoder' (LSTM), weight 'kernel'" in message, message


def test_the_budget_refusal_names_the_layer_of_a_functional_model_and_a_wrapped_weight(tmp_path):
    x = Input((T, D), name="x")
    model = Model(x, Dense(1, name="out")(Bidirectional(GRU(3), name="bi")(x)))

    def grow(config):
        bi = next(e for e in config["layers"] if e["name"] == "bi")
        bi["config"]["layer"]["config"]["units"] = 50
    message = _budget_refusal(tmp_path, model, grow)
    assert "layer 'bi' (Bidirectional), weight 'forward_layer.kernel'" in message, message


def test_the_budget_refusal_names_a_first_layer_given_input_shape(tmp_path):
    """A Sequential model made without an Input (``input_shape=`` on its first layer) names the layer too."""
    model = rnnkit.Sequential([SimpleRNN(2, name="rnn", input_shape=(T, D)), Dense(1, name="d")])
    message = _budget_refusal(tmp_path, model, lambda c: c["layers"][0]["config"].update(units=300))
    assert "layer 'rnn' (SimpleRNN)" in message, message


def test_a_model_built_outside_a_load_has_no_budget():
    assert rnnkit.initializers.refused_initializer() is None
    assert Dense(10**3).make_params((10**3,), np.float32, np.random.default_rng(0))["kernel"].shape == (10**3, 10**3)


# -- d. absurd windows in a file -------------------------------------------------------------------

@pytest.mark.parametrize("arg,value,words", [
    ("dilation_rate", [2**31], "dilation_rate must be at most 2147483647"),
    ("dilation_rate", [2**30], "would add 1073741824 zeros"),
    ("kernel_size", [2**31], "kernel_size must be at most 2147483647"),
    ("strides", [2**63], "strides must be at most 2147483647"),
])
def test_an_absurd_convolution_in_a_file_is_refused_naming_the_layer(tmp_path, arg, value, words):
    x = Input((T, D), name="x")
    model = Model(x, Conv1D(2, 2, padding="same", name="conv")(x))

    def edit(config):
        conv = next(e for e in config["layers"] if e["name"] == "conv")
        conv["config"][arg] = value
    message = _refusal(_edit_config(_save(model, tmp_path), edit))
    assert "'conv'" in message and words in message, message


def test_an_absurd_pool_size_in_a_file_is_refused(tmp_path):
    model = rnnkit.Sequential([Input((T, D)), MaxPooling1D(2, padding="same", name="pool"), SimpleRNN(2)])

    def edit(config):
        config["layers"][0]["config"].update(pool_size=[2**31 - 1], strides=[2**31 - 1])
    message = _refusal(_edit_config(_save(model, tmp_path), edit))
    assert "'pool'" in message and "would add 2147483643 zeros" in message, message


def _save(model, tmp_path) -> Path:
    model.save(tmp_path / "m.rnnkit")
    return tmp_path / "m.rnnkit"


def test_clone_model_keeps_a_sequential_integer_input():
    from rnnkit.models import clone_model

    model = rnnkit.Sequential([rnnkit.Input((4,), dtype="int32"), rnnkit.layers.Embedding(6, 2)])
    clone = clone_model(model)
    assert clone.inputs[0].dtype == np.dtype("int32")
    assert clone.predict(np.array([[1, 2, 3, 5]]), verbose=0).shape == (1, 4, 2)


@pytest.mark.parametrize("mode", ["sum", "mul", "ave"])
def test_bidirectional_refuses_directions_of_other_sizes_for_element_wise_merges(mode):
    with pytest.raises(ValueError, match=r"same number of units; got 4 forward and 5 backward"):
        rnnkit.layers.Bidirectional(rnnkit.layers.LSTM(4), merge_mode=mode,
                                    backward_layer=rnnkit.layers.LSTM(5, go_backwards=True))
    # concat (as Keras allows) puts them side by side
    model = rnnkit.Sequential([rnnkit.Input((3, 2)), rnnkit.layers.Bidirectional(
        rnnkit.layers.LSTM(4), backward_layer=rnnkit.layers.LSTM(5, go_backwards=True))])
    assert model.predict(np.zeros((1, 3, 2)), verbose=0).shape == (1, 9)


@pytest.mark.parametrize("value", [True, 1, [True], "x"])
def test_a_call_with_a_constant_mask_or_state_is_refused_at_load(value):
    """A file may give ``mask=`` or ``initial_state=`` any JSON value; only tensors of the model are calls."""
    from rnnkit.models.serialization import model_from_config

    inp = rnnkit.Input((4, 2))
    model = rnnkit.Model(inp, rnnkit.layers.LSTM(3)(inp))
    for name in ("mask", "initial_state"):
        config = json.loads(json.dumps(model.get_config()))
        lstm = next(entry for entry in config["layers"] if entry["class_name"] == "LSTM")
        lstm["inbound_nodes"][0]["kwargs"] = {name: value}
        with pytest.raises(ValueError, match=rf"is called with {name}=.*expected tensors of the model"):
            model_from_config(config)
