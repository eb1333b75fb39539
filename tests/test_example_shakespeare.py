"""The tinyshakespeare data shipped with rnnkit, and ``rnnkit demo shakespeare --quick`` against its bar."""

from __future__ import annotations

import hashlib
import lzma
from importlib import resources

import numpy as np
import pytest

from rnnkit import datasets
from rnnkit.datasets import tiny_shakespeare

#: SHA-256 of https://github.com/karpathy/char-rnn/blob/master/data/tinyshakespeare/input.txt
CHAR_RNN_INPUT_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
#: the git blob id of that file in char-rnn's tree (commit 6f9487a): sha1 of "blob <size>\0" + the bytes
CHAR_RNN_INPUT_BLOB = "7dcb3a2d4cc3b48b6283dd46870bfeb78f88aac9"


def test_shipped_file_is_char_rnns_input_txt():
    raw = lzma.decompress(resources.files("rnnkit.datasets").joinpath("data", "tinyshakespeare.txt.xz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == CHAR_RNN_INPUT_SHA256 == datasets.TINY_SHAKESPEARE_SHA256
    assert hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest() == CHAR_RNN_INPUT_BLOB
    assert len(raw) == 1_115_394 and raw.count(b"\n") == 40_000


def test_text_vocabulary_and_splits():
    text, vocab = tiny_shakespeare()
    assert len(text) == 1_115_394 and text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert len(vocab) == 65 and vocab.chars[:3] == ["\n", " ", "!"]
    train, train_vocab = tiny_shakespeare("train")
    val, val_vocab = tiny_shakespeare("validation")
    assert train + val == text and len(train) == int(len(text) * 0.9)
    assert train_vocab.chars == val_vocab.chars == vocab.chars
    small_val, _ = tiny_shakespeare("validation", validation_fraction=0.05)
    assert text.endswith(small_val) and len(small_val) == len(text) - int(len(text) * 0.95)


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "test"}, r"split must be 'all', 'train' or 'validation', got 'test'"),
    ({"validation_fraction": 1.0}, r"validation_fraction must be a number in \(0, 1\), got 1.0"),
    ({"validation_fraction": 0}, r"validation_fraction must be a number in \(0, 1\), got 0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_shakespeare(**kwargs)


def test_quick_demo_beats_the_unigram_baseline(capsys):
    from rnnkit.examples import shakespeare

    result = shakespeare.main(["--quick"])
    out = capsys.readouterr().out
    assert "unigram baseline" in out and "--- temperature 0.8 ---" in out and "--- greedy ---" in out
    baseline, bits = result["baseline_unigram_bits_per_char"], result["val_bits_per_char"]
    assert 4.5 < baseline < 5.2
    assert bits < baseline - 0.6, (bits, baseline)             # the quick bar, set from what the quick run reaches
    assert np.isfinite(result["val_perplexity"]) and result["val_perplexity"] == pytest.approx(2 ** bits)
    assert result["same_text_both_paths"]                     # the stateful path writes what re-running writes
    assert all(s.startswith("ROMEO:\n") and len(s) == len("ROMEO:\n") + 80 for s in result["samples"].values())
