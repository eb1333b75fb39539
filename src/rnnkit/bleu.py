"""BLEU (Papineni et al., 2002) as sacreBLEU computes it: ``corpus_bleu`` and ``sentence_bleu``.

The defaults are sacreBLEU's, so that a figure printed here can be compared with published ones:
the ``13a`` tokenizer (mteval-v13a.pl, what WMT uses), n-grams up to order 4, mixed case, and
``exp`` smoothing (NIST's), which only matters when some n-gram order has no match at all.

For every hypothesis, with its references already tokenized into words:

* ``counts[n]``: hypothesis n-grams found in the references, each clipped to the most times it
  occurs in any *one* reference; ``totals[n]``: hypothesis n-grams;
* ``sys_len``: hypothesis words; ``ref_len``: words of the reference whose length is closest to
  the hypothesis (the shorter one on a tie).

The corpus sums these over all hypotheses, then::

    p_n  = 100 * counts[n] / totals[n]                  (smoothed where counts[n] == 0, see below)
    BP   = 1 if sys_len >= ref_len else exp(1 - ref_len / sys_len)      (0 when sys_len == 0)
    BLEU = BP * exp(mean_n log p_n)                    (0 if no n-gram matched at all)

Smoothing of a zero ``counts[n]``: ``"none"`` keeps ``p_n = 0`` (so BLEU = 0); ``"floor"``
uses ``100 * smooth_value / totals[n]`` (default 0.1); ``"exp"`` uses ``100 / (2^k totals[n])``
for the k-th such order; ``"add-k"`` adds ``smooth_value`` (default 1) to ``counts[n]`` and
``totals[n]`` for n >= 2. ``use_effective_order`` (the default of ``sentence_bleu``, as in
sacreBLEU) averages only over the orders the hypothesis is long enough to have.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

SMOOTH_METHODS = {"none": None, "floor": 0.1, "add-k": 1.0, "exp": None}   # method -> default smooth_value

# mteval-v13a's punctuation: every ASCII symbol except the apostrophe, the comma, the hyphen and the
# period (those four are split only in the contexts of the rules below), and the space itself.
_SYMBOLS = "".join(c for c in map(chr, range(0x20, 0x7F)) if not c.isalnum() and c not in "',-.")
_13A_RULES = (
    (re.compile(f"([{re.escape(_SYMBOLS)}])"), r" \1 "),   # symbols always stand alone
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),          # a period or comma not after a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),          # ... or not before a digit ("1,000.5" stays)
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),               # a hyphen after a digit ("1998-05-09" splits)
)
_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


def tokenize_13a(line: str) -> str:
    """mteval-v13a's tokenization: symbols and sentence punctuation become words of their own."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for entity, char in _ENTITIES:
            line = line.replace(entity, char)
    line = f" {line} "                     # the rules look at the characters on both sides
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def tokenize_char(line: str) -> str:
    """Every character a word (spaces included as they are, as sacreBLEU's ``char``)."""
    return " ".join(line)


TOKENIZERS: dict[str, Callable[[str], str]] = {"13a": tokenize_13a, "char": tokenize_char, "none": lambda s: s}


@dataclass(frozen=True)
class BLEUScore:
    """A BLEU result, sacreBLEU's figures and names.

    Attributes:
        score: BLEU in [0, 100].
        counts: matched n-grams for n = 1..max_order (floats after ``"add-k"`` smoothing).
        totals: hypothesis n-grams for n = 1..max_order.
        precisions: the (smoothed) n-gram precisions in percent.
        bp: the brevity penalty in [0, 1].
        sys_len: words in the hypotheses; ref_len: words in the closest references.
    """

    score: float
    counts: tuple
    totals: tuple
    precisions: tuple
    bp: float
    sys_len: int
    ref_len: int

    @property
    def ratio(self) -> float:
        """Hypothesis length over reference length (0 when there are no reference words)."""
        return self.sys_len / self.ref_len if self.ref_len else 0.0

    def __str__(self) -> str:
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (f"BLEU = {self.score:.2f} {precisions} (BP = {self.bp:.3f} ratio = {self.ratio:.3f} "
                f"hyp_len = {self.sys_len:d} ref_len = {self.ref_len:d})")


def _ngrams(words: list[str], max_order: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for n in range(1, max_order + 1) for i in range(len(words) - n + 1))


