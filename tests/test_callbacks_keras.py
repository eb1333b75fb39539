"""Keras' training callbacks: ModelCheckpoint, ReduceLROnPlateau, LearningRateScheduler, CSVLogger,
TerminateOnNaN and EarlyStopping's warnings.

Each is checked in a real ``fit`` of a tiny model, and, where cheap, against Keras 3's own callback
objects driven with the same fabricated logs (the same decisions, the same learning rates, the
same CSV text).
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

import rnnkit
from rnnkit.callbacks import (
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from rnnkit.layers import Dense, SimpleRNN
from rnnkit.models import load_model


def tiny_model(lr: float = 0.05, seed: int = 0):
    model = rnnkit.Sequential(seed=seed)
    model.add(SimpleRNN(4, input_shape=(5, 3)))
    model.add(Dense(1))
    model.compile(optimizer=rnnkit.optimizers.SGD(learning_rate=lr), loss="mse", metrics=["mae"])
    return model


def tiny_data(n: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5, 3))
    y = 0.3 * x.sum(axis=(1, 2))[:, None]
    return x, y


def weights_equal(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


class WeightsAtEpochEnd(LambdaCallback):
    def __init__(self):
        super().__init__(on_epoch_end=lambda epoch, logs: self.seen.append(self.model.get_weights()))
        self.seen: list[list[np.ndarray]] = []


# -- ModelCheckpoint ---------------------------------------------------------------------------
def test_checkpoint_every_epoch_names_files_from_logs_and_each_file_is_that_epochs_model(tmp_path):
    x, y = tiny_data()
    model, at_end = tiny_model(), WeightsAtEpochEnd()
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{loss:.4f}.keras")
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0,
                        callbacks=[ModelCheckpoint(pattern, monitor="loss"), at_end])
    expected = [f"ckpt-{e + 1:02d}-{loss:.4f}.keras" for e, loss in enumerate(history.history["loss"])]
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    for name, weights in zip(expected, at_end.seen):
        loaded = load_model(tmp_path / name)
        assert weights_equal(loaded.get_weights(), weights)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert not weights_equal(at_end.seen[0], at_end.seen[-1])


def test_save_best_only_writes_only_on_improvement(tmp_path, capsys):
    """mode='max' on a falling loss: only epoch 1 improves, so the single file stays epoch 1's weights."""
    x, y = tiny_data()
    model, at_end = tiny_model(), WeightsAtEpochEnd()
    path = tmp_path / "best.weights"
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[
        ModelCheckpoint(path, monitor="loss", mode="max", save_best_only=True, save_weights_only=True, verbose=1),
        at_end])
    losses = history.history["loss"]
    assert losses[0] > losses[1] > losses[2]
    fresh = tiny_model(seed=5)
    fresh.load_weights(path)
    assert weights_equal(fresh.get_weights(), at_end.seen[0])
    out = capsys.readouterr().out
    assert f"Epoch 1: loss improved from None to {losses[0]:.5f}, saving model to {path}" in out
    assert f"Epoch 2: loss did not improve from {losses[0]:.5f}" in out
    assert "Epoch 3: loss did not improve" in out
    # a threshold no loss can beat: nothing is written
    never = tmp_path / "never-{epoch}.keras"
    tiny_model().fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[
        ModelCheckpoint(never, monitor="loss", save_best_only=True, initial_value_threshold=0.0)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.weights"]


def test_save_freq_counts_batches_across_epochs(tmp_path):
    """4 batches per epoch, save_freq=3: after batch 3 of epoch 1 and batch 2 of epoch 2 (Keras' count)."""
    x, y = tiny_data()
    model = tiny_model()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False, callbacks=[
        ModelCheckpoint(tmp_path / "e{epoch}-b{batch}.weights", save_weights_only=True, save_freq=3)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e1-b3.weights", "e2-b2.weights"]


def test_checkpoint_missing_monitor_warns_and_saves(tmp_path):
    x, y = tiny_data()
    with pytest.warns(RuntimeWarning, match="val_loss"):
        tiny_model().fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[
            ModelCheckpoint(tmp_path / "m.keras", save_best_only=True)])
    assert (tmp_path / "m.keras").is_file()


def test_checkpoint_filepath_field_not_logged_is_a_clear_error(tmp_path):
    x, y = tiny_data()
    model = tiny_model()
    with pytest.raises(KeyError, match="val_acc"):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0,
                  callbacks=[ModelCheckpoint(tmp_path / "{val_acc:.2f}.keras")])
    assert list(tmp_path.iterdir()) == []


