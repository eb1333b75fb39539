"""``rnnkit.generation.generate``: the samplers on hand-computed cases, beam search on a hand-built Markov
model, the stateful path against the re-run path, streaming, stops, seeds and errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import rnnkit
from rnnkit.generation import apply_repetition_penalty, filter_scores, generate, sample, softmax
from rnnkit.layers import LSTM, Dense, Embedding, SimpleRNN

P = np.array([0.1, 0.2, 0.3, 0.4])
LOGP = np.log(P)


# -- the samplers on a fixed score vector --------------------------------------------------------------------------
def dist(**kwargs) -> np.ndarray:
    return softmax(filter_scores(LOGP[None], **kwargs))[0]


@pytest.mark.parametrize("kwargs, expected", [
    ({}, [0.1, 0.2, 0.3, 0.4]),
    ({"top_k": 2}, [0, 0, 3 / 7, 4 / 7]),
    ({"top_k": 1}, [0, 0, 0, 1]),
    ({"top_k": 10}, [0.1, 0.2, 0.3, 0.4]),
    ({"top_p": 0.65}, [0, 0, 3 / 7, 4 / 7]),          # the tail 0.1 + 0.2 <= 0.35 goes
    ({"top_p": 0.8}, [0, 2 / 9, 3 / 9, 4 / 9]),       # only 0.1 <= 0.2 goes
    ({"top_p": 0.3}, [0, 0, 0, 1]),
    ({"top_p": 1.0}, [0.1, 0.2, 0.3, 0.4]),
    ({"min_p": 0.6}, [0, 0, 3 / 7, 4 / 7]),           # below 0.6 * 0.4 = 0.24 goes
    ({"min_p": 0.4}, [0, 2 / 9, 3 / 9, 4 / 9]),       # below 0.16 goes
    ({"min_p": 1.0}, [0, 0, 0, 1]),
    ({"temperature": 2.0}, np.sqrt(P) / np.sqrt(P).sum()),
    ({"temperature": 0.5}, P ** 2 / (P ** 2).sum()),
    # temperature first, then top-p: p^2 = [.01, .04, .09, .16] / .3, whose tail .0333 + .1333 <= 0.2 goes
    ({"temperature": 0.5, "top_p": 0.8}, [0, 0, 0.36, 0.64]),
    ({"top_k": 3, "top_p": 0.6}, [0, 0, 3 / 7, 4 / 7]),   # top-3 renormalised: [2, 3, 4] / 9, tail 2/9 <= 0.4 goes
])
def test_filtered_distribution_matches_hand_computation(kwargs, expected):
    np.testing.assert_allclose(dist(**kwargs), expected, rtol=0, atol=1e-12)


def test_top_k_keeps_ties_with_the_kth_score():
    s = np.array([[1.0, 2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(np.isfinite(filter_scores(s, top_k=1)), [[False, True, True, False]])
    np.testing.assert_array_equal(np.isfinite(filter_scores(s, top_k=3)), [[True, True, True, False]])


def test_filters_work_row_by_row():
    s = np.log(np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]]))
    out = softmax(filter_scores(s, top_k=2))
    np.testing.assert_allclose(out, [[0, 0, 3 / 7, 4 / 7], [4 / 7, 3 / 7, 0, 0]], atol=1e-12)


def test_repetition_penalty_divides_positive_and_multiplies_negative_scores():
    scores = np.array([[2.0, -1.0, 0.5, -3.0], [2.0, -1.0, 0.5, -3.0]])
    out = apply_repetition_penalty(scores, [[0, 1, 1], [3]], 2.0)
    np.testing.assert_array_equal(out, [[1.0, -2.0, 0.5, -3.0], [2.0, -1.0, 0.5, -6.0]])
    np.testing.assert_array_equal(scores[0], [2.0, -1.0, 0.5, -3.0])      # the input is left alone


def test_sample_follows_the_distribution_and_never_draws_a_filtered_token():
    probs = np.tile(dist(top_k=3), (40_000, 1))                             # [0, 2/9, 3/9, 4/9]
    drawn = sample(probs, np.random.default_rng(0))
    freq = np.bincount(drawn, minlength=4) / len(drawn)
    assert freq[0] == 0
    np.testing.assert_allclose(freq, [0, 2 / 9, 3 / 9, 4 / 9], atol=0.01)


# -- a hand-built Markov "model": Embedding(V, V) whose row t holds log P(next | t) --------------------------------
def markov_model(table: dict[int, dict[int, float]], V: int):
    """Logits ``(B, T, V)``: the last step's row is the log-probability of the next token given the current."""
    probs = np.full((V, V), 1e-9)
    for current, nxt in table.items():
        for token, p in nxt.items():
            probs[current, token] = p
    probs /= probs.sum(axis=1, keepdims=True)
    model = rnnkit.Sequential([rnnkit.Input(shape=(None,), dtype="int32"), Embedding(V, V)], seed=0)
    model.set_weights([np.log(probs)])
    return model, probs


