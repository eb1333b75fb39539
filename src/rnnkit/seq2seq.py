"""Decoding with a trained encoder-decoder: greedy search and beam search.

The models are those of Keras' sequence-to-sequence example, taken apart after training with
teacher forcing into an *encoder model* and a *one-step decoder model*:

* ``encoder(source)`` returns the decoder's initial states ``[s_1, ..., s_k]`` or, with
  ``attention=True``, the encoder's output sequence first: ``[encoder_outputs (B, Ts, E), s_1, ...]``;
* ``decoder([token, *states])`` (with attention ``decoder([token, encoder_outputs, *states])``)
  returns ``[probabilities (B, 1, V), *new_states]``, optionally followed by the attention weights
  ``(B, 1, Ts)`` of that step (``Attention(...)(..., return_attention_scores=True)``).

``token`` is the previous target token ``(B, 1)`` as an index, or ``(B, 1, V)`` one-hot: which one is
read from the decoder's first input. Both searches start from ``start_token``, stop a sequence at
``end_token`` (not returned) or after ``max_length`` tokens, and return token lists.

Greedy search takes the most likely token at every step, for a whole batch at once. Beam search
keeps the ``beam_width`` most likely prefixes of every source (scored by the sum of their tokens'
log-probabilities), all sources of a batch together in one ``(B * K)`` batch. A prefix that ends
joins its source's finished hypotheses, scored by ``log P(y) / lp(y)`` with the length penalty of
GNMT (Wu et al., 2016), ``lp(y) = ((5 + |y|) / 6) ** length_penalty`` (``|y|`` counts the end
token; ``length_penalty=0``, the default, ranks by log-probability alone, and a larger one favours
longer outputs). A source is done when it has ``beam_width`` finished hypotheses; at
``max_length`` the prefixes still open join them. ``beam_width=1`` is greedy search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.layers.base import check_positive_int
from rnnkit.models.model import Model


@dataclass
class _Step:
    """How to call a decoder model: what its inputs and outputs are."""

    encoder: Model
    decoder: Model
    vocab_size: int
    one_hot: bool
    n_context: int          # encoder outputs passed unchanged to every step (the encoder sequence)
    n_states: int
    has_weights: bool       # the decoder's last output is the step's attention weights
    from_logits: bool

    def encode(self, source: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        out = self.encoder.predict_on_batch(source if len(source) > 1 else source[0])
        out = out if isinstance(out, list) else [out]
        return out[:self.n_context], out[self.n_context:]

    def __call__(self, tokens: np.ndarray, context: list, states: list) -> tuple[np.ndarray, list, Any]:
        """One step for the tokens ``(N,)``: ``(log_probs (N, V), new states, weights (N, Ts) or None)``."""
        x = tokens[:, None]                                                      # (N, 1)
        if self.one_hot:
            x = np.eye(self.vocab_size, dtype=self.decoder.dtype)[x]            # (N, 1, V)
        out = self.decoder.predict_on_batch([x, *context, *states])
        probs = out[0].reshape(len(tokens), -1, self.vocab_size)[:, -1].astype(np.float64)   # (N, V)
        if self.from_logits:
            shifted = probs - probs.max(axis=-1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        else:
            log_probs = np.log(np.maximum(probs, np.finfo(np.float64).tiny))   # a 0 probability: very unlikely
        states = list(out[1:1 + self.n_states])
        weights = out[1 + self.n_states].reshape(len(tokens), -1, out[1 + self.n_states].shape[-1])[:, -1] \
            if self.has_weights else None                                         # (N, Ts)
        return log_probs, states, weights


def _check_token(name: str, value: Any, vocab_size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer token index, got {type(value).__name__}: {value!r}.")
    if not 0 <= value < vocab_size:
        raise ValueError(f"{name} must be a token index in [0, {vocab_size}) (the decoder's vocabulary), "
                         f"got {value}.")
    return int(value)


def _fits(a: tuple, b: tuple) -> bool:
    """Whether shapes ``a`` and ``b`` can be the same (None: any size)."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _make_step(encoder: Any, decoder: Any, attention: bool, from_logits: bool) -> _Step:
    """Check that the two models fit together (see the module docstring) and say how to call them."""
    for name, model in (("encoder", encoder), ("decoder", decoder)):
        if not isinstance(model, Model):
            raise TypeError(f"{name} must be an rnnkit Model (rnnkit.Model(inputs, outputs)), "
                            f"got {type(model).__name__}.")
    n_enc = len(encoder.outputs)
    n_context = 1 if attention else 0
    n_states = n_enc - n_context
    expected_inputs = 1 + n_enc
    if len(decoder.inputs) != expected_inputs:
        layout = "[token, encoder_outputs, *states]" if attention else "[token, *states]"
        raise ValueError(f"The encoder returns {n_enc} tensor(s), so the decoder must take {expected_inputs} inputs "
                         f"{layout}, got {len(decoder.inputs)}"
                         + ("" if attention else " (pass attention=True if the encoder returns its output sequence "
                            "first)") + ".")
    if len(decoder.outputs) not in (1 + n_states, 2 + n_states):
        raise ValueError(f"The decoder must return [probabilities, *{n_states} states] and optionally the attention "
                         f"weights last, got {len(decoder.outputs)} outputs.")
    token_shape = tuple(decoder.inputs[0].shape[1:])
    out_shape = tuple(decoder.outputs[0].shape[1:])
    vocab_size = out_shape[-1]
    if vocab_size is None or len(out_shape) not in (1, 2):
        raise ValueError(f"The decoder's first output must be the next-token distribution (B, 1, V) or (B, V) with "
                         f"a known V, got shape {(None, *out_shape)}.")
    if len(token_shape) == 1 and token_shape[0] in (1, None):
        one_hot = False
    elif len(token_shape) == 2 and token_shape[0] in (1, None) and token_shape[1] == vocab_size:
        one_hot = True
    else:
        raise ValueError(f"The decoder's first input must be the previous token, (B, 1) indices or (B, 1, {vocab_size})"
                         f" one-hot, got shape {(None, *token_shape)}.")
    if attention and len(encoder.outputs[0].shape) != 3:
        raise ValueError(f"attention=True: the encoder's first output must be its output sequence (B, Ts, E), got "
                         f"shape {encoder.outputs[0].shape}.")
    # what the encoder returns goes into the decoder's inputs after the token; each new state goes back into its own
    for i, (given, taken) in enumerate(zip(encoder.outputs, decoder.inputs[1:])):
        if not _fits(given.shape, taken.shape):
            raise ValueError(f"The encoder's output {i} has shape {given.shape} but the decoder's input {i + 1} takes "
                             f"{taken.shape}; the decoder's inputs must be the token then the encoder's outputs, "
                             "in order.")
    for i in range(n_states):
        returned, taken = decoder.outputs[1 + i].shape, decoder.inputs[1 + n_context + i].shape
        if not _fits(returned, taken):
            raise ValueError(f"The decoder returns state {i} with shape {returned} but takes it with shape {taken}"
                             + ("" if attention else "; if the encoder returns its output sequence first, pass "
                                "attention=True") + ".")
    if not isinstance(from_logits, bool):
        raise TypeError(f"from_logits must be True or False, got {from_logits!r}.")
    return _Step(encoder, decoder, vocab_size, one_hot, n_context, n_states,
                 len(decoder.outputs) == 2 + n_states, from_logits)