# -- learning rates ----------------------------------------------------------------------------
class StepRecorder(LambdaCallback):
    """Weights and full-batch gradient before each step, weights after it (one step per epoch)."""

    def __init__(self, x, y):
        super().__init__(on_train_batch_begin=self.before, on_train_batch_end=self.after)
        self.x, self.y, self.steps = x, y, []

    def before(self, batch, logs=None):
        _, grads = self.model.loss_and_gradients(self.x, self.y)
        self.steps.append([self.model.get_weights(), grads])

    def after(self, batch, logs=None):
        self.steps[-1].append(self.model.get_weights())

    def used_learning_rates(self) -> list[float]:
        """The rate each step used: SGD moves every weight by exactly lr * gradient."""
        rates = []
        for before, grads, after in self.steps:
            moved = np.concatenate([(b - a).ravel() for b, a in zip(before, after)])
            g = np.concatenate([gr.ravel() for gr in grads])
            rate = float(moved @ g / (g @ g))
            np.testing.assert_allclose(moved, rate * g, rtol=1e-9, atol=1e-14)
            rates.append(rate)
        return rates


def test_reduce_lr_on_plateau_patience_cooldown_min_lr_and_the_rate_used(float64):
    """min_delta=10 makes every epoch after the first a plateau; expected rates worked out by hand."""
    x, y = tiny_data()
    model, steps = tiny_model(lr=0.1), StepRecorder(x, y)
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0, shuffle=False, callbacks=[
        steps, ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, cooldown=1, min_delta=10.0, min_lr=0.02)])
    expected = [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-12)
    np.testing.assert_allclose(steps.used_learning_rates(), expected, rtol=1e-7)
    assert model.optimizer.learning_rate == 0.02


def test_reduce_lr_verbose_message_and_missing_monitor(capsys):
    x, y = tiny_data()
    model = tiny_model(lr=0.1)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0,
              callbacks=[ReduceLROnPlateau(monitor="loss", patience=1, min_delta=10.0, verbose=1)])
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.010000000000000002." in capsys.readouterr().out
    with pytest.warns(RuntimeWarning, match="val_loss"):
        history = model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[ReduceLROnPlateau(patience=0)])
    assert len(history.epoch) == 2 and model.optimizer.learning_rate == pytest.approx(0.01)


def test_learning_rate_scheduler_sets_the_rate_each_epoch_and_logs_it(float64, capsys):
    x, y = tiny_data()
    model, steps = tiny_model(lr=0.1), StepRecorder(x, y)
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0, shuffle=False, callbacks=[
        steps, LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * 0.5, verbose=1)])
    expected = [0.1, 0.1, 0.05, 0.025]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-12)
    np.testing.assert_allclose(steps.used_learning_rates(), expected, rtol=1e-7)
    assert "Epoch 3: LearningRateScheduler setting learning rate to 0.05." in capsys.readouterr().out
    # the one-argument form, and initial_epoch passes the real epoch number
    history = tiny_model().fit(x, y, epochs=3, initial_epoch=1, verbose=0,
                               callbacks=[LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))])
    np.testing.assert_allclose(history.history["learning_rate"], [0.02, 0.03], rtol=1e-12)


def test_scheduler_errors_come_from_the_schedule_not_swallowed():
    x, y = tiny_data()

    def broken(epoch, lr):
        raise TypeError("bug inside the schedule")

    with pytest.raises(TypeError, match="bug inside the schedule"):
        tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(broken)])
    with pytest.raises(TypeError, match="must be a number"):
        tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: "0.1")])
    with pytest.raises(ValueError, match="finite number >= 0"):
        tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: -1.0)])


# -- CSVLogger ---------------------------------------------------------------------------------
def test_csv_logger_rows_equal_history_and_append_keeps_one_header(tmp_path):
    x, y = tiny_data()
    path = tmp_path / "log.csv"
    model = tiny_model()
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_data=(x[:8], y[:8]),
                        callbacks=[CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", *sorted(history.history)]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for key, values in history.history.items():
        assert [float(r[key]) for r in rows] == values, key
    more = model.fit(x, y, epochs=2, batch_size=8, verbose=0, validation_data=(x[:8], y[:8]),
                     callbacks=[CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and [float(r["loss"]) for r in rows[3:]] == more.history["loss"]


def test_csv_logger_without_validation_writes_na_columns_and_separator(tmp_path):
    x, y = tiny_data()
    path = tmp_path / "log.tsv"
    history = tiny_model().fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[CSVLogger(path, separator="\t")])
    lines = path.read_text().splitlines()
    keys = sorted(history.history)
    assert lines[0].split("\t") == ["epoch", *keys, *[f"val_{k}" for k in keys]]
    assert lines[1].split("\t")[len(keys) + 1:] == ["NA"] * len(keys)


# -- TerminateOnNaN ----------------------------------------------------------------------------
def nan_batch_data():
    x, y = tiny_data()
    y = y.copy()
    y[9] = 1e30                # in the second batch of 8: its squared error overflows float32
    return x, y


def test_terminate_on_nan_stops_after_the_bad_batch_when_fit_guard_is_off(capsys):
    x, y = nan_batch_data()
    seen = []
    with pytest.warns(RuntimeWarning):
        history = tiny_model().fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False, terminate_on_nan=False,
                                   callbacks=[TerminateOnNaN(), LambdaCallback(
                                       on_train_batch_end=lambda batch, logs: seen.append(batch))])
    assert seen == [0, 1] and len(history.epoch) == 1 and not math.isfinite(history.history["loss"][0])
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="batch 1"):
        tiny_model().fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False, terminate_on_nan=False,
                         callbacks=[TerminateOnNaN(raise_error=True)])