S, A, B, C = 0, 1, 2, 3
CHAIN = {S: {A: 0.6, B: 0.4}, A: {A: 1 / 3, B: 1 / 3, C: 1 / 3}, B: {A: 0.05, B: 0.05, C: 0.9},
         C: {A: 0.5, B: 0.5}}


def brute_force(probs: np.ndarray, prompt: list[int], length: int, stop: set[int], length_penalty: float):
    """Every continuation up to ``length`` tokens (ending early only at a stop), best score first."""
    out = []
    for n in range(1, length + 1):
        for tail in itertools.product(range(len(probs)), repeat=n):
            if any(t in stop for t in tail[:-1]) or (n < length and tail[-1] not in stop):
                continue
            seq = prompt + list(tail)
            logp = sum(math.log(probs[a, b]) for a, b in zip(seq[len(prompt) - 1:], seq[len(prompt):]))
            out.append((logp / n ** length_penalty, seq))
    return sorted(out, key=lambda item: -item[0])


def test_beam_search_finds_the_best_sequence_where_greedy_does_not():
    model, probs = markov_model(CHAIN, 4)
    greedy = generate(model, [S], 2, temperature=0)
    assert greedy.tolist() == [S, A, A]                            # 0.6 * 1/3 = 0.2 (ties: the lowest id)
    best = generate(model, [S], 2, num_beams=2)
    assert best.tolist() == [S, B, C]                              # 0.4 * 0.9 = 0.36
    top2 = generate(model, [S], 2, num_beams=2, num_return_sequences=2)
    assert [s.tolist() for s in top2] == [[S, B, C], [S, A, A]]
    ranked = brute_force(probs, [S], 2, set(), 1.0)
    wide = generate(model, [S], 2, num_beams=4, num_return_sequences=4)   # 4 beams over 4 tokens: exhaustive
    assert [s.tolist() for s in wide] == [seq for _, seq in ranked[:4]]


# tokens of a chain with an end token: the length penalty decides between ending early and going on
X, Y, Z, END = 1, 2, 3, 4
ENDING = {S: {X: 0.55, Y: 0.45}, X: {END: 0.6, Z: 0.4}, Y: {Z: 0.6, X: 0.4}, Z: {Z: 0.6, END: 0.4},
          END: {END: 1.0}}


@pytest.mark.parametrize("length_penalty, expected", [
    (0.0, [S, X, END]),           # sum log p: log .55 + log .6 = -1.109 beats log .45 + 2 log .6 = -1.820
    (1.0, [S, X, END]),           # -1.109 / 2 = -0.554 beats -1.820 / 3 = -0.607
    (2.0, [S, Y, Z, Z]),          # -1.109 / 4 = -0.277 loses to -1.820 / 9 = -0.202
])
def test_beam_search_length_penalty_scores_sum_logp_over_length_to_the_penalty(length_penalty, expected):
    model, probs = markov_model(ENDING, 5)
    out = generate(model, [S], 3, num_beams=5, length_penalty=length_penalty, stop=END)
    assert out.tolist() == expected
    assert brute_force(probs, [S], 3, {END}, length_penalty)[0][1] == expected


def test_beam_search_stops_at_stop_ids_and_returns_them_best_first():
    model, probs = markov_model(ENDING, 5)
    outs = generate(model, [S], 3, num_beams=3, num_return_sequences=3, length_penalty=1.0, stop=[END])
    ranked = brute_force(probs, [S], 3, {END}, 1.0)
    assert [o.tolist() for o in outs] == [seq for _, seq in ranked[:3]]


