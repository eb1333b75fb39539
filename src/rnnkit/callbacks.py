"""Callbacks called by ``fit``, with Keras' names, arguments and hook names.

``History``, ``LambdaCallback``, ``EarlyStopping``, ``ModelCheckpoint``, ``ReduceLROnPlateau``,
``LearningRateScheduler``, ``CSVLogger``, ``TerminateOnNaN`` and ``BackupAndRestore``. The monitoring callbacks share
Keras' rules: ``mode="auto"`` maximises accuracy-like names and minimises losses and errors, and
a value improves on the best one only if it beats it by more than ``min_delta``.
"""

from __future__ import annotations

import csv
import inspect
import json
import math
import os
import string
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np


class Callback:
    """Base class; override the hooks you need. ``self.model`` is set by ``fit``."""

    #: in a distributed ``fit``, run only on rank 0 (callbacks that write files or print)
    primary_only = False

    def __init__(self):
        self.model = None
        self.params: dict[str, Any] = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...


class History(Callback):
    """What ``fit`` returns: ``history.history["loss"]`` is the list of per-epoch losses.

    ``grad_norms`` holds the global gradient norm before clipping of every training step, in order.
    """

    def __init__(self):
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}
        self.grad_norms: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


class LambdaCallback(Callback):
    """Build a callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``."""

    def __init__(self, on_epoch_begin: Callable | None = None, on_epoch_end: Callable | None = None,
                 on_train_begin: Callable | None = None, on_train_end: Callable | None = None,
                 on_train_batch_begin: Callable | None = None, on_train_batch_end: Callable | None = None):
        super().__init__()
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end),
                         ("on_train_batch_begin", on_train_batch_begin),
                         ("on_train_batch_end", on_train_batch_end)):
            if fn is not None:
                setattr(self, name, fn)


# -- shared checks and the "auto" mode rule -------------------------------------------------
# Keras 3 decides "auto" from the metric's direction and refuses names it cannot place; these are
# the names rnnkit logs (with any "val_" or output-name prefix), by the direction that is better.
_MAXIMISED = ("acc", "accuracy", "auc", "precision", "recall", "bleu")
_MINIMISED = ("loss", "error", "mae", "mse", "mape", "msle", "crossentropy", "perplexity", "bits_per_character", "bpc",
              "grad_norm", "grad_norm_max", "clip_fraction", "nonfinite_steps")


def _check_int(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_number(name: str, value: Any, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}.")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum}, got {value!r}.")
    return float(value)


def _check_monitor(owner: str, monitor: Any, mode: Any) -> str:
    """Resolve ``mode`` to "min" or "max" for ``monitor`` (Keras' rule), or say why it cannot be."""
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"{owner} monitor must be the name of a logged value such as 'val_loss', got {monitor!r}.")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner} mode must be 'auto', 'min' or 'max', got {mode!r}.")
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if any(name == key or name.endswith("_" + key) for key in _MAXIMISED):
        return "max"
    if any(name == key or name.endswith("_" + key) for key in _MINIMISED):
        return "min"
    raise ValueError(
        f"{owner} cannot tell whether {monitor!r} should be maximised or minimised; "
        "pass mode='max' to keep the highest value or mode='min' to keep the lowest."
    )


def _is_improvement(mode: str, min_delta: float, current: float, best: float | None) -> bool:
    """Keras' test: ``current`` beats ``best`` by more than ``min_delta`` (any value beats ``None``)."""
    if best is None:
        return True
    return current < best - min_delta if mode == "min" else current > best + min_delta


def _check_verbose(owner: str, verbose: Any) -> int:
    if isinstance(verbose, bool):
        return int(verbose)
    if not isinstance(verbose, (int, np.integer)) or verbose < 0:
        raise ValueError(f"{owner} verbose must be 0 (silent) or 1 (print what it does), got {verbose!r}.")
    return int(verbose)


