"""A loader no file can break: thousands of seeded, structured mutations of real model files.

Every mutated file must either be refused with ``rnnkit.ModelFileError`` or load into a model
that predicts and trains one step (``train_on_batch`` when the file is compiled) without any other
exception. The mutations are the ways a file goes wrong or is made to go wrong: flipped bytes,
truncation, a wrong header length, JSON values of the wrong type or size in the architecture and
the compile settings, dropped and duplicated keys, wrong dtypes, shapes and offsets in the
safetensors header, non-finite or huge weights and optimizer slots, odd step counts.

Two outcomes besides these are clean too and are counted apart: a train step refused with
``NonFiniteError`` (finite but huge weights overflow the loss), and a model that loads but
describes inputs or activations too large to run here (``RepeatVector(10**9)`` is a valid layer).
Every third file is also read with ``load_weights``: refused with nothing changed, or finite weights.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import time
import tracemalloc
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import rnnkit
from rnnkit import Input, Model
from rnnkit.errors import NonFiniteError
from rnnkit.layers import (
    GRU,
    LSTM,
    Attention,
    Bidirectional,
    Conv1D,
    Dense,
    Dropout,
    Embedding,
    GlobalAveragePooling1D,
    RepeatVector,
    SimpleRNN,
)

B, T, D = 3, 4, 3
#: mutations per model file (several hundred each: thousands in all), and the time the whole run may take
MUTATIONS_PER_MODEL = 700
SEED = 1000
TIME_BUDGET_S = 40.0
#: what loading a mutated file may give (FAILED: anything else, which the test reports)
OUTCOMES = ("rejected", "loaded", "loaded_nonfinite_step", "loaded_huge_activations", "FAILED")
#: every n-th mutated file is also read by load_weights into a model of the original architecture
WEIGHTS_SAMPLE = 3
#: the peak memory of every n-th load is measured
MEMORY_SAMPLE = 4


# -- the model files -----------------------------------------------------------------------------

def _sequential_lstm():
    model = rnnkit.Sequential([Input((T, D)), LSTM(4, return_sequences=True, seed=0), Dropout(0.2, seed=1),
                               GRU(3, seed=2), RepeatVector(2), SimpleRNN(2, seed=3), Dense(2, seed=4)])
    model.compile(rnnkit.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


def _sequential_embedding():
    model = rnnkit.Sequential([Input((T,), dtype="int32"), Embedding(5, 3, mask_zero=True, seed=0),
                               Bidirectional(GRU(2, seed=1)), Dense(3, activation="softmax", seed=2)])
    model.compile("adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _functional_attention():
    q, v = Input((T, D), name="q"), Input((T, D), name="v")
    a = LSTM(3, return_sequences=True, seed=0)(q)
    b = Conv1D(3, 2, padding="same", seed=1)(v)
    context = Attention(use_scale=True)([a, b])
    out = Dense(1, seed=2)(GlobalAveragePooling1D()(context))
    model = Model([q, v], out, name="attn")
    model.compile(rnnkit.optimizers.Adam(0.01, clipnorm=1.0), loss="mse")
    return model


def _uncompiled_simple():
    return rnnkit.Sequential([Input((T, D)), SimpleRNN(3, seed=0), Dense(2, seed=1)])


BUILDERS = [_sequential_lstm, _sequential_embedding, _functional_attention, _uncompiled_simple]


def _inputs_for(model, seed: int = 0) -> list[np.ndarray]:
    """Random inputs for ``model``'s own input tensors (unknown sizes become small ones).

    The values are 0 and 1, which every input takes: an Embedding reads them as valid indices,
    whatever type a mutated file gives the input.
    """
    r = np.random.default_rng(seed)
    return [r.integers(0, 2, size=(B, *[T if d is None else d for d in t.shape[1:]])).astype(t.dtype)
            for t in model.inputs]


def _train_one_step(model, seed: int = 0) -> None:
    x = _inputs_for(model, seed)
    out = model.predict(x if len(x) > 1 else x[0], verbose=0)
    y = [np.full(o.shape, 0.5) for o in (out if isinstance(out, list) else [out])]
    model.train_on_batch(x if len(x) > 1 else x[0], y if len(y) > 1 else y[0])


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> list[bytes]:
    """The bytes of each saved model, compiled ones after one step so the optimizer slots are in the file."""
    folder = tmp_path_factory.mktemp("fuzz")
    files = []
    for build in BUILDERS:
        model = build()
        if model.compiled:
            _train_one_step(model)
        path = folder / f"{build.__name__}.rnnkit"
        model.save(path)
        files.append(path.read_bytes())
    return files


# -- the safetensors layout, for structured mutations -------------------------------------------

def _split(blob: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def _join(header_text: str, data: bytes) -> bytes:
    raw = header_text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw + data


class Dup(list):
    """A JSON object written with its pairs as given, duplicate keys included."""


def _dump(value: Any) -> str:
    if isinstance(value, Dup):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str) and value.startswith("\0raw:"):
        return value[5:]
    return json.dumps(value)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) into a JSON value, the root included."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


def _get(value: Any, path: tuple) -> Any:
    for p in path:
        value = value[p]
    return value


def _set(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    _get(value, path[:-1])[path[-1]] = new
    return value


def _evil_value(r: np.random.Generator, old: Any) -> Any:
    """A value of another type or an extreme size."""
    choices: list[Any] = [
        None, True, False, 0, 1, -1, 2, -7, 3, 10**6, 2**31, 2**63, 10**40, -(10**40), 0.5, -0.0, 1e308,
        float("nan"), float("inf"), float("-inf"), "", "x", "relu", "float16", "int32", "none", "a" * 5000,
        [], [1], [None], [[1, 2]], [-1, 3], {}, {"a": 1}, {"class_name": "Dense", "config": {}},
        {"tensor": ["x", 0, 0]}, {"dict": {}}, {"loss": "mse"}, {"metric": 3},
        "\0raw:" + "[" * 5000 + "]" * 5000, "\0raw:" + "{\"a\":" * 3000 + "1" + "}" * 3000,
        "\0raw:" + "[" + ",".join(["0"] * 20000) + "]",
    ]
    if isinstance(old, bool):
        choices += [not old]
    elif isinstance(old, int):
        choices += [old + 1, old - 1, -old, old * 1000, str(old), [old], float(old)]
    elif isinstance(old, float):
        choices += [-old, old * 1e30, str(old), int(old)]
    elif isinstance(old, str):
        choices += [old + "_", old.upper(), [old], {"class_name": old}, old * 50]
    elif isinstance(old, list):
        choices += [old[:-1], old + old[-1:] if old else [0], list(reversed(old)), [old], {"x": old}]
    elif isinstance(old, dict):
        choices += [list(old.values()), [old], {"x": old}]
    return choices[int(r.integers(len(choices)))]


# -- the mutations: each takes (rng, the file's bytes) and returns new bytes -----------------------

def m_byte_flip(r, blob):
    data = bytearray(blob)
    for _ in range(int(r.integers(1, 5))):
        i = int(r.integers(len(data)))
        data[i] ^= 1 << int(r.integers(8))
    return bytes(data)


def m_byte_flip_header(r, blob):
    (n,) = struct.unpack("<Q", blob[:8])
    data = bytearray(blob)
    for _ in range(int(r.integers(1, 4))):
        data[8 + int(r.integers(n))] = int(r.integers(256))
    return bytes(data)


def m_truncate(r, blob):
    return blob[:int(r.integers(len(blob)))]


def m_append(r, blob):
    return blob + bytes(r.integers(0, 256, size=int(r.integers(1, 64)), dtype=np.uint8))


def m_header_length(r, blob):
    (n,) = struct.unpack("<Q", blob[:8])
    new = [0, 1, 7, n - 1, n + 1, n - 8, n + 8, len(blob), len(blob) - 8, 2**63, 2**64 - 1, 100 * 2**20,
           int(r.integers(0, len(blob)))][int(r.integers(13))]
    return struct.pack("<Q", max(0, new) % 2**64) + blob[8:]


def _metadata_json_mutation(key: str) -> Callable:
    def mutate(r, blob):
        header, data = _split(blob)
        meta = header["__metadata__"]
        if key not in meta:
            return None
        config = json.loads(meta[key])
        paths = _paths(config)
        path = paths[int(r.integers(len(paths)))]
        kind = int(r.integers(4))
        target = _get(config, path)
        if kind == 0 or not isinstance(target, (dict, list)) or not target:
            config = _set(config, path, _evil_value(r, target))
        elif kind == 1:                          # drop a key or an element
            if isinstance(target, dict):
                del target[list(target)[int(r.integers(len(target)))]]
            else:
                del target[int(r.integers(len(target)))]
        elif kind == 2 and isinstance(target, dict):   # duplicate a key, the second copy wins in json.loads
            k = list(target)[int(r.integers(len(target)))]
            pairs = Dup(list(target.items()) + [(k, _evil_value(r, target[k]))])
            config = _set(config, path, pairs)
        else:                                    # duplicate an element / add an unknown key
            if isinstance(target, dict):
                target["unexpected_" + str(int(r.integers(10)))] = _evil_value(r, None)
            else:
                target.append(target[int(r.integers(len(target)))])
        meta[key] = _dump(config)
        return _join(json.dumps(header), data)
    mutate.__name__ = f"m_{key}"
    return mutate


def m_metadata_field(r, blob):
    header, data = _split(blob)
    meta = header["__metadata__"]
    key = ["format", "format_version", "dtype", "model_config", "compile_config", "rnnkit_version",
           "content"][int(r.integers(7))]
    if int(r.integers(3)) == 0:
        meta.pop(key, None)
    else:
        value = ["float16", "float64", "int32", "bool", "object", "", "rnnkit", "2", "{}", "[]", "null",
                 "1e400", '"x"', "NaN"][int(r.integers(14))]
        if key in ("model_config", "compile_config", "dtype") or int(r.integers(2)):
            meta[key] = value
        else:
            meta[key] = _evil_value(r, meta.get(key))
    return _join(_dump(header), data)


def m_tensor_entry(r, blob):
    header, data = _split(blob)
    names = [k for k in header if k != "__metadata__"]
    name = names[int(r.integers(len(names)))]
    info = header[name]
    kind = int(r.integers(5))
    if kind == 0:
        info["dtype"] = ["F16", "F32", "F64", "I32", "I64", "BOOL", "U8", "BF16", "x", 3][int(r.integers(10))]
    elif kind == 1:
        shape = info["shape"]
        options = [[], [0], shape[::-1], shape + [1], [1] + shape, [-1] + shape[1:], [2**62, 2**62],
                   [10**30], [x * 2 for x in shape], shape[:-1]]
        info["shape"] = options[int(r.integers(len(options)))]
    elif kind == 2:
        begin, end = info["data_offsets"]
        options = [[begin, end + 4], [begin - 4, end - 4], [end, begin], [begin + 8, end + 8], [0, end - begin],
                   [-1, end], [begin, 2**64], [begin], [begin, end, 0], ["0", end]]
        info["data_offsets"] = options[int(r.integers(len(options)))]
    elif kind == 3:                             # rename a tensor, or drop it (data stays: trailing bytes)
        if int(r.integers(2)):
            header[name + "_"] = header.pop(name)
        else:
            del header[name]
    else:
        info[["extra", "dtype", "shape"][int(r.integers(3))]] = _evil_value(r, None)
    return _join(_dump(header), data)


def m_tensor_values(r, blob):
    """Overwrite some values of one tensor with NaN, inf, huge or subnormal numbers of its dtype."""
    header, data = _split(blob)
    (n,) = struct.unpack("<Q", blob[:8])
    names = [k for k in header if k != "__metadata__"]
    name = names[int(r.integers(len(names)))]
    info = header[name]
    dtype = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}[info["dtype"]]
    begin, end = info["data_offsets"]
    values = np.frombuffer(data[begin:end], dtype=dtype).copy()
    if values.size == 0:
        return None
    if values.dtype.kind == "f":
        special = [np.nan, np.inf, -np.inf, 1e38, 3e38, 1e300 if dtype == "<f8" else 3.4e38, 1e-45, 65504.0, 1e5]
        value = special[int(r.integers(len(special)))]
    else:
        value = [-1, 0, 1, 2, 2**31 - 1, -(2**31), np.iinfo(values.dtype).max, 10**6][int(r.integers(8))]
    idx = r.integers(values.size, size=int(r.integers(1, values.size + 1)))
    with np.errstate(over="ignore", invalid="ignore"):
        values[idx] = value
    new = bytearray(data)
    new[begin:end] = values.tobytes()
    return blob[:8 + n] + bytes(new)


def m_iterations(r, blob):
    header, data = _split(blob)
    if "optimizer/iterations" not in header:
        return None
    (n,) = struct.unpack("<Q", blob[:8])
    info = header["optimizer/iterations"]
    begin, end = info["data_offsets"]
    value = [0, 1, -1, 2, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 10**9][int(r.integers(9))]
    new = bytearray(data)
    if int(r.integers(4)) == 0:                 # the same 8 bytes read as a float
        info["dtype"] = "F64"
        new[begin:end] = np.array([[np.nan, np.inf, 1.5, -2.0, 1e300][int(r.integers(5))]], "<f8").tobytes()
        return _join(_dump(header), bytes(new))
    new[begin:end] = np.array([value], "<i8").tobytes()
    return blob[:8 + n] + bytes(new)


MUTATIONS = [m_byte_flip, m_byte_flip_header, m_truncate, m_append, m_header_length,
             _metadata_json_mutation("model_config"), _metadata_json_mutation("model_config"),
             _metadata_json_mutation("model_config"), _metadata_json_mutation("compile_config"),
             _metadata_json_mutation("compile_config"), m_metadata_field, m_tensor_entry, m_tensor_entry,
             m_tensor_values, m_tensor_values, m_iterations]


# -- the run ------------------------------------------------------------------------------------

def _largest_activation(model) -> int:
    """The most values per sample of any tensor in ``model``'s graph, or of a convolution's padded input
    (unknown sizes taken as T)."""
    sizes = [math.prod(T if d is None else d for d in t.shape[1:]) for t in model.inputs]
    for node in model.graph.nodes:
        sizes += [math.prod(T if d is None else d for d in t.shape[1:]) for t in node.outputs]
        span = getattr(node.layer, "span", None)        # a convolution pads its input to its receptive field
        if isinstance(span, int) and node.arg_tensors:
            sizes.append(span * (node.arg_tensors[0].shape[-1] or 1))
        if isinstance(node.layer, Model):
            sizes.append(_largest_activation(node.layer))
    return max(sizes)


def _weights_outcome(path, model) -> str:
    """What ``load_weights`` of ``path`` into ``model`` gives: 'rejected' (nothing changed) or 'loaded'."""
    before = model.get_weights()
    try:
        model.load_weights(path)
    except rnnkit.ModelFileError:
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights())), "refused, yet changed"
        return "rejected"
    assert all(np.isfinite(w).all() for w in model.get_weights())
    return "loaded"


def _outcome(path) -> str:
    """What loading ``path`` gives: 'rejected', 'loaded', 'loaded_nonfinite_step', or an exception to report."""
    try:
        model = rnnkit.load_model(path)
    except rnnkit.ModelFileError:
        return "rejected"
    if _largest_activation(model) > 10**5:
        # the file describes a model whose inputs or activations are this large (an Input of shape
        # (10**12, 3) or RepeatVector(10**9) is valid): the loader did its part, but running it is another matter
        return "loaded_huge_activations"
    x = _inputs_for(model, seed=1)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # a file may hold finite but huge weights: NumPy's overflow warnings are then expected
        warnings.simplefilter("ignore", RuntimeWarning)
        out = model.predict(x if len(x) > 1 else x[0], verbose=0)
        outputs = out if isinstance(out, list) else [out]
        assert all(isinstance(o, np.ndarray) and o.shape[0] == B for o in outputs)
        if model.compiled:
            y = [np.full(o.shape, 0.5) for o in outputs]
            try:
                model.train_on_batch(x if len(x) > 1 else x[0], y if len(y) > 1 else y[0])
            except NonFiniteError:
                return "loaded_nonfinite_step"     # a clean refusal to apply a non-finite update
        else:
            model.compile("sgd", loss="mse")
            try:
                model.train_on_batch(x if len(x) > 1 else x[0], [np.zeros(o.shape) for o in outputs][0])
            except NonFiniteError:
                return "loaded_nonfinite_step"
    # what loaded and trained can be saved again, and reads back the same
    again = path.with_name("again.rnnkit")
    model.save(again)
    reloaded = rnnkit.load_model(again)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), reloaded.get_weights()))
    return "loaded"


def test_every_mutated_model_file_is_refused_cleanly_or_loads_and_trains(model_files, tmp_path):
    counts: Counter = Counter()
    failures: list[str] = []
    worst_time, worst_name = 0.0, ""
    worst_memory = 0
    seen: set = set()
    targets = [build() for build in BUILDERS]      # models that load_weights reads the mutated files into
    started = time.perf_counter()
    # a memory-backed folder where there is one: thousands of small writes are the slow part elsewhere
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    path = folder / "mutated.rnnkit"
    try:
        for f, blob in enumerate(model_files):
            r = np.random.default_rng(SEED + f)
            for i in range(MUTATIONS_PER_MODEL):
                mutate = MUTATIONS[int(r.integers(len(MUTATIONS)))]
                new = mutate(r, blob)
                if new is None or new == blob:
                    counts["unchanged"] += 1
                    continue
                path.write_bytes(new)
                traced = i % MEMORY_SAMPLE == 0        # tracing every allocation doubles the time: a sample
                if traced:
                    tracemalloc.start()
                t0 = time.perf_counter()
                try:
                    kind = _outcome(path)
                    if i % WEIGHTS_SAMPLE == 1:
                        counts["load_weights_" + _weights_outcome(path, targets[f])] += 1
                except Exception as exc:  # noqa: BLE001 - any other exception is what this test looks for
                    kind = "FAILED"
                    key = (mutate.__name__, type(exc).__name__, str(exc)[:30])
                    if len(failures) < 12 and key not in seen:
                        seen.add(key)
                        failures.append(f"file {f} mutation {i} ({mutate.__name__}): {type(exc).__name__}: {exc}"[:400])
                elapsed = time.perf_counter() - t0
                if traced:
                    worst_memory = max(worst_memory, tracemalloc.get_traced_memory()[1])
                    tracemalloc.stop()
                if elapsed > worst_time:
                    worst_time, worst_name = elapsed, f"file {f} mutation {i} ({mutate.__name__})"
                counts[kind] += 1
                counts[mutate.__name__] += 1
    finally:
        tracemalloc.stop()
        path.unlink(missing_ok=True)
        path.with_name("again.rnnkit").unlink(missing_ok=True)
        if folder != tmp_path:
            folder.rmdir()
    total = time.perf_counter() - started
    summary = (f"{sum(counts[k] for k in OUTCOMES)} files: "
               f"{dict(counts)}; worst time {worst_time * 1000:.1f} ms ({worst_name}); "
               f"worst peak memory {worst_memory / 2**20:.2f} MiB (every {MEMORY_SAMPLE}th file); total {total:.1f} s")
    print(summary)
    assert not failures, summary + "\n" + "\n".join(failures)
    # the mutations really exercise both paths, and no file is slow to refuse
    assert counts["rejected"] > 500 and counts["loaded"] > 100, summary
    assert worst_time < 2.0, summary
    assert total < TIME_BUDGET_S * 2, summary


# -- the checks the fuzz led to, one by one -------------------------------------------------------

def _edited(blob: bytes, edit: Callable[[dict], None]) -> bytes:
    """``blob`` with its header edited by ``edit`` (the data bytes kept)."""
    header, data = _split(blob)
    edit(header)
    return _join(_dump(header), data)


def _edit_config(key: str, edit: Callable[[Any], Any]) -> Callable[[dict], None]:
    def apply(header: dict) -> None:
        meta = header["__metadata__"]
        meta[key] = _dump(edit(json.loads(meta[key])))
    return apply


def _refusal(tmp_path, blob: bytes) -> str:
    path = tmp_path / "edited.rnnkit"
    path.write_bytes(blob)
    with pytest.raises(rnnkit.ModelFileError) as info:
        rnnkit.load_model(path)
    return str(info.value)


def _set_layer_arg(config: dict, layer: int, arg: str, value: Any) -> dict:
    config["layers"][layer]["config"][arg] = value
    return config


@pytest.mark.parametrize("value", ["4", -3, 2**63, None, [4], 4.5, True])
def test_a_layer_argument_of_the_wrong_type_or_size_is_refused_naming_the_layer(model_files, tmp_path, value):
    blob = _edited(model_files[0], _edit_config("model_config", lambda c: _set_layer_arg(c, 0, "units", value)))
    message = _refusal(tmp_path, blob)
    if value == 2**63:      # a valid size, refused when the weights it needs are not in the file
        assert "layer sizes in its metadata were altered" in message, message
    else:
        assert "'lstm'" in message and "LSTM" in message, message


def test_a_call_argument_the_layer_does_not_take_is_refused(model_files, tmp_path):
    def add_kwarg(config):
        dense = next(e for e in config["layers"] if e["class_name"] == "Dense")
        dense["inbound_nodes"][0]["kwargs"]["tensor"] = 3
        return config
    message = _refusal(tmp_path, _edited(model_files[2], _edit_config("model_config", add_kwarg)))
    assert "does not take" in message and "tensor" in message, message


def test_deep_nesting_is_refused_before_the_architecture_is_read(model_files, tmp_path):
    deep = "\0raw:" + "[" * 200 + "]" * 200
    blob = _edited(model_files[0], _edit_config("model_config", lambda c: _set_layer_arg(c, 0, "units", deep)))
    assert "nested deeper than 64 levels" in _refusal(tmp_path, blob)
    very_deep = "\0raw:" + "[" * 100_000 + "]" * 100_000      # deeper than the parser's own recursion limit
    blob = _edited(model_files[0], _edit_config("model_config", lambda c: _set_layer_arg(c, 0, "units", very_deep)))
    assert "architecture description" in _refusal(tmp_path, blob)


@pytest.mark.parametrize("field", ["dtype", "shape", "data_offsets"])
def test_a_tensor_entry_of_the_wrong_type_is_refused(model_files, tmp_path, field):
    def edit(header):
        header["layers/dense/kernel"][field] = {"x": 1} if field == "dtype" else [True, 3]
    assert "layers/dense/kernel" in _refusal(tmp_path, _edited(model_files[0], edit))


def test_metadata_values_must_be_strings(model_files, tmp_path):
    def edit(header):
        header["__metadata__"]["dtype"] = 1
    assert "__metadata__" in _refusal(tmp_path, _edited(model_files[0], edit))


@pytest.mark.parametrize("optimizer", [None, 3, [], {"class_name": 3}, {"class_name": "adam", "config": []},
                                       {"class_name": "adam", "config": {"learning_rate": "fast"}},
                                       {"class_name": "adam", "config": {"beta_1": float("nan")}}])
def test_an_invalid_optimizer_setting_is_refused(model_files, tmp_path, optimizer):
    def edit(cc):
        cc["optimizer"] = optimizer
        return cc
    message = _refusal(tmp_path, _edited(model_files[0], _edit_config("compile_config", edit)))
    assert "optimizer" in message or "compile settings" in message, message
    # the model itself is fine: loading without the compile settings works
    model = rnnkit.load_model(tmp_path / "edited.rnnkit", compile=False)
    assert not model.compiled


def _with_iterations(blob: bytes, value: int) -> bytes:
    header, data = _split(blob)
    (n,) = struct.unpack("<Q", blob[:8])
    begin, end = header["optimizer/iterations"]["data_offsets"]
    new = bytearray(data)
    new[begin:end] = np.array([value], "<i8").tobytes()
    return blob[:8 + n] + bytes(new)


@pytest.mark.parametrize("value", [-1, -(2**63), 2**53 + 1, 2**63 - 1])
def test_an_odd_optimizer_step_count_is_refused(model_files, tmp_path, value):
    assert "step count" in _refusal(tmp_path, _with_iterations(model_files[0], value))


def test_a_large_but_valid_step_count_loads_trains_and_saves_again(model_files, tmp_path):
    path = tmp_path / "late.rnnkit"
    path.write_bytes(_with_iterations(model_files[0], 2**53 - 1))
    model = rnnkit.load_model(path)
    assert model.optimizer.iterations == 2**53 - 1
    _train_one_step(model)
    model.save(tmp_path / "again.rnnkit")
    assert rnnkit.load_model(tmp_path / "again.rnnkit").optimizer.iterations == 2**53


@pytest.mark.parametrize("claim", [2**63, 2**64 - 1, 100 * 2**20 + 1])
def test_a_header_length_beyond_the_file_is_refused_before_reading(model_files, tmp_path, claim):
    blob = struct.pack("<Q", claim) + model_files[0][8:]
    assert "header claims" in _refusal(tmp_path, blob)


def test_a_shape_claiming_more_data_than_the_file_is_refused(model_files, tmp_path):
    def edit(header):
        header["layers/dense/kernel"]["shape"] = [2**62, 2**62]
    assert "truncated or corrupted" in _refusal(tmp_path, _edited(model_files[0], edit))


@pytest.mark.parametrize("args", [-1e40, [], [1.5, 2.0], "attention", None])
def test_a_call_on_values_instead_of_tensors_is_refused_without_running_the_layer(model_files, tmp_path, args):
    def edit(config):
        dense = next(e for e in config["layers"] if e["class_name"] == "Dense")
        dense["inbound_nodes"][0]["args"] = args
        return config
    message = _refusal(tmp_path, _edited(model_files[2], _edit_config("model_config", edit)))
    assert "expected a tensor or a list of tensors" in message, message
