"""Greedy and beam search decoding (rnnkit.seq2seq) on small random encoder-decoders.

The references are written out here, independently of the library's batched loops: Keras'
``decode_sequence`` loop (one source at a time) for greedy search, and an exhaustive search over
every possible output (a beam as wide as the number of prefixes must find the best output exactly)
and beam search as the module docstring states it, one source at a time, each prefix scored by
running the decoder on that prefix alone.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit import Input, Model
from rnnkit.layers import GRU, LSTM, Attention, Concatenate, Dense, Embedding
from rnnkit.seq2seq import beam_search_decode, greedy_decode

V, D, H, TS = 4, 3, 5, 6      # target vocabulary, source features, state size, source length
START, END = 0, 1


def make_models(attention: bool, seed: int, sharpness: float = 3.0, logits: bool = False, end_bias: float = 0.0):
    """A random GRU encoder-decoder (index tokens), with or without dot-product attention."""
    src = Input((None, D))
    if attention:
        enc_seq, h = GRU(H, return_sequences=True, return_state=True, seed=seed)(src)
        encoder = Model(src, [enc_seq, h])
    else:
        _, h = GRU(H, return_state=True, seed=seed)(src)
        encoder = Model(src, h)
    token, state_in = Input((1,), dtype="int32"), Input((H,))
    seq, state = GRU(H, return_sequences=True, return_state=True, seed=seed + 1)(
        Embedding(V, 3, seed=seed + 2)(token), initial_state=state_in)            # (B, 1, H), (B, H)
    dense = Dense(V, activation=None if logits else "softmax", seed=seed + 3)
    if attention:
        enc_in = Input((None, H))
        context, weights = Attention()([seq, enc_in], return_attention_scores=True)
        out = dense(Concatenate()([seq, context]))
        decoder = Model([token, enc_in, state_in], [out, state, weights])
    else:
        decoder = Model([token, state_in], [dense(seq), state])
    decoder.predict_on_batch([np.zeros((1, 1), "int32")] + ([np.zeros((1, 2, H))] if attention else [])
                             + [np.zeros((1, H))])
    dense.params["kernel"] *= sharpness          # sharper distributions: the end token comes up sometimes
    dense.params["bias"][END] += end_bias        # (and less often at once)
    return encoder, decoder


def sources(seed: int, n: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, TS, D))


def keras_greedy(encoder, decoder, x, attention, max_length):
    """Keras' decode_sequence, one source at a time."""
    enc = encoder.predict(x[None], verbose=0)
    enc = enc if isinstance(enc, list) else [enc]
    context, states = (enc[:1], enc[1:]) if attention else ([], enc)
    token, out = START, []
    while len(out) < max_length:
        outs = decoder.predict([np.array([[token]])] + context + states, verbose=0)
        token = int(np.argmax(outs[0][0, -1]))
        if token == END:
            break
        out.append(token)
        states = outs[1:2]
    return out


def next_log_probs(encoder, decoder, x, attention, prefix):
    """log P(next token | prefix) for every token (V,), running the decoder on this one prefix from the start."""
    enc = encoder.predict_on_batch(x[None])
    enc = enc if isinstance(enc, list) else [enc]
    context, states = (enc[:1], enc[1:]) if attention else ([], enc)
    for previous in [START, *prefix]:
        outs = decoder.predict_on_batch([np.array([[previous]])] + context + states)
        states = outs[1:2]
    return np.log(outs[0][0, -1])


def sequence_log_prob(encoder, decoder, x, attention, tokens, ended):
    """log P(tokens [+ end]), token by token."""
    steps = list(tokens) + ([END] if ended else [])
    return sum(float(next_log_probs(encoder, decoder, x, attention, steps[:i])[t]) for i, t in enumerate(steps))


def lp(length, alpha):
    return ((5 + length) / 6) ** alpha


def exhaustive_best(encoder, decoder, x, attention, max_length, alpha):
    """The best output over every sequence of non-end tokens, ended or cut at max_length (a walk over the tree)."""
    best = (-np.inf, None)
    todo = [([], 0.0)]
    while todo:
        prefix, total = todo.pop()
        if len(prefix) == max_length:                  # cut: no end token
            candidates = [(total / lp(max_length, alpha), prefix)]
        else:
            log_probs = next_log_probs(encoder, decoder, x, attention, prefix)
            candidates = [((total + log_probs[END]) / lp(len(prefix) + 1, alpha), prefix)]
            todo += [(prefix + [t], total + log_probs[t]) for t in range(V) if t != END]
        for score, tokens in candidates:
            if score > best[0]:
                best = (score, tokens)
    return best