def test_sampled_first_token_follows_the_filtered_distribution():
    model, _ = markov_model(CHAIN, 4)
    outs = generate(model, [B], 1, num_return_sequences=6000, seed=0, top_k=2)   # B: [.05, .05, .9] -> ties kept
    freq = np.bincount([o[-1] for o in outs], minlength=4) / 6000
    np.testing.assert_allclose(freq, [0, 0.05, 0.05, 0.9], atol=0.015)
    outs = generate(model, [B], 1, num_return_sequences=6000, seed=0, temperature=0.5)
    p = np.array([1e-9, 0.05, 0.05, 0.9]) ** 2
    np.testing.assert_allclose(np.bincount([o[-1] for o in outs], minlength=4) / 6000, p / p.sum(), atol=0.015)


def test_repetition_penalty_changes_greedy_choice():
    model, _ = markov_model({S: {A: 0.6, B: 0.4}, A: {A: 0.5, B: 0.3, C: 0.2}, B: {A: 0.5, B: 0.3, C: 0.2},
                             C: {A: 0.5, B: 0.3, C: 0.2}}, 4)
    assert generate(model, [S], 3, temperature=0).tolist() == [S, A, A, A]
    # log-probabilities are negative: the penalty multiplies them, so a seen token gets less likely:
    # after A, log .5 * 2 = -1.386 < log .3 = -1.204: B; after B, A -1.386 > B 2 log .3 = -2.408, C log .2 = -1.609
    assert generate(model, [S], 3, temperature=0, repetition_penalty=2.0).tolist() == [S, A, B, A]


# -- a character model: the stateful path against re-running the context ---------------------------------------
def char_models(V: int = 6, units: int = 8):
    def build(stateful):
        return rnnkit.Sequential([rnnkit.Input(shape=(None,), dtype="int32"), Embedding(V, 5),
                                  LSTM(units, return_sequences=True, stateful=stateful),
                                  Dense(V, activation="softmax")], seed=3)
    stateful, rerun = build(True), build(False)
    rng = np.random.default_rng(0)
    weights = [rng.normal(scale=0.8, size=w.shape) for w in stateful.get_weights()]
    stateful.set_weights(weights)
    rerun.set_weights(weights)
    return stateful, rerun


@pytest.mark.parametrize("kwargs", [
    {"temperature": 0.9, "seed": 7},
    {"temperature": 1.3, "top_k": 3, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.3, "seed": 1},
    {"temperature": 0},
    {"num_beams": 3, "num_return_sequences": 2, "length_penalty": 0.5},
    {"temperature": 1.0, "num_return_sequences": 3, "seed": 2},
])
def test_stateful_path_gives_the_tokens_of_the_rerun_path(float64, kwargs):
    stateful, rerun = char_models()
    a = generate(stateful, [1, 2, 3, 4], 25, **kwargs)
    b = generate(rerun, [1, 2, 3, 4], 25, **kwargs)
    a, b = (x if isinstance(x, list) else [x] for x in (a, b))
    assert [s.tolist() for s in a] == [s.tolist() for s in b]
    assert all(len(s) == 29 for s in a)


def test_stateful_path_feeds_the_prompt_once_then_one_step_per_token(monkeypatch, float64):
    stateful, rerun = char_models()
    for model, expected in ((stateful, [(1, 4)] + [(1, 1)] * 5), (rerun, [(1, 4 + t) for t in range(6)])):
        shapes = []
        real = model.predict_on_batch
        monkeypatch.setattr(model, "predict_on_batch", lambda x, real=real, shapes=shapes: (
            shapes.append(np.shape(x)), real(x))[1])
        generate(model, [1, 2, 3, 4], 6, seed=0)
        assert shapes == expected


def test_generation_leaves_the_carried_state_as_it_was(float64):
    stateful, _ = char_models()
    stateful.predict_on_batch(np.array([[1, 2], [3, 4]]))          # a training-like state for a batch of 2
    lstm = stateful.layers[1]
    before = [s.copy() for s in lstm.states]
    generate(stateful, [1, 2], 5, seed=0, num_return_sequences=3)
    generate(stateful, [1, 2], 5, num_beams=2)
    list(generate(stateful, [1, 2], 5, seed=0, stream=True))
    assert all(np.array_equal(a, b) for a, b in zip(before, lstm.states))