def _optimizer_of(owner: str, model) -> Any:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{owner} needs a model compiled with an optimizer that has a learning_rate; "
                         f"got optimizer {optimizer!r}.")
    return optimizer


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``baseline``, training also stops after ``patience`` epochs that do not beat it.

    A missing ``monitor`` (e.g. ``val_loss`` without validation data) is a ``RuntimeWarning`` and the
    epoch is skipped, as in Keras. With ``restore_best_weights`` the best epoch's weights are put back
    when the callback stops training. ``verbose=1`` prints Keras' "Epoch N: early stopping".
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0, verbose: int = 0,
                 mode: str = "auto", baseline: float | None = None, restore_best_weights: bool = False,
                 start_from_epoch: int = 0):
        super().__init__()
        self.mode = _check_monitor("EarlyStopping", monitor, mode)
        self.monitor = monitor
        self.min_delta = abs(_check_number("min_delta", min_delta, minimum=-math.inf))
        self.patience = _check_int("patience", patience)
        self.verbose = _check_verbose("EarlyStopping", verbose)
        self.start_from_epoch = _check_int("start_from_epoch", start_from_epoch)
        self.baseline = None if baseline is None else _check_number("baseline", baseline, minimum=-math.inf)
        self.restore_best_weights = bool(restore_best_weights)
        self.stopped_epoch = 0
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.best = np.inf if self.mode == "min" else -np.inf
        self.best_weights = None
        self.stopped_epoch = 0
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs)} (val_ metrics need validation data).",
                          RuntimeWarning, stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        self.wait += 1
        if _is_improvement(self.mode, self.min_delta, value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # as in Keras, the count restarts only once the baseline is beaten too
            if self.baseline is None or _is_improvement(self.mode, self.min_delta, value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose:
                    print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
                self.model.set_weights(self.best_weights)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Save the model (``model.save``) or its weights (``model.save_weights``) during training.

    ``filepath`` is formatted with ``epoch`` (1-based), ``batch`` (1-based, when saving every
    ``save_freq`` batches) and the logged values, as in Keras: ``"ckpt-{epoch:02d}-{val_loss:.2f}.keras"``.
    rnnkit writes one safetensors file whatever the name, atomically, so an interrupted save never
    leaves a half file. With ``save_best_only`` a file is written only when ``monitor`` improves on
    the best value so far (or on ``initial_value_threshold``); a missing ``monitor`` warns and saves.
    ``save_freq`` is ``"epoch"`` or an integer N: save after every N training batches.
    """

    primary_only = True

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False, mode: str = "auto",
                 save_freq: str | int = "epoch", initial_value_threshold: float | None = None):
        super().__init__()
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint filepath must be a str or path, got {type(filepath).__name__}.")
        self.filepath = os.fspath(filepath)
        if not self.filepath:
            raise ValueError("ModelCheckpoint filepath must not be empty.")
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(self.filepath) if field is not None]
        except ValueError as exc:
            raise ValueError(f"ModelCheckpoint filepath {self.filepath!r} is not a valid format string: {exc}. "
                             "Write a literal brace as '{{' or '}}'.") from None
        if any(not field or not field.isidentifier() for field in fields):
            raise ValueError(f"ModelCheckpoint filepath {self.filepath!r} may only use named fields such as "
                             "{epoch:02d} or {val_loss:.2f}.")
        self.mode = _check_monitor("ModelCheckpoint", monitor, mode)
        self.monitor = monitor
        self.verbose = _check_verbose("ModelCheckpoint", verbose)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, (int, np.integer))
                                     or save_freq < 1):
            raise ValueError(f"ModelCheckpoint save_freq must be 'epoch' or a positive integer (a number of "
                             f"batches), got {save_freq!r}.")
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.best = None if initial_value_threshold is None else _check_number(
            "initial_value_threshold", initial_value_threshold, minimum=-math.inf)
        self.min_delta = 0.0
        self._current_epoch = 0
        self._batches_since_save = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _file_path(self, epoch: int, batch: int | None, logs: dict) -> str:
        values = dict(logs, epoch=epoch + 1)
        if batch is not None and "batch" not in logs:
            values["batch"] = batch + 1
        try:
            return self.filepath.format(**values)
        except KeyError as exc:
            raise KeyError(f"ModelCheckpoint cannot format filepath {self.filepath!r}: {exc} is not logged; "
                           f"the logged values are {sorted(values)}.") from None

    def _should_save(self, epoch: int, logs: dict, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", RuntimeWarning, stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if _is_improvement(self.mode, self.min_delta, current, self.best):
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                      f"saving model to {filepath}")
            self.best = current
            return True
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save(self, epoch: int, batch: int | None, logs: dict) -> None:
        filepath = self._file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise IsADirectoryError(f"ModelCheckpoint filepath {filepath!r} is an existing folder; give a file name.")
        if not self._should_save(epoch, logs, filepath):
            return
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")


def _set_learning_rate(owner: str, optimizer, value: Any) -> float:
    lr = _check_number(f"The learning rate from {owner}", value)
    optimizer.learning_rate = lr
    return lr


class ReduceLROnPlateau(Callback):
    """Multiply the optimizer's learning rate by ``factor`` when ``monitor`` stops improving.

    After ``patience`` epochs without an improvement of more than ``min_delta`` the rate becomes
    ``max(lr * factor, min_lr)``; then ``cooldown`` epochs pass before waiting starts again. The rate
    the epoch trained with is logged as ``learning_rate`` (so ``History`` records it), as in Keras.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        super().__init__()
        self.mode = _check_monitor("ReduceLROnPlateau", monitor, mode)
        self.monitor = monitor
        factor = _check_number("factor", factor)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau factor must be in (0, 1) (the rate is multiplied by it), "
                             f"got {factor!r}.")
        self.factor = factor
        self.patience = _check_int("patience", patience)
        self.verbose = _check_verbose("ReduceLROnPlateau", verbose)
        self.min_delta = abs(_check_number("min_delta", min_delta, minimum=-math.inf))
        self.cooldown = _check_int("cooldown", cooldown)
        self.min_lr = _check_number("min_lr", min_lr)
        self._reset()

    def _reset(self) -> None:
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        _optimizer_of("ReduceLROnPlateau", self.model)
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        optimizer = _optimizer_of("ReduceLROnPlateau", self.model)
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs)}.", RuntimeWarning, stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if _is_improvement(self.mode, self.min_delta, current, self.best):
            self.best, self.wait = current, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(optimizer.learning_rate)
                # Keras compares in float32, so a rate already at min_lr up to rounding is left alone.
                if old_lr > np.float32(self.min_lr):
                    new_lr = _set_learning_rate("ReduceLROnPlateau", optimizer, max(old_lr * self.factor, self.min_lr))
                    if self.verbose:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch to ``schedule(epoch, lr)`` (``epoch`` from 0).

    ``schedule`` may also take only ``epoch``. The rate the epoch trained with is logged as
    ``learning_rate``, as in Keras.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler schedule must be a function (epoch, lr) -> lr, "
                            f"got {type(schedule).__name__}.")
        self.schedule = schedule
        self.verbose = _check_verbose("LearningRateScheduler", verbose)
        self._takes_lr = _takes_two_arguments(schedule)

    def on_train_begin(self, logs=None):
        _optimizer_of("LearningRateScheduler", self.model)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = _optimizer_of("LearningRateScheduler", self.model)
        lr = float(optimizer.learning_rate)
        value = self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)
        lr = _set_learning_rate("LearningRateScheduler's schedule", optimizer, value)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(_optimizer_of("LearningRateScheduler", self.model).learning_rate)


