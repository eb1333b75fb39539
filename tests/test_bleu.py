"""rnnkit.bleu against sacreBLEU (the reference implementation) and against BLEU worked out by hand.

Random corpora mix words, numbers, dates and the punctuation the 13a tokenizer treats specially;
hypotheses are references with words dropped, replaced, repeated or swapped, some empty; up to
three references per hypothesis, with missing ones (None) in a stream. Every smoothing method,
tokenizer, lowercasing and effective order is compared on the score and on its parts.
"""

from __future__ import annotations

import math
import string

import numpy as np
import pytest
import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from rnnkit.bleu import BLEUScore, corpus_bleu, sentence_bleu, tokenize_13a

WORDS = ["the", "The", "cat", "sat", "on", "mat", "a", "dog", "don't", "U.S.", "1,000", "3.5", "1998-05-09",
         "(yes)", "well,", "end.", "&amp;", "&quot;hi&quot;", "x-ray", "10-12", "$5", "50%", "why?", "e-mail", "<tag>",
         "über", "naïve", "co-op", "...", "a/b", "[1]", "{k}", "x_y", "#1", "~", "|", "@home", "é."]


def random_sentence(rng, low=0, high=14) -> str:
    words = [WORDS[i] for i in rng.integers(0, len(WORDS), size=rng.integers(low, high))]
    glue = [" ", " ", " ", "", "  "]
    return "".join(w + glue[rng.integers(len(glue))] for w in words).strip() + (" " if rng.random() < 0.1 else "")


