"""BackupAndRestore: a training run killed at any moment and started again ends bit-identical.

The end-to-end test runs a small training script in a subprocess, kills it with SIGKILL at
random (seeded) moments, restarts it until it finishes, and compares the final weights with
those of a run never interrupted, byte for byte (float64, shuffling, dropout and recurrent
dropout on). The unit tests check that a restore sets every part of the training state, that a
corrupt or mismatched backup is a clear error that changes nothing, and the arguments.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from rnnkit.callbacks import BACKUP_FILE, BackupAndRestore, Callback
from rnnkit.errors import ModelFileError
from rnnkit.layers import GRU, LSTM, Dense, Dropout, SimpleRNN
from rnnkit.models import Sequential

# -- the end-to-end test: kill -9, restart, compare --------------------------------------------------

SCRIPT = """
import os, sys, time
import numpy as np
from rnnkit import backend
from rnnkit.callbacks import BackupAndRestore
from rnnkit.layers import GRU, LSTM, Dense, Dropout
from rnnkit.models import Sequential

backup_dir, out, save_freq = sys.argv[1], sys.argv[2], sys.argv[3]
save_freq = save_freq if save_freq == "epoch" else int(save_freq)
backend.set_floatx("float64")
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 6, 3))                                   # (B, T, D)
y = (x.sum(axis=(1, 2)) > 0).astype(np.float64)[:, None]          # (B, 1)
model = Sequential([LSTM(8, return_sequences=True, dropout=0.2, recurrent_dropout=0.3, seed=1, input_shape=(6, 3)),
                    GRU(6, dropout=0.1, recurrent_dropout=0.2, seed=2), Dropout(0.25, seed=3),
                    Dense(1, activation="sigmoid", seed=4)], seed=5)
model.compile(optimizer="adam", loss="binary_crossentropy")
print("resume" if os.path.exists(os.path.join(backup_dir, "latest.safetensors")) else "fresh", flush=True)
start = time.perf_counter()
model.fit(x, y, batch_size=8, epochs=10, shuffle=True, verbose=0,
          callbacks=[BackupAndRestore(backup_dir, save_freq=save_freq)])
print(f"fit {time.perf_counter() - start:.4f}", flush=True)
model.save_weights(out)
"""


def _start(script, tmp_path, save_freq, out):
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / f"backup-{save_freq}"), str(out), save_freq],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc) -> str:
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    return stdout


@pytest.mark.parametrize("save_freq", ["epoch", "5"])
def test_killed_runs_end_bit_identical_to_an_uninterrupted_run(tmp_path, save_freq):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    reference = tmp_path / "reference.safetensors"
    stdout = _finish(_start(script, tmp_path, save_freq, reference))
    assert stdout.startswith("fresh")
    fit_seconds = float(stdout.split("fit ")[1])
    assert not (tmp_path / f"backup-{save_freq}").exists()          # deleted after the run that finished
    expected = load_file(reference)
    chooser = np.random.default_rng(7 if save_freq == "epoch" else 8)
    resumed_mid_run = 0
    for trial in range(2):
        out = tmp_path / f"killed-{trial}.safetensors"
        for _ in range(3):
            proc = _start(script, tmp_path, save_freq, out)
            first = proc.stdout.readline()             # imports done: kill somewhere in the training
            resumed_mid_run += first.startswith("resume")
            time.sleep(chooser.uniform(0.0, 1.1 * fit_seconds))
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            if proc.returncode == 0:                    # it finished before the kill
                break
            assert proc.returncode == -signal.SIGKILL
        else:
            stdout = _finish(_start(script, tmp_path, save_freq, out))
            resumed_mid_run += stdout.startswith("resume")
        assert out.read_bytes() == reference.read_bytes()
        got = load_file(out)
        assert sorted(got) == sorted(expected)
        for name in expected:
            assert np.array_equal(got[name], expected[name]), name
        assert not (tmp_path / f"backup-{save_freq}").exists()
    assert resumed_mid_run >= 1                         # the kills did interrupt training, not only start-up


# -- in-process tests ---------------------------------------------------------------------------------

def _data(n=40):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 5, 2))                                  # (B, T, D)
    return x, (x.sum(axis=(1, 2)) > 0).astype(np.float64)[:, None]  # (B, 1)


def _model(seed=0, units=4):
    model = Sequential([SimpleRNN(units, return_sequences=True, dropout=0.2, recurrent_dropout=0.2, seed=seed + 1,
                                  input_shape=(5, 2)),
                        LSTM(3, dropout=0.1, recurrent_dropout=0.3, seed=seed + 2), Dropout(0.3, seed=seed + 3),
                        Dense(1, activation="sigmoid", seed=seed + 4)], seed=seed + 5)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


class _Crash(Callback):
    """Raise at batch ``batch`` of epoch ``epoch``: a run that dies mid-training."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("crash")