def _takes_two_arguments(fn: Callable) -> bool:
    """Whether ``fn`` accepts ``(epoch, lr)``; Keras tries that call and falls back on a TypeError,
    which would also swallow a TypeError raised inside the schedule, so the signature decides here."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no signature: use the (epoch, lr) form
        return True
    try:
        signature.bind(0, 0.0)
        return True
    except TypeError:
        return False


class CSVLogger(Callback):
    """Write every epoch's logs as one row of a CSV file, as Keras does.

    The columns are ``epoch`` (from 0) then the logged names, sorted; without validation data the
    ``val_`` columns are still written, as ``NA``, so that files of runs with and without validation
    line up. ``append=True`` adds to an existing file (its header is kept). The file is flushed after
    every row, so a crash loses at most the epoch in progress.
    """

    primary_only = True

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        if not isinstance(filename, (str, os.PathLike)) or not os.fspath(filename):
            raise TypeError(f"CSVLogger filename must be a non-empty str or path, got {filename!r}.")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger separator must be a single character, got {separator!r}.")
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys: list[str] | None = None
        self.writer = None
        self.csv_file = None
        self.append_header = True

    def on_train_begin(self, logs=None):
        path = Path(self.filename)
        if path.is_dir():
            raise IsADirectoryError(f"CSVLogger filename {self.filename!r} is an existing folder; give a file name.")
        self.append_header = True
        if self.append and path.exists():
            with open(path, encoding="utf-8") as f:
                self.append_header = not f.readline()
        self._close()
        self.csv_file = open(path, "a" if self.append else "w", newline="", encoding="utf-8")
        self.keys, self.writer = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        if self.writer is None:
            dialect = type("Dialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch", *self.keys], dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        self.writer.writerow({"epoch": epoch, **{key: _csv_value(logs.get(key, "NA")) for key in self.keys}})
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        self._close()

    def _close(self) -> None:
        csv_file = getattr(self, "csv_file", None)    # __del__ may run on a half-built instance
        if csv_file is not None and not csv_file.closed:
            csv_file.close()
        self.writer = None

    def __del__(self):
        self._close()


def _csv_value(value: Any) -> Any:
    if isinstance(value, str) or np.ndim(value) == 0:
        return value
    return f"[{', '.join(map(str, np.ravel(value)))}]"


class TerminateOnNaN(Callback):
    """Stop training after a batch whose loss is NaN or infinite (``raise_error=True``: raise instead).

    ``fit``'s own guard (``terminate_on_nan=True``, the default) acts first: it stops *before* the
    bad update with a ``NonFiniteError`` naming where the values stopped being finite, so this
    callback matters with ``fit(..., terminate_on_nan=False)``, where, as in Keras, the bad batch's
    update is applied and training stops at the end of that batch.
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   "Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