def test_window_limits_the_context_of_a_rerun_model(monkeypatch, float64):
    _, rerun = char_models()
    shapes = []
    real = rerun.predict_on_batch
    monkeypatch.setattr(rerun, "predict_on_batch", lambda x: (shapes.append(np.shape(x)), real(x))[1])
    generate(rerun, [1, 2, 3, 4, 5], 4, seed=0, window=3)
    assert shapes == [(1, 3)] * 4


# -- seeds, streaming, stops, text -------------------------------------------------------------------------------
def test_seed_makes_sampling_reproducible(float64):
    _, model = char_models()
    a = generate(model, [1, 2], 30, seed=11)
    assert np.array_equal(a, generate(model, [1, 2], 30, seed=11))
    assert np.array_equal(a, generate(model, [1, 2], 30, seed=np.random.default_rng(11)))
    assert not np.array_equal(a, generate(model, [1, 2], 30, seed=12))


def test_stream_yields_the_tokens_of_the_same_call_one_by_one(float64):
    stateful, _ = char_models()
    full = generate(stateful, [1, 2, 3], 20, seed=5, top_k=4)
    streamed = generate(stateful, [1, 2, 3], 20, seed=5, top_k=4, stream=True)
    assert iter(streamed) is streamed
    first = next(streamed)
    assert isinstance(first, int) and first == full[3]
    assert [first, *streamed] == full[3:].tolist()


