"""``sentiment_sentences()``: 592 short review sentences labelled positive (1) or negative (0).

Movie and product reviews written for rnnkit (MIT, like the rest of the package; see
``data/README.md``), 296 of each label, in pairs: line ``2i`` is positive and line ``2i + 1`` its
negative twin, which shares much of its wording ("I expected to hate it, but it won me over." /
"I expected to love it, but it let me down."). Many turn on a negation ("not bad at all", "never
once failed", "I would not recommend this to anyone"), so the order of the words matters and a bag
of words is not enough for all of them. Hold out whole pairs (``pairs = np.arange(n) // 2``): a
sentence whose twin was trained on is not a fair test. Any first ``2k`` sentences are ``k`` pairs.
"""

from __future__ import annotations

from importlib import resources

import numpy as np


def sentiment_sentences(limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """``(texts, labels)``: the sentences in file order and their labels ``(N,)`` int64 (1 = positive).

    ``limit`` keeps the first ``limit`` sentences.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}.")
    text = resources.files(__package__).joinpath("data", "sentiment_small.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line.strip()][:limit]
    texts = [sentence for _, sentence in rows]
    labels = np.array([int(label) for label, _ in rows], dtype=np.int64)   # (N,)
    return texts, labels


__all__ = ["sentiment_sentences"]
