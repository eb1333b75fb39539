"""Hostile Keras model files: every one is a ModelFileError with a reason, never a crash or a huge allocation.

The files are made from a valid ``.keras`` file written by rnnkit (and a legacy ``.h5`` written here
with h5py), then broken one way each: zip bombs, unexpected or duplicate members, external HDF5 links
and storage, compressed, huge or mistyped datasets, malformed, deep or foreign JSON.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
import zipfile

import numpy as np
import pytest

import rnnkit
from rnnkit.errors import ModelFileError

h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """``(members of a valid .keras file, the model)``."""
    from rnnkit import layers as R

    model = rnnkit.Sequential([R.LSTM(3, input_shape=(4, 2)), R.Dense(2)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path_factory.mktemp("hostile") / "ok.keras"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}, model


def _zip(path, members, compression=zipfile.ZIP_STORED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)       # zipfile warns about the duplicate names we want
        with zipfile.ZipFile(path, "w", compression=compression) as z:
            for name, data in members:
                z.writestr(name, data)
    return path


def _weights(members, edit):
    """``model.weights.h5`` of ``members`` changed by ``edit(h5file)``."""
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as f:
        edit(f)
    return buffer.getvalue()


def _with(members, **changes):
    out = dict(members)
    out.update({k.replace("__", "."): v for k, v in changes.items()})
    return list(out.items())


def _refused(path, *fragments):
    with pytest.raises(ModelFileError) as info:
        rnnkit.load_model(path)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_the_valid_file_loads(valid, tmp_path):
    members, model = valid
    x = np.random.default_rng(0).normal(size=(2, 4, 2))
    loaded = rnnkit.load_model(_zip(tmp_path / "ok.keras", list(members.items())))
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_zip_bomb_is_refused_before_decompressing(valid, tmp_path):
    members, _ = valid
    bomb = b'{"a": "' + b" " * (64 * 1024 * 1024 - 10) + b'"}'
    path = _zip(tmp_path / "bomb.keras", _with(members, config__json=bomb), zipfile.ZIP_DEFLATED)
    _refused(path, "zip bomb")


def _patch_central_size(data: bytes, name: bytes, size: int) -> bytes:
    """Set the uncompressed size the central directory declares for member ``name``."""
    at = data.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + name_len] == name:
            return data[:at + 24] + struct.pack("<I", size) + data[at + 28:]
        at = data.index(b"PK\x01\x02", at + 4)


def test_declared_sizes_are_checked(valid, tmp_path):
    members, _ = valid
    raw = _zip(tmp_path / "a.keras", list(members.items())).read_bytes()
    big = tmp_path / "big.keras"
    big.write_bytes(_patch_central_size(raw, b"config.json", 2**31))
    _refused(big, "config.json", "declares")
    small = tmp_path / "small.keras"
    small.write_bytes(_patch_central_size(raw, b"config.json", 10))
    _refused(small, "config.json")


@pytest.mark.parametrize("extra", ["../evil.json", "/etc/passwd", "assets/x.bin", "config.json/../x"])
def test_unexpected_members_are_refused(valid, tmp_path, extra):
    members, _ = valid
    _refused(_zip(tmp_path / "m.keras", [*members.items(), (extra, b"{}")]), "unexpected member")


def test_duplicate_and_missing_members_are_refused(valid, tmp_path):
    members, _ = valid
    dup = _zip(tmp_path / "d.keras", [*members.items(), ("config.json", b"{}")])
    _refused(dup, "more than once")
    missing = _zip(tmp_path / "n.keras", [(k, v) for k, v in members.items() if k != "model.weights.h5"])
    _refused(missing, "lacks", "model.weights.h5")


def test_truncated_and_foreign_files_are_refused(valid, tmp_path):
    members, _ = valid
    raw = _zip(tmp_path / "a.keras", list(members.items())).read_bytes()
    for i, data in enumerate([raw[: len(raw) // 2], b"PK\x03\x04" + b"\0" * 100, b"\x89HDF\r\n\x1a\n" + b"\0" * 50]):
        (tmp_path / f"t{i}.keras").write_bytes(data)
        _refused(tmp_path / f"t{i}.keras", "Cannot load")


@pytest.mark.parametrize("config, fragment", [
    (b"{not json", "not valid JSON"),
    (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"class_name": "Sequential", "config": {"name": "s", "layers": [{"module": "os", "class_name": "system", '
     b'"config": {"command": "touch pwned"}, "registered_name": "os>system"}]}}', "'?' (system): rnnkit has no such"),
    (b'{"class_name": "Lambda", "config": {}}', "expected a Sequential or functional model"),
    (b'{"class_name": "Sequential", "config": {"name": "s", "layers": [{"class_name": "InputLayer", "config": '
     b'{"batch_shape": [null, 4, 2]}}, {"class_name": "Dense", "config": {"name": "d", "units": 100000000}}]}}',
     "cannot be built"),
])
def test_bad_configs_are_refused(valid, tmp_path, config, fragment):
    members, _ = valid
    _refused(_zip(tmp_path / "c.keras", _with(members, config__json=config)), fragment)


def test_external_link_is_refused(valid, tmp_path):
    members, _ = valid
    data = _weights(members, lambda f: f.__setitem__("layers/evil", h5py.ExternalLink("/etc/passwd", "/x")))
    _refused(_zip(tmp_path / "e.keras", _with(members, model__weights__h5=data)), "ExternalLink")


def test_soft_link_is_refused(valid, tmp_path):
    members, _ = valid
    data = _weights(members, lambda f: f.__setitem__("layers/loop", h5py.SoftLink("/layers")))
    _refused(_zip(tmp_path / "s.keras", _with(members, model__weights__h5=data)), "SoftLink")


def test_external_storage_is_refused(valid, tmp_path):
    members, _ = valid

    def edit(f):
        del f["layers/dense/vars/1"]
        f.create_dataset("layers/dense/vars/1", shape=(2,), dtype="f4", external=[("/etc/hostname", 0, 8)])
    _refused(_zip(tmp_path / "x.keras", _with(members, model__weights__h5=_weights(members, edit))), "external files")


def test_compressed_dataset_is_refused(valid, tmp_path):
    members, _ = valid

    def edit(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", data=np.zeros((3, 2), "f4"), compression="gzip")
    _refused(_zip(tmp_path / "g.keras", _with(members, model__weights__h5=_weights(members, edit))), "compressed")


def test_huge_dataset_shape_is_refused_before_reading(valid, tmp_path):
    members, _ = valid

    def edit(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(2**20, 2**20), dtype="f8")     # 8 TiB, never allocated
    _refused(_zip(tmp_path / "h.keras", _with(members, model__weights__h5=_weights(members, edit))), "claims")


def test_unwritten_dataset_is_refused(valid, tmp_path):
    members, _ = valid

    def edit(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(3, 2), dtype="f4")      # no data: would read as fill value
    _refused(_zip(tmp_path / "u.keras", _with(members, model__weights__h5=_weights(members, edit))), "stores 0 of")


@pytest.mark.parametrize("data, fragment", [
    (np.zeros((2, 3), "f4"), "expected floats of shape (3, 2)"),
    (np.zeros((3, 2), "i4"), "expected floats"),
    (np.full((3, 2), np.nan, "f4"), "not finite"),
    (np.zeros((3, 2), "S4"), "expected integers or floats"),
])
def test_wrong_weights_are_refused(valid, tmp_path, data, fragment):
    members, _ = valid

    def edit(f):
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", data=data)
    _refused(_zip(tmp_path / "w.keras", _with(members, model__weights__h5=_weights(members, edit))), fragment)


def test_missing_weight_is_refused(valid, tmp_path):
    members, _ = valid
    data = _weights(members, lambda f: f.__delitem__("layers/dense/vars/1"))
    _refused(_zip(tmp_path / "m.keras", _with(members, model__weights__h5=data)), "'dense'", "has 2 weights")


def test_deflated_archive_from_other_writers_loads(valid, tmp_path):
    members, model = valid
    path = _zip(tmp_path / "deflated.keras", list(members.items()), zipfile.ZIP_DEFLATED)
    x = np.ones((1, 4, 2))
    assert np.array_equal(rnnkit.load_model(path).predict(x, verbose=0), model.predict(x, verbose=0))


# -- legacy HDF5 files ---------------------------------------------------------------------------

def _legacy(path, model_config=None, edit=None):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "batch_input_shape": [None, 3]}}]}}
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config) if model_config is None else model_config
        group = f.create_group("model_weights/d")
        group.attrs["weight_names"] = np.array([b"d/kernel:0", b"d/bias:0"])
        group.create_dataset("d/kernel:0", data=np.eye(3, 2, dtype="f4"))
        group.create_dataset("d/bias:0", data=np.ones(2, "f4"))
        if edit is not None:
            edit(f)
    return path


def test_legacy_file_loads(tmp_path):
    model = rnnkit.load_model(_legacy(tmp_path / "ok.h5"))
    assert np.array_equal(model.predict(np.ones((1, 3)), verbose=0), np.array([[2.0, 2.0]], "f4"))


def test_legacy_hostile_files_are_refused(tmp_path):
    _refused(_legacy(tmp_path / "a.h5", model_config="{bad"), "not valid JSON")
    _refused(_legacy(tmp_path / "b.h5", edit=lambda f: f.attrs.__delitem__("model_config")), "without 'model_config'")
    _refused(_legacy(tmp_path / "c.h5", edit=lambda f: f.__setitem__("x", h5py.ExternalLink("other.h5", "/"))),
             "ExternalLink")
    _refused(_legacy(tmp_path / "d.h5", edit=lambda f: f["model_weights/d"].attrs.__setitem__(
        "weight_names", np.array([b"d/kernel:0", b"../../x"]))), "missing")
    _refused(_legacy(tmp_path / "e.h5", edit=lambda f: f["model_weights/d"].attrs.__setitem__(
        "weight_names", np.array([b"d/kernel:0"]))), "has 2 weights but the file holds 1")