#: the one file ``BackupAndRestore`` writes in its folder: everything in one file, so a kill between
#: two writes can never pair the weights of one step with the optimizer state of another
BACKUP_FILE = "latest.safetensors"
_BACKUP_FORMAT = "rnnkit-backup"


def _state_holders(model) -> list[tuple[str, Any]]:
    """``(path, object)`` for the model and every layer inside it (cells, wrapped layers, nested
    models), each once, in a fixed order, so that paths name the same objects in a rebuilt model."""
    from rnnkit.layers.base import Layer

    out: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(obj: Any, path: str) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        out.append((path, obj))
        children: list[tuple[str, Any]] = []
        if hasattr(obj, "_graph") and obj._graph is not None:     # a model: its layers, by name
            children += [(layer.name, layer) for layer in obj.layers]
        for key, value in vars(obj).items():
            if key in ("_inbound_nodes", "_graph", "_run"):     # links to the graph, not parts of this layer
                continue
            if isinstance(value, Layer):
                children.append((key, value))
            elif isinstance(value, (list, tuple)):
                children += [(f"{key}.{i}", v) for i, v in enumerate(value) if isinstance(v, Layer)]
        for name, child in children:
            visit(child, f"{path}/{name}" if path else name)

    visit(model, "")
    return out


def _generators(holders: list[tuple[str, Any]]) -> dict[str, np.random.Generator]:
    """Every ``numpy.random.Generator`` training draws from (shuffling, dropout masks, ...), by
    ``<holder path>:<attribute>``; found by type, so a layer's new generator is never left out."""
    return {f"{path}:{key}": value for path, obj in holders for key, value in vars(obj).items()
            if isinstance(value, np.random.Generator)}