def _as_sources(source: Any, n_inputs: int) -> list[np.ndarray]:
    """The encoder's inputs as a list of arrays with the same number of sequences N."""
    if n_inputs > 1:
        if not isinstance(source, (list, tuple)) or len(source) != n_inputs:
            raise ValueError(f"The encoder takes {n_inputs} inputs, so source must be a list of {n_inputs} arrays.")
        arrays = [np.asarray(a) for a in source]
    else:
        arrays = [np.asarray(source)]
    if any(a.ndim < 1 for a in arrays) or len({len(a) for a in arrays}) != 1:
        raise ValueError("source must be an array (N, ...) or a list of arrays with the same N (the encoder's "
                         f"inputs), got shapes {[a.shape for a in arrays]}.")
    if len(arrays[0]) == 0:
        raise ValueError("source is empty: give at least one sequence to decode.")
    return arrays


def greedy_decode(encoder: Model, decoder: Model, source: Any, start_token: int, end_token: int, max_length: int,
                  attention: bool = False, batch_size: int = 64, from_logits: bool = False,
                  return_attention: bool = False) -> list[list[int]] | tuple[list[list[int]], list[np.ndarray]]:
    """Decode every source sequence greedily (the most likely token at each step), a batch at a time.

    Args:
        encoder, decoder: the encoder model and the one-step decoder model (see the module docstring).
        source: the encoder's input, ``(N, Ts)`` indices or ``(N, Ts, D)`` features (a list for several inputs).
        start_token, end_token: the indices that start and end a target sequence.
        max_length: the most tokens one output may have (the end token not counted).
        attention: whether the encoder returns its output sequence first, for the decoder to attend to.
        batch_size: sources decoded together.
        from_logits: whether the decoder returns logits rather than probabilities.
        return_attention: also return each output's attention weights ``(len(output), Ts)``; the decoder
            must return them as its last output.

    Returns:
        ``N`` lists of token indices (the start and end tokens left out), and with ``return_attention``
        also ``N`` arrays of attention weights.
    """
    step = _make_step(encoder, decoder, attention, from_logits)
    start_token = _check_token("start_token", start_token, step.vocab_size)
    end_token = _check_token("end_token", end_token, step.vocab_size)
    max_length = check_positive_int("max_length", max_length)
    batch_size = check_positive_int("batch_size", batch_size)
    if return_attention and not step.has_weights:
        raise ValueError("return_attention=True needs a decoder that returns the attention weights as its last "
                         "output (Attention(...)([query, value], return_attention_scores=True)).")
    sources = _as_sources(source, len(encoder.inputs))
    outputs: list[list[int]] = []
    weights_out: list[np.ndarray] = []
    for lo in range(0, len(sources[0]), batch_size):
        context, states = step.encode([a[lo:lo + batch_size] for a in sources])
        b = len(sources[0][lo:lo + batch_size])
        tokens = np.full(b, start_token, dtype=np.int64)                    # (B,)
        generated = np.zeros((b, max_length), dtype=np.int64)               # (B, max_length)
        lengths = np.full(b, max_length)
        done = np.zeros(b, dtype=bool)
        weights = []
        for t in range(max_length):
            log_probs, states, w = step(tokens, context, states)            # (B, V)
            tokens = log_probs.argmax(axis=-1)                              # (B,)
            generated[:, t] = tokens
            weights.append(w)
            ended = (tokens == end_token) & ~done
            lengths[ended] = t
            done |= ended
            if done.all():
                break
        for i in range(b):
            outputs.append(generated[i, :lengths[i]].tolist())
            if return_attention:
                weights_out.append(np.stack([w[i] for w in weights[:lengths[i]]]) if lengths[i]
                                   else np.zeros((0, weights[0].shape[-1])))
    return (outputs, weights_out) if return_attention else outputs


