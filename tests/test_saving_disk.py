"""Saved files on disk: nothing left by a killed save, umask permissions, a durable rename, identical
bytes for the same model, and loading that sets weights without running the initializers first."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import rnnkit
import rnnkit.saving as saving
from rnnkit import initializers
from rnnkit.layers import GRU, LSTM, BatchNormalization, Dense, Embedding

TEMP_NAME = saving._TEMP_NAME


def small_model(seed: int = 0, compiled: bool = False):
    """LSTM + BatchNormalization + Dense over (3, 5): orthogonal, Glorot, zeros and ones initializers."""
    model = rnnkit.Sequential([LSTM(6, input_shape=(3, 5), return_sequences=True), GRU(4), BatchNormalization(),
                               Dense(2)], seed=seed)
    if compiled:
        model.compile(optimizer="adam", loss="mse")
    return model


def inputs(n: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, 5))


def unnamed_files_work(folder: Path) -> bool:
    """Whether this machine can write through O_TMPFILE and give the file a name (the preferred path)."""
    if not saving.USE_O_TMPFILE:
        return False
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
    except OSError:
        return False
    try:
        probe = folder / ".probe"
        ok = saving._link_unnamed(fd, probe)
        if ok:
            probe.unlink()
        return ok
    finally:
        os.close(fd)


@pytest.fixture(params=["unnamed", "named"])
def write_mode(request, monkeypatch, tmp_path):
    """Each disk test runs on both ways of writing: an O_TMPFILE file (where the system has it) and the
    named temporary file that is the fallback elsewhere."""
    if request.param == "unnamed":
        if not unnamed_files_work(tmp_path):
            pytest.skip("O_TMPFILE with linkat is not available here")
    else:
        monkeypatch.setattr(saving, "USE_O_TMPFILE", False)
    return request.param


# -- a save killed halfway --------------------------------------------------------------------

# The child builds an LSTM(512) (about 5 MB of weights) and saves it over the target; the file
# object it writes through is wrapped so that the big recurrent kernel is written half, flushed,
# announced on stdout, and then the child sleeps until it is killed.
CHILD = r"""
import os, sys, time
import rnnkit
import rnnkit.saving as saving
from rnnkit.layers import LSTM

target, mode = sys.argv[1], sys.argv[2]
saving.USE_O_TMPFILE = mode == "unnamed"
model = rnnkit.Sequential([LSTM(512, input_shape=(4, 64))], seed=3)
real_fdopen = os.fdopen


