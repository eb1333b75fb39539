"""Saving and loading: exact round trips, a plain safetensors file, atomic writes, hostile files."""

from __future__ import annotations

import errno
import json
import os
import struct

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import rnnkit
from rnnkit.initializers import Initializer
from rnnkit.layers import Dense, Dropout, SimpleRNN
from rnnkit.optimizers import SGD, Adagrad, Adam, RMSprop

TIMESTEPS, FEATURES, UNITS, CLASSES = 3, 5, 8, 4
LAYER_WEIGHTS = {
    "layers/simple_rnn/kernel": (FEATURES, UNITS),
    "layers/simple_rnn/recurrent_kernel": (UNITS, UNITS),
    "layers/simple_rnn/bias": (UNITS,),
    "layers/dense/kernel": (UNITS, CLASSES),
    "layers/dense/bias": (CLASSES,),
}


# -- helpers -------------------------------------------------------------------------------

def make_model(optimizer="adam", compiled: bool = True, metrics=("accuracy",)):
    """SimpleRNN + Dense softmax, built for (batch, 3, 5), compiled with ``optimizer``."""
    model = rnnkit.Sequential(
        [SimpleRNN(UNITS, input_shape=(TIMESTEPS, FEATURES)), Dense(CLASSES, activation="softmax")], seed=0
    )
    if compiled:
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=list(metrics))
    return model


def data(n: int = 10, seed: int = 0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, TIMESTEPS, FEATURES))
    y = rnnkit.one_hot(r.integers(0, CLASSES, size=n), CLASSES)
    return x, y


def trained_model(optimizer="adam", steps: int = 3):
    """A compiled model after a few updates, so that the optimizer has state to save."""
    model = make_model(optimizer)
    for i in range(steps):
        model.train_on_batch(*data(seed=i))
    return model


def read_parts(path) -> tuple[dict, bytes]:
    """Split a safetensors file into its JSON header and its data bytes (per the format spec)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n].decode("utf-8")), blob[8 + n:]


def write_parts(path, header: dict, data_bytes: bytes) -> None:
    """Write a safetensors file from a header and data, padding the header to 8 bytes as the spec does."""
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data_bytes)


def edit_model_config(path, edit) -> None:
    """Rewrite the model_config JSON in a saved file's metadata with ``edit(config)``."""
    header, data_bytes = read_parts(path)
    config = json.loads(header["__metadata__"]["model_config"])
    edit(config)
    header["__metadata__"]["model_config"] = json.dumps(config)
    write_parts(path, header, data_bytes)


def weight_values_in(path) -> int:
    """How many numbers the tensors of a file hold."""
    header, _ = read_parts(path)
    return sum(int(np.prod(v["shape"])) for k, v in header.items() if k != "__metadata__")


@pytest.fixture
def saved(tmp_path):
    """The path of a freshly saved, untrained, compiled model."""
    path = tmp_path / "model.safetensors"
    make_model().save(path)
    return path


@pytest.fixture
def allocation_guard(monkeypatch):
    """Fail loudly (instead of exhausting memory) when building asks for more weight values than ``limit``."""
    state = {"limit": None, "total": 0}
    real_call = Initializer.__call__

    def guarded(self, shape, dtype, rng):
        # rnnkit's own budget check runs inside the real call and refuses before allocating;
        # whatever the real call returns has been allocated and counts against the limit.
        # (The sizes in these tests are small, so a missing check cannot exhaust memory here.)
        out = real_call(self, shape, dtype, rng)
        state["total"] += int(out.size)
        if state["limit"] is not None and state["total"] > state["limit"]:
            raise AssertionError(
                f"load_model built {state['total']} weight values (last shape {tuple(shape)}) from a file "
                f"holding {state['limit']}: a hostile config made it allocate"
            )
        return out

    monkeypatch.setattr(Initializer, "__call__", guarded)
    return state


def assert_bad_file(path, *patterns):
    """load_model raises ModelFileError (a ValueError) naming the file, with each pattern in its message."""
    with pytest.raises(rnnkit.ModelFileError) as info:
        rnnkit.load_model(path)
    message = str(info.value)
    assert type(info.value) is rnnkit.ModelFileError
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"Cannot load {str(path)!r} as an rnnkit model: ")
    for pattern in patterns:
        assert pattern in message, message
    return message


# -- round trips ----------------------------------------------------------------------------