def reference_beam_search(encoder, decoder, x, attention, max_length, k, alpha):
    """Beam search as the module docstring states it, one source at a time, every prefix run from the start."""
    beams, finished = [([], 0.0)], []
    for t in range(max_length):
        candidates = [(total + lp_next, prefix, token) for prefix, total in beams
                      for token, lp_next in enumerate(next_log_probs(encoder, decoder, x, attention, prefix))]
        candidates.sort(key=lambda c: -c[0])
        beams = []
        for rank, (total, prefix, token) in enumerate(candidates[:2 * k]):
            if token == END:
                if rank < k:
                    finished.append((total / lp(t + 1, alpha), prefix))
            elif len(beams) < k:
                beams.append((prefix + [token], total))
        if len(finished) >= k:
            break
    else:
        finished += [(total / lp(max_length, alpha), prefix) for prefix, total in beams]
    return max(finished, key=lambda f: f[0])


@pytest.mark.parametrize("attention", [False, True])
def test_greedy_equals_keras_loop_at_any_batch_size(float64, attention):
    encoder, decoder = make_models(attention, seed=3)
    x = sources(0, n=9)
    expected = [keras_greedy(encoder, decoder, xi, attention, max_length=7) for xi in x]
    assert any(len(e) < 7 for e in expected) and any(len(e) == 7 for e in expected)   # both ways of stopping
    for batch_size in (1, 4, 64):
        got = greedy_decode(encoder, decoder, x, START, END, max_length=7, attention=attention, batch_size=batch_size)
        assert got == expected
    assert all(END not in g and len(g) <= 7 for g in got)
    assert greedy_decode(encoder, decoder, x.tolist(), START, END, 7, attention=attention) == expected   # nested lists


@pytest.mark.parametrize("attention, alpha, end_bias", [(False, 0.0, -1.0), (True, 0.0, -1.0), (True, 3.0, 0.0),
                                                       (False, 3.0, 0.0)])
def test_wide_beam_finds_the_exhaustive_best(float64, attention, alpha, end_bias):
    encoder, decoder = make_models(attention, seed=2, sharpness=3.0, end_bias=end_bias)
    x = sources(1, n=5)
    decoded, scores = beam_search_decode(encoder, decoder, x, START, END, max_length=3, beam_width=64,
                                         length_penalty=alpha, attention=attention, batch_size=2, return_scores=True)
    for xi, got, score in zip(x, decoded, scores):
        best_score, best = exhaustive_best(encoder, decoder, xi, attention, 3, alpha)
        assert got == best
        assert abs(score - best_score) < 1e-9
    assert len({len(d) for d in decoded}) > 1                 # outputs of different lengths: the penalty matters


@pytest.mark.parametrize("attention, k, alpha", [(False, 2, 0.0), (True, 3, 0.0), (True, 2, 1.0), (False, 3, 2.0)])
def test_beam_search_equals_a_one_source_reference(float64, attention, k, alpha):
    encoder, decoder = make_models(attention, seed=5, sharpness=1.0)
    x = sources(2, n=6)
    beam, scores = beam_search_decode(encoder, decoder, x, START, END, max_length=5, beam_width=k,
                                      length_penalty=alpha, attention=attention, batch_size=4, return_scores=True)
    greedy = greedy_decode(encoder, decoder, x, START, END, max_length=5, attention=attention)
    assert beam != greedy                                     # the beam does find other outputs here
    assert len({len(b) for b in beam}) > 1
    for xi, b, s in zip(x, beam, scores):
        expected_score, expected = reference_beam_search(encoder, decoder, xi, attention, 5, k, alpha)
        assert b == expected
        assert abs(s - expected_score) < 1e-9
        assert abs(s * lp(len(b) + (len(b) < 5), alpha)
                   - sequence_log_prob(encoder, decoder, xi, attention, b, ended=len(b) < 5)) < 1e-9


@pytest.mark.parametrize("attention", [False, True])
def test_beam_width_one_is_greedy(float64, attention):
    encoder, decoder = make_models(attention, seed=5, sharpness=2.0)
    x = sources(3, n=8)
    greedy = greedy_decode(encoder, decoder, x, START, END, max_length=6, attention=attention)
    assert beam_search_decode(encoder, decoder, x, START, END, max_length=6, beam_width=1,
                              attention=attention, batch_size=3) == greedy


def test_from_logits_gives_the_same_outputs(float64):
    probs_models = make_models(True, seed=7)
    logit_models = make_models(True, seed=7, logits=True)
    x = sources(3)
    for decode in (greedy_decode, lambda *a, **k: beam_search_decode(*a, beam_width=3, **k)):
        assert decode(*probs_models, x, START, END, 6, attention=True) == \
            decode(*logit_models, x, START, END, 6, attention=True, from_logits=True)


