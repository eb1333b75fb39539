"""``TextVectorization``: sentences to padded sequences of word indices, as Keras' layer.

A preprocessing layer: it runs on Python strings *before* ``fit``, not inside a model's graph
(strings have no gradient), as Keras users do with NumPy data::

    vectorize = TextVectorization(max_tokens=2000, output_sequence_length=20)
    vectorize.adapt(train_texts)                       # learn the vocabulary
    x_train = vectorize(train_texts)                   # (B, 20) int64, 0 = padding, 1 = unknown word
    model = Sequential([Embedding(vectorize.vocabulary_size(), 32, mask_zero=True), ...])
    model.fit(x_train, y_train)

Each text goes through Keras' steps, in order:

1. ``standardize``: ``"lower_and_strip_punctuation"`` (the default) lowercases A-Z (ASCII only, as
   ``tf.strings.lower`` does) and deletes ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~``; ``"lower"``,
   ``"strip_punctuation"``, ``None``, or a callable ``str -> str``;
2. ``split``: ``"whitespace"`` (runs of space, tab, newline, CR, FF, VT, as ``tf.strings.split``),
   ``"character"`` (one token per code point), ``None`` (the input is already tokens), or a
   callable ``str -> list[str]``;
3. ``ngrams``: ``None``, ``n`` (all 1- to n-grams) or a tuple of widths; the n-grams of each width,
   joined by a space, follow one another (not with ``split=None``);
4. the vocabulary lookup of a ``StringLookup`` whose mask token is ``""`` (index 0, the padding)
   and OOV token ``"[UNK]"`` (index 1);
5. padding with 0 after the tokens, or truncation at the end, to ``output_sequence_length``, or
   else to the longest text of the call.

Callables get one Python string at a time (Keras hands them TensorFlow tensors); ``output_mode``
is ``"int"`` only. ``get_config()`` holds the vocabulary, so ``json.dumps(layer.get_config())``
saves the layer and ``TextVectorization.from_config`` restores it; a layer with a callable
``standardize`` or ``split`` is rebuilt from ``get_vocabulary()`` with ``vocabulary=`` instead.
"""

from __future__ import annotations

import re
import string
from typing import Any, Callable

import numpy as np

from rnnkit.layers.string_lookup import StringLookup, adapt_batches, as_string_array, check_unsupported

_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# Keras' regex [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\'] is exactly string.punctuation (32 ASCII characters)
_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")   # tf.strings.split's whitespace: ASCII only, runs count as one


def _check_option(name: str, value: Any, allowed: tuple[str, ...]) -> Any:
    if value is None or callable(value) or value in allowed:
        return value
    raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}, None or a callable, "
                     f"got {value!r}.")