def test_fit_guard_acts_first_with_terminate_on_nan_callback():
    """With the default guard the bad update is never applied: NonFiniteError before the callback runs."""
    x, y = nan_batch_data()
    model = tiny_model()
    seen = []
    with pytest.raises(rnnkit.NonFiniteError):
        model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False, callbacks=[
            TerminateOnNaN(), LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))])
    assert seen == [0] and all(np.isfinite(w).all() for w in model.get_weights())


# -- EarlyStopping -----------------------------------------------------------------------------
def test_early_stopping_missing_monitor_warns_and_training_goes_on():
    x, y = tiny_data()
    with pytest.warns(RuntimeWarning, match="`val_loss` which is not available"):
        history = tiny_model().fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[EarlyStopping(patience=0)])
    assert len(history.epoch) == 3


def test_early_stopping_verbose_messages(capsys):
    x, y = tiny_data()
    model = tiny_model()
    history = model.fit(x, y, epochs=6, batch_size=8, verbose=0, callbacks=[
        EarlyStopping(monitor="loss", mode="max", patience=2, verbose=1, restore_best_weights=True)])
    assert len(history.epoch) == 3
    out = capsys.readouterr().out
    assert "Restoring model weights from the end of the best epoch: 1." in out
    assert "Epoch 3: early stopping" in out


# -- argument checks and the "auto" rule -------------------------------------------------------
@pytest.mark.parametrize("make, error, match", [
    (lambda: ModelCheckpoint(3), TypeError, "str or path"),
    (lambda: ModelCheckpoint("a-{epoch.keras"), ValueError, "not a valid format string"),
    (lambda: ModelCheckpoint("a-{}.keras"), ValueError, "named fields"),
    (lambda: ModelCheckpoint("m.keras", save_freq=0), ValueError, "save_freq"),
    (lambda: ModelCheckpoint("m.keras", save_freq="batch"), ValueError, "save_freq"),
    (lambda: ModelCheckpoint("m.keras", mode="best"), ValueError, "mode must be"),
    (lambda: ModelCheckpoint("m.keras", monitor="val_f00"), ValueError, "mode='max'"),
    (lambda: ReduceLROnPlateau(factor=1.0), ValueError, r"factor must be in \(0, 1\)"),
    (lambda: ReduceLROnPlateau(factor="0.5"), TypeError, "factor must be a number"),
    (lambda: ReduceLROnPlateau(patience=-1), ValueError, "patience"),
    (lambda: ReduceLROnPlateau(min_lr=-1e-3), ValueError, "min_lr"),
    (lambda: ReduceLROnPlateau(cooldown=1.5), ValueError, "cooldown"),
    (lambda: LearningRateScheduler(0.1), TypeError, "schedule must be a function"),
    (lambda: LearningRateScheduler(lambda e: 0.1, verbose=-1), ValueError, "verbose"),
    (lambda: CSVLogger(None), TypeError, "filename"),
    (lambda: CSVLogger("log.csv", separator=",,"), ValueError, "single character"),
    (lambda: EarlyStopping(patience=None), ValueError, "patience"),
    (lambda: EarlyStopping(monitor=None), TypeError, "monitor"),
    (lambda: EarlyStopping(baseline="low"), TypeError, "baseline"),
])
def test_bad_arguments_are_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("monitor, mode", [
    ("val_loss", "min"), ("loss", "min"), ("out_loss", "min"), ("val_mae", "min"), ("perplexity", "min"),
    ("accuracy", "max"), ("val_acc", "max"), ("val_out_accuracy", "max"), ("sparse_categorical_accuracy", "max"),
])
def test_auto_mode_follows_the_metric_direction(monitor, mode):
    for cb in (EarlyStopping(monitor), ModelCheckpoint("m.keras", monitor), ReduceLROnPlateau(monitor)):
        assert cb.mode == mode