def _closest_length(hyp_len: int, ref_lens: list[int]) -> int:
    return min(ref_lens, key=lambda r: (abs(hyp_len - r), r))      # nearest, the shorter on a tie


def _check_options(max_order: int, smooth: str, smooth_value: float | None, tokenize: str) -> Callable[[str], str]:
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"max_order must be a positive integer, got {max_order!r}.")
    if smooth not in SMOOTH_METHODS:
        raise ValueError(f"Unknown smooth {smooth!r}; valid methods are: {', '.join(SMOOTH_METHODS)}.")
    if smooth_value is not None and (isinstance(smooth_value, bool) or not isinstance(smooth_value, (int, float))
                                     or not smooth_value >= 0):
        raise ValueError(f"smooth_value must be a number >= 0 or None, got {smooth_value!r}.")
    if tokenize not in TOKENIZERS:
        raise ValueError(f"Unknown tokenize {tokenize!r}; valid tokenizers are: {', '.join(TOKENIZERS)}.")
    return TOKENIZERS[tokenize]


def _reference_streams(references: Sequence, n: int) -> list[list[str | None]]:
    """sacreBLEU's layout (a list of streams, each with one reference per hypothesis, None for none),
    or a plain list of strings taken as the one stream."""
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError("references must be a list of reference strings (one per hypothesis) or a list of such "
                        f"lists (several references per hypothesis), got {type(references).__name__}.")
    if len(references) == 0:
        raise ValueError("references is empty: give at least one reference per hypothesis.")
    streams = [references] if all(isinstance(r, str) for r in references) else references
    for k, stream in enumerate(streams):
        if isinstance(stream, str) or not isinstance(stream, Sequence):
            raise TypeError(f"references[{k}] must be a list of strings (one per hypothesis), "
                            f"got {type(stream).__name__}.")
        if len(stream) != n:
            raise ValueError(f"references[{k}] has {len(stream)} references for {n} hypotheses; each stream needs "
                             "one per hypothesis (None where a hypothesis has fewer references).")
        for i, r in enumerate(stream):
            if r is not None and not isinstance(r, str):
                raise TypeError(f"references[{k}][{i}] must be a string or None, got {type(r).__name__}.")
    return [list(s) for s in streams]


def _statistics(hypotheses: Sequence[str], streams: list[list[str | None]], max_order: int,
                tokenizer: Callable[[str], str], lowercase: bool) -> tuple[int, int, list[int], list[int]]:
    """The corpus sums ``(sys_len, ref_len, counts, totals)``."""
    prepare = (lambda s: tokenizer(s.lower().rstrip())) if lowercase else (lambda s: tokenizer(s.rstrip()))
    sys_len = ref_len = 0
    counts, totals = [0] * max_order, [0] * max_order
    for i, hyp in enumerate(hypotheses):
        refs = [prepare(s[i]).split() for s in streams if s[i] is not None]
        if not refs:
            raise ValueError(f"Hypothesis {i} has no reference (every stream has None there).")
        ref_ngrams: Counter = Counter()
        for ref in refs:
            ref_ngrams |= _ngrams(ref, max_order)                   # |: the most any one reference has
        words = prepare(hyp).split()
        sys_len += len(words)
        ref_len += _closest_length(len(words), [len(r) for r in refs])
        for gram, count in _ngrams(words, max_order).items():
            totals[len(gram) - 1] += count
            counts[len(gram) - 1] += min(count, ref_ngrams[gram])
    return sys_len, ref_len, counts, totals


def _score(sys_len: int, ref_len: int, counts: list, totals: list, smooth: str, smooth_value: float | None,
           use_effective_order: bool) -> BLEUScore:
    """BLEU from the corpus sums (sacreBLEU's ``compute_bleu``)."""
    max_order = len(counts)
    value = SMOOTH_METHODS[smooth] if smooth_value is None else float(smooth_value)
    bp = 1.0 if sys_len >= ref_len else (math.exp(1.0 - ref_len / sys_len) if sys_len > 0 else 0.0)
    precisions = [0.0] * max_order
    if not any(counts):                                              # nothing matched: BLEU is 0 whatever the smoothing
        return BLEUScore(0.0, tuple(counts), tuple(totals), tuple(precisions), bp, sys_len, ref_len)
    counts, totals = list(counts), list(totals)
    halvings, orders = 1.0, max_order
    for n in range(max_order):
        if smooth == "add-k" and n > 0:
            counts[n] += value
            totals[n] += value
        if totals[n] == 0:                                           # the hypotheses are all shorter than n + 1 words
            break
        if use_effective_order:
            orders = n + 1
        if counts[n] > 0:
            precisions[n] = 100.0 * counts[n] / totals[n]
        elif smooth == "exp":
            halvings *= 2.0
            precisions[n] = 100.0 / (halvings * totals[n])
        elif smooth == "floor":
            precisions[n] = 100.0 * value / totals[n]
    used = precisions[:orders]
    # a zero precision makes the geometric mean zero (sacreBLEU's floored log gives the same 0.0)
    score = 0.0 if min(used) <= 0.0 else bp * math.exp(sum(math.log(p) for p in used) / orders)
    return BLEUScore(score, tuple(counts), tuple(totals), tuple(precisions), bp, sys_len, ref_len)