class SlowFile:
    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)

    def write(self, data):
        data = memoryview(data).cast("B")
        if data.nbytes > 1_000_000:
            self.f.write(data[: data.nbytes // 2])
            self.f.flush()
            os.fsync(self.f.fileno())
            print("HALF", flush=True)
            time.sleep(120)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


os.fdopen = lambda fd, *a, **k: SlowFile(real_fdopen(fd, *a, **k))
model.save(target)
print("DONE", flush=True)
"""

NEXT_SAVE = r"""
import sys
import rnnkit
from rnnkit.layers import Dense
rnnkit.Sequential([Dense(3, input_shape=(2,))], seed=0).save(sys.argv[1])
"""


def run_until_half_written(target: Path, mode: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target), mode], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60.0, child.kill)        # never hang the test run
    watchdog.start()
    try:
        line = child.stdout.readline().strip()
    finally:
        watchdog.cancel()
    if line != "HALF":
        child.kill()
        _, err = child.communicate()
        pytest.fail(f"the saving child did not reach the middle of its write: {line!r}\n{err}")
    return child


def test_save_killed_midway_leaves_old_file_and_no_temporary_after_next_save(tmp_path, write_mode):
    """SIGKILL in the middle of writing a 5 MB model: the old file is intact; with O_TMPFILE no other file
    ever appears, with the named fallback the orphan is removed by the next save in the folder (from a new
    process, as after a crash), and files that are not rnnkit's temporaries are left alone."""
    target = tmp_path / "model.safetensors"
    small_model().save(target)
    good = target.read_bytes()
    bystanders = {"notes.tmp": b"mine", ".model.safetensors.tmp": b"not rnnkit's",
                  "model.safetensors.rnnkit-1-abcdefabcdef.tmp": b"no leading dot"}
    for name, content in bystanders.items():
        (tmp_path / name).write_bytes(content)

    child = run_until_half_written(target, write_mode)
    temps = [p for p in tmp_path.iterdir() if TEMP_NAME.match(p.name)]
    if write_mode == "unnamed":
        assert temps == []                                   # the half-written file has no name at all
    else:
        assert len(temps) == 1 and temps[0].stat().st_size > 1_000_000
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL

    assert target.read_bytes() == good
    orphans = sorted(p.name for p in tmp_path.iterdir() if TEMP_NAME.match(p.name))
    assert len(orphans) == (0 if write_mode == "unnamed" else 1)
    if orphans:
        assert TEMP_NAME.match(orphans[0])["pid"] == str(child.pid)

    # the next save to the same folder, by a process started after the crash (as a restarted job is)
    done = subprocess.run([sys.executable, "-c", NEXT_SAVE, str(tmp_path / "other.safetensors")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.safetensors", "other.safetensors", *bystanders])
    for name, content in bystanders.items():
        assert (tmp_path / name).read_bytes() == content
    x = inputs()
    assert np.array_equal(rnnkit.load_model(target).predict(x, verbose=0), small_model().predict(x, verbose=0))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_cleanup_removes_only_stale_rnnkit_temporaries_of_dead_processes(tmp_path):
    """Only a regular file named like rnnkit's temporaries, older than this process, written by a process
    that is gone, is removed; a live writer's file, a fresh file, look-alike names, a folder and a link
    with the pattern's name all stay."""
    dead, live = _dead_pid(), os.getppid()
    old = saving._PROCESS_START - 3600
    stale = f".model.safetensors.rnnkit-{dead}-0123456789ab.tmp"
    keep_files = [f".model.safetensors.rnnkit-{live}-0123456789ab.tmp",           # its writer still runs
                  f".model.safetensors.rnnkit-{os.getpid()}-0123456789ab.tmp",    # this process's own
                  f".model.safetensors.rnnkit-{dead}-0123456789AB.tmp",           # not our hex digits
                  f".model.safetensors.rnnkit-{dead}-0123456789ab.tmp.bak",
                  f"model.safetensors.rnnkit-{dead}-0123456789ab.tmp",
                  f".model.safetensors.rnnkit-{dead}-0123456789.tmp",
                  ".model.safetensors.abc123.tmp", "weights.tmp"]
    fresh = f".fresh.safetensors.rnnkit-{dead}-ba9876543210.tmp"                    # written after this process started
    for name in [stale, *keep_files, fresh]:
        (tmp_path / name).write_bytes(b"x")
    for name in [stale, *keep_files]:
        os.utime(tmp_path / name, (old, old))
    folder_like = tmp_path / f".dir.safetensors.rnnkit-{dead}-aaaaaaaaaaaa.tmp"
    folder_like.mkdir()
    (folder_like / "inside").write_bytes(b"x")
    link_like = tmp_path / f".link.safetensors.rnnkit-{dead}-bbbbbbbbbbbb.tmp"
    link_like.symlink_to(tmp_path / "weights.tmp")
    for p in (folder_like, link_like):
        os.utime(p, (old, old), follow_symlinks=False)

    small_model().save(tmp_path / "model.safetensors")
    names = {p.name for p in tmp_path.iterdir()}
    assert stale not in names
    assert names == {"model.safetensors", fresh, folder_like.name, link_like.name, *keep_files}
    assert (folder_like / "inside").read_bytes() == b"x"
    assert saving.remove_stale_temporary_files(tmp_path) == []


def test_failed_save_leaves_no_temporary(tmp_path, write_mode, monkeypatch):
    """A write that fails (disk full) in either mode leaves the old file and nothing else."""
    target = tmp_path / "model.safetensors"
    small_model().save(target)
    good = target.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        small_model(seed=1).save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert target.read_bytes() == good


# -- permissions ------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_files_get_the_permissions_open_gives(tmp_path, write_mode, umask):
    """A saved file has the mode a file made by open() has under the same umask (0o666 less the umask),
    not mkstemp's 0o600; also when it replaces a file, and for save_weights."""
    previous = os.umask(umask)
    try:
        with open(tmp_path / "by_open", "wb"):
            pass
        model = small_model()
        model.save(tmp_path / "model.safetensors")
        model.save(tmp_path / "model.safetensors")              # replacing an existing file
        model.save_weights(tmp_path / "w.weights.safetensors")
    finally:
        os.umask(previous)
    expected = stat.S_IMODE((tmp_path / "by_open").stat().st_mode)
    assert expected == 0o666 & ~umask
    for name in ("model.safetensors", "w.weights.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


# -- durability -------------------------------------------------------------------------------

def test_folder_is_fsynced_after_the_rename(tmp_path, write_mode, monkeypatch):
    """The data is fsynced before the rename and the folder after it, so the new name survives a power cut."""
    target = tmp_path / "model.safetensors"
    small_model().save(target)
    old_bytes = target.read_bytes()
    model = small_model(seed=5)
    folder_inode = tmp_path.stat().st_ino
    real_fsync = os.fsync
    log = []

    def recording_fsync(fd):
        st = os.fstat(fd)
        log.append((stat.S_ISDIR(st.st_mode), st.st_ino, target.read_bytes() != old_bytes))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    model.save(target)
    assert log[0] == (False, log[0][1], False)              # the file's data, before the rename
    assert log[-1] == (True, folder_inode, True)             # the folder, after the rename
    assert target.read_bytes() != old_bytes


def test_folder_fsync_refused_by_the_platform_is_ignored(tmp_path, write_mode, monkeypatch):
    """Where the platform refuses to fsync a folder (EINVAL on some filesystems), the save still succeeds."""
    real_fsync = os.fsync
    refused = []

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    model = small_model()
    model.save(tmp_path / "model.safetensors")
    assert len(refused) == 1
    x = inputs()
    assert np.array_equal(rnnkit.load_model(tmp_path / "model.safetensors").predict(x, verbose=0),
                          model.predict(x, verbose=0))


# -- the same model gives the same bytes ------------------------------------------------------

def test_saving_twice_gives_identical_bytes(tmp_path):
    """A trained, compiled model (weights, optimizer state, compile settings) saved twice: the same bytes;
    so do save_weights, and a functional model."""
    model = small_model(compiled=True)
    x = inputs()
    model.fit(x, np.zeros((7, 2)), epochs=2, batch_size=4, verbose=0)
    model.save(tmp_path / "a.safetensors")
    model.save(tmp_path / "b.safetensors")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    model.save_weights(tmp_path / "a.weights.safetensors")
    model.save_weights(tmp_path / "b.weights.safetensors")
    assert (tmp_path / "a.weights.safetensors").read_bytes() == (tmp_path / "b.weights.safetensors").read_bytes()

    inp = rnnkit.Input(shape=(None,), dtype="int64")
    h = Embedding(20, 4, mask_zero=True)(inp)
    functional = rnnkit.Model(inp, Dense(3)(LSTM(5)(h)))
    functional.save(tmp_path / "f1.safetensors")
    functional.save(tmp_path / "f2.safetensors")
    assert (tmp_path / "f1.safetensors").read_bytes() == (tmp_path / "f2.safetensors").read_bytes()

    # and changing one weight by one ulp changes the file: the comparison can fail
    model.layers[-1].params["bias"][0] = np.nextafter(model.layers[-1].params["bias"][0], np.inf)
    model.save(tmp_path / "c.safetensors")
    assert (tmp_path / "c.safetensors").read_bytes() != (tmp_path / "a.safetensors").read_bytes()


SAVE_IN_CHILD = r"""
import sys
import numpy as np
import rnnkit
from rnnkit.layers import GRU, LSTM, BatchNormalization, Dense
model = rnnkit.Sequential([LSTM(6, input_shape=(3, 5), return_sequences=True), GRU(4), BatchNormalization(),
                           Dense(2)], seed=0)
model.compile(optimizer="adam", loss="mse", metrics=["mae"])
model.train_on_batch(np.ones((2, 3, 5)), np.ones((2, 2)))
model.save(sys.argv[1])
"""


def test_identical_bytes_across_processes_with_different_hash_seeds(tmp_path):
    """Two processes with different string-hash seeds (so different set and hash-map orders) write the
    same model to the same bytes."""
    for i, seed in enumerate(("1", "2")):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-c", SAVE_IN_CHILD, str(tmp_path / f"{i}.safetensors")], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "0.safetensors").read_bytes() == (tmp_path / "1.safetensors").read_bytes()


def test_file_is_plain_safetensors_with_sorted_metadata_and_aligned_tensors(tmp_path):
    """The hand-written header is the format the safetensors library reads: the same tensors and metadata
    as its own writer gives, 8-byte padded header, contiguous data, each tensor aligned to its item size."""
    model = small_model(compiled=True)
    model.train_on_batch(inputs(2), np.ones((2, 2)))
    path = tmp_path / "m.safetensors"
    model.save(path)
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__")
    assert list(meta) == sorted(meta)
    spans = sorted(v["data_offsets"] for v in header.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(blob) - 8 - n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    for info in header.values():
        assert info["data_offsets"][0] % np.dtype(saving._DTYPES[info["dtype"]]).itemsize == 0

    ours = st_load(blob)
    assert set(ours) == set(header)
    reference = st_load(st_save(ours, metadata=meta))            # the library's own writer, same content
    for name, value in ours.items():
        assert value.dtype == reference[name].dtype and np.array_equal(value, reference[name]), name
    with safe_open(str(path), "np") as f:
        assert f.metadata() == meta
    for name, w in zip(saving.weight_names(model), model.weights):
        assert ours[name].dtype == w.dtype and np.array_equal(ours[name], w), name


def test_writer_stores_little_endian_and_scalars_and_refuses_other_dtypes(tmp_path):
    """Big-endian arrays are stored little-endian, a 0-d tensor keeps shape (), and a dtype the loader
    cannot read is a TypeError before anything is written."""
    import io

    buffer = io.BytesIO()
    saving._safetensors_writer({"a": np.arange(3, dtype=">f4"), "s": np.float64(2.5).reshape(())},
                               {"k": "v"})(buffer)
    back = st_load(buffer.getvalue())
    assert back["a"].dtype == np.float32 and np.array_equal(back["a"], [0.0, 1.0, 2.0])
    assert back["s"].shape == () and back["s"] == 2.5
    with pytest.raises(TypeError, match=r"tensor 'c' of dtype complex128.*expected one of"):
        saving._safetensors_writer({"c": np.zeros(2, dtype=complex)}, {})


# -- loading without running the initializers -------------------------------------------------

def _forbid_initializers(monkeypatch) -> None:
    def refuse(self, shape, rng):
        raise AssertionError(f"initializer {type(self).__name__} ran for shape {shape}")

    for cls in set(initializers._TABLE.values()):
        monkeypatch.setattr(cls, "sample", refuse)


def test_load_model_does_not_run_initializers_and_predicts_identically(tmp_path, monkeypatch):
    """Every weight of a loaded model comes from the file, so building it makes placeholders: with every
    initializer made to raise, load_model still works and the loaded model predicts and trains exactly as
    the saved one; building a layer normally under the same patch does raise."""
    model = small_model(compiled=True)
    x, y = inputs(), np.random.default_rng(2).normal(size=(7, 2))
    model.train_on_batch(x, y)
    path = tmp_path / "model.safetensors"
    model.save(path)

    with monkeypatch.context() as m:
        _forbid_initializers(m)
        loaded = rnnkit.load_model(path)
        with pytest.raises(AssertionError, match=r"initializer \w+ ran for shape"):
            rnnkit.Sequential([LSTM(3, input_shape=(2, 2))])
    assert initializers._placeholders == []
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert np.array_equal(loaded.train_on_batch(x, y), model.train_on_batch(x, y))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)


def test_load_model_still_respects_the_allocation_budget_and_placeholders_end_with_it(tmp_path):
    """Placeholders still count against the budget: an architecture grown in the metadata is refused while
    the model is being built, quickly, and layers built afterwards get real initial weights again."""
    path = tmp_path / "model.safetensors"
    rnnkit.Sequential([Dense(3, input_shape=(2,))], seed=0).save(path)
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    config = json.loads(header["__metadata__"]["model_config"])
    config["layers"][0]["config"]["units"] = 10 ** 6
    header["__metadata__"]["model_config"] = json.dumps(config)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + blob[8 + n:])
    started = time.perf_counter()
    with pytest.raises(rnnkit.ModelFileError, match="only .* more are stored in the file"):
        rnnkit.load_model(path)
    assert time.perf_counter() - started < 5.0
    assert initializers._placeholders == []
    layer = LSTM(3)
    layer.build((2, 2))
    assert np.abs(layer.params["kernel"]).min() > 0
    assert np.abs(layer.params["recurrent_kernel"]).max() > 0.1