# -- the same decisions as Keras 3 on the same logs ---------------------------------------------
LOSSES = [1.0, 0.9, 0.95, 0.90005, 0.9, 0.7, 0.72, 0.71, 0.7, 0.69995, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6]


@pytest.fixture(scope="module")
def keras_model():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    return keras, model


def drive(cb, model, logs_per_epoch):
    """Call the epoch hooks as fit does; return per-epoch (stop flag, learning rate) decisions."""
    cb.set_model(model)
    model.stop_training = False
    cb.on_train_begin()
    out = []
    for epoch, logs in enumerate(logs_per_epoch):
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, dict(logs))
        out.append((bool(model.stop_training), float(np.asarray(model.optimizer.learning_rate))))
    return out


@pytest.mark.parametrize("kwargs", [
    dict(patience=2, factor=0.5, min_delta=1e-4),
    dict(patience=1, factor=0.1, cooldown=2, min_lr=0.0005, min_delta=0.0),
    dict(patience=0, factor=0.3, cooldown=1, min_delta=0.05, mode="max"),
])
def test_reduce_lr_on_plateau_decides_as_keras(keras_model, kwargs):
    keras, kmodel = keras_model
    logs = [{"loss": 2 * v, "val_loss": v} for v in LOSSES]
    kmodel.optimizer.learning_rate = 0.1
    theirs = drive(keras.callbacks.ReduceLROnPlateau(**kwargs), kmodel, logs)
    ours = drive(ReduceLROnPlateau(**kwargs), tiny_model(lr=0.1), logs)
    np.testing.assert_allclose([lr for _, lr in ours], [lr for _, lr in theirs], rtol=1e-6)
    assert len({lr for _, lr in ours}) > 1


@pytest.mark.parametrize("kwargs", [
    dict(monitor="loss", patience=2), dict(monitor="val_loss", patience=1, min_delta=0.01),
    dict(monitor="val_loss", patience=3, min_delta=1e-4, start_from_epoch=3),
    dict(monitor="loss", patience=1, mode="max"), dict(monitor="val_loss", patience=2, baseline=0.65),
    dict(monitor="val_loss", patience=4, baseline=0.75, min_delta=0.001),
])
def test_early_stopping_stops_at_the_same_epoch_as_keras(keras_model, kwargs):
    keras, kmodel = keras_model
    logs = [{"loss": 2 * v, "val_loss": v} for v in LOSSES]
    theirs = [stop for stop, _ in drive(keras.callbacks.EarlyStopping(**kwargs), kmodel, logs)]
    ours = [stop for stop, _ in drive(EarlyStopping(**kwargs), tiny_model(), logs)]
    first = theirs.index(True)      # fit stops at the first True; later epochs never run
    assert ours.index(True) == first


@pytest.mark.parametrize("kwargs", [dict(), dict(initial_value_threshold=0.8), dict(mode="max")])
def test_save_best_only_writes_the_same_epochs_as_keras(keras_model, tmp_path, kwargs):
    keras, kmodel = keras_model
    logs = [{"loss": 2 * v, "val_loss": v} for v in LOSSES[:10]]
    drive(keras.callbacks.ModelCheckpoint(str(tmp_path / "k{epoch:02d}.keras"), save_best_only=True, **kwargs),
          kmodel, logs)
    model = tiny_model()
    drive(ModelCheckpoint(tmp_path / "r{epoch:02d}.keras", save_best_only=True, **kwargs), model, logs)
    written = sorted(p.name for p in tmp_path.iterdir())
    keras_epochs = [name[1:3] for name in written if name.startswith("k")]
    assert [name[1:3] for name in written if name.startswith("r")] == keras_epochs and keras_epochs


def test_csv_logger_writes_the_same_text_as_keras(keras_model, tmp_path):
    keras, kmodel = keras_model
    logs = [{"loss": 2 * v, "val_loss": v, "mae": v / 3} for v in LOSSES[:4]]
    for cb, name in ((keras.callbacks.CSVLogger(str(tmp_path / "k.csv")), "k"),
                     (CSVLogger(tmp_path / "r.csv"), "r")):
        drive(cb, kmodel if name == "k" else tiny_model(), logs)
        cb.on_train_end()
    assert (tmp_path / "r.csv").read_bytes() == (tmp_path / "k.csv").read_bytes()


def test_every_registered_metric_has_an_auto_direction():
    """A metric added to the registry without a direction would make mode='auto' refuse it."""
    for name in rnnkit.metrics.names():
        for monitor in (name, f"val_{name}", f"out_{name}"):
            expected = "max" if "acc" in name else "min"
            assert ReduceLROnPlateau(monitor).mode == expected, monitor