@pytest.mark.parametrize("floatx", ["float32", "float64"])
def test_roundtrip_predictions_identical(tmp_path, request, floatx):
    """save then load_model gives bit-identical predictions, weights and config, in float32 and float64."""
    if floatx == "float64":
        request.getfixturevalue("float64")
    model = trained_model()
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    x, _ = data(n=7, seed=42)
    assert loaded.dtype == np.dtype(floatx)
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.get_config() == model.get_config()
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert a.dtype == b.dtype == np.dtype(floatx)
        assert np.array_equal(a, b)


def test_float64_model_loads_as_float64_whatever_floatx(tmp_path, float64):
    """A float64 model stays float64 when loaded under the float32 default, and floatx is left alone."""
    model = trained_model()
    path = tmp_path / "model.safetensors"
    model.save(path)
    rnnkit.set_floatx("float32")
    loaded = rnnkit.load_model(path)
    assert rnnkit.floatx() == "float32"
    assert loaded.dtype == np.float64
    x, _ = data(seed=3)
    assert np.array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize("floatx", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", [
    lambda: "adam",
    lambda: Adam(learning_rate=0.01, amsgrad=True, clipnorm=1.0),
    lambda: SGD(learning_rate=0.05),
    lambda: SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    lambda: RMSprop(momentum=0.5, centered=True, global_clipnorm=2.0),
    lambda: Adagrad(learning_rate=0.1, clipvalue=0.5),
], ids=["adam", "adam-amsgrad", "sgd", "sgd-nesterov", "rmsprop-centered", "adagrad"])
def test_loaded_model_keeps_training_identically(tmp_path, request, floatx, optimizer):
    """The loaded model is compiled alike and its next train_on_batch equals the original's (state is saved)."""
    if floatx == "float64":
        request.getfixturevalue("float64")
    model = trained_model(optimizer())
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert loaded.compiled
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 3
    assert loaded.loss.name == model.loss.name
    assert loaded.metrics_names_requested == model.metrics_names_requested
    for step in range(2):
        x, y = data(seed=100 + step)
        assert loaded.train_on_batch(x, y) == model.train_on_batch(x, y)
        for a, b in zip(loaded.get_weights(), model.get_weights()):
            assert np.array_equal(a, b)
    x, y = data(seed=7)
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_compiled_but_untrained_model_roundtrip(tmp_path):
    """A compiled model that never trained has no optimizer tensors, loads compiled and trains alike."""
    model = make_model(Adam(learning_rate=0.02))
    path = tmp_path / "model.safetensors"
    model.save(path)
    assert not any(k.startswith("optimizer/") for k in load_file(path))
    loaded = rnnkit.load_model(path)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    x, y = data()
    assert loaded.train_on_batch(x, y) == model.train_on_batch(x, y)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)


def test_uncompiled_model_and_compile_false(tmp_path):
    """An uncompiled model loads uncompiled; compile=False skips a saved compile config."""
    plain = tmp_path / "plain.safetensors"
    make_model(compiled=False).save(plain)
    assert not rnnkit.load_model(plain).compiled
    trained = tmp_path / "trained.safetensors"
    trained_model().save(trained)
    assert not rnnkit.load_model(trained, compile=False).compiled