@pytest.mark.parametrize("save_freq, crash_at", [("epoch", (2, 3)), (3, (1, 4)), (3, (2, 0)), (5, (3, 1))])
def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, float64, save_freq, crash_at):
    x, y = _data()
    reference = _model()
    reference.fit(x, y, batch_size=8, epochs=4, verbose=0)
    plain = _model()
    plain.fit(x, y, batch_size=8, epochs=4, verbose=0,
              callbacks=[BackupAndRestore(tmp_path / "unused", save_freq=save_freq)])
    for a, b in zip(plain.get_weights(), reference.get_weights()):
        assert np.array_equal(a, b)                     # backing up does not change training

    backup_dir = tmp_path / "backup"
    with pytest.raises(KeyboardInterrupt):
        _model().fit(x, y, batch_size=8, epochs=4, verbose=0,
                     callbacks=[BackupAndRestore(backup_dir, save_freq=save_freq), _Crash(*crash_at)])
    assert (backup_dir / BACKUP_FILE).exists()          # an interrupted fit keeps its backup
    resumed = _model(seed=100)                          # other initial weights and generators: all restored
    history = resumed.fit(x, y, batch_size=8, epochs=4, verbose=0,
                          callbacks=[BackupAndRestore(backup_dir, save_freq=save_freq)])
    assert history.epoch[0] > 0 or save_freq != "epoch"
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        assert np.array_equal(a, b)
    assert resumed.optimizer.iterations == reference.optimizer.iterations == 20
    assert not backup_dir.exists()


def _stateful_model(seed):
    model = Sequential([GRU(3, stateful=True, dropout=0.2, seed=seed, input_shape=(5, 2)),
                        Dense(1, activation="sigmoid", seed=seed + 1)], seed=seed + 2)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def _backup_of_trained_stateful_model(tmp_path):
    x, y = _data(16)
    model = _stateful_model(0)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=True)
    model.optimizer.learning_rate = 0.0123
    cb = BackupAndRestore(tmp_path / "b")
    cb.set_model(model)
    cb.set_params({"steps": 4})
    cb.backup(1, 2, None)
    return model, cb


def test_restore_sets_weights_optimizer_generators_states_and_position(tmp_path, float64):
    model, cb = _backup_of_trained_stateful_model(tmp_path)
    other = _stateful_model(50)
    x, y = _data(16)
    other.fit(x[:4], y[:4], batch_size=4, epochs=1, verbose=0)   # its own slots, states and generator draws
    cb2 = BackupAndRestore(tmp_path / "b")
    cb2.set_model(other)
    cb2.set_params({"steps": 4})
    assert cb2.restore() == (1, 2)
    assert other._resume_from == (1, 2)
    for a, b in zip(other.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)
    want, got = model.optimizer.get_state(), other.optimizer.get_state()
    assert sorted(want) == sorted(got)
    for key in want:
        assert np.array_equal(want[key], got[key]), key
    assert other.optimizer.learning_rate == 0.0123
    assert other._shuffle_rng.bit_generator.state == model._shuffle_rng.bit_generator.state
    gru, gru2 = model.layers[0], other.layers[0]
    assert gru2._rng.bit_generator.state == gru._rng.bit_generator.state
    assert gru._rng is not gru2._rng
    assert len(gru2.states) == len(gru.states) == 1
    assert np.array_equal(gru2.states[0], gru.states[0]) and np.abs(gru.states[0]).sum() > 0
    # the restored generators draw what the originals draw
    assert np.array_equal(gru2._rng.random(5), gru._rng.random(5))
    assert np.array_equal(other._shuffle_rng.permutation(9), model._shuffle_rng.permutation(9))


def _expect_clear_error(tmp_path, model, match):
    before = model.get_weights()
    iterations = model.optimizer.iterations
    cb = BackupAndRestore(tmp_path / "b")
    cb.set_model(model)
    cb.set_params({"steps": 4})
    with pytest.raises(ModelFileError, match=match):
        cb.restore()
    for a, b in zip(model.get_weights(), before):
        assert np.array_equal(a, b)
    assert model.optimizer.iterations == iterations
    assert model._resume_from is None