def _length_penalty(length: int, alpha: float) -> float:
    return ((5.0 + length) / 6.0) ** alpha


def beam_search_decode(encoder: Model, decoder: Model, source: Any, start_token: int, end_token: int,
                       max_length: int, beam_width: int = 4, length_penalty: float = 0.0, attention: bool = False,
                       batch_size: int = 16, from_logits: bool = False,
                       return_scores: bool = False) -> list[list[int]] | tuple[list[list[int]], list[float]]:
    """Decode every source sequence by beam search (see the module docstring for the scoring).

    Args:
        encoder, decoder, source, start_token, end_token, max_length, attention, from_logits: as
            ``greedy_decode``.
        beam_width: the prefixes kept per source (1: greedy search).
        length_penalty: GNMT's ``alpha`` >= 0; 0 ranks finished outputs by log-probability alone.
        batch_size: sources decoded together (the decoder sees ``batch_size * beam_width`` rows).
        return_scores: also return each output's score ``log P(y) / lp(y)``.

    Returns:
        ``N`` lists of token indices (the best output of each source, start and end tokens left out),
        and with ``return_scores`` also their ``N`` scores.
    """
    step = _make_step(encoder, decoder, attention, from_logits)
    start_token = _check_token("start_token", start_token, step.vocab_size)
    end_token = _check_token("end_token", end_token, step.vocab_size)
    max_length = check_positive_int("max_length", max_length)
    beam_width = check_positive_int("beam_width", beam_width)
    batch_size = check_positive_int("batch_size", batch_size)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float, np.floating)) \
            or not 0.0 <= length_penalty < float("inf"):
        raise ValueError(f"length_penalty must be a finite number >= 0, got {length_penalty!r}.")
    alpha = float(length_penalty)
    sources = _as_sources(source, len(encoder.inputs))
    outputs: list[list[int]] = []
    scores_out: list[float] = []
    k, v = beam_width, step.vocab_size
    for lo in range(0, len(sources[0]), batch_size):
        context, states = step.encode([a[lo:lo + batch_size] for a in sources])
        b = len(sources[0][lo:lo + batch_size])
        context = [np.repeat(c, k, axis=0) for c in context]                 # (B*K, Ts, E): row b*K + j is beam j
        states = [np.repeat(s, k, axis=0) for s in states]                   # (B*K, H)
        scores = np.full((b, k), -np.inf)
        scores[:, 0] = 0.0                   # all beams start equal: only the first may expand at step one
        prefixes = np.zeros((b, k, 0), dtype=np.int64)                        # (B, K, t)
        tokens = np.full(b * k, start_token, dtype=np.int64)                  # (B*K,)
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
        done = np.zeros(b, dtype=bool)
        for t in range(max_length):
            log_probs, states, _ = step(tokens, context, states)             # (B*K, V)
            candidates = (scores[:, :, None] + log_probs.reshape(b, k, v)).reshape(b, k * v)   # (B, K*V)
            order = np.argsort(-candidates, axis=1, kind="stable")[:, :2 * k]  # K that go on, K that may end
            new_scores = np.full((b, k), -np.inf)
            new_beams = np.tile(np.arange(k), (b, 1))                         # (B, K): which prefix each extends
            new_tokens = np.full((b, k), end_token, dtype=np.int64)
            for i in range(b):
                if done[i]:
                    continue
                kept = 0
                for rank, c in enumerate(order[i]):
                    score = candidates[i, c]
                    if score == -np.inf:
                        break
                    beam, token = divmod(int(c), v)
                    if token == end_token:
                        if rank < k:         # an end token counts only among the K best (as fairseq, HF)
                            finished[i].append((score / _length_penalty(t + 1, alpha), prefixes[i, beam].tolist()))
                        continue
                    new_scores[i, kept], new_beams[i, kept], new_tokens[i, kept] = score, beam, token
                    kept += 1
                    if kept == k:
                        break
                done[i] = len(finished[i]) >= k
            if done.all():
                break
            rows = (np.arange(b)[:, None] * k + new_beams).reshape(-1)       # (B*K,) the rows each beam continues
            states = [s[rows] for s in states]
            prefixes = np.concatenate([prefixes[np.arange(b)[:, None], new_beams], new_tokens[:, :, None]], axis=2)
            scores, tokens = new_scores, new_tokens.reshape(-1)
        else:                                 # max_length reached: the open prefixes compete too
            for i in range(b):
                for j in range(k):
                    if not done[i] and scores[i, j] > -np.inf:
                        finished[i].append((scores[i, j] / _length_penalty(max_length, alpha), prefixes[i, j].tolist()))
        for i in range(b):
            best_score, best = max(finished[i], key=lambda item: item[0])
            outputs.append(best)
            scores_out.append(float(best_score))
    return (outputs, scores_out) if return_scores else outputs


__all__ = ["beam_search_decode", "greedy_decode"]