def test_roundtrip_with_dropout_and_names(tmp_path):
    """Explicit layer names and a Dropout layer survive the round trip; inference output is identical."""
    model = rnnkit.Sequential([SimpleRNN(6, input_shape=(None, FEATURES), name="rnn", return_sequences=True),
                               Dropout(0.3, name="drop"), SimpleRNN(4, name="rnn2"), Dense(2, name="out")], seed=5)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = rnnkit.load_model(path)
    assert [layer.name for layer in loaded.layers] == ["rnn", "drop", "rnn2", "out"]
    x = np.random.default_rng(0).normal(size=(3, 9, FEATURES))
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_save_unbuilt_model_is_refused(tmp_path):
    """A model without weights yet cannot be saved; nothing is written."""
    model = rnnkit.Sequential([SimpleRNN(4), Dense(2)])
    with pytest.raises(ValueError, match=r"not built yet"):
        model.save(tmp_path / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


# -- the file format ------------------------------------------------------------------------

def test_file_is_plain_safetensors(tmp_path):
    """The file loads with safetensors.numpy.load_file; tensors are named layers/<layer>/<weight>."""
    model = trained_model()
    path = tmp_path / "model.safetensors"
    model.save(path)
    tensors = load_file(path)
    layer_keys = {k for k in tensors if k.startswith("layers/")}
    assert layer_keys == set(LAYER_WEIGHTS)
    assert all(k.startswith("optimizer/") for k in set(tensors) - layer_keys)
    assert "optimizer/iterations" in tensors
    for name, shape in LAYER_WEIGHTS.items():
        assert tensors[name].shape == shape
    names = [f"layers/{layer.name}/{w}" for layer in model.layers for w in layer.params]
    for name, weight in zip(names, model.get_weights()):
        assert np.array_equal(tensors[name], weight)


def test_file_metadata(saved):
    """The safetensors metadata says format 'rnnkit', version '1', and holds the architecture as JSON."""
    with safe_open(str(saved), framework="numpy") as f:
        meta = f.metadata()
    assert meta["format"] == "rnnkit"
    assert meta["format_version"] == "1"
    assert meta["rnnkit_version"] == rnnkit.__version__
    assert meta["dtype"] == "float32"
    config = json.loads(meta["model_config"])
    assert [entry["class_name"] for entry in config["layers"]] == ["SimpleRNN", "Dense"]
    assert json.loads(meta["compile_config"])["loss"] == "categorical_crossentropy"


def test_file_has_json_header_and_no_pickle(saved):
    """Per the safetensors spec: an 8-byte little-endian length, then a JSON object, then raw tensor bytes."""
    blob = saved.read_bytes()
    assert blob[:1] != b"\x80"                      # no pickle PROTO opcode
    (n,) = struct.unpack("<Q", blob[:8])
    assert 0 < n <= len(blob) - 8
    assert blob[8:9] == b"{"
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    assert isinstance(header, dict)
    assert header["__metadata__"]["format"] == "rnnkit"
    assert all(isinstance(v, str) for v in header["__metadata__"].values())
    data_len = len(blob) - 8 - n
    spans = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    assert spans[0][0] == 0 and spans[-1][1] == data_len
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))   # contiguous, no gaps or overlaps
    for name, info in header.items():
        if name != "__metadata__":
            assert info["dtype"] == "F32"
            begin, end = info["data_offsets"]
            assert end - begin == 4 * int(np.prod(info["shape"]))


# -- atomic writes --------------------------------------------------------------------------

def _other_model():
    model = trained_model(steps=5)
    model.layers[0].params["bias"][...] += 1.0
    return model


def test_failed_replace_keeps_original_and_leaves_no_temp(tmp_path, monkeypatch):
    """If the final os.replace fails, the old file is intact and no temporary file is left behind."""
    path = tmp_path / "model.safetensors"
    original = make_model()
    original.save(path)
    good = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError(errno.EXDEV, "simulated failure in os.replace")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", failing_replace)
        with pytest.raises(OSError, match=r"simulated failure"):
            _other_model().save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    x, _ = data()
    assert np.array_equal(rnnkit.load_model(path).predict(x), original.predict(x))


