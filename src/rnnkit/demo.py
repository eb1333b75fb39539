"""The article's program, in rnnkit: a character-level SimpleRNN trained on one sentence.

The Keras original::

    model = Sequential()
    model.add(SimpleRNN(50, input_shape=(seq_length, len(chars)), activation='relu'))
    model.add(Dense(len(chars), activation='softmax'))
    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
    model.fit(X_one_hot, y_one_hot, epochs=100)

and then 50 greedy (argmax) predictions of the next character, starting from "This is G".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rnnkit.layers import Dense, SimpleRNN
from rnnkit.models import Sequential
from rnnkit.text import char_dataset, generate_text

ARTICLE_TEXT = "This is GeeksforGeeks a software training institute"
ARTICLE_START = "This is G"


@dataclass
class DemoConfig:
    text: str = ARTICLE_TEXT
    seq_length: int = 3
    units: int = 50
    epochs: int = 100
    batch_size: int = 32
    seed: int = 0
    length: int = 50          # characters to generate
    start: str | None = None  # defaults to "This is G" (or the text's first characters)
    verbose: int = 1


@dataclass
class DemoResult:
    model: Sequential
    history: dict
    generated: str
    train_seconds: float

    @property
    def accuracy(self) -> float:
        return self.history["accuracy"][-1]


def run_demo(cfg: DemoConfig, out=print) -> DemoResult:
    """Train the article's model on ``cfg.text`` and generate ``cfg.length`` characters."""
    vocab, X, y = char_dataset(cfg.text, cfg.seq_length)
    start = cfg.start
    if start is None:
        start = ARTICLE_START if cfg.text.startswith(ARTICLE_START) else cfg.text[:max(cfg.seq_length, 9)]
    vocab.encode(start)  # a clear error now for characters the model has never seen
    if len(start) < cfg.seq_length:
        raise ValueError(f"The start text needs at least seq_length={cfg.seq_length} characters, got {start!r}.")

    model = Sequential(seed=cfg.seed)
    model.add(SimpleRNN(cfg.units, input_shape=(cfg.seq_length, len(vocab)), activation="relu"))
    model.add(Dense(len(vocab), activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

    t0 = time.perf_counter()
    history = model.fit(X, y, epochs=cfg.epochs, batch_size=cfg.batch_size, verbose=cfg.verbose)
    train_seconds = time.perf_counter() - t0

    generated = generate_text(model, vocab, start, length=cfg.length)
    out("Generated text:")
    out(generated)
    return DemoResult(model, history.history, generated, train_seconds)