def test_attention_weights_are_returned_per_output_token(float64):
    encoder, decoder = make_models(True, seed=3)
    x = sources(4)
    decoded, weights = greedy_decode(encoder, decoder, x, START, END, 7, attention=True, return_attention=True)
    assert len(weights) == len(decoded)
    for tokens, w, xi in zip(decoded, weights, x):
        assert w.shape == (len(tokens), TS)
        assert np.allclose(w.sum(axis=1), 1.0)
        # the first row is the first step's attention, computed here directly
        enc_seq, h = encoder.predict_on_batch(xi[None])
        if tokens:
            _, _, first = decoder.predict_on_batch([np.array([[START]]), enc_seq, h])
            assert np.allclose(w[0], first[0, 0])


def test_one_hot_tokens_and_two_states(float64):
    """Keras' lstm_seq2seq layout: one-hot previous token, LSTM states [h, c], no attention."""
    src = Input((None, D))
    _, h, c = LSTM(H, return_state=True, seed=0)(src)
    encoder = Model(src, [h, c])
    token, h_in, c_in = Input((None, V)), Input((H,)), Input((H,))
    seq, h2, c2 = LSTM(H, return_sequences=True, return_state=True, seed=1)(token, initial_state=[h_in, c_in])
    dense = Dense(V, activation="softmax", seed=2)
    decoder = Model([token, h_in, c_in], [dense(seq), h2, c2])
    x = sources(5)
    decoder.predict_on_batch([np.zeros((1, 1, V)), np.zeros((1, H)), np.zeros((1, H))])
    dense.params["kernel"] *= 3.0

    expected = []
    for xi in x:                                              # Keras' decode_sequence with one-hot tokens
        states, out, token = encoder.predict(xi[None], verbose=0), [], START
        for _ in range(5):
            probs, hh, cc = decoder.predict([rnnkit.one_hot([[token]], V)] + states, verbose=0)
            token = int(np.argmax(probs[0, -1]))
            if token == END:
                break
            out.append(token)
            states = [hh, cc]
        expected.append(out)
    assert greedy_decode(encoder, decoder, x, START, END, max_length=5) == expected
    assert beam_search_decode(encoder, decoder, x, START, END, max_length=5, beam_width=1) == expected


def test_errors():
    encoder, decoder = make_models(True, seed=0)
    plain_encoder, plain_decoder = make_models(False, seed=0)
    x = sources(0, n=2)
    cases = [
        (lambda: beam_search_decode(encoder, decoder, x, START, END, 5, beam_width=0, attention=True),
         ValueError, "beam_width must be a positive integer"),
        (lambda: greedy_decode(encoder, decoder, x, START, END, 0, attention=True), ValueError, "max_length"),
        (lambda: greedy_decode(encoder, decoder, x, START, END, 2.5, attention=True), TypeError, "max_length"),
        (lambda: greedy_decode(encoder, decoder, x, START, V, 5, attention=True), ValueError, r"end_token .*\[0, 4\)"),
        (lambda: greedy_decode(encoder, decoder, x, -1, END, 5, attention=True), ValueError, "start_token"),
        (lambda: greedy_decode(encoder, decoder, x, "a", END, 5, attention=True), TypeError, "start_token"),
        (lambda: greedy_decode(encoder, decoder, x, START, END, 5), ValueError, "attention=True"),
        (lambda: greedy_decode(plain_encoder, plain_decoder, x, START, END, 5, attention=True), ValueError,
         "its output sequence"),
        (lambda: greedy_decode(encoder, plain_decoder, x, START, END, 5, attention=True), ValueError,
         "must take 3 inputs"),
        (lambda: greedy_decode(plain_encoder, plain_decoder, x, START, END, 5, return_attention=True), ValueError,
         "return_attention"),
        (lambda: greedy_decode(lambda s: s, decoder, x, START, END, 5), TypeError, "rnnkit Model"),
        (lambda: greedy_decode(encoder, decoder, x[:0], START, END, 5, attention=True), ValueError, "empty"),
        (lambda: greedy_decode(encoder, decoder, x, START, END, 5, attention=True, batch_size=0), ValueError,
         "batch_size"),
        (lambda: beam_search_decode(encoder, decoder, x, START, END, 5, length_penalty=-1.0, attention=True),
         ValueError, "length_penalty"),
        (lambda: beam_search_decode(encoder, decoder, x, START, END, 5, length_penalty=float("nan"), attention=True),
         ValueError, "length_penalty"),
        (lambda: greedy_decode(encoder, decoder, x, START, END, 5, attention=True, from_logits=1), TypeError,
         "from_logits"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