def test_write_failing_midway_keeps_original_and_leaves_no_temp(tmp_path, monkeypatch):
    """A disk-full error halfway through writing leaves the old file intact and no temporary file."""
    path = tmp_path / "model.safetensors"
    make_model().save(path)
    good = path.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()
            return False

        def write(self, blob):
            self.f.write(blob[:len(blob) // 2])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

    with monkeypatch.context() as m:
        m.setattr(os, "fdopen", lambda fd, *a, **k: HalfWriter(real_fdopen(fd, *a, **k)))
        with pytest.raises(OSError, match=r"No space left"):
            _other_model().save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_interrupt_during_fsync_keeps_original_and_leaves_no_temp(tmp_path, monkeypatch):
    """Even a KeyboardInterrupt during the write leaves the old file and cleans up the temporary one."""
    path = tmp_path / "model.safetensors"
    make_model().save(path)
    good = path.read_bytes()

    def interrupted(fd):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", interrupted)
        with pytest.raises(KeyboardInterrupt):
            _other_model().save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_save_overwrites_existing_file(tmp_path):
    """A successful save replaces the old file completely and leaves only it in the folder."""
    path = tmp_path / "model.safetensors"
    make_model().save(path)
    other = _other_model()
    other.save(path)
    x, _ = data()
    assert np.array_equal(rnnkit.load_model(path).predict(x), other.predict(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_save_into_missing_folder(tmp_path):
    """Saving into a folder that does not exist is a clear error naming the folder; nothing is created."""
    target = tmp_path / "missing" / "model.safetensors"
    with pytest.raises(rnnkit.ModelFileNotFoundError, match=r"folder .*missing.* does not exist"):
        make_model().save(target)
    assert not (tmp_path / "missing").exists()
    assert list(tmp_path.iterdir()) == []


# -- missing, empty, truncated ----------------------------------------------------------------

def test_missing_file(tmp_path):
    """A path that does not exist is ModelFileNotFoundError, which is also a FileNotFoundError."""
    path = tmp_path / "nothing.safetensors"
    with pytest.raises(rnnkit.ModelFileNotFoundError, match=r"No model file at .*nothing\.safetensors") as info:
        rnnkit.load_model(path)
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, rnnkit.RnnkitError)


def test_folder_instead_of_file(tmp_path):
    """A folder is not a model file."""
    assert_bad_file(tmp_path, "not a regular file")


def test_empty_file(tmp_path):
    """An empty file is a ModelFileError saying it is empty."""
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    assert_bad_file(path, "the file is empty")


def test_three_byte_file(tmp_path):
    """A 3-byte file is too short for the length field."""
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(b"abc")
    assert_bad_file(path, "only 3 bytes")


@pytest.mark.parametrize("where", ["in length field", "after length field", "in header", "before last header byte",
                                   "after header", "in first tensor", "in data", "last byte missing"])
def test_truncated_file(saved, tmp_path, where):
    """A saved file cut anywhere (length field, header, data) is a ModelFileError, never a raw exception."""
    blob = saved.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    cut = {
        "in length field": 5,
        "after length field": 8,
        "in header": 8 + n // 2,
        "before last header byte": 8 + n - 1,
        "after header": 8 + n,
        "in first tensor": 8 + n + 3,
        "in data": 8 + n + (len(blob) - 8 - n) // 2,
        "last byte missing": len(blob) - 1,
    }[where]
    path = tmp_path / "cut.safetensors"
    path.write_bytes(blob[:cut])
    message = assert_bad_file(path)
    assert any(word in message for word in ("truncated", "too few", "bytes")), message


@pytest.mark.parametrize("cut", range(0, 64, 3))
def test_truncated_anywhere_in_first_bytes(saved, tmp_path, cut):
    """Every short prefix of a good file is refused with ModelFileError."""
    path = tmp_path / "cut.safetensors"
    path.write_bytes(saved.read_bytes()[:cut])
    assert_bad_file(path)


def test_trailing_garbage(saved):
    """Extra bytes after the tensors are refused."""
    with open(saved, "ab") as f:
        f.write(b"\x00" * 16)
    assert_bad_file(saved, "trailing garbage")


# -- corrupted or foreign headers -------------------------------------------------------------

def test_header_claiming_2_to_the_60_bytes(tmp_path):
    """A length field claiming 2**60 bytes fails at once, naming the claim, without reading that much."""
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**60) + b'{"__metadata__": {}}')
    assert_bad_file(path, f"claims {2**60} bytes", "truncated, corrupted or not a safetensors file")


def test_header_that_is_a_json_list(tmp_path):
    """A header that parses as JSON but is a list is refused."""
    path = tmp_path / "list.safetensors"
    path.write_bytes(struct.pack("<Q", 2) + b"[]")
    assert_bad_file(path, "not a JSON object")


@pytest.mark.parametrize("raw", [b"not json at all", b"\xff\xfe\xfd\xfc", b'{"a": '])
def test_header_that_is_not_json(tmp_path, raw):
    """Garbage, invalid UTF-8 or broken JSON in the header is refused as not a safetensors file."""
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    assert_bad_file(path, "not valid JSON")


def test_header_deeply_nested_json(tmp_path):
    """A header of deeply nested JSON (a JSON bomb) is a ModelFileError, not a RecursionError."""
    raw = b"[" * 100_000 + b"]" * 100_000
    path = tmp_path / "nested.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    assert_bad_file(path)


def test_deeply_nested_model_config(saved):
    """A model_config of deeply nested JSON is a ModelFileError, not a RecursionError."""
    header, data_bytes = read_parts(saved)
    header["__metadata__"]["model_config"] = "[" * 100_000 + "]" * 100_000
    write_parts(saved, header, data_bytes)
    assert_bad_file(saved)


def test_random_bytes_file(tmp_path):
    """A file of random bytes is a ModelFileError."""
    path = tmp_path / "random.safetensors"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    assert_bad_file(path)


def test_foreign_safetensors_file(tmp_path):
    """A valid safetensors file without rnnkit metadata is refused as foreign."""
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": np.zeros((3, 4), dtype=np.float32)}, str(path))
    assert_bad_file(path, "not one written by rnnkit")


def test_foreign_safetensors_file_with_other_metadata(tmp_path):
    """A safetensors file whose metadata names another format is refused as foreign."""
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": np.zeros((3, 4), dtype=np.float32)}, str(path), metadata={"format": "pt"})
    assert_bad_file(path, "not one written by rnnkit")


@pytest.mark.parametrize("offsets", [lambda b, e, d: [b + d, e + d], lambda b, e, d: [b, e + 1000],
                                     lambda b, e, d: [2**62, 2**62 + (e - b)], lambda b, e, d: [e, b]])
def test_tensor_offsets_past_the_end(saved, offsets):
    """A tensor whose data_offsets point past the data (or are reversed) is refused, naming the tensor."""
    header, data_bytes = read_parts(saved)
    begin, end = header["layers/dense/bias"]["data_offsets"]
    header["layers/dense/bias"]["data_offsets"] = offsets(begin, end, len(data_bytes))
    write_parts(saved, header, data_bytes)
    assert_bad_file(saved, "'layers/dense/bias'")


@pytest.mark.parametrize("entry", [
    {"dtype": "F32", "shape": [4]},
    {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]},
    {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]},
    {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]},
    "not a dict",
])
def test_malformed_tensor_entry(saved, entry):
    """A tensor entry with missing keys, an unknown dtype or a bad shape is refused, naming the tensor."""
    header, data_bytes = read_parts(saved)
    header["layers/dense/bias"] = entry
    write_parts(saved, header, data_bytes)
    assert_bad_file(saved, "'layers/dense/bias'")


