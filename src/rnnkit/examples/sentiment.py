"""Classify review sentences as positive or negative with a bidirectional LSTM, against a bag of words.

Data: the 592 labelled sentences that ship with rnnkit (``rnnkit.datasets.sentiment_sentences``:
short movie and product reviews written for the package, in positive/negative twin pairs, many of
them turning on a negation). Whole pairs are held out (``--test-size`` of them, seeded), so no test
sentence has its twin in the training set. A ``TextVectorization`` layer learns its vocabulary from
the training sentences only and turns every sentence into a padded sequence of word indices (0 =
padding, 1 = a word it has not seen); the model is ``Embedding(mask_zero=True) ->
Bidirectional(LSTM) -> Dense(1, sigmoid)``, trained with binary cross-entropy. The baseline is a
logistic regression (NumPy, L2-regularised, full-batch gradient descent) on a bag of words made
from the same indices: it sees which words occur, not in which order. Both are scored on all
held-out sentences and on those with a negation ("not", "never", "no", ...).

The bar: held-out accuracy of at least 68 % (``--quick``, a smaller network trained for fewer
epochs: 65 %). The sentences are few, so the two models' overall accuracies are close and either
may come out ahead on a given split; the sentences with a negation are where word order shows.
"""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

import numpy as np

#: the held-out sentences a bag of words should find hardest: the ones that say "not", "never", "no", ...
NEGATION = re.compile(r"\b(not|never|no|nothing|nobody|cannot)\b", re.IGNORECASE)