def _new_generator(state: Any, name: str) -> np.random.Generator:
    """A generator in ``state`` (a ``bit_generator.state`` dict), refusing anything else clearly."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    bit_generator = getattr(np.random, kind, None) if isinstance(kind, str) else None
    if not (isinstance(bit_generator, type) and issubclass(bit_generator, np.random.BitGenerator)):
        raise ValueError(f"random generator {name!r}: expected a numpy bit_generator state, got {state!r}.")
    generator = np.random.Generator(bit_generator())
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"random generator {name!r}: its state is invalid ({exc}).") from None
    return generator


class BackupAndRestore(Callback):
    """Back up the whole training state so that a killed ``fit`` resumes exactly where it was (Keras' callback).

    At the end of every epoch (``save_freq="epoch"``) or every ``save_freq`` training batches, one
    file, ``<backup_dir>/latest.safetensors``, is written atomically (``rnnkit.saving``: a kill
    mid-write leaves the previous backup whole). It holds the weights, the optimizer's slots, step
    count and learning rate, the position (epoch and batch), the state of every random generator
    in the model (the shuffling of ``fit``, every layer's dropout masks: plain ``bit_generator``
    state dicts in the JSON metadata) and the carried states of stateful layers. When ``fit``
    starts and a backup exists, all of it is restored and training continues from that position,
    so a run killed at any moment and started again with the same command ends with the same
    weights, bit for bit, as a run never interrupted. At the end of a ``fit`` that was not
    interrupted the backup is deleted if ``delete_checkpoint`` (with ``backup_dir`` if that leaves
    it empty; Keras removes the folder whatever it holds).

    Not restored (as in Keras): the state of other callbacks (``EarlyStopping``'s counters) and,
    after a resume mid-epoch, the loss and metrics logged for that epoch cover only its remaining
    batches.

    Args:
        backup_dir: the folder of the backup (made if missing); use one folder per training run.
        save_freq: ``"epoch"``, or an integer N: back up after every N training batches.
        delete_checkpoint: delete the backup when ``fit`` ends without being interrupted.
    """

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str | int = "epoch",
                 delete_checkpoint: bool = True):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise TypeError(f"BackupAndRestore backup_dir must be a non-empty str or path (a folder), "
                            f"got {backup_dir!r}.")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, (int, np.integer))
                                     or save_freq < 1):
            raise ValueError(f"BackupAndRestore save_freq must be 'epoch' or a positive integer (a number of "
                             f"batches), got {save_freq!r}.")
        if not isinstance(delete_checkpoint, (bool, np.bool_)):
            raise TypeError(f"BackupAndRestore delete_checkpoint must be True or False, got {delete_checkpoint!r}.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._epoch = 0
        self._batches_since_save = 0
        self._epoch_shuffle_state: dict | None = None

    @property
    def backup_path(self) -> str:
        """Where the backup is written: ``<backup_dir>/latest.safetensors``."""
        return os.path.join(self.backup_dir, BACKUP_FILE)

    # -- hooks --------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if os.path.exists(self.backup_dir) and not os.path.isdir(self.backup_dir):
            raise NotADirectoryError(f"BackupAndRestore backup_dir {self.backup_dir!r} is a file; give a folder.")
        self._batches_since_save = 0
        if os.path.exists(self.backup_path):
            self.restore()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        # a backup taken mid-epoch must replay this epoch's shuffle: keep the generator as it was before it
        self._epoch_shuffle_state = self.model._shuffle_rng.bit_generator.state

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            if batch + 1 >= self.params.get("steps", batch + 2):    # the epoch's last batch: resume at the next
                self.backup(self._epoch + 1, 0, None)
            else:
                self.backup(self._epoch, batch + 1, self._epoch_shuffle_state)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self.backup(epoch + 1, 0, None)

    def on_train_end(self, logs=None):
        if not self.delete_checkpoint or getattr(self.model, "_distributed_rank", 0) != 0:
            return
        if os.path.exists(self.backup_path):
            os.remove(self.backup_path)
        try:
            os.rmdir(self.backup_dir)       # only if empty: the folder may hold the user's other files
        except OSError:
            pass

    # -- writing ------------------------------------------------------------------------
    def backup(self, epoch: int, step: int, shuffle_state: dict | None) -> None:
        """Write the training state, to resume at batch ``step`` of epoch ``epoch`` (both from 0).

        ``shuffle_state``: the shuffling generator's state to restore (the one the epoch started
        with when resuming mid-epoch), or None for its current state.
        """
        from rnnkit import __version__
        from rnnkit.saving import _safetensors_writer, weight_names, write_atomically

        model = self.model
        if getattr(model, "_distributed_rank", 0) != 0:    # every rank restores from the file; rank 0 writes it
            return
        holders = _state_holders(model)
        generators = {name: g.bit_generator.state for name, g in _generators(holders).items()}
        if shuffle_state is not None:
            generators[":_shuffle_rng"] = shuffle_state
        tensors = dict(zip(("layers/" + n for n in weight_names(model)), model.weights))
        optimizer = model.optimizer
        if optimizer.iterations:
            tensors.update({f"optimizer/{k}": v for k, v in optimizer.get_state().items()})
        states: dict[str, int | None] = {}
        for path, obj in holders:
            if getattr(obj, "stateful", False) is True and hasattr(obj, "states"):
                carried = obj.states
                states[path] = None if carried is None else len(carried)
                for i, s in enumerate(carried or []):
                    tensors[f"states/{path}/{i}"] = s
        training = {"epoch": int(epoch), "step": int(step), "steps": int(self.params.get("steps", 0)),
                    "optimizer_iterations": int(optimizer.iterations),
                    "learning_rate": float(optimizer.learning_rate), "generators": generators, "states": states}
        metadata = {"format": _BACKUP_FORMAT, "rnnkit_version": __version__, "training": json.dumps(training)}
        os.makedirs(self.backup_dir, exist_ok=True)
        write_atomically(_safetensors_writer(tensors, metadata), self.backup_path)

    # -- reading ------------------------------------------------------------------------
    def restore(self) -> tuple[int, int]:
        """Set the model from the backup and make ``fit`` resume at its position; returns ``(epoch, step)``.

        Everything is read and checked first: a corrupt, foreign or mismatched backup raises
        ``rnnkit.errors.ModelFileError`` (a ``ValueError``) with the reason, and changes nothing.
        """
        from pathlib import Path

        from safetensors.numpy import load as st_load

        from rnnkit.errors import ModelFileError
        from rnnkit.saving import _read_checked, weight_names

        path = Path(self.backup_path)
        model = self.model

        def fail(reason: str) -> ModelFileError:
            return ModelFileError(f"Cannot resume from the backup {str(path)!r}: {reason} Delete it to start "
                                  "training afresh.")

        header, blob = _read_checked(path)
        meta = header.get("__metadata__")
        if not isinstance(meta, dict) or meta.get("format") != _BACKUP_FORMAT:
            raise fail("it is not a backup written by BackupAndRestore.")
        try:
            training = json.loads(meta["training"])
            tensors = st_load(blob)
            epoch, step, steps = (training[k] for k in ("epoch", "step", "steps"))
            generators, states = training["generators"], training["states"]
            iterations, learning_rate = training["optimizer_iterations"], training["learning_rate"]
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise fail(f"its contents are invalid ({type(exc).__name__}: {exc}).") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (epoch, step, steps, iterations)):
            raise fail(f"its position is invalid (epoch {epoch!r}, batch {step!r}, steps {steps!r}).")
        if not isinstance(generators, dict) or not isinstance(states, dict):
            raise fail("its random generators or layer states are not recorded as objects.")
        if step and steps != self.params.get("steps"):
            raise fail(f"it was taken mid-epoch in a run of {steps} batches per epoch, and this run has "
                       f"{self.params.get('steps')}; resume with the same data and batch_size.")
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
                or not math.isfinite(learning_rate) or learning_rate < 0:
            raise fail(f"its learning rate {learning_rate!r} is not a finite number >= 0.")
        names = weight_names(model)
        missing = [n for n in names if "layers/" + n not in tensors]
        if missing:
            raise fail(f"weight {missing[0]!r} of model '{model.name}' is missing; was it written by another model?")
        holders = _state_holders(model)
        live = _generators(holders)
        try:
            restored = {name: _new_generator(state, name) for name, state in generators.items()}
        except ValueError as exc:
            raise fail(str(exc)) from None
        unknown = sorted(set(restored) - {f"{p}:{k}" for p, obj in holders for k in vars(obj)})
        if unknown:
            raise fail(f"it has random generators this model does not have: {unknown}.")
        by_path = dict(holders)
        carried: dict[str, list[np.ndarray] | None] = {}
        for layer_path, count in states.items():
            layer = by_path.get(layer_path)
            if not getattr(layer, "stateful", False):
                raise fail(f"it has states for {layer_path!r}, which is not a stateful layer of this model.")
            if count is None:
                carried[layer_path] = None
            elif isinstance(count, int) and all(f"states/{layer_path}/{i}" in tensors for i in range(count)):
                carried[layer_path] = [tensors[f"states/{layer_path}/{i}"].copy() for i in range(count)]
            else:
                raise fail(f"the states of {layer_path!r} are incomplete.")
        optimizer_state = {k[len("optimizer/"):]: v for k, v in tensors.items() if k.startswith("optimizer/")}
        # checked by the model's and the optimizer's own setters on copies first, so nothing changes on error
        weights_before = model.get_weights()
        try:
            model.set_weights([tensors["layers/" + n] for n in names])
            if optimizer_state:
                model.optimizer.set_state(optimizer_state, model.trainable_weights)
        except (ValueError, TypeError) as exc:
            model.set_weights(weights_before)
            raise fail(str(exc)) from None
        if not optimizer_state:
            model.optimizer.restore((iterations, None, None))      # before the first step: no slots yet
        model.optimizer.learning_rate = float(learning_rate)
        for name in live:
            if name not in restored:        # made lazily on first use (e.g. attention dropout): not made yet then
                path_, key = name.rsplit(":", 1)
                setattr(by_path[path_], key, None)
        for name, generator in restored.items():
            path_, key = name.rsplit(":", 1)
            setattr(by_path[path_], key, generator)
        for layer_path, value in carried.items():
            by_path[layer_path].states = value
        model._resume_from = (epoch, step)
        return epoch, step
