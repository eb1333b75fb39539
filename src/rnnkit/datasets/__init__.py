"""Small data sets that ship inside the package: nothing is ever downloaded.

* ``sentence_pairs()``: 123 short English sentences and their French translations, written for
  rnnkit (MIT, like the rest of the package; see ``data/README.md``), enough to train the
  character-level sequence-to-sequence model of Keras' example in a few seconds.
"""

from __future__ import annotations

from importlib import resources


def sentence_pairs(limit: int | None = None) -> list[tuple[str, str]]:
    """``[(english, french), ...]`` in file order; ``limit`` keeps the first ``limit`` pairs."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}.")
    text = resources.files(__package__).joinpath("data", "eng_fra_small.tsv").read_text(encoding="utf-8")
    pairs = [tuple(line.split("\t")) for line in text.splitlines() if line.strip()]
    return [(en, fr) for en, fr in pairs][:limit]


__all__ = ["sentence_pairs"]