def _check_ngrams(ngrams: Any) -> tuple[int, ...] | None:
    if ngrams is None:
        return None
    widths = (ngrams,) if isinstance(ngrams, (int, np.integer)) and not isinstance(ngrams, bool) else ngrams
    if not isinstance(widths, (tuple, list)) or not widths or not all(
            isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ValueError(f"ngrams must be None, a positive integer or a tuple of positive integers, got {ngrams!r}.")
    if isinstance(ngrams, (int, np.integer)):   # Keras: ngrams=n means every width from 1 to n
        return tuple(range(1, int(ngrams) + 1))
    return tuple(int(w) for w in widths)


class TextVectorization:
    """Texts ``(B,)`` (or ``(B, 1)``) -> int64 word indices ``(B, T)``; one text ``str`` -> ``(T,)``.

    ``T`` is ``output_sequence_length`` if given, else the longest text of the call. Keras' names and
    defaults: ``max_tokens`` counts the padding and OOV indices; ``vocabulary`` (a list of tokens or the
    path of a file of one token per line) replaces ``adapt``.
    """

    def __init__(self, max_tokens: int | None = None,
                 standardize: str | Callable | None = "lower_and_strip_punctuation",
                 split: str | Callable | None = "whitespace", ngrams: int | tuple[int, ...] | None = None,
                 output_mode: str = "int", output_sequence_length: int | None = None, pad_to_max_tokens: bool = False,
                 vocabulary: Any = None, idf_weights: Any = None, sparse: bool = False, ragged: bool = False,
                 encoding: str = "utf-8", name: str | None = None):
        check_unsupported("TextVectorization", output_mode, pad_to_max_tokens, sparse, idf_weights, encoding)
        if ragged:
            raise ValueError("TextVectorization: ragged=True is not supported (Keras has it on TensorFlow only); "
                             "leave it False and the texts are padded.")
        if output_sequence_length is not None and (isinstance(output_sequence_length, bool) or not isinstance(
                output_sequence_length, (int, np.integer)) or output_sequence_length < 1):
            raise ValueError(f"output_sequence_length must be a positive integer or None, "
                             f"got {output_sequence_length!r}.")
        self.standardize = _check_option("standardize", standardize, _STANDARDIZE)
        self.split = _check_option("split", split, _SPLIT)
        self.ngrams = ngrams
        self._ngram_widths = _check_ngrams(ngrams)
        if split is None and ngrams is not None:
            raise ValueError("ngrams needs a split: with split=None the inputs are single tokens already.")
        self.output_mode = output_mode
        self.output_sequence_length = None if output_sequence_length is None else int(output_sequence_length)
        self.encoding = encoding
        self.name = name or "text_vectorization"
        self._lookup = StringLookup(max_tokens=max_tokens, mask_token="", vocabulary=vocabulary, encoding=encoding,
                                    name=f"{self.name}_lookup")

    @property
    def max_tokens(self) -> int | None:
        return self._lookup.max_tokens

    # -- text to tokens ---------------------------------------------------------
    def standardize_text(self, text: str) -> str:
        """Step 1 on one text."""
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.translate(_ASCII_LOWER)
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = text.translate(_STRIP_PUNCTUATION)
        if callable(self.standardize):
            text = self.standardize(text)
            if not isinstance(text, str):
                raise TypeError(f"The standardize callable must return a str, got {type(text).__name__}.")
        return text

    def tokenize(self, text: str) -> list[str]:
        """Steps 1 to 3 on one text: its tokens (n-grams included), in order."""
        text = self.standardize_text(text)
        if self.split == "whitespace":
            tokens = [t for t in _WHITESPACE.split(text) if t]
        elif self.split == "character":
            tokens = list(text)
        elif callable(self.split):
            tokens = self.split(text)
            if isinstance(tokens, str) or not all(isinstance(t, str) for t in tokens):
                raise TypeError("The split callable must return a list of str.")
            tokens = list(tokens)
        else:
            tokens = [text]
        if self._ngram_widths is None:
            return tokens
        return [" ".join(tokens[i:i + n]) for n in self._ngram_widths for i in range(len(tokens) - n + 1)]

    def _texts(self, inputs: Any, what: str) -> tuple[np.ndarray, bool]:
        """``inputs`` as an object array of str: ``(B,)`` texts (``(B, 1)`` squeezed), and whether one ``str`` came."""
        arr = as_string_array(inputs, self.encoding, what)
        if self.split is None:
            return arr, arr.ndim == 0
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim > 1:
            raise ValueError(f"{what}: TextVectorization splits texts, so it expects one string, a list of strings "
                             f"(B,) or an array (B, 1); got shape {arr.shape}.")
        return arr, arr.ndim == 0

    # -- the vocabulary ---------------------------------------------------------
    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Learn the vocabulary from texts: a list or array ``(N,)`` / ``(N, 1)`` (one batch), or an
        iterable of such batches, of which ``steps`` are read if given. ``batch_size`` is accepted for
        Keras' signature and has no effect (counting needs no batches)."""
        self.reset_state()
        for batch in adapt_batches(data, steps):
            self.update_state(batch)
        self.finalize_state()

    def update_state(self, data: Any) -> None:
        """Count the tokens of one batch of texts (``adapt`` is ``reset_state``, these, ``finalize_state``)."""
        texts, _ = self._texts(data, "adapt")
        self._lookup.update_state([t for text in texts.reshape(-1) for t in self.tokenize(text)])

    def finalize_state(self) -> None:
        self._lookup.finalize_state()

    def reset_state(self) -> None:
        self._lookup.reset_state()

    @property
    def has_vocabulary(self) -> bool:
        """Whether ``adapt``, ``set_vocabulary`` or ``vocabulary=`` gave the layer a vocabulary."""
        return self._lookup.has_vocabulary

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[str]:
        """The tokens in index order: ``["", "[UNK]", most frequent, ...]`` (without the first two if asked)."""
        return self._lookup.get_vocabulary(include_special_tokens)

    def vocabulary_size(self) -> int:
        """The number of indices, padding and OOV included: ``Embedding``'s ``input_dim``."""
        return self._lookup.vocabulary_size()

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Replace the vocabulary (tokens, with or without ``["", "[UNK]"]`` first, or a file path)."""
        self._lookup.set_vocabulary(vocabulary, idf_weights)

    # -- the call ---------------------------------------------------------------------
    def __call__(self, inputs: Any) -> np.ndarray:
        """Texts ``(B,)`` or ``(B, 1)`` -> ``(B, T)`` int64 indices; one ``str`` -> ``(T,)``.

        With ``split=None`` the inputs are tokens already: an array ``(B, T)`` keeps its shape, padded or
        truncated along its last axis to ``output_sequence_length`` if that is set.
        """
        texts, single = self._texts(inputs, "TextVectorization")
        if not self.has_vocabulary:
            raise ValueError(f"TextVectorization '{self.name}' has no vocabulary yet: call adapt(texts) or "
                             "set_vocabulary(tokens) first, or pass vocabulary=.")
        if self.split is None:   # tokens already: standardized one by one, the array keeps its shape
            tokens = [self.standardize_text(t) for t in texts.reshape(-1)]
            ids = self._lookup.lookup(np.array(tokens, dtype=object).reshape(texts.shape))
            if self.output_sequence_length is None:
                return ids
            if ids.ndim < 2:
                raise ValueError("With split=None and output_sequence_length set, give tokens shaped (batch, steps); "
                                 f"got shape {ids.shape}.")
            return _fit_length(ids, self.output_sequence_length)
        rows = [self._lookup.lookup(np.array(self.tokenize(text) or [], dtype=object)) for text in texts.reshape(-1)]
        length = self.output_sequence_length
        if length is None:
            length = max((len(r) for r in rows), default=0)
        out = np.zeros((len(rows), length), dtype=np.int64)      # (B, T); 0 is the padding index
        for b, r in enumerate(rows):
            kept = r[:length]                                      # truncation keeps a text's first tokens
            out[b, :len(kept)] = kept
        return out[0] if single else out

    # -- saving ---------------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-ready settings and the vocabulary (without ``""`` and ``"[UNK]"``); see ``from_config``."""
        for option in ("standardize", "split"):
            if callable(getattr(self, option)):
                raise ValueError(f"A TextVectorization with a callable {option} has no JSON config; save "
                                 "get_vocabulary() and rebuild it with vocabulary= and the same callable.")
        vocab = self._lookup.get_config()["vocabulary"]
        return {"name": self.name, "max_tokens": self.max_tokens, "standardize": self.standardize,
                "split": self.split, "ngrams": list(self.ngrams) if isinstance(self.ngrams, tuple) else self.ngrams,
                "output_mode": self.output_mode, "output_sequence_length": self.output_sequence_length,
                "encoding": self.encoding, "vocabulary": vocab}

    @classmethod
    def from_config(cls, config: dict) -> TextVectorization:
        """The layer ``get_config()`` described, vocabulary included (``json.loads`` of it works too)."""
        if not isinstance(config, dict):
            raise TypeError(f"from_config expects the dict get_config() gave, got {type(config).__name__}.")
        config = dict(config)
        if isinstance(config.get("ngrams"), list):     # JSON has no tuples
            config["ngrams"] = tuple(config["ngrams"])
        vocabulary = config.pop("vocabulary", None)
        layer = cls(**config)
        if vocabulary:
            layer.set_vocabulary(vocabulary)
        elif vocabulary is not None:   # []: max_tokens left room for the padding and OOV tokens only
            layer._lookup._set_tokens([])
        return layer

    def __repr__(self) -> str:
        return f"<TextVectorization name={self.name!r} vocabulary_size={self.vocabulary_size()}>"


def _fit_length(ids: np.ndarray, length: int) -> np.ndarray:
    """Pad with 0 after, or cut at the end, the last axis of ``ids`` to ``length``."""
    out = np.zeros((*ids.shape[:-1], length), dtype=ids.dtype)
    kept = ids[..., :length]
    out[..., :kept.shape[-1]] = kept
    return out


__all__ = ["TextVectorization"]