def test_unknown_layer_class(saved):
    """Metadata naming a layer class rnnkit does not have is refused with the class name."""
    def edit(config):
        config["layers"][1]["class_name"] = "TransformerBlock"

    edit_model_config(saved, edit)
    assert_bad_file(saved, "unknown layer class 'TransformerBlock'")


@pytest.mark.parametrize("layer_index", [0, 1])
def test_hostile_units_fail_fast(saved, allocation_guard, layer_index):
    """units=10**12 in the config fails fast with ModelFileError, without allocating anything huge."""
    allocation_guard["limit"] = weight_values_in(saved)

    def edit(config):
        config["layers"][layer_index]["config"]["units"] = 10**12

    edit_model_config(saved, edit)
    assert_bad_file(saved, "1000000000000")


def test_hostile_input_shape_fails_fast(saved, allocation_guard):
    """A model input_shape with 10**12 features fails fast with ModelFileError."""
    allocation_guard["limit"] = weight_values_in(saved)

    def edit(config):
        config["input_shape"] = [3, 10**12]

    edit_model_config(saved, edit)
    assert_bad_file(saved)


def test_hostile_layer_input_shape_fails_fast(saved, allocation_guard):
    """An input_shape with 10**12 features put in the first layer's own config fails fast too.

    load_model bounds units and the model-level input_shape, but not a layer-level input_shape.
    """
    allocation_guard["limit"] = weight_values_in(saved)

    def edit(config):
        config["input_shape"] = None
        config["layers"][0]["config"]["input_shape"] = [3, 10**12]

    edit_model_config(saved, edit)
    assert_bad_file(saved)


def test_hostile_units_within_budget_do_not_allocate_more_than_the_file(saved, allocation_guard):
    """units just under the file's weight count must not build a units x units kernel larger than the file.

    The saving module promises that "a hostile config cannot make building the model allocate more
    than the file"; each size is bounded by the weight count, but SimpleRNN allocates units**2.
    """
    budget = weight_values_in(saved)
    allocation_guard["limit"] = budget

    def edit(config):
        config["layers"][0]["config"]["units"] = budget - 1

    edit_model_config(saved, edit)
    assert_bad_file(saved)


@pytest.mark.parametrize("version", ["2", "0", "", None, 1])
def test_bad_format_version(saved, version):
    """A format_version other than '1' (or none) is refused, naming the version found and the one supported."""
    header, data_bytes = read_parts(saved)
    if version is None:
        del header["__metadata__"]["format_version"]
    else:
        header["__metadata__"]["format_version"] = version
    write_parts(saved, header, data_bytes)
    assert_bad_file(saved, f"format version {version!r}", "reads version 1")