def text_model():
    text = "to be or not to be, that is the question"
    vocab = rnnkit.CharVocabulary(text)
    V = len(vocab)
    model = rnnkit.Sequential([rnnkit.Input(shape=(None,), dtype="int32"), Embedding(V, 8),
                               SimpleRNN(16, return_sequences=True), Dense(V, activation="softmax")], seed=0)
    model.compile(optimizer=rnnkit.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    ids = vocab.encode(text)
    model.fit(ids[None, :-1], ids[None, 1:], epochs=200, verbose=0)
    return model, vocab


def test_text_prompt_stop_strings_and_stream_of_characters():
    model, vocab = text_model()
    out = generate(model, "to be or", 30, temperature=0, vocab=vocab)
    assert isinstance(out, str) and out.startswith("to be or") and len(out) == 38
    cut = generate(model, "to be or", 30, temperature=0, vocab=vocab, stop=" t")
    assert cut == out[:out.index(" t", len("to be or") - 1) + 2]
    chars = list(generate(model, "to be or", 30, temperature=0, vocab=vocab, stream=True, stop=[" t"]))
    assert "".join(chars) == cut[len("to be or"):] and all(len(c) == 1 for c in chars)
    ids = generate(model, vocab.encode("to be or"), 30, temperature=0, stop=[vocab.encode(" t").tolist()])
    assert vocab.decode(ids) == cut


def test_generate_text_is_generate_on_the_articles_one_hot_model():
    text = "This is GeeksforGeeks a software training institute"
    vocab, X, y = rnnkit.char_dataset(text, 3)
    model = rnnkit.Sequential([SimpleRNN(20, input_shape=(3, len(vocab)), activation="relu"),
                               Dense(len(vocab), activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(X, y, epochs=30, verbose=0)
    expected = "This is G"
    for _ in range(20):                                             # the article's loop, by hand
        x = rnnkit.one_hot(vocab.encode(expected[-3:]), len(vocab))[None]
        expected += vocab.index_to_char[int(np.argmax(model.predict(x, verbose=0)))]
    assert rnnkit.generate_text(model, vocab, "This is G", length=20) == expected
    assert generate(model, "This is G", 20, temperature=0, vocab=vocab) == expected
    sampled = rnnkit.generate_text(model, vocab, "This is G", length=20, temperature=0.8,
                                   rng=np.random.default_rng(4))
    assert sampled == generate(model, "This is G", 20, temperature=0.8, vocab=vocab, seed=np.random.default_rng(4))


def test_zero_new_tokens_returns_the_prompt(float64):
    stateful, rerun = char_models()
    assert generate(rerun, [1, 2], 0).tolist() == [1, 2]
    assert generate(stateful, [1, 2], 0, num_beams=2).tolist() == [1, 2]
    assert list(generate(stateful, [1, 2], 0, stream=True)) == []


# -- errors: clear, and before any work ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    ({"max_new_tokens": -1}, ValueError, r"max_new_tokens must be an integer >= 0, got -1"),
    ({"temperature": -0.5}, ValueError, r"temperature must be a number >= 0 \(0 is greedy\), got -0.5"),
    ({"top_k": 0}, ValueError, r"top_k must be an integer >= 1 or None, got 0"),
    ({"top_p": 0.0}, ValueError, r"top_p must be a number in \(0, 1\] or None, got 0.0"),
    ({"top_p": 1.5}, ValueError, r"top_p must be a number in \(0, 1\] or None, got 1.5"),
    ({"min_p": -0.1}, ValueError, r"min_p must be a number in \[0, 1\] or None"),
    ({"repetition_penalty": 0}, ValueError, r"repetition_penalty must be a number > 0"),
    ({"num_beams": 0}, ValueError, r"num_beams must be an integer >= 1, got 0"),
    ({"num_beams": 2, "num_return_sequences": 3}, ValueError,
     r"num_return_sequences \(3\) must be <= num_beams \(2\)"),
    ({"num_beams": 2, "top_k": 5}, ValueError, r"top_k=5 only shape sampling"),
    ({"num_beams": 2, "do_sample": True}, ValueError, r"Beam search with sampling is not supported"),
    ({"num_beams": 2, "stream": True}, ValueError, r"stream=True yields tokens as they are chosen"),
    ({"temperature": 0, "num_return_sequences": 2}, ValueError, r"Greedy decoding gives one sequence"),
    ({"do_sample": True, "temperature": 0}, ValueError, r"do_sample=True needs temperature > 0"),
    ({"num_return_sequences": 2, "stream": True}, ValueError, r"stream=True yields the tokens of one sequence"),
    ({"seed": "x"}, TypeError, r"seed must be a non-negative integer, a numpy.random.Generator or None"),
    ({"stop": 99}, ValueError, r"stop must be a string, a token id in \[0, 6\)"),
    ({"stop": "ab"}, ValueError, r"The stop string 'ab' needs vocab="),
    ({"window": 0}, ValueError, r"window must be a positive integer or None, got 0"),
    ({"length_penalty": float("nan")}, ValueError, r"length_penalty must be a finite number"),
])
def test_bad_options_are_refused(kwargs, error, match):
    _, rerun = char_models()
    kwargs = {"max_new_tokens": 3, **kwargs}
    with pytest.raises(error, match=match):
        generate(rerun, [1, 2], **kwargs)


def test_bad_prompts_and_models_are_refused():
    stateful, rerun = char_models()
    vocab = rnnkit.CharVocabulary("abcdef")
    with pytest.raises(ValueError, match=r"not in the vocabulary: 'XZ'\. The vocabulary is 'abcdef'"):
        generate(rerun, "abXcZ", 3, vocab=vocab)
    with pytest.raises(ValueError, match=r"A text prompt needs vocab="):
        generate(rerun, "abc", 3)
    with pytest.raises(ValueError, match=r"prompt token ids must be in \[0, 6\), got values from 1 to 9"):
        generate(rerun, [1, 9], 3)
    with pytest.raises(ValueError, match=r"The prompt is empty"):
        generate(rerun, [], 3)
    with pytest.raises(TypeError, match=r"prompt must be a string or a 1-D sequence of integer token ids"):
        generate(rerun, [[1, 2]], 3)
    with pytest.raises(ValueError, match=r"The vocabulary has 3 tokens but model '\w+' predicts 6"):
        generate(rerun, "ab", 3, vocab=rnnkit.CharVocabulary("abc"))
    with pytest.raises(ValueError, match=r"is stateful and reads each token once"):
        generate(stateful, [1, 2], 3, window=2)
    with pytest.raises(TypeError, match=r"generate expects an rnnkit model"):
        generate(lambda x: x, [1, 2], 3)
    article = rnnkit.Sequential([SimpleRNN(4, input_shape=(3, 6)), Dense(6, activation="softmax")], seed=0)
    with pytest.raises(ValueError, match=r"reads 3 tokens at a time; the prompt needs at least 3, got 2"):
        generate(article, [1, 2], 3)
    fixed = rnnkit.Sequential([rnnkit.Input(shape=(4,), dtype="int32"), Embedding(6, 3),
                               LSTM(4, stateful=True), Dense(6, activation="softmax")], seed=0)
    with pytest.raises(ValueError, match=r"takes exactly 4 steps per call; .* Input\(shape=\(None,\)\)"):
        generate(fixed, [1, 2, 3, 4], 3)
