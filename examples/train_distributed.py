"""Train the sentiment model on every process of an MPI job: the single-process script plus ``distributed=True``.

    python examples/train_distributed.py                   # one process
    mpiexec -n 4 python examples/train_distributed.py      # four ranks on this machine, the same result
    mpiexec -n 16 -f hosts python examples/train_distributed.py   # several machines (MPICH host file)

Needs ``pip install "rnnkit[mpi]"`` (mpi4py and MPICH). Every rank runs this whole file: each
loads the same data and builds the same model (rank 0's weights are broadcast to the others when
``fit`` starts), and ``fit`` splits each batch of ``--batch-size`` sentences between the ranks and
sums their gradients with one ``Allreduce`` per step. With ``--float64`` the final loss printed is
the same, to the last digits, on any number of ranks. Only rank 0 prints.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import rnnkit
from rnnkit import distributed, layers
from rnnkit.datasets.sentiment import sentiment_sentences
from rnnkit.layers.text_vectorization import TextVectorization


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch, split between the ranks")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--float64", action="store_true", help="train in float64 (for comparing rank counts)")
    args = parser.parse_args(argv)
    if args.float64:
        rnnkit.set_floatx("float64")
    rnnkit.utils.set_random_seed(0)

    texts, labels = sentiment_sentences()
    rows = np.random.default_rng(0).permutation(len(texts))
    train, test = rows[:480], rows[480:]
    vectorize = TextVectorization(max_tokens=2000, output_sequence_length=24)
    vectorize.adapt([texts[i] for i in train])
    x_train, x_test = vectorize([texts[i] for i in train]), vectorize([texts[i] for i in test])    # (N, 24)
    y_train, y_test = labels[train].astype(np.float32), labels[test]

    model = rnnkit.Sequential([
        rnnkit.Input((24,), dtype="int64"),
        layers.Embedding(vectorize.vocabulary_size(), 32, mask_zero=True),
        layers.Bidirectional(layers.LSTM(args.units)),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=rnnkit.optimizers.Adam(0.005), loss="binary_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, validation_split=0.1,
                        verbose=2, distributed=True)          # the only change from a single-process script
    seconds = time.perf_counter() - start
    accuracy = float(((model.predict(x_test, verbose=0)[:, 0] > 0.5) == y_test).mean())
    loss = history.history["loss"][-1]
    if distributed.is_primary():
        print(f"{distributed.size()} rank(s): {seconds:.1f} s, final training loss {loss:.12f}, "
              f"held-out accuracy {accuracy:.4f}")
    return {"ranks": distributed.size(), "loss": loss, "accuracy": accuracy, "seconds": seconds}


if __name__ == "__main__":
    main()