def perturb(rng, sentence: str) -> str:
    words = sentence.split()
    if rng.random() < 0.08:
        return ""
    out = []
    for w in words:
        r = rng.random()
        if r < 0.15:
            continue                                          # dropped
        if r < 0.3:
            out.append(WORDS[rng.integers(len(WORDS))])       # replaced
        elif r < 0.38:
            out += [w, w]                                     # repeated (clipping matters)
        else:
            out.append(w)
    if len(out) > 2 and rng.random() < 0.3:
        i = rng.integers(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    return " ".join(out)


def random_corpus(rng, n: int, n_refs: int, missing: bool):
    refs = [[random_sentence(rng) for _ in range(n)] for _ in range(n_refs)]
    hyps = [perturb(rng, refs[0][i]) for i in range(n)]
    if missing and n_refs > 1:
        for i in range(n):
            if rng.random() < 0.3:
                refs[-1][i] = None                            # this hypothesis has one reference fewer
    return hyps, refs


def assert_same(ours: BLEUScore, theirs, tol=1e-9):
    assert abs(ours.score - theirs.score) < 0.01, (ours.score, theirs.score)
    assert abs(ours.score - theirs.score) < tol * max(1.0, theirs.score), (ours.score, theirs.score)
    assert np.allclose(ours.precisions, theirs.precisions, rtol=1e-12, atol=1e-12), (ours.precisions, theirs.precisions)
    assert abs(ours.bp - theirs.bp) < 1e-12
    assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    assert list(ours.counts) == list(theirs.counts) and list(ours.totals) == list(theirs.totals)


SETTINGS = [dict(smooth="exp"), dict(smooth="none"), dict(smooth="floor"), dict(smooth="floor", smooth_value=0.5),
            dict(smooth="add-k"), dict(smooth="add-k", smooth_value=2), dict(smooth="exp", lowercase=True),
            dict(smooth="exp", tokenize="none"), dict(smooth="exp", tokenize="char"),
            dict(smooth="exp", use_effective_order=True), dict(smooth="none", use_effective_order=True)]


def sacre_kwargs(setting: dict) -> dict:
    return dict(smooth_method=setting.get("smooth", "exp"), smooth_value=setting.get("smooth_value"),
                lowercase=setting.get("lowercase", False), tokenize=setting.get("tokenize", "13a"),
                use_effective_order=setting.get("use_effective_order", False))


@pytest.mark.parametrize("seed", range(8))
def test_corpus_bleu_equals_sacrebleu_on_random_corpora(seed):
    rng = np.random.default_rng(seed)
    n_refs = 1 + seed % 3
    hyps, refs = random_corpus(rng, n=int(rng.integers(1, 40)), n_refs=n_refs, missing=seed % 2 == 0)
    for setting in SETTINGS:
        theirs = sacrebleu.corpus_bleu(hyps, refs, **sacre_kwargs(setting))
        assert_same(corpus_bleu(hyps, refs, **setting), theirs)


@pytest.mark.parametrize("seed", range(4))
def test_sentence_bleu_equals_sacrebleu(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(30):
        refs = [random_sentence(rng, 0, 8) for _ in range(int(rng.integers(1, 4)))]
        hyp = perturb(rng, refs[0]) if rng.random() < 0.8 else random_sentence(rng, 0, 6)
        for setting in SETTINGS:
            kwargs = sacre_kwargs(setting)
            kwargs["use_effective_order"] = setting.get("use_effective_order", True)   # sentence_bleu's default
            theirs = sacrebleu.sentence_bleu(hyp, refs, **kwargs)
            assert_same(sentence_bleu(hyp, refs, **{**setting, "use_effective_order": kwargs["use_effective_order"]}),
                        theirs)
        assert_same(sentence_bleu(hyp, refs), sacrebleu.sentence_bleu(hyp, refs))


def test_real_ish_translations_against_sacrebleu():
    refs_a = ["The cat is on the mat.", "There is a cat on the mat.", "It's 10:30 a.m. on May 9, 1998.",
              "He paid $1,000.50 for the U.S. edition (2nd ed.).", "« Où est la gare ? » demanda-t-il."]
    refs_b = ["A cat sits on the mat.", None, "It is half past ten on 9 May 1998.",
              "He paid 1,000.50 dollars for the American edition.", "Il demanda : « Où se trouve la gare ? »"]
    hyps = ["the cat sat on the mat .", "", "It's 10:30 on May 9th, 1998", "He paid $1000.50 for the US edition.",
            "« Où est la gare? » a-t-il demandé."]
    for setting in SETTINGS:
        assert_same(corpus_bleu(hyps, [refs_a, refs_b], **setting),
                    sacrebleu.corpus_bleu(hyps, [refs_a, refs_b], **sacre_kwargs(setting)))
    assert_same(corpus_bleu(hyps, refs_a), sacrebleu.corpus_bleu(hyps, [refs_a]))    # one stream given flat
    dates = ["1998-05-09", "2001-01-01", "1998-05-19"]
    assert_same(corpus_bleu(dates, ["1998-05-09", "2001-10-01", "1998-05-09"]),
                sacrebleu.corpus_bleu(dates, [["1998-05-09", "2001-10-01", "1998-05-09"]]))


def test_13a_tokenizer_equals_sacrebleu():
    tok = Tokenizer13a()
    rng = np.random.default_rng(7)
    alphabet = string.printable + "éü«»€—’"
    lines = ["", " ", "a-\nb", "x<skipped>y", "&amp;&lt;&gt;&quot;", "1998-05-09", "1,000.5 and 3.14.", "U.S.A., etc.",
             "don't-stop", "(a)[b]{c}", "tab\there", "line\nbreak"]
    lines += ["".join(rng.choice(list(alphabet), size=rng.integers(0, 40))) for _ in range(400)]
    for line in lines:
        assert tokenize_13a(line) == tok(line), repr(line)
    assert tokenize_13a("1998-05-09") == "1998 - 05 - 09"         # an ISO date is 5 words


def test_hand_computed():
    """hyp 'the cat sat on the mat' against 'the cat is on the mat': p1 = 5/6, p2 = 3/5, p3 = 1/4, no 4-gram
    matches (3 in the hypothesis), so 'exp' smoothing gives p4 = 1 / (2 * 3); BP = 1 (equal lengths)."""
    hyp, ref = "the cat sat on the mat", "the cat is on the mat"
    result = corpus_bleu([hyp], [ref])
    expected = 100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    assert abs(result.score - expected) < 1e-9
    assert np.allclose(result.precisions, [100 * 5 / 6, 60.0, 25.0, 100 / 6])
    assert (result.counts, result.totals, result.bp) == ((5, 3, 1, 0), (6, 5, 4, 3), 1.0)
    assert corpus_bleu([hyp], [ref], smooth="none").score == 0.0      # a zero precision: a zero geometric mean
    # brevity: 2 words against 4; sentence BLEU uses only the orders a 2-word hypothesis has
    short = sentence_bleu("the cat", "the cat is here")
    assert abs(short.bp - math.exp(1 - 4 / 2)) < 1e-12
    assert abs(short.score - 100 * math.exp(1 - 4 / 2)) < 1e-9
    assert corpus_bleu(["the cat"], ["the cat is here"]).score == 0.0   # corpus BLEU still wants 3- and 4-grams
    # two references: the closest length (the shorter on a tie) and the clipping by the most in one reference
    two = corpus_bleu(["the the the"], [["the cat"], ["the the dog x"]], max_order=1)
    assert two.counts == (2,) and two.ref_len == 2                  # |3-2| = |3-4|: the shorter one, 2
    assert abs(two.score - 100 * 2 / 3) < 1e-9
    assert corpus_bleu([ref], [ref]).score == pytest.approx(100.0)
    assert "BLEU = 100.00" in str(corpus_bleu([ref], [ref]))


def test_empty_hypotheses():
    result = corpus_bleu(["", ""], ["a b c", "d e"])
    assert result.score == 0.0 and result.bp == 0.0 and result.sys_len == 0 and result.ref_len == 5
    assert_same(result, sacrebleu.corpus_bleu(["", ""], [["a b c", "d e"]]))
    assert_same(sentence_bleu("", ["a b"]), sacrebleu.sentence_bleu("", ["a b"]))


@pytest.mark.parametrize("call, error, match", [
    (lambda: corpus_bleu([], []), ValueError, "hypotheses is empty"),
    (lambda: corpus_bleu("a b", ["a b"]), TypeError, "list of strings"),
    (lambda: corpus_bleu(["a", 3], ["a", "b"]), TypeError, r"hypotheses\[1\]"),
    (lambda: corpus_bleu(["a", "b"], ["a"]), ValueError, "1 references for 2 hypotheses"),
    (lambda: corpus_bleu(["a"], "a"), TypeError, "references must be"),
    (lambda: corpus_bleu(["a"], [[None]]), ValueError, "no reference"),
    (lambda: corpus_bleu(["a"], [[3]]), TypeError, "string or None"),
    (lambda: corpus_bleu(["a"], ["a"], max_order=0), ValueError, "max_order"),
    (lambda: corpus_bleu(["a"], ["a"], smooth="add-one"), ValueError, "valid methods are: none, floor"),
    (lambda: corpus_bleu(["a"], ["a"], smooth_value=-1), ValueError, "smooth_value"),
    (lambda: corpus_bleu(["a"], ["a"], tokenize="intl"), ValueError, "valid tokenizers are: 13a"),
    (lambda: sentence_bleu(["a"], ["a"]), TypeError, "hypothesis must be a string"),
    (lambda: sentence_bleu("a", []), TypeError, "non-empty list"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
