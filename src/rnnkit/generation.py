"""Text generation from a language model: greedy, sampling (temperature, top-k, top-p, min-p) and beam search.

``generate(model, prompt, max_new_tokens, ...)`` extends a prompt one token at a time with the
semantics of Hugging Face transformers' ``generate``:

* **Greedy or sampled.** ``do_sample=None`` (the default) samples when ``temperature > 0`` and
  takes the most likely token when ``temperature == 0`` (the article's ``argmax``);
  ``do_sample=False`` is greedy whatever the temperature, as in transformers.
* **Sampling** turns the scores (logits, or log-probabilities for a softmax model) into a
  distribution by, in transformers' order: the repetition penalty (a score ``s`` of a token
  already in the sequence becomes ``s / penalty`` if ``s > 0``, else ``s * penalty``), the
  temperature (``s / T``), top-k (keep the ``k`` best, ties with the k-th kept), top-p (keep the
  most likely tokens whose probabilities add up to at least ``p``), min-p (drop the tokens less
  likely than ``min_p`` times the most likely one); then one token is drawn per sequence from the
  ``numpy.random.Generator`` made from ``seed``.
* **Beam search** (``num_beams > 1``) keeps the ``num_beams`` best partial sequences by the sum of
  their tokens' log-probabilities; a sequence that ends (a stop string or id, or the length limit)
  is scored ``sum log p / n ** length_penalty`` (``n`` the number of generated tokens, stop token
  included) and the ``num_return_sequences`` best are returned.

Two ways to run the model:

* **Re-run over a window** (any model): each new token runs the model on the last ``window``
  tokens (the model's fixed input length, e.g. the article's 3 characters, or the whole context
  for a model with a variable time axis). A new token costs a forward pass over the window.
* **Stateful** (a model with ``stateful=True`` recurrent layers and a variable time axis): the
  prompt is fed once, then each new token is one step of the recurrent layers carrying their
  state, so a new token costs one step whatever the context length. The layers' carried states
  are saved before generating and put back after it, so generating in the middle of a training
  run changes nothing.

The model's input says how tokens are fed: ``(T,)`` integer ids (a model that starts with an
``Embedding``) or ``(T, V)`` one-hot vectors (the article's model). Its output, ``(B, V)`` or the
``(B, T, V)`` of every step (the last step is used), holds probabilities when its last layer ends
in a softmax and logits otherwise (``from_logits`` overrides that guess).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import numpy as np

from rnnkit import backend
from rnnkit.utils import one_hot

_NEG_INF = -np.inf


# -- the samplers: scores (B, V) -> scores (B, V), filtered tokens set to -inf -------------------------------------
def apply_repetition_penalty(scores: np.ndarray, sequences: Sequence[Sequence[int]], penalty: float) -> np.ndarray:
    """transformers' ``RepetitionPenaltyLogitsProcessor``: every token already in row ``b``'s sequence
    has its score divided by ``penalty`` where positive and multiplied by it where negative.

    ``scores (B, V)``; ``sequences``: ``B`` token sequences (prompt and generated tokens). Returns a new array.
    """
    out = np.array(scores, dtype=np.float64)
    if penalty == 1.0:
        return out
    for b, seq in enumerate(sequences):
        seen = np.unique(np.asarray(seq, dtype=np.int64))           # (n_seen,)
        s = out[b, seen]
        out[b, seen] = np.where(s < 0, s * penalty, s / penalty)
    return out


def filter_scores(scores: np.ndarray, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  min_p: float | None = None) -> np.ndarray:
    """Temperature, top-k, top-p and min-p applied to ``scores (B, V)`` in that order (transformers' warpers).

    Filtered tokens get ``-inf``; at least one token (the best) is always kept. Returns a new
    float64 array; ``softmax`` of it is the distribution a token is drawn from.
    """
    s = np.array(scores, dtype=np.float64)
    if s.ndim == 1:
        return filter_scores(s[None], temperature, top_k, top_p, min_p)[0]
    if temperature != 1.0:
        s = s / temperature
    V = s.shape[-1]
    if top_k is not None and top_k < V:
        kth = -np.partition(-s, top_k - 1, axis=-1)[:, top_k - 1:top_k]   # (B, 1): the k-th largest score
        s[s < kth] = _NEG_INF                                             # ties with the k-th stay
    if top_p is not None and top_p < 1.0:
        order = np.argsort(s, axis=-1, kind="stable")                     # (B, V) ascending
        cum = np.cumsum(softmax(np.take_along_axis(s, order, axis=-1)), axis=-1)
        drop_sorted = cum <= 1.0 - top_p                                  # the unlikely tail adds up to <= 1 - p
        drop_sorted[:, -1] = False                                        # keep at least the best token
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        s[drop] = _NEG_INF
    if min_p is not None and min_p > 0.0:
        p = softmax(s)
        drop = p < min_p * p.max(axis=-1, keepdims=True)
        drop[np.arange(len(s)), np.argmax(s, axis=-1)] = False
        s[drop] = _NEG_INF
    return s


def softmax(scores: np.ndarray) -> np.ndarray:
    """``softmax`` over the last axis; ``-inf`` scores get probability 0."""
    z = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def sample(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One token per row of ``probs (B, V)``, by inverting the cumulative distribution at ``rng.random(B)``."""
    cdf = np.cumsum(probs, axis=-1)                                       # (B, V)
    u = rng.random(len(probs)) * cdf[:, -1]                               # (B,)
    tokens = (cdf <= u[:, None]).sum(axis=-1)                             # first index with cdf > u
    return np.minimum(tokens, probs.shape[-1] - 1).astype(np.int64)


# -- checking the arguments -----------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _check_options(max_new_tokens, temperature, top_k, top_p, min_p, repetition_penalty, do_sample, num_beams,
                   length_penalty, num_return_sequences, stream, window, early_stopping) -> bool:
    """Every option checked before any work; returns whether to sample."""
    if not _is_int(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}.")
    if not _is_number(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 is greedy), got {temperature!r}.")
    if top_k is not None and (not _is_int(top_k) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 or None, got {top_k!r}.")
    if top_p is not None and (not _is_number(top_p) or not 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must be a number in (0, 1] or None, got {top_p!r}.")
    if min_p is not None and (not _is_number(min_p) or not 0.0 <= min_p <= 1.0):
        raise ValueError(f"min_p must be a number in [0, 1] or None, got {min_p!r}.")
    if not _is_number(repetition_penalty) or repetition_penalty <= 0:
        raise ValueError(f"repetition_penalty must be a number > 0 (1.0 is none), got {repetition_penalty!r}.")
    if do_sample is not None and not isinstance(do_sample, (bool, np.bool_)):
        raise TypeError(f"do_sample must be True, False or None, got {type(do_sample).__name__}: {do_sample!r}.")
    if not _is_int(num_beams) or num_beams < 1:
        raise ValueError(f"num_beams must be an integer >= 1, got {num_beams!r}.")
    if not _is_number(length_penalty):
        raise ValueError(f"length_penalty must be a finite number, got {length_penalty!r}.")
    if not _is_int(num_return_sequences) or num_return_sequences < 1:
        raise ValueError(f"num_return_sequences must be an integer >= 1, got {num_return_sequences!r}.")
    if not isinstance(stream, (bool, np.bool_)):
        raise TypeError(f"stream must be True or False, got {type(stream).__name__}: {stream!r}.")
    if window is not None and (not _is_int(window) or window < 1):
        raise ValueError(f"window must be a positive integer or None, got {window!r}.")
    if early_stopping not in (True, False, "never"):
        raise ValueError(f"early_stopping must be True, False or 'never' (as in transformers), got {early_stopping!r}.")
    if num_beams > 1:
        if do_sample:
            raise ValueError("Beam search with sampling is not supported: use num_beams=1 to sample, or "
                             "do_sample=None/False for beam search.")
        shaping = {"temperature": temperature if temperature != 1.0 else None, "top_k": top_k, "top_p": top_p,
                   "min_p": min_p}
        given = [f"{k}={v!r}" for k, v in shaping.items() if v is not None]
        if given:
            raise ValueError(f"Beam search ranks sequences by the model's own log-probabilities; {', '.join(given)} "
                             "only shape sampling. Leave them at their defaults with num_beams > 1.")
        if num_return_sequences > num_beams:
            raise ValueError(f"num_return_sequences ({num_return_sequences}) must be <= num_beams ({num_beams}): "
                             "beam search keeps num_beams sequences.")
        if stream:
            raise ValueError("stream=True yields tokens as they are chosen, which beam search cannot do (its best "
                             "sequence is known only at the end); use num_beams=1.")
        return False
    sampling = (temperature > 0) if do_sample is None else bool(do_sample)
    if sampling and temperature == 0:
        raise ValueError("do_sample=True needs temperature > 0; temperature=0 means greedy (do_sample=False).")
    if not sampling and num_return_sequences > 1:
        raise ValueError(f"Greedy decoding gives one sequence; num_return_sequences={num_return_sequences} needs "
                         "sampling (temperature > 0) or beam search (num_beams >= num_return_sequences).")
    if stream and num_return_sequences > 1:
        raise ValueError("stream=True yields the tokens of one sequence; use num_return_sequences=1.")
    return sampling


def _make_rng(seed: Any, sampling: bool) -> np.random.Generator | None:
    """The generator tokens are drawn with; None when nothing is drawn (the global seed stream is left alone)."""
    if not (seed is None or isinstance(seed, np.random.Generator) or (_is_int(seed) and seed >= 0)):
        raise TypeError(f"seed must be a non-negative integer, a numpy.random.Generator or None, got {seed!r}.")
    if not sampling:
        return None
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng(backend.next_seed())       # rnnkit.utils.set_random_seed, if it was called
    return np.random.default_rng(int(seed))


# -- the model: how tokens go in and scores come out ----------------------------------------------------------------
class _ModelReader:
    """What ``generate`` needs to know about a model: input encoding, vocabulary size, output kind, statefulness."""

    def __init__(self, model: Any, from_logits: bool | None, window: int | None):
        from rnnkit.models import Model

        if not isinstance(model, Model):
            raise TypeError(f"generate expects an rnnkit model (Sequential or Model), got {type(model).__name__}.")
        if model._graph is None:
            raise ValueError(f"Model '{model.name}' is not built yet; give it an input shape (Input(shape=...)) first.")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ValueError(f"generate needs a model with one input and one output; model '{model.name}' has "
                             f"{len(model.inputs)} input(s) and {len(model.outputs)} output(s).")
        self.model = model
        in_shape = tuple(model.inputs[0].shape[1:])
        out_shape = tuple(model.outputs[0].shape[1:])
        if len(in_shape) not in (1, 2) or len(out_shape) not in (1, 2) or out_shape[-1] is None:
            raise ValueError(f"generate needs a model from tokens (T,) or one-hot tokens (T, V) to next-token scores "
                             f"(V,) or (T, V); model '{model.name}' maps {(None, *in_shape)} to {(None, *out_shape)}.")
        self.vocab_size = int(out_shape[-1])
        self.one_hot = len(in_shape) == 2
        if self.one_hot and in_shape[1] != self.vocab_size:
            raise ValueError(f"Model '{model.name}' takes one-hot vectors of {in_shape[1]} features but predicts "
                             f"{self.vocab_size} tokens; both must be the vocabulary size.")
        self.fixed_length = in_shape[0]
        self.stateful_layers = [layer for layer in model.leaf_layers() if getattr(layer, "stateful", False)]
        self.stateful = bool(self.stateful_layers)
        if self.stateful:
            if window is not None:
                raise ValueError("window is for models that re-read the context; model "
                                 f"'{model.name}' is stateful and reads each token once.")
            if self.fixed_length not in (None, 1):
                raise ValueError(f"Stateful model '{model.name}' takes exactly {self.fixed_length} steps per call; "
                                 "to generate one token per step build it with a variable time axis, "
                                 "Input(shape=(None,)) (or (None, V) for one-hot inputs).")
        if self.fixed_length is not None and window is not None and window != self.fixed_length:
            raise ValueError(f"Model '{model.name}' reads exactly {self.fixed_length} tokens; window={window} "
                             "cannot change that (leave window=None).")
        self.window = self.fixed_length if self.fixed_length is not None else window
        if from_logits is None:
            last = model.outputs[0].node.layer
            last = getattr(last, "layer", last)                     # TimeDistributed(Dense(...))
            act = getattr(last, "activation", None)
            from_logits = getattr(act, "name", None) != "softmax"
        self.from_logits = bool(from_logits)

    def encode(self, tokens: np.ndarray) -> np.ndarray:
        """Token ids ``(B, T)`` as the model's input."""
        if self.one_hot:
            return one_hot(tokens, self.vocab_size, dtype=self.model.dtype)   # (B, T, V)
        return tokens

    def scores(self, tokens: np.ndarray) -> np.ndarray:
        """The model's raw scores for the token after ``tokens (B, T)``: logits or log-probabilities ``(B, V)``."""
        out = np.asarray(self.model.predict_on_batch(self.encode(tokens)), dtype=np.float64)
        if out.ndim == 3:
            out = out[:, -1]                                        # (B, V): the last step's prediction
        if self.from_logits:
            return out
        with np.errstate(divide="ignore"):
            return np.log(out / out.sum(axis=-1, keepdims=True))    # -inf for a probability of exactly 0


class _Rerun:
    """Each new token re-runs the model on the last ``window`` tokens of every sequence."""

    def __init__(self, reader: _ModelReader):
        self.reader = reader

    def start(self, seqs: np.ndarray) -> np.ndarray:
        return self.step(seqs)

    def step(self, seqs: np.ndarray) -> np.ndarray:
        w = self.reader.window
        return self.reader.scores(seqs if w is None else seqs[:, -w:])

    def reorder(self, index: np.ndarray) -> None:
        pass                                                        # the sequences hold everything

    def close(self) -> None:
        pass


class _Stateful:
    """The prompt is read once; each new token is one step of the recurrent layers, which carry the state."""

    def __init__(self, reader: _ModelReader):
        self.reader = reader
        self.saved = [layer.states for layer in reader.stateful_layers]
        for layer in reader.stateful_layers:
            layer.reset_states()

    def start(self, seqs: np.ndarray) -> np.ndarray:
        if self.reader.fixed_length == 1:                           # a one-step model: the prompt token by token
            for t in range(seqs.shape[1] - 1):
                self.reader.scores(seqs[:, t:t + 1])
            return self.reader.scores(seqs[:, -1:])
        return self.reader.scores(seqs)

    def step(self, seqs: np.ndarray) -> np.ndarray:
        return self.reader.scores(seqs[:, -1:])                     # (B, 1): only the newest token

    def reorder(self, index: np.ndarray) -> None:
        """Beam search moved sequences: row ``i`` continues old row ``index[i]``, so its state does too."""
        for layer in self.reader.stateful_layers:
            layer.states = [s[index] for s in layer.states]

    def close(self) -> None:
        for layer, states in zip(self.reader.stateful_layers, self.saved):
            layer.states = states


# -- stop conditions ----------------------------------------------------------------------------------------------
class _Stops:
    """Stop strings and ids; a stop is found only where it ends with the newest token."""

    def __init__(self, stop: Any, vocab: Any, vocab_size: int):
        self.strings: list[str] = []
        self.id_seqs: list[tuple[int, ...]] = []
        self.vocab = vocab
        items = [] if stop is None else (list(stop) if isinstance(stop, (list, tuple)) else [stop])
        for item in items:
            if isinstance(item, str):
                if not item:
                    raise ValueError("A stop string must not be empty.")
                if vocab is None:
                    raise ValueError(f"The stop string {item!r} needs vocab= to turn tokens into text.")
                self.strings.append(item)
                continue
            ids = [item] if _is_int(item) else (list(item) if isinstance(item, (list, tuple, np.ndarray)) else None)
            if not ids or not all(_is_int(i) and 0 <= i < vocab_size for i in ids):
                raise ValueError(f"stop must be a string, a token id in [0, {vocab_size}), or a list of them (a "
                                 f"list of ids is a sequence that stops generation); got {item!r}.")
            self.id_seqs.append(tuple(int(i) for i in ids))

    def __bool__(self) -> bool:
        return bool(self.strings or self.id_seqs)

    def hit(self, seq: Sequence[int]) -> bool:
        for ids in self.id_seqs:
            if len(seq) >= len(ids) and tuple(seq[-len(ids):]) == ids:
                return True
        if self.strings:
            last = self.vocab.decode([seq[-1]])
            for s in self.strings:
                # the text that could hold a stop string ending inside the newest token
                n = len(s) + len(last) - 1
                tail, k = "", len(seq)
                while len(tail) < n and k > 0:
                    k -= 1
                    tail = self.vocab.decode([seq[k]]) + tail
                start = max(0, len(tail) - n)
                if s in tail[start:]:
                    return True
        return False


# -- generate ---------------------------------------------------------------------------------------------------
def generate(model: Any, prompt: str | Sequence[int] | np.ndarray, max_new_tokens: int, *,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             min_p: float | None = None, repetition_penalty: float = 1.0, do_sample: bool | None = None,
             num_beams: int = 1, length_penalty: float = 1.0, early_stopping: bool | str = False,
             num_return_sequences: int = 1, stop: Any = None, seed: int | np.random.Generator | None = None,
             stream: bool = False, vocab: Any = None, window: int | None = None,
             from_logits: bool | None = None) -> Any:
    """Extend ``prompt`` by up to ``max_new_tokens`` tokens predicted by ``model``.

    Args:
        model: an rnnkit model from tokens ``(B, T)`` (ids, e.g. into an ``Embedding``) or one-hot
            tokens ``(B, T, V)`` to next-token scores ``(B, V)`` or ``(B, T, V)``; stateful
            recurrent layers make it the one-step-per-token path (see the module docstring).
        prompt: a string (with ``vocab``) or a sequence of token ids; at least one token, and at
            least the model's input length for a model with a fixed one.
        max_new_tokens: how many tokens to add at most (generation also ends at a stop).
        temperature: divides the scores before sampling; 0 means greedy.
        top_k, top_p, min_p: sampling filters (None: off), applied after the temperature.
        repetition_penalty: > 1 discourages tokens already in the sequence (prompt included).
        do_sample: None samples iff ``temperature > 0``; False is greedy; True samples.
        num_beams: > 1 runs beam search; ``length_penalty`` (> 0 favours longer sequences) and
            ``early_stopping`` (True, False or "never", transformers' meaning) apply to it.
        num_return_sequences: sampled sequences (independent draws) or best beams to return.
        stop: a string (with ``vocab``), a token id, a list of ids that must appear in that order,
            or a list of these; a sequence ends once a stop has been generated (it is kept in the
            output, as in transformers).
        seed: an int or a ``numpy.random.Generator`` for reproducible sampling.
        stream: return an iterator over the new tokens (strings for a string prompt, else ids),
            yielded as they are chosen.
        vocab: turns strings into ids and back (``encode`` / ``decode``), e.g. a ``CharVocabulary``.
        window: for a model with a variable time axis that is not stateful, read only the last
            ``window`` tokens (None: the whole context).
        from_logits: whether the model outputs logits; None guesses from its last layer (a
            softmax means probabilities).

    Returns:
        The prompt with its continuation: a string for a string prompt, else a 1-D int64 array; a list
        of ``num_return_sequences`` of them when that is more than 1 (beam search: best first).
        With ``stream=True`` an iterator over the new tokens instead.

    Raises:
        ValueError / TypeError: a bad option, a prompt character outside the vocabulary, a token
            id outside ``[0, V)``, a model that is not a token model; all before any work.
    """
    sampling = _check_options(max_new_tokens, temperature, top_k, top_p, min_p, repetition_penalty, do_sample,
                              num_beams, length_penalty, num_return_sequences, stream, window, early_stopping)
    reader = _ModelReader(model, from_logits, window)
    V = reader.vocab_size
    if vocab is not None:
        if not (hasattr(vocab, "encode") and hasattr(vocab, "decode")):
            raise TypeError(f"vocab must have encode and decode (e.g. rnnkit.CharVocabulary), got "
                            f"{type(vocab).__name__}.")
        if len(vocab) != V:
            raise ValueError(f"The vocabulary has {len(vocab)} tokens but model '{model.name}' predicts {V}.")
    ids = _prompt_ids(prompt, vocab, V)
    if reader.fixed_length is not None and not reader.stateful and len(ids) < reader.fixed_length:
        raise ValueError(f"Model '{model.name}' reads {reader.fixed_length} tokens at a time; the prompt needs at "
                         f"least {reader.fixed_length}, got {len(ids)}.")
    stops = _Stops(stop, vocab, V)
    rng = _make_rng(seed, sampling)
    as_text = vocab is not None and isinstance(prompt, str)
    options = dict(sampling=sampling, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                   repetition_penalty=repetition_penalty)

    if stream:
        tokens = _sample_loop(reader, ids, max_new_tokens, 1, stops, rng, **options)
        return (vocab.decode([t]) if as_text else t for t in _first_row(tokens))
    if num_beams > 1:
        seqs = _beam_search(reader, ids, max_new_tokens, num_beams, length_penalty, early_stopping,
                            num_return_sequences, repetition_penalty, stops)
    else:
        rows: list[list[int]] = [list(ids) for _ in range(num_return_sequences)]
        for step_tokens in _sample_loop(reader, ids, max_new_tokens, num_return_sequences, stops, rng, **options):
            for row, tok in zip(rows, step_tokens):
                if tok is not None:
                    row.append(tok)
        seqs = rows
    out = [vocab.decode(s) if as_text else np.asarray(s, dtype=np.int64) for s in seqs]
    return out[0] if num_return_sequences == 1 else out


def _first_row(steps: Iterator[list]) -> Iterator[int]:
    for step_tokens in steps:
        yield step_tokens[0]


def _prompt_ids(prompt: Any, vocab: Any, vocab_size: int) -> np.ndarray:
    if isinstance(prompt, str):
        if vocab is None:
            raise ValueError("A text prompt needs vocab= (e.g. rnnkit.CharVocabulary) to turn it into token ids; "
                             "or pass the ids themselves.")
        ids = np.asarray(vocab.encode(prompt), dtype=np.int64)     # unknown characters: the vocabulary's error
    else:
        arr = np.asarray(prompt)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise TypeError(f"prompt must be a string or a 1-D sequence of integer token ids, got an array of "
                            f"shape {arr.shape} and dtype {arr.dtype}.")
        ids = arr.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"prompt token ids must be in [0, {vocab_size}), got values from {ids.min()} to "
                             f"{ids.max()}.")
    if ids.size == 0:
        raise ValueError("The prompt is empty; give at least one token for the model to continue.")
    return ids


def _sample_loop(reader: _ModelReader, ids: np.ndarray, max_new_tokens: int, n: int, stops: _Stops,
                 rng: np.random.Generator | None, sampling: bool, temperature: float, top_k, top_p, min_p,
                 repetition_penalty: float) -> Iterator[list]:
    """Greedy or sampled decoding of ``n`` sequences; yields each step's tokens (None for a finished row)."""
    runner = _Stateful(reader) if reader.stateful else _Rerun(reader)
    try:
        if max_new_tokens == 0:
            return
        seqs = np.tile(ids, (n, 1))                                 # (n, T): every row starts from the prompt
        scores = runner.start(seqs[:1])                             # (1, V): the prompt is read once
        scores = np.repeat(scores, n, axis=0)                       # (n, V)
        if reader.stateful and n > 1:
            runner.reorder(np.zeros(n, dtype=np.int64))             # every row carries the prompt's state
        done = np.zeros(n, dtype=bool)
        for t in range(max_new_tokens):
            scores = apply_repetition_penalty(scores, seqs, repetition_penalty)
            if sampling:
                tokens = sample(softmax(filter_scores(scores, temperature, top_k, top_p, min_p)), rng)   # (n,)
            else:
                tokens = np.argmax(scores, axis=-1)                 # (n,)
            seqs = np.concatenate([seqs, tokens[:, None]], axis=1)  # (n, T + 1); finished rows run on unseen
            yield [None if done[b] else int(tokens[b]) for b in range(n)]
            if stops:
                done |= np.array([stops.hit(row) for row in seqs])
            if done.all() or t + 1 == max_new_tokens:
                return
            scores = runner.step(seqs)
    finally:
        runner.close()


def _beam_search(reader: _ModelReader, ids: np.ndarray, max_new_tokens: int, num_beams: int, length_penalty: float,
                 early_stopping: bool | str, num_return: int, repetition_penalty: float,
                 stops: _Stops) -> list[list[int]]:
    """transformers' beam search: ``num_beams`` running sequences, the ``2 * num_beams`` best continuations
    considered at each step, finished sequences scored ``sum log p / generated_length ** length_penalty``."""
    if max_new_tokens == 0:
        return [list(ids)] * num_return
    runner = _Stateful(reader) if reader.stateful else _Rerun(reader)
    finished: list[tuple[float, list[int]]] = []               # (score, sequence), best first, at most num_beams

    def add_finished(score: float, seq: list[int]) -> None:
        finished.append((score, seq))
        finished.sort(key=lambda item: -item[0])                # stable: an earlier hypothesis wins a tie
        del finished[num_beams:]

    try:
        seqs = ids[None, :]                                     # (1, T): one beam to start, not num_beams copies
        beam_scores = np.zeros(1)                               # (K,) sum of log-probabilities so far
        scores = runner.start(seqs)
        for t in range(max_new_tokens):
            logp = apply_repetition_penalty(log_softmax(scores), seqs, repetition_penalty)   # (K, V)
            V = logp.shape[-1]
            cand = (beam_scores[:, None] + logp).ravel()        # (K * V,)
            n_cand = min(2 * num_beams, cand.size)
            top = np.argsort(-cand, kind="stable")[:n_cand]     # best first; ties: lower beam, then lower token
            last_step = t + 1 == max_new_tokens
            next_beams: list[tuple[int, int, float]] = []       # (beam, token, score)
            gen_len = t + 1
            best_running = None
            for rank, flat in enumerate(top):
                b, tok, score = int(flat // V), int(flat % V), float(cand[flat])
                if not np.isfinite(score):
                    break
                new_seq = [*seqs[b].tolist(), tok]
                if last_step or (stops and stops.hit(new_seq)):
                    # only the num_beams best may finish, as in transformers; the rest are only a reserve
                    if rank < num_beams and not (early_stopping is True and len(finished) == num_beams):
                        final = score / gen_len ** length_penalty
                        if len(finished) < num_beams or final > finished[-1][0]:
                            add_finished(final, new_seq)
                    continue
                if len(next_beams) < num_beams:
                    next_beams.append((b, tok, score))
                    best_running = score if best_running is None else best_running
            if last_step or not next_beams:
                break
            if len(finished) == num_beams:
                if early_stopping is True:
                    break
                if early_stopping is False:
                    reach = best_running / gen_len ** length_penalty
                else:                                           # "never": the best that could still come
                    n = max_new_tokens if length_penalty > 0 else gen_len
                    reach = best_running / n ** length_penalty
                if reach <= finished[-1][0]:
                    break
            index = np.array([b for b, _, _ in next_beams])
            tokens = np.array([tok for _, tok, _ in next_beams])
            seqs = np.concatenate([seqs[index], tokens[:, None]], axis=1)   # (K, T + t + 1)
            beam_scores = np.array([s for _, _, s in next_beams])
            runner.reorder(index)
            scores = runner.step(seqs)
    finally:
        runner.close()
    return [seq for _, seq in finished[:num_return]]


__all__ = ["generate", "apply_repetition_penalty", "filter_scores", "softmax", "log_softmax", "sample"]
