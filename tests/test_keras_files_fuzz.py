"""Mutated Keras files against ``rnnkit.load_model``: each is refused with ``ModelFileError`` or loads and runs.

Keras saves two models (a functional one with a masked Embedding, whose config carries Keras' mask
ops, and a Sequential one) as ``.keras`` and legacy ``.h5``; seeded mutations then flip bytes of the
zip and of the HDF5 data, truncate, edit values of the JSON config, and edit the legacy file's
``model_config`` attribute. No other exception may escape, and a file that loads must predict and
train a step. (tests/test_keras_files_hostile.py holds the crafted attacks: bombs, traversal, links.)
"""

from __future__ import annotations

import io
import json
import time
import warnings
import zipfile
from collections import Counter

import numpy as np
import pytest

import rnnkit
from rnnkit.errors import ModelFileError, NonFiniteError

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
L = keras.layers
MUTATIONS = 240


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_fuzz")
    keras.utils.set_random_seed(1)
    inp = keras.Input((6,), dtype="int32")
    h = L.Bidirectional(L.LSTM(3, return_sequences=True))(L.Embedding(9, 3, mask_zero=True)(inp))
    functional = keras.Model(inp, L.Dense(2, activation="softmax")(L.GRU(2)(h)))
    functional.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    sequential = keras.Sequential([keras.Input((4, 2)), L.SimpleRNN(3), L.Dense(2, activation="softmax")])
    sequential.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    blobs = {}
    for name, model in (("functional", functional), ("sequential", sequential)):
        x = np.ones((4, *model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype)
        model.fit(x, np.zeros(4, dtype=int), verbose=0)
        for suffix in (".keras", ".h5"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                model.save(folder / f"{name}{suffix}")
            blobs[f"{name}{suffix}"] = (folder / f"{name}{suffix}").read_bytes()
    return blobs


def _members(blob: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(blob))
    return {info.filename: archive.read(info) for info in archive.infolist()}


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _flip(blob: bytes, r: np.random.Generator) -> bytes:
    data = bytearray(blob)
    for _ in range(int(r.integers(1, 16))):
        data[int(r.integers(len(data)))] = int(r.integers(256))
    return bytes(data)


def _edit_json(text: bytes | str, r: np.random.Generator) -> bytes:
    config = json.loads(text)
    spots = []

    def walk(node):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            spots.append((node, key))
            walk(value)

    walk(config)
    values = [None, -1, 0, 1, 2**31, 2**63, 1e308, -0.5, "x", "", [], {}, True, [1, 2], {"a": 1}]
    for _ in range(int(r.integers(1, 4))):
        node, key = spots[int(r.integers(len(spots)))]
        if isinstance(node, dict) and r.random() < 0.2:
            node.pop(key, None)
        else:
            node[key] = values[int(r.integers(len(values)))]
    return json.dumps(config).encode()


def _mutant(blobs: dict, r: np.random.Generator) -> tuple[str, bytes]:
    name = list(blobs)[int(r.integers(len(blobs)))]
    blob = blobs[name]
    kind = int(r.integers(5))
    if kind == 0:
        return name, _flip(blob, r)
    if kind == 1:
        return name, blob[:int(r.integers(len(blob)))]
    if name.endswith(".keras"):
        members = _members(blob)
        if kind == 2:
            members["config.json"] = _edit_json(members["config.json"], r)
        else:
            members["model.weights.h5"] = _flip(members["model.weights.h5"], r)
        return name, _zip(members)
    buffer = io.BytesIO(blob)
    with h5py.File(buffer, "r+") as f:
        f.attrs["model_config"] = _edit_json(f.attrs["model_config"], r).decode()
    return name, buffer.getvalue()


def test_mutated_keras_files_are_refused_or_load_and_run(saved, tmp_path):
    r = np.random.default_rng(2026)
    outcomes: Counter = Counter()
    worst = 0.0
    for i in range(MUTATIONS):
        name, blob = _mutant(saved, r)
        path = tmp_path / f"mutant{i}{name[name.index('.'):]}"
        path.write_bytes(blob)
        start = time.perf_counter()
        try:
            model = rnnkit.load_model(path)
        except ModelFileError:
            outcomes["refused"] += 1
            continue
        finally:
            worst = max(worst, time.perf_counter() - start)
        x = np.ones((2, *[d or 3 for d in model.inputs[0].shape[1:]]), dtype=model.inputs[0].dtype)
        out = model.predict(x, verbose=0)
        assert isinstance(out, np.ndarray) and out.shape[0] == 2, name
        if not model.compiled:                      # the mutation dropped or spoiled the compile settings
            model.compile(optimizer="sgd", loss="mse")
        # targets that fit the loaded model's output and loss, whatever the mutation made of them
        y = np.zeros(out.shape[:-1], dtype=int) if model.heads[0].loss.sparse else np.full(out.shape, 0.5)
        try:
            model.train_on_batch(x, y)
            outcomes["loaded, predicted, trained"] += 1
        except NonFiniteError:
            outcomes["loaded, predicted; step refused as non-finite"] += 1
    assert sum(outcomes.values()) == MUTATIONS
    assert outcomes["refused"] > MUTATIONS // 2 and outcomes["loaded, predicted, trained"] > 0, outcomes
    assert worst < 5.0