def test_corrupt_foreign_or_mismatched_backup_is_a_clear_error_that_changes_nothing(tmp_path, float64):
    model, cb = _backup_of_trained_stateful_model(tmp_path)
    path = tmp_path / "b" / BACKUP_FILE
    good = path.read_bytes()
    fresh = _stateful_model(9)
    fresh._resume_from = None
    path.write_bytes(good[: len(good) // 2])
    _expect_clear_error(tmp_path, fresh, "truncated")
    path.write_bytes(b"\x00" * 3)
    _expect_clear_error(tmp_path, fresh, "too few")
    fresh.save_weights(path)                            # an rnnkit file, but not a backup
    _expect_clear_error(tmp_path, fresh, "not a backup")
    path.write_bytes(good)
    bigger = Sequential([GRU(4, stateful=True, input_shape=(5, 2)), Dense(1)])
    bigger.compile(optimizer="adam", loss="mse")
    bigger._resume_from = None
    _expect_clear_error(tmp_path, bigger, "expects shape")
    cb_other_steps = BackupAndRestore(tmp_path / "b")
    cb_other_steps.set_model(fresh)
    cb_other_steps.set_params({"steps": 7})
    with pytest.raises(ModelFileError, match="4 batches per epoch"):
        cb_other_steps.restore()

    # a backup whose recorded generator state is not one: rewritten with the same tensors
    from rnnkit.saving import _safetensors_writer, write_atomically

    tensors = load_file(path)
    meta = _read_meta(path)
    training = json.loads(meta["training"])
    training["generators"][":_shuffle_rng"] = {"bit_generator": "os.system", "state": {}}
    meta["training"] = json.dumps(training)
    write_atomically(_safetensors_writer(tensors, meta), path)
    _expect_clear_error(tmp_path, fresh, "bit_generator state")
    training["generators"] = {":_shuffle_rng": model._shuffle_rng.bit_generator.state, "nowhere:_rng": {}}
    meta["training"] = json.dumps(training)
    write_atomically(_safetensors_writer(tensors, meta), path)
    _expect_clear_error(tmp_path, fresh, "bit_generator state|does not have")


def _read_meta(path):
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(size))["__metadata__"]


def test_delete_checkpoint(tmp_path, float64):
    x, y = _data(16)
    keep = tmp_path / "keep"
    _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=BackupAndRestore(keep, delete_checkpoint=False))
    assert (keep / BACKUP_FILE).exists()
    assert json.loads(_read_meta(keep / BACKUP_FILE)["training"])["epoch"] == 2
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("the user's file")
    _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=BackupAndRestore(shared))
    assert sorted(os.listdir(shared)) == ["notes.txt"]  # only the backup goes, not the user's files


def test_finished_backup_resumes_to_nothing_left_to_do(tmp_path, float64):
    x, y = _data(16)
    done = _model()
    done.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=BackupAndRestore(tmp_path, delete_checkpoint=False))
    again = _model(seed=10)
    history = again.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=BackupAndRestore(tmp_path))
    assert history.epoch == []                          # killed after its last backup: restored, nothing to train
    for a, b in zip(again.get_weights(), done.get_weights()):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"backup_dir": None}, TypeError, "backup_dir"),
    ({"backup_dir": ""}, TypeError, "backup_dir"),
    ({"backup_dir": 3}, TypeError, "backup_dir"),
    ({"backup_dir": "b", "save_freq": 0}, ValueError, "save_freq"),
    ({"backup_dir": "b", "save_freq": -2}, ValueError, "save_freq"),
    ({"backup_dir": "b", "save_freq": 1.5}, ValueError, "save_freq"),
    ({"backup_dir": "b", "save_freq": True}, ValueError, "save_freq"),
    ({"backup_dir": "b", "save_freq": "batch"}, ValueError, "save_freq"),
    ({"backup_dir": "b", "delete_checkpoint": "yes"}, TypeError, "delete_checkpoint"),
])
def test_arguments_are_checked(kwargs, error, match):
    with pytest.raises(error, match=match):
        BackupAndRestore(**kwargs)


def test_backup_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    x, y = _data(16)
    with pytest.raises(NotADirectoryError, match="is a file"):
        _model().fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=BackupAndRestore(tmp_path / "f"))
