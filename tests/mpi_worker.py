"""One rank of the distributed tests: ``mpiexec -n N python tests/mpi_worker.py SCENARIO OUT_DIR``.

Scenario ``train`` runs every case of distributed_cases.CASES, rank 0 writing each one's weights and
history to ``OUT_DIR/<case>.npz`` and ``.json``; the others check one behaviour and write what each
rank saw to ``OUT_DIR/rank<r>.txt``. Not a test file itself (pytest does not collect it).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import distributed_cases  # noqa: E402
import rnnkit  # noqa: E402
from rnnkit import distributed  # noqa: E402
from rnnkit.errors import DistributedError  # noqa: E402


def train(out: str) -> None:
    """Every training case in turn; rank 0 writes ``<case>.npz`` (weights) and ``<case>.json`` (history)."""
    for name in distributed_cases.CASES:
        model, x, y, kwargs = distributed_cases.build(name)
        history = model.fit(x, y, verbose=0, distributed=True, **kwargs)
        if distributed.is_primary():
            np.savez(os.path.join(out, f"{name}.npz"), *model.get_weights())
            with open(os.path.join(out, f"{name}.json"), "w") as f:
                json.dump(history.history, f)


def report(out: str, text: str) -> None:
    with open(os.path.join(out, f"rank{distributed.rank()}.txt"), "w") as f:
        f.write(text)


def fit_and_report(out: str, model, x, y, **kwargs) -> None:
    """``fit(distributed=True)``, and write what this rank saw: finished, or the error it raised."""
    try:
        model.fit(x, y, verbose=0, distributed=True, **kwargs)
        report(out, "finished")
    except DistributedError as exc:
        report(out, f"DistributedError ranks={list(exc.ranks)}: {exc}")
    except ValueError as exc:
        report(out, f"ValueError: {exc}")


def raise_in_step(out: str) -> None:
    """Rank 1 fails in its third step's forward pass: every rank must raise, none may wait."""
    model, x, y, kwargs = distributed_cases.build("lstm_uneven")
    if distributed.rank() == 1:
        run, calls = model.graph.run, [0]

        def failing(*args, **kw):
            calls[0] += 1
            if calls[0] == 3:
                raise ValueError("injected failure on rank 1")
            return run(*args, **kw)

        model.graph.run = failing
    fit_and_report(out, model, x, y, **kwargs)


def raise_in_callback(out: str) -> None:
    """Rank 0's callback fails between steps: the abort hook must end the whole job (exit code != 0)."""
    model, x, y, kwargs = distributed_cases.build("lstm_uneven")

    class Failing(rnnkit.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1 and distributed.rank() == 0:
                raise RuntimeError("injected callback failure on rank 0")

    model.fit(x, y, verbose=0, distributed=True, callbacks=[Failing()], **kwargs)
    report(out, "finished")      # must never be reached by rank 0; the others are ended by the abort


def stateful(out: str) -> None:
    rnnkit.set_floatx("float64")
    model = rnnkit.Sequential([rnnkit.Input((4, 2), batch_size=4), rnnkit.layers.LSTM(3, stateful=True),
                               rnnkit.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    fit_and_report(out, model, np.zeros((8, 4, 2)), np.zeros((8, 1)), batch_size=4)


def different_arguments(out: str) -> None:
    model, x, y, kwargs = distributed_cases.build("lstm_uneven")
    kwargs["batch_size"] = 16 if distributed.rank() == 0 else 8
    fit_and_report(out, model, x, y, **kwargs)


def small_batch(out: str) -> None:
    """A global batch smaller than the number of ranks is refused on every rank."""
    model, x, y, kwargs = distributed_cases.build("lstm_uneven")
    kwargs["batch_size"] = 1
    fit_and_report(out, model, x, y, **kwargs)


def one_rank_refuses(out: str) -> None:
    """Rank 1 alone is given a bad target: its ValueError on it, DistributedError on the others."""
    model, x, y, kwargs = distributed_cases.build("lstm_uneven")
    if distributed.rank() == 1:
        y = y[:-1]
    fit_and_report(out, model, x, y, **kwargs)


def checkpoints(out: str) -> None:
    """Files are written by rank 0 only; progress is printed by rank 0 only."""
    model, x, y, kwargs = distributed_cases.build("lstm_uneven")
    kwargs.pop("validation_split")
    log = rnnkit.callbacks.CSVLogger(os.path.join(out, "log.csv"))
    ckpt = rnnkit.callbacks.ModelCheckpoint(os.path.join(out, "ckpt-{epoch}.safetensors"), monitor="loss")
    model.fit(x, y, verbose=2, distributed=True, callbacks=[log, ckpt], **kwargs)
    report(out, "finished")


def learning_rate(out: str) -> None:
    """batch_size='per_rank' with the linear scaling rule and a warm-up: record the rate of every step."""
    model, x, y, _ = distributed_cases.build("lstm_uneven")
    rates = []

    class Record(rnnkit.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            rates.append(self.model.optimizer.learning_rate)

    options = distributed.DataParallel(batch_size="per_rank", scale_learning_rate=True, warmup_epochs=1)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, distributed=options, callbacks=[Record()])
    if distributed.is_primary():
        np.savez(os.path.join(out, "result.npz"), *model.get_weights())
    report(out, json.dumps(rates))


def resume(out: str) -> None:
    """BackupAndRestore on several ranks: rank 0 writes the backup, every rank resumes from it. Run once with
    ``RNNKIT_TEST_CRASH=1`` (every rank dies at the end of epoch 2, after the backup), then again."""
    model, x, y, kwargs = distributed_cases.build("lstm_uneven")
    kwargs.update(epochs=4, validation_split=0.0)

    class Crash(rnnkit.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1 and os.environ.get("RNNKIT_TEST_CRASH"):
                os._exit(3)                      # as a killed job: no clean-up, no MPI finalize

    backup = rnnkit.callbacks.BackupAndRestore(os.path.join(out, "backup"))
    model.fit(x, y, verbose=0, distributed=True, callbacks=[backup, Crash()], **kwargs)
    if distributed.is_primary():
        np.savez(os.path.join(out, "result.npz"), *model.get_weights())
    report(out, "finished")


SCENARIOS = {f.__name__: f for f in (train, resume, raise_in_step, raise_in_callback, stateful, different_arguments,
                                      small_batch, one_rank_refuses, checkpoints, learning_rate)}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](sys.argv[2])
