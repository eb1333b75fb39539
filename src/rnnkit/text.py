"""Character-level text helpers: the vocabulary, the article's sliding windows, generation, and the batches
of truncated backpropagation through time (``StreamBatches`` with the ``ResetStates`` callback)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.callbacks import Callback
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
    temperature samples from the softmax sharpened or flattened by it, using ``rng``. This is
    ``rnnkit.generation.generate`` with the article's model in mind; that function has the
    other samplers, beam search, stop strings and the stateful path.
    """
    from rnnkit.generation import generate

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
    # a model with a variable time axis reads as many characters as the seed text has, as before
    stateful = any(getattr(layer, "stateful", False) for layer in model.leaf_layers())
    window = None if seq_length is not None or stateful else len(seed_text)
    return generate(model, seed_text, length, temperature=temperature, seed=rng, vocab=vocab, window=window)


class StreamBatches:
    """A long token sequence laid out for truncated backpropagation through time, as char-rnn does.

    The first ``n = num_batches * batch_size * seq_len`` tokens are cut into ``batch_size`` rows
    of ``num_batches * seq_len`` consecutive tokens each (row ``r`` is ``ids[r * L:(r + 1) * L]``);
    batch ``j`` holds columns ``[j * seq_len, (j + 1) * seq_len)`` of every row, so row ``r`` of
    batch ``j + 1`` continues row ``r`` of batch ``j`` and a stateful layer carries the right
    state from one window into the next. The targets are the tokens one step later
    (``ids[1:n + 1]`` laid out the same way); the tokens after ``n`` are left out.

    ``x`` and ``y`` hold the batches one after the other, ``(num_batches * batch_size, seq_len)``,
    so that ``fit`` with ``batch_size=stream.batch_size`` and ``shuffle=False`` reads them in order::

        model.fit(stream.x, stream.y, batch_size=stream.batch_size, shuffle=False, callbacks=[ResetStates()])

    The gradient stops at each window's start: a stateful layer begins a batch from the state
    the previous batch left, a constant, as in char-rnn and PyTorch's ``h.detach()``.
    """

    def __init__(self, ids: Any, batch_size: int, seq_len: int):
        batch_size = check_positive_int("batch_size", batch_size)
        seq_len = check_positive_int("seq_len", seq_len)
        arr = np.asarray(ids)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise TypeError(f"StreamBatches expects a 1-D sequence of integer token ids, got an array of shape "
                            f"{arr.shape} and dtype {arr.dtype}; encode text first, e.g. vocab.encode(text).")
        num_batches = (len(arr) - 1) // (batch_size * seq_len) if len(arr) else 0
        if num_batches < 1:
            raise ValueError(f"StreamBatches needs more than batch_size * seq_len = {batch_size * seq_len} tokens "
                             f"(one batch and the target after it), got {len(arr)}; use a smaller batch_size or "
                             "seq_len.")
        n = num_batches * batch_size * seq_len
        self.batch_size, self.seq_len, self.num_batches = batch_size, seq_len, num_batches
        self.ids = arr.astype(np.int64)
        self.x = self._layout(self.ids[:n])           # (num_batches * B, seq_len)
        self.y = self._layout(self.ids[1:n + 1])      # (num_batches * B, seq_len): one token later

    def _layout(self, tokens: np.ndarray) -> np.ndarray:
        B, k, nb = self.batch_size, self.seq_len, self.num_batches
        rows = tokens.reshape(B, nb, k)               # (B, num_batches, seq_len): row r's windows in order
        return np.ascontiguousarray(rows.transpose(1, 0, 2)).reshape(nb * B, k)

    @property
    def tokens(self) -> int:
        """How many tokens (positions with a target) the batches cover."""
        return self.num_batches * self.batch_size * self.seq_len

    def __len__(self) -> int:
        return self.num_batches

    def batch(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``j``: ``x (batch_size, seq_len)`` and ``y (batch_size, seq_len)``."""
        if not isinstance(j, (int, np.integer)) or isinstance(j, bool) or not -self.num_batches <= j < self.num_batches:
            raise IndexError(f"batch index must be an integer in [0, {self.num_batches}), got {j!r}.")
        j = int(j) % self.num_batches
        rows = slice(j * self.batch_size, (j + 1) * self.batch_size)
        return self.x[rows], self.y[rows]

    def __iter__(self):
        for j in range(self.num_batches):
            yield self.batch(j)

    def __repr__(self) -> str:
        return (f"StreamBatches(batches={self.num_batches}, batch_size={self.batch_size}, seq_len={self.seq_len}, "
                f"tokens={self.tokens})")


class ResetStates(Callback):
    """Forget the state of every stateful layer at the start of each epoch (a new pass over the stream)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_states()
