"""``rnnkit.datasets.sentiment.sentiment_sentences``: the shipped review sentences are what the docs say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rnnkit.datasets.sentiment import sentiment_sentences
from rnnkit.layers.text_vectorization import TextVectorization

DATA = Path(__file__).resolve().parents[1] / "src" / "rnnkit" / "datasets" / "data"


def test_sizes_labels_and_balance():
    texts, labels = sentiment_sentences()
    assert len(texts) == len(labels) == 592
    assert labels.dtype == np.int64 and labels.shape == (592,)
    assert set(labels.tolist()) == {0, 1} and labels.sum() == 296
    assert np.array_equal(labels, np.arange(592) % 2 == 0)          # twin pairs: positive, then negative
    assert all(isinstance(t, str) for t in texts)


def test_sentences_are_clean_and_unique():
    texts, _ = sentiment_sentences()
    assert len(set(texts)) == len(texts)
    for t in texts:
        assert t == t.strip() and t and "\t" not in t and "\n" not in t
        assert 2 <= len(t.split()) <= 20
        assert t[-1] in ".!"


def test_word_order_matters_in_many_of_them():
    """Negations and contrasts: what a bag of words cannot read."""
    texts, labels = sentiment_sentences()
    negated = [re.search(r"\b(not|never|no|nothing|nobody|n't|cannot)\b", t.lower()) is not None for t in texts]
    assert sum(negated) >= 100
    assert sum(n for n, y in zip(negated, labels) if y == 1) >= 40      # on both sides
    assert sum(n for n, y in zip(negated, labels) if y == 0) >= 40


def test_vocabulary_is_varied():
    texts, _ = sentiment_sentences()
    vectorize = TextVectorization()
    vectorize.adapt(texts)
    assert vectorize.vocabulary_size() >= 700


def test_limit_and_bad_limits():
    texts, labels = sentiment_sentences(limit=10)
    assert len(texts) == 10 and labels.tolist() == [1, 0] * 5
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="limit must be a positive integer"):
            sentiment_sentences(limit=bad)


def test_file_is_listed_in_the_data_readme():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert "`sentiment_small.tsv`" in readme and "MIT" in readme
    lines = (DATA / "sentiment_small.tsv").read_text(encoding="utf-8").splitlines()
    assert all(re.fullmatch(r"[01]\t[^\t]+", line) for line in lines)