def corpus_bleu(hypotheses: Sequence[str], references: Sequence, max_order: int = 4, smooth: str = "exp",
                smooth_value: float | None = None, tokenize: str = "13a", lowercase: bool = False,
                use_effective_order: bool = False) -> BLEUScore:
    """Corpus BLEU of ``hypotheses`` against ``references``, equal to ``sacrebleu.corpus_bleu``.

    Args:
        hypotheses: ``N`` strings (an empty string is a valid, empty, hypothesis).
        references: sacreBLEU's layout, a list of reference *streams*, each ``N`` strings (one per
            hypothesis; ``None`` where a hypothesis has fewer references), e.g. ``[refs_a, refs_b]``
            for two references each; or simply ``N`` strings, one reference per hypothesis.
        max_order: the longest n-grams counted (4).
        smooth: ``"exp"`` (sacreBLEU's default), ``"none"``, ``"floor"`` or ``"add-k"``.
        smooth_value: the value of ``"floor"`` (0.1) or ``"add-k"`` (1) when not None.
        tokenize: ``"13a"`` (default), ``"char"`` (every character a word) or ``"none"`` (split on spaces).
        lowercase: compare lowercased text.
        use_effective_order: average only over the n-gram orders the hypotheses are long enough to have.

    Returns:
        a ``BLEUScore`` (``score`` in [0, 100], ``precisions``, ``bp``, ``sys_len``, ``ref_len``, ...).
    """
    tokenizer = _check_options(max_order, smooth, smooth_value, tokenize)
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Sequence):
        raise TypeError(f"hypotheses must be a list of strings, got {type(hypotheses).__name__}.")
    if len(hypotheses) == 0:
        raise ValueError("hypotheses is empty: BLEU needs at least one hypothesis.")
    for i, h in enumerate(hypotheses):
        if not isinstance(h, str):
            raise TypeError(f"hypotheses[{i}] must be a string, got {type(h).__name__}.")
    streams = _reference_streams(references, len(hypotheses))
    stats = _statistics(hypotheses, streams, max_order, tokenizer, bool(lowercase))
    return _score(*stats, smooth, smooth_value, bool(use_effective_order))


def sentence_bleu(hypothesis: str, references: str | Sequence[str], max_order: int = 4, smooth: str = "exp",
                  smooth_value: float | None = None, tokenize: str = "13a", lowercase: bool = False,
                  use_effective_order: bool = True) -> BLEUScore:
    """BLEU of one ``hypothesis`` against its reference(s), equal to ``sacrebleu.sentence_bleu``.

    ``references`` is one string or a list of strings (several references of this sentence). The
    options are those of ``corpus_bleu``, with ``use_effective_order=True`` as in sacreBLEU.
    """
    if not isinstance(hypothesis, str):
        raise TypeError(f"hypothesis must be a string, got {type(hypothesis).__name__}.")
    refs = [references] if isinstance(references, str) else references
    if not isinstance(refs, Sequence) or len(refs) == 0 or not all(isinstance(r, str) for r in refs):
        raise TypeError("references must be a string or a non-empty list of strings (the references of this "
                        f"sentence), got {references!r}.")
    return corpus_bleu([hypothesis], [[r] for r in refs], max_order=max_order, smooth=smooth,
                       smooth_value=smooth_value, tokenize=tokenize, lowercase=lowercase,
                       use_effective_order=use_effective_order)


__all__ = ["BLEUScore", "corpus_bleu", "sentence_bleu", "tokenize_13a", "tokenize_char", "TOKENIZERS", "SMOOTH_METHODS"]
