"""Small data sets that ship inside the package: nothing is ever downloaded.

* ``sentence_pairs()``: 123 short English sentences and their French translations, written for
  rnnkit (MIT, like the rest of the package; see ``data/README.md``), enough to train the
  character-level sequence-to-sequence model of Keras' example in a few seconds.
* ``tiny_shakespeare()``: Karpathy's tinyshakespeare (1,115,394 characters of Shakespeare's
  plays, public domain), the classic character-level language-modelling corpus of char-rnn,
  shipped xz-compressed and checked against its SHA-256 when read.
* ``sentiment_sentences()``: 592 short review sentences labelled positive (1) or negative (0),
  written for rnnkit (MIT) in twin pairs that differ in a word or a negation.
* ``date_pairs(n, seed)``: a generated translation task, dates as people write them (15 English
  and French formats) and their ISO form, e.g. ``("samedi 9 mai 1998", "1998-05-09")``.
"""

from __future__ import annotations

import functools
import hashlib
import lzma
from importlib import resources

from rnnkit.datasets.dates import date_pairs
from rnnkit.datasets.sentiment import sentiment_sentences
from rnnkit.text import CharVocabulary

#: SHA-256 of char-rnn's data/tinyshakespeare/input.txt (its UTF-8 bytes, after decompression)
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def sentence_pairs(limit: int | None = None) -> list[tuple[str, str]]:
    """``[(english, french), ...]`` in file order; ``limit`` keeps the first ``limit`` pairs."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}.")
    text = resources.files(__package__).joinpath("data", "eng_fra_small.tsv").read_text(encoding="utf-8")
    pairs = [tuple(line.split("\t")) for line in text.splitlines() if line.strip()]
    return [(en, fr) for en, fr in pairs][:limit]


@functools.lru_cache(maxsize=1)
def _tiny_shakespeare_text() -> str:
    packed = resources.files(__package__).joinpath("data", "tinyshakespeare.txt.xz").read_bytes()
    raw = lzma.decompress(packed)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != TINY_SHAKESPEARE_SHA256:
        raise ValueError(f"The shipped tinyshakespeare data is damaged: its SHA-256 is {digest}, expected "
                         f"{TINY_SHAKESPEARE_SHA256}; reinstall rnnkit.")
    return raw.decode("utf-8")


def tiny_shakespeare(split: str = "all", validation_fraction: float = 0.1) -> tuple[str, CharVocabulary]:
    """The tinyshakespeare text and its character vocabulary (65 characters).

    Args:
        split: ``"all"`` (the whole text), ``"train"`` (the first ``1 - validation_fraction``
            of it) or ``"validation"`` (the rest), cut at a character as nanoGPT's
            ``shakespeare_char`` does (90% / 10% by default).
        validation_fraction: the share of the text, from its end, that is the validation split.

    Returns:
        ``(text, vocab)``; the vocabulary is that of the whole text whatever the split, so the
        two splits encode alike.
    """
    if split not in ("all", "train", "validation"):
        raise ValueError(f"split must be 'all', 'train' or 'validation', got {split!r}.")
    if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, (int, float)) \
            or not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be a number in (0, 1), got {validation_fraction!r}.")
    text = _tiny_shakespeare_text()
    vocab = CharVocabulary(text)
    cut = int(len(text) * (1.0 - validation_fraction))
    part = {"all": text, "train": text[:cut], "validation": text[cut:]}[split]
    return part, vocab


__all__ = ["sentence_pairs", "tiny_shakespeare", "TINY_SHAKESPEARE_SHA256", "sentiment_sentences", "date_pairs"]
