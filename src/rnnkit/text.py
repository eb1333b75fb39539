"""Character-level text helpers: the vocabulary, the article's sliding windows, generation."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.layers.base import check_positive_int
from rnnkit.utils import one_hot, pad_sequences  # noqa: F401  (pad_sequences: also rnnkit.text's)


class CharVocabulary:
    """The sorted set of characters of a text, with ``char_to_index`` and ``index_to_char``."""

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"CharVocabulary expects a str, got {type(text).__name__}.")
        if not text:
            raise ValueError("CharVocabulary needs a non-empty text.")
        self.chars: list[str] = sorted(set(text))
        self.char_to_index = {c: i for i, c in enumerate(self.chars)}
        self.index_to_char = dict(enumerate(self.chars))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Indices of the characters of ``text``; every character must be in the vocabulary."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}.")
        unknown = sorted(set(text) - set(self.char_to_index))
        if unknown:
            raise ValueError(
                f"Text contains characters that are not in the vocabulary: {''.join(unknown)!r}. "
                f"The vocabulary is {''.join(self.chars)!r}."
            )
        return np.array([self.char_to_index[c] for c in text], dtype=np.int64)

    def decode(self, indices: Any) -> str:
        return "".join(self.index_to_char[int(i)] for i in np.asarray(indices).ravel())

    def get_config(self) -> dict:
        return {"chars": "".join(self.chars)}

    def __repr__(self) -> str:
        return f"CharVocabulary({''.join(self.chars)!r})"


def sliding_windows(text: str, seq_length: int, vocab: CharVocabulary | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every ``seq_length`` characters of ``text`` and the character after them, as indices.

    Returns ``X (N, seq_length)`` and ``y (N,)`` with ``N = len(text) - seq_length``,
    exactly the article's loop ``for i in range(len(text) - seq_length)``.
    """
    seq_length = check_positive_int("seq_length", seq_length)
    if not isinstance(text, str):
        raise TypeError(f"sliding_windows expects a str, got {type(text).__name__}.")
    if not text:
        raise ValueError("The text is empty; give at least seq_length + 1 characters.")
    if seq_length >= len(text):
        raise ValueError(
            f"seq_length ({seq_length}) must be smaller than the text length ({len(text)}): "
            "each window needs a following character to predict."
        )
    vocab = vocab or CharVocabulary(text)
    ids = vocab.encode(text)
    n = len(text) - seq_length
    X = np.lib.stride_tricks.sliding_window_view(ids, seq_length)[:n].copy()   # (N, seq_length)
    y = ids[seq_length:].copy()                                               # (N,)
    return X, y


def char_dataset(text: str, seq_length: int) -> tuple[CharVocabulary, np.ndarray, np.ndarray]:
    """The article's data: the vocabulary, one-hot ``X (N, seq_length, V)`` and ``y (N, V)``."""
    vocab = CharVocabulary(text) if isinstance(text, str) and text else None
    X, y = sliding_windows(text, seq_length, vocab)
    return vocab, one_hot(X, len(vocab)), one_hot(y, len(vocab))


def generate_text(model, vocab: CharVocabulary, seed_text: str, length: int = 50,
                  temperature: float = 0.0, rng: np.random.Generator | None = None) -> str:
    """Extend ``seed_text`` by ``length`` characters, each predicted from the last ``seq_length``.

    ``temperature=0`` takes the most likely character (the article's ``argmax``); a positive
    temperature samples from the softmax sharpened or flattened by it, using ``rng``.
    """
    length = int(length)
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}.")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}.")
    if model.input_shape is None or len(model.input_shape) != 2:
        raise ValueError("generate_text needs a model built for inputs (timesteps, vocabulary size).")
    seq_length, depth = model.input_shape
    if depth != len(vocab):
        raise ValueError(f"The model takes {depth} features per step but the vocabulary has {len(vocab)} characters.")
    vocab.encode(seed_text)  # unknown characters: a clear error before any work
    if seq_length is not None and len(seed_text) < seq_length:
        raise ValueError(f"seed_text must have at least seq_length={seq_length} characters, got {len(seed_text)}.")
    window = seq_length or len(seed_text)
    rng = rng if rng is not None else np.random.default_rng()
    out = seed_text
    for _ in range(length):
        x = one_hot(vocab.encode(out[-window:]), depth, dtype=model.dtype)[None]   # (1, T, V)
        probs = model.predict_on_batch(x)[0].astype(np.float64)                   # (V,)
        if temperature == 0:
            nxt = int(np.argmax(probs))
        else:
            logits = np.log(np.maximum(probs, 1e-30)) / temperature
            p = np.exp(logits - logits.max())
            nxt = int(rng.choice(depth, p=p / p.sum()))
        out += vocab.index_to_char[nxt]
    return out