def pair_split(n: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` that hold out whole pairs: sentences ``2i`` and ``2i + 1`` are twins (one
    positive, one negative, much the same words), so both go to one side and each side stays balanced."""
    rng = np.random.default_rng(seed)
    pairs = rng.permutation(n // 2)
    n_test = int(round(test_size * len(pairs)))
    test, train = pairs[:n_test], pairs[n_test:]
    train_rows = rng.permutation(np.concatenate([2 * train, 2 * train + 1]))
    return train_rows, np.sort(np.concatenate([2 * test, 2 * test + 1]))


def bag_of_words(ids: np.ndarray, vocabulary_size: int) -> np.ndarray:
    """``(B, T)`` word indices -> ``(B, V)`` 0/1 features: which words a sentence has (padding left out)."""
    features = np.zeros((len(ids), vocabulary_size))                       # (B, V)
    rows = np.repeat(np.arange(len(ids)), ids.shape[1])                    # (B*T,)
    features[rows, ids.reshape(-1)] = 1.0
    features[:, 0] = 0.0                                                   # index 0 is padding, not a word
    return features


def logistic_loss(w: np.ndarray, b: float, x: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray, float]:
    """Mean cross-entropy of ``p = sigmoid(x w + b)`` plus ``l2/2 |w|^2``, and its gradients ``(dw (V,), db)``."""
    z = x @ w + b                                                          # (B,)
    # log(1 + e^z) - y z, written so that neither exp overflows
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * (w @ w))
    error = (0.5 + 0.5 * np.tanh(0.5 * z) - y) / len(y)                   # (B,) sigmoid(z) - y, per sentence
    return loss, x.T @ error + l2 * w, float(error.sum())


def logistic_regression(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 2000,
                        learning_rate: float = 1.0) -> tuple[np.ndarray, float]:
    """Weights ``(V,)`` and bias minimising ``logistic_loss``, by full-batch gradient descent (the loss is
    convex, so plain steps get there)."""
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        _, dw, db = logistic_loss(w, b, x, y, l2)
        w -= learning_rate * dw
        b -= learning_rate * db
    return w, b


def build_model(vocabulary_size: int, length: int, embedding_dim: int, units: int, learning_rate: float, seed: int):
    from rnnkit.layers import LSTM, Bidirectional, Dense, Embedding
    from rnnkit.models import Sequential
    from rnnkit.optimizers import Adam

    model = Sequential([
        Embedding(vocabulary_size, embedding_dim, mask_zero=True, input_shape=(length,)),
        Bidirectional(LSTM(units)),
        Dense(1, activation="sigmoid"),
    ], seed=seed)
    model.compile(optimizer=Adam(learning_rate=learning_rate), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rnnkit demo sentiment", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smaller network and fewer epochs (seconds)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the shuffling")
    p.add_argument("--units", type=int, default=None, help="LSTM units per direction (default 32; quick 16)")
    p.add_argument("--embedding-dim", type=int, default=16, help="word vector size (default 16)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 15; quick 10)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=0.01)
    p.add_argument("--max-tokens", type=int, default=2000, help="vocabulary size, padding and OOV included")
    p.add_argument("--length", type=int, default=20, help="words kept per sentence (default 20)")
    p.add_argument("--test-size", type=float, default=0.25, help="held-out fraction (default 0.25)")
    args = p.parse_args(argv)
    args.units = (16 if args.quick else 32) if args.units is None else args.units
    args.epochs = (10 if args.quick else 15) if args.epochs is None else args.epochs
    for name in ("units", "embedding_dim", "epochs", "batch_size", "length"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.max_tokens < 3:
        p.error("--max-tokens must be at least 3 (padding, OOV and one word)")
    if not 0.0 < args.test_size < 1.0:
        p.error("--test-size must lie between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from rnnkit.datasets.sentiment import sentiment_sentences
    from rnnkit.layers.text_vectorization import TextVectorization

    texts, labels = sentiment_sentences()
    negated = np.array([NEGATION.search(t) is not None for t in texts])   # (N,)
    train, test = pair_split(len(texts), args.test_size, args.seed)
    train_texts, test_texts = [texts[i] for i in train], [texts[i] for i in test]
    y_train, y_test = labels[train], labels[test]

    vectorize = TextVectorization(max_tokens=args.max_tokens, output_sequence_length=args.length)
    vectorize.adapt(train_texts)                               # the test sentences' words stay unseen
    x_train, x_test = vectorize(train_texts), vectorize(test_texts)   # (N, length) int64
    vocabulary_size = vectorize.vocabulary_size()
    unknown = float(np.mean(x_test[x_test > 0] == 1))
    print(f"{len(texts)} sentences: {len(train)} for training, {len(test)} held out (seed {args.seed}); "
          f"a vocabulary of {vocabulary_size} (padding and OOV included), {unknown:.0%} of the held-out words unseen")

    t0 = time.perf_counter()
    features_train = bag_of_words(x_train, vocabulary_size)
    w, b = logistic_regression(features_train, y_train.astype(np.float64))
    baseline_right = ((bag_of_words(x_test, vocabulary_size) @ w + b) > 0) == y_test    # (N_test,)
    baseline_accuracy = float(baseline_right.mean())
    baseline_seconds = time.perf_counter() - t0

    model = build_model(vocabulary_size, args.length, args.embedding_dim, args.units, args.learning_rate, args.seed)
    print(f"Training Embedding({vocabulary_size}, {args.embedding_dim}, mask_zero=True) -> Bidirectional(LSTM("
          f"{args.units})) -> Dense(1, sigmoid), {args.epochs} epochs ...")
    t0 = time.perf_counter()
    history = model.fit(x_train, y_train.astype(np.float32), epochs=args.epochs, batch_size=args.batch_size,
                        verbose=0)
    train_seconds = time.perf_counter() - t0
    probabilities = model.predict(x_test, verbose=0)[:, 0]                   # (N_test,)
    right = (probabilities > 0.5) == y_test                                  # (N_test,)
    accuracy = float(right.mean())
    has_negation = negated[test]
    negation_accuracy = float(right[has_negation].mean()) if has_negation.any() else float("nan")
    baseline_negation_accuracy = float(baseline_right[has_negation].mean()) if has_negation.any() else float("nan")
    print(f"  done in {train_seconds:.1f} s, final training loss {history.history['loss'][-1]:.4f}")

    name = f"BiLSTM({args.units}), word order"
    print(f"\n{'model':<34} {'test accuracy':>13} {f'with a negation ({has_negation.sum()})':>22} {'train time':>11}")
    print(f"{name:<34} {accuracy:>13.4f} {negation_accuracy:>22.4f} {train_seconds:>10.1f}s")
    print(f"{'bag of words, logistic regression':<34} {baseline_accuracy:>13.4f} {baseline_negation_accuracy:>22.4f} "
          f"{baseline_seconds:>10.1f}s")
    examples = ["Not bad at all, I would watch it again.", "It was not good, and I would not watch it again."]
    scores = model.predict(vectorize(examples), verbose=0)[:, 0]                # two sentences not in the data
    for sentence, score in zip(examples, scores):
        print(f"  {score:.2f} positive: {sentence}")
    bar = 0.65 if args.quick else 0.68
    passed = accuracy >= bar
    print(f"\nBar (held-out accuracy at least {bar:.0%}): {'met' if passed else 'NOT met'}")
    return {"accuracy": accuracy, "baseline_accuracy": baseline_accuracy, "negation_accuracy": negation_accuracy,
            "baseline_negation_accuracy": baseline_negation_accuracy, "negated": int(has_negation.sum()),
            "train_seconds": train_seconds,
            "baseline_seconds": baseline_seconds, "vocabulary_size": vocabulary_size, "test_size": len(test),
            "bar_met": passed}


if __name__ == "__main__":
    main()