def test_weight_with_wrong_shape(saved):
    """A weight stored with the wrong shape (same byte count) is refused, naming layer, weight and shape."""
    header, data_bytes = read_parts(saved)
    assert header["layers/dense/kernel"]["shape"] == [UNITS, CLASSES]
    header["layers/dense/kernel"]["shape"] = [CLASSES, UNITS]
    write_parts(saved, header, data_bytes)
    assert_bad_file(saved, "'dense'", "'kernel'", f"expects shape {(UNITS, CLASSES)}", f"got {(CLASSES, UNITS)}")


def test_weight_with_wrong_size(saved, tmp_path):
    """A consistent safetensors file whose weight has a different size than the config says is refused."""
    tensors = load_file(saved)
    with safe_open(str(saved), framework="numpy") as f:
        meta = f.metadata()
    tensors["layers/simple_rnn/kernel"] = np.zeros((FEATURES + 1, UNITS), dtype=np.float32)
    save_file(tensors, str(saved), metadata=meta)
    assert_bad_file(saved, "'simple_rnn'", "'kernel'", f"expects shape {(FEATURES, UNITS)}")


def test_missing_weight(saved):
    """A file without one of the model's weights is refused before the model is built, saying weights are missing.

    (The allocation budget notices that the architecture needs more values than the file holds
    before the per-tensor check could name the missing tensor.)"""
    tensors = load_file(saved)
    with safe_open(str(saved), framework="numpy") as f:
        meta = f.metadata()
    del tensors["layers/dense/bias"]
    save_file(tensors, str(saved), metadata=meta)
    assert_bad_file(saved, "weights are missing")


def test_non_finite_weight(saved):
    """A NaN weight in the file is refused."""
    tensors = load_file(saved)
    with safe_open(str(saved), framework="numpy") as f:
        meta = f.metadata()
    tensors["layers/dense/kernel"][0, 0] = np.nan
    save_file(tensors, str(saved), metadata=meta)
    assert_bad_file(saved, "NaN")


@pytest.mark.parametrize("edit", [
    lambda c: c.pop("layers"),
    lambda c: c.update(layers=7),
    lambda c: c["layers"][0]["config"].update(units="8"),
    lambda c: c["layers"][0]["config"].update(unknown_argument=1),
    lambda c: c["layers"][0]["config"].update(activation="swishy"),
    lambda c: c["layers"][0].update(config=[1, 2]),
], ids=["no-layers", "layers-not-list", "units-str", "unknown-arg", "unknown-activation", "config-list"])
def test_invalid_architecture(saved, edit):
    """Any invalid architecture description is a ModelFileError saying so."""
    edit_model_config(saved, edit)
    assert_bad_file(saved, "architecture description is invalid")


@pytest.mark.parametrize("compile_config", [
    "not json",
    json.dumps({"optimizer": {"class_name": "adamw", "config": {}}, "loss": "mse", "metrics": []}),
    json.dumps({"optimizer": {"class_name": "adam", "config": {"learning_rate": -1}}, "loss": "mse",
                "metrics": []}),
    json.dumps({"optimizer": {"class_name": "adam", "config": {}}, "loss": "nope", "metrics": []}),
    json.dumps({"optimizer": {"class_name": "adam", "config": {}}, "loss": "mse", "metrics": ["nope"]}),
], ids=["not-json", "unknown-optimizer", "negative-lr", "unknown-loss", "unknown-metric"])
def test_invalid_compile_config(saved, compile_config):
    """Invalid compile settings are a ModelFileError saying so."""
    header, data_bytes = read_parts(saved)
    header["__metadata__"]["compile_config"] = compile_config
    write_parts(saved, header, data_bytes)
    assert_bad_file(saved, "compile settings are invalid")


def test_optimizer_state_with_wrong_shape(tmp_path):
    """Saved optimizer state that does not fit the weights is refused."""
    path = tmp_path / "model.safetensors"
    trained_model().save(path)
    tensors = load_file(path)
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
    tensors["optimizer/0/m"] = np.zeros((2, 2), dtype=np.float32)
    save_file(tensors, str(path), metadata=meta)
    assert_bad_file(path, "compile settings are invalid", "Optimizer state for parameter 0")
