"""``StringLookup``: strings to integer indices, and back, with a vocabulary learned by ``adapt``.

A preprocessing layer, as in Keras: it runs on NumPy arrays or lists of Python strings *before*
``fit`` (``ids = lookup(tokens)``, then ``model.fit(ids, y)``), not inside a model's graph, since
strings have no gradient. Keras users do the same with NumPy data. The vocabulary is plain data:
``get_config()`` holds it, so ``json.dumps(layer.get_config())`` saves the layer and
``StringLookup.from_config(json.loads(text))`` restores it (no pickle).

Indices, as in Keras' ``"int"`` output mode::

    [mask_token (if not None)] [oov_token x num_oov_indices] [tokens, most frequent first]
     index 0                    next index(es)                 the rest

``adapt`` counts the tokens and sorts them by count, high to low, breaking ties by the tokens
themselves, also high to low (Keras sorts ``(count, token bytes)`` and reverses the order);
``max_tokens`` (mask and OOV included) keeps the most frequent.

Differences from Keras, all deliberate: ``output_mode="int"`` only (Keras also has ``"one_hot"``,
``"multi_hot"``, ``"count"``, ``"tf_idf"``); ``num_oov_indices`` is 0 or 1 (Keras hashes OOV tokens
into several buckets with FarmHash64); ``adapt`` may replace a vocabulary given in the constructor;
calling the layer before it has a vocabulary, or adapting on data without a token, is an error
(Keras maps everything to OOV, or keeps the old vocabulary); with ``invert=True`` the result is a
NumPy array of ``str`` of the input's shape.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

_UNSUPPORTED_MODES = ("one_hot", "multi_hot", "count", "tf_idf", "binary", "tf-idf")


def _check_max_tokens(max_tokens: Any) -> int | None:
    if max_tokens is None:
        return None
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)):
        raise TypeError(f"max_tokens must be an integer or None, got {type(max_tokens).__name__}: {max_tokens!r}.")
    if max_tokens <= 1:   # Keras: mask and OOV alone would fill the vocabulary
        raise ValueError(f"If set, max_tokens must be greater than 1 (it counts the mask and OOV tokens too), "
                         f"got {max_tokens}.")
    return int(max_tokens)


def check_unsupported(layer: str, output_mode: Any, pad_to_max_tokens: Any, sparse: Any,
                      idf_weights: Any, encoding: Any) -> None:
    """Refuse, with a clear message, the Keras options that rnnkit's preprocessing layers do not have."""
    if output_mode in _UNSUPPORTED_MODES:
        raise ValueError(f"{layer}: rnnkit supports output_mode='int' only, got {output_mode!r}. For a bag of words "
                         "count the ids yourself, e.g. np.add.at(counts, (rows, ids), 1).")
    if output_mode != "int":
        raise ValueError(f"{layer}: output_mode must be 'int', got {output_mode!r}.")
    if pad_to_max_tokens:
        raise ValueError(f"{layer}: pad_to_max_tokens applies to the 'multi_hot', 'count' and 'tf_idf' output modes, "
                         "which rnnkit does not have; leave it False.")
    if sparse:
        raise ValueError(f"{layer}: sparse=True is not supported (NumPy outputs are dense); leave it False.")
    if idf_weights is not None:
        raise ValueError(f"{layer}: idf_weights applies to output_mode='tf_idf', which rnnkit does not have.")
    if not isinstance(encoding, str):
        raise TypeError(f"{layer}: encoding must be a string such as 'utf-8', got {type(encoding).__name__}.")
    "".encode(encoding)   # LookupError now, for an encoding Python does not know


def as_string_array(inputs: Any, encoding: str, what: str) -> np.ndarray:
    """``inputs`` (a string, or nested lists / an array of strings) as an object array of ``str``.

    ``bytes`` are decoded with ``encoding``; anything else is a ``TypeError`` naming what was found.
    """
    if isinstance(inputs, (str, bytes)):
        arr = np.empty((), dtype=object)
        arr[()] = inputs
    else:
        try:
            arr = np.array(inputs, dtype=object)   # a copy: decoding bytes below must not touch the caller's
        except ValueError as exc:   # NumPy refuses some ragged nestings outright
            raise TypeError(f"{what} expects strings in a list or an array of one shape; got {exc}.") from None
    flat = arr.reshape(-1)
    for i, item in enumerate(flat):
        if isinstance(item, bytes):
            flat[i] = item.decode(encoding)
        elif not isinstance(item, str):
            raise TypeError(f"{what} expects strings, got {type(item).__name__}: {item!r} (in a list or array of "
                            f"shape {arr.shape}); a ragged list of lists cannot be one array of strings.")
        elif type(item) is not str:   # np.str_ and other subclasses: plain str, so dict keys and json agree
            flat[i] = str(item)
    return arr


class StringLookup:
    """Strings to indices ``(...)`` -> ``(...)`` int64, or indices to strings with ``invert=True``.

    Args (Keras' names and defaults):
        max_tokens: the largest vocabulary ``adapt`` may keep, mask and OOV indices included;
            ``None`` for no limit.
        num_oov_indices: 1 (the default): every unknown string is index ``oov_token``'s; 0: an
            unknown string is a ``ValueError``.
        mask_token: ``None`` (the default) for no mask; a string (``""`` for padding) that maps to
            index 0 and is left out of the learned vocabulary.
        oov_token: the vocabulary's name for the OOV index, and what ``invert=True`` gives for an
            index with no token.
        vocabulary: the tokens (a list or 1-D array, with or without the special tokens at the
            start, in that order) or the path of a UTF-8 text file with one token per line.
        invert: map indices to tokens instead.
    """

    def __init__(self, max_tokens: int | None = None, num_oov_indices: int = 1, mask_token: str | None = None,
                 oov_token: str = "[UNK]", vocabulary: Any = None, idf_weights: Any = None, invert: bool = False,
                 output_mode: str = "int", pad_to_max_tokens: bool = False, sparse: bool = False,
                 encoding: str = "utf-8", name: str | None = None):
        check_unsupported("StringLookup", output_mode, pad_to_max_tokens, sparse, idf_weights, encoding)
        if isinstance(num_oov_indices, bool) or not isinstance(num_oov_indices, (int, np.integer)):
            raise TypeError(f"num_oov_indices must be an integer, got {type(num_oov_indices).__name__}.")
        if num_oov_indices < 0:
            raise ValueError(f"num_oov_indices must be greater than or equal to 0, got {num_oov_indices}.")
        if num_oov_indices > 1:
            raise ValueError(f"rnnkit supports num_oov_indices of 0 or 1, got {num_oov_indices} (Keras spreads "
                             "unknown strings over several OOV indices with FarmHash64, which rnnkit does not have).")
        if mask_token is not None and not isinstance(mask_token, str):
            raise TypeError(f"mask_token must be a string or None, got {type(mask_token).__name__}: {mask_token!r}.")
        if not isinstance(oov_token, str):
            raise TypeError(f"oov_token must be a string, got {type(oov_token).__name__}: {oov_token!r}.")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty string or None, got {name!r}.")
        self.max_tokens = _check_max_tokens(max_tokens)
        self.num_oov_indices = int(num_oov_indices)
        self.mask_token = mask_token
        self.oov_token = oov_token
        self.invert = bool(invert)
        self.output_mode = output_mode
        self.encoding = encoding
        self.name = name or "string_lookup"
        self._tokens: list[str] | None = None          # the learned tokens, specials left out; None: no vocabulary
        self._index: dict[str, int] = {}               # token -> its index
        self._counts: collections.Counter = collections.Counter()   # adapt's running counts
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # -- the vocabulary ---------------------------------------------------------
    def _oov_start_index(self) -> int:
        return 1 if self.mask_token is not None else 0

    def _token_start_index(self) -> int:
        return self._oov_start_index() + self.num_oov_indices

    def _special_tokens(self) -> list[str]:
        return [self.mask_token] * self._oov_start_index() + [self.oov_token] * self.num_oov_indices

    @property
    def has_vocabulary(self) -> bool:
        """Whether ``adapt``, ``set_vocabulary`` or ``vocabulary=`` gave the layer a vocabulary."""
        return self._tokens is not None

    def vocabulary_size(self) -> int:
        """The number of indices, mask and OOV included (what ``Embedding(input_dim=...)`` needs)."""
        return self._token_start_index() + len(self._tokens or ())

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[str]:
        """The tokens in index order: ``vocabulary[i]`` is the token of index ``i``.

        With ``include_special_tokens=False`` the mask and OOV tokens are left out.
        """
        tokens = list(self._tokens or ())
        return self._special_tokens() + tokens if include_special_tokens else tokens

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Replace the vocabulary with ``vocabulary`` (tokens, or a path to a file of one token per line).

        The special tokens may lead the list (exactly ``[mask_token] + [oov_token] * num_oov_indices``,
        as ``get_vocabulary()`` gives them) or be left out; every check is made before anything changes.
        """
        if idf_weights is not None:
            raise ValueError("idf_weights applies to output_mode='tf_idf', which rnnkit does not have.")
        if isinstance(vocabulary, (str, os.PathLike)):
            path = Path(vocabulary)
            if not path.is_file():
                raise ValueError(f"Vocabulary file {str(path)!r} does not exist (a vocabulary given as a string is "
                                 "read as a path; pass a list of tokens instead).")
            lines = path.read_text(encoding="utf-8").splitlines()
            while lines and lines[-1] == "":   # Keras drops the trailing empty lines of a vocabulary file
                lines.pop()
            vocabulary = lines
        vocab = as_string_array(vocabulary, self.encoding, "set_vocabulary")
        if vocab.ndim != 1:
            raise ValueError(f"The vocabulary must be a 1-D list of tokens, got an array of shape {vocab.shape}.")
        vocab = list(vocab)
        if not vocab:
            raise ValueError("Cannot set an empty vocabulary; give at least one token.")
        special = self._special_tokens()
        tokens = vocab[len(special):] if vocab[:len(special)] == special else vocab
        repeated = [t for t, n in collections.Counter(tokens).items() if n > 1]
        if repeated:
            raise ValueError(f"The vocabulary has repeated tokens; each token may appear once. Repeated: {repeated}.")
        for token, which, applies in ((self.mask_token, "mask_token", self.mask_token is not None),
                                      (self.oov_token, "oov_token", self.invert)):   # Keras checks OOV on invert only
            if applies and token in tokens:
                raise ValueError(
                    f"The vocabulary holds the reserved {which} {token!r} at index {vocab.index(token)}. Leave the "
                    f"special tokens out, or put all of them at the start in this order: {special}."
                )
        size = len(special) + len(tokens)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError(f"The vocabulary has {size} entries (special tokens included), more than "
                             f"max_tokens={self.max_tokens}.")
        self._set_tokens(tokens)

    def _set_tokens(self, tokens: list[str]) -> None:
        start = self._token_start_index()
        self._tokens = list(tokens)
        self._index = {t: start + i for i, t in enumerate(self._tokens)}

    # -- learning the vocabulary --------------------------------------------------
    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Learn the vocabulary from ``data``: strings of any shape (a list or an array: one batch),
        or an iterable of such batches (a generator), of which ``steps`` are read if given."""
        self.reset_state()
        for batch in adapt_batches(data, steps):
            self.update_state(batch)
        self.finalize_state()

    def update_state(self, data: Any) -> None:
        """Add the tokens of one batch (strings of any shape) to the counts ``finalize_state`` sorts."""
        self._counts.update(as_string_array(data, self.encoding, "adapt").reshape(-1).tolist())

    def finalize_state(self) -> None:
        """Make the vocabulary from the counts: most frequent first, ties by token, high to low."""
        counts = dict(self._counts)
        self.reset_state()
        for special in (self.mask_token, self.oov_token):
            counts.pop(special, None)
        if not counts:
            raise ValueError("adapt found no tokens in the data (after removing the mask and OOV tokens); "
                             "give it some text.")
        # Keras: np.lexsort((tokens, counts))[::-1] on the tokens' UTF-8 bytes, whose order is the code points'
        ranked = sorted(counts, key=lambda t: (counts[t], t), reverse=True)
        if self.max_tokens is not None:
            ranked = ranked[:max(self.max_tokens - self._token_start_index(), 0)]
        self._set_tokens(ranked)

    def reset_state(self) -> None:
        """Forget the counts of an ``adapt`` in progress (the vocabulary stays)."""
        self._counts = collections.Counter()

    # -- looking up -----------------------------------------------------------------
    def __call__(self, inputs: Any) -> np.ndarray:
        """Strings ``(...)`` -> int64 indices ``(...)``; with ``invert=True`` indices -> ``str`` array."""
        if not self.has_vocabulary:
            raise ValueError(f"{type(self).__name__} '{self.name}' has no vocabulary yet: call adapt(data) or "
                             "set_vocabulary(tokens) first, or pass vocabulary=.")
        return self._invert(inputs) if self.invert else self.lookup(as_string_array(inputs, self.encoding, "lookup"))

    def lookup(self, tokens: np.ndarray) -> np.ndarray:
        """Indices of an object array of ``str`` (the work of ``__call__``), int64 of the same shape."""
        oov = self._oov_start_index() if self.num_oov_indices else -1
        flat = tokens.reshape(-1).tolist()
        ids = np.fromiter((self._index.get(t, oov) for t in flat), dtype=np.int64, count=len(flat))
        if self.mask_token is not None:
            ids[np.fromiter((t == self.mask_token for t in flat), dtype=bool, count=len(flat))] = 0
        if self.num_oov_indices == 0 and (ids < 0).any():
            unknown = sorted({t for t, i in zip(flat, ids) if i < 0})
            raise ValueError(f"With num_oov_indices=0 every input must be in the vocabulary; found unknown tokens "
                             f"{unknown[:10]}{' ...' if len(unknown) > 10 else ''}. Set num_oov_indices=1.")
        return ids.reshape(tokens.shape)

    def _invert(self, inputs: Any) -> np.ndarray:
        idx = np.asarray(inputs)
        if idx.dtype.kind not in "iu" and not (idx.dtype.kind == "f" and np.all(idx == np.round(idx))):
            raise TypeError(f"StringLookup(invert=True) expects integer indices, got dtype {idx.dtype}.")
        idx = idx.astype(np.int64)
        start = self._token_start_index()
        table = np.array([self.oov_token] + self._tokens, dtype=object)           # row 0: "no such token"
        rows = np.where((idx >= start) & (idx < start + len(self._tokens)), idx - start + 1, 0)
        out = table[rows]
        if self.mask_token is not None:
            out[idx == 0] = self.mask_token
        return out.astype(str) if out.size else np.zeros(idx.shape, dtype=str)

    # -- saving ---------------------------------------------------------------------
    def get_config(self) -> dict:
        """JSON-ready settings and the vocabulary (special tokens left out): ``from_config`` rebuilds the layer."""
        return {"name": self.name, "max_tokens": self.max_tokens, "num_oov_indices": self.num_oov_indices,
                "mask_token": self.mask_token, "oov_token": self.oov_token, "invert": self.invert,
                "output_mode": self.output_mode, "encoding": self.encoding,
                "vocabulary": None if self._tokens is None else list(self._tokens)}

    @classmethod
    def from_config(cls, config: dict) -> StringLookup:
        if not isinstance(config, dict):
            raise TypeError(f"from_config expects the dict get_config() gave, got {type(config).__name__}.")
        config = dict(config)
        vocabulary = config.pop("vocabulary", None)
        layer = cls(**config)
        if vocabulary:
            layer.set_vocabulary(vocabulary)
        elif vocabulary is not None:   # []: an adapt whose max_tokens left room for the special tokens only
            layer._set_tokens([])
        return layer

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} vocabulary_size={self.vocabulary_size()}>"


def adapt_batches(data: Any, steps: int | None) -> Iterable[Any]:
    """``adapt``'s data as batches: a string, list, tuple or array is one batch, other iterables yield batches."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
        raise ValueError(f"steps must be a positive integer or None, got {steps!r}.")
    if isinstance(data, (str, bytes, list, tuple, np.ndarray)):
        if steps is not None:
            raise ValueError("steps applies to an iterable of batches (a generator), not to a list or an array.")
        return [data]
    if not hasattr(data, "__iter__"):
        raise TypeError(f"adapt expects strings (a list or an array) or an iterable of batches of strings, got "
                        f"{type(data).__name__}.")
    iterator = iter(data)
    if steps is None:
        return iterator
    return (batch for _, batch in zip(range(steps), iterator))


__all__ = ["StringLookup"]
