"""``TextVectorization`` and ``StringLookup`` against Keras 3: vocabulary order, ids, padding, OOV, max_tokens.

Keras' two layers run on TensorFlow's string ops, even on the PyTorch backend, and TensorFlow is not
among the test dependencies (it is large, and nothing else needs it), so there are two references here:

* the examples of Keras' own docstrings (the documented behaviour);
* ``KERAS``: what Keras 3.15.1 with TensorFlow 2.21 (``KERAS_BACKEND=torch``) returned for the cases
  below, recorded by running them through ``keras.layers.TextVectorization`` / ``StringLookup``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnkit.layers.string_lookup import StringLookup
from rnnkit.layers.text_vectorization import TextVectorization

ADAPT = [
    "The cat sat on the mat.",
    "The dog ate my homework!!",
    "A cat, a dog, and a bird; all friends.",
    "  Leading and trailing   spaces\tand\ttabs\nand newlines\r\n  ",
    "UPPER lower MiXeD Case",
    "Café ÉCOLE naïve résumé",
    "don't stop-believing (it's 100% true) #1 @home",
    "",
    "!!!",
    "the the the cat cat dog",
    "non\u00a0breaking space and\u2003em space",
    "[UNK] is a token too",
]
CALL = ["the cat and the unicorn", "", "A very very long sentence with many words that goes on and on and on",
        "ÉCOLE café", "[UNK]", "dog"]
TV_CASES = {
    "default": {},
    "length_5": {"output_sequence_length": 5},
    "max_tokens_10": {"max_tokens": 10, "output_sequence_length": 8},
    "no_standardize": {"standardize": None},
    "lower": {"standardize": "lower"},
    "strip_punctuation": {"standardize": "strip_punctuation"},
    "character": {"split": "character", "max_tokens": 20, "output_sequence_length": 10},
    "bigrams": {"ngrams": 2},
    "ngrams_1_3": {"ngrams": (1, 3), "output_sequence_length": 6},
    "no_split": {"split": None},
}
SL_ADAPT = [["a", "c", "d", "b"], ["d", "z", "b", ""], ["[UNK]", "é", "E", "e"]]
SL_CALL = [["a", "z", "q"], ["", "é", "[UNK]"]]
SL_CASES = {
    "default": {},
    "mask": {"mask_token": ""},
    "max_tokens_4": {"max_tokens": 4},
    "mask_max_tokens_4": {"mask_token": "", "max_tokens": 4},
    "custom_oov": {"oov_token": "<?>"},
}
INVERT_IDS = [0, 1, 2, 3, 50]

KERAS = json.loads(r"""
{
 "tv": {
  "default": {
   "vocabulary": [
    "", "[UNK]", "the", "cat", "and", "a", "dog", "space", "\u00c9cole", "upper", "unk", "true", "trailing", "too",
    "token", "tabs", "stopbelieving", "spaces", "sat", "r\u00e9sum\u00e9", "on", "non\u00a0breaking", "newlines",
    "na\u00efve", "my", "mixed", "mat", "lower", "leading", "its", "is", "homework", "home", "friends", "dont",
    "case", "caf\u00e9", "bird", "ate", "and\u2003em", "all", "100", "1"
   ],
   "ids": [
    [2, 3, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 20, 4, 20, 4, 20],
    [8, 36, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
   ]
  },
  "length_5": {
   "vocabulary": [
    "", "[UNK]", "the", "cat", "and", "a", "dog", "space", "\u00c9cole", "upper", "unk", "true", "trailing", "too",
    "token", "tabs", "stopbelieving", "spaces", "sat", "r\u00e9sum\u00e9", "on", "non\u00a0breaking", "newlines",
    "na\u00efve", "my", "mixed", "mat", "lower", "leading", "its", "is", "homework", "home", "friends", "dont",
    "case", "caf\u00e9", "bird", "ate", "and\u2003em", "all", "100", "1"
   ],
   "ids": [
    [2, 3, 4, 2, 1],
    [0, 0, 0, 0, 0],
    [5, 1, 1, 1, 1],
    [8, 36, 0, 0, 0],
    [10, 0, 0, 0, 0],
    [6, 0, 0, 0, 0]
   ]
  },
  "max_tokens_10": {
   "vocabulary": [
    "", "[UNK]", "the", "cat", "and", "a", "dog", "space", "\u00c9cole", "upper"
   ],
   "ids": [
    [2, 3, 4, 2, 1, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0],
    [5, 1, 1, 1, 1, 1, 1, 1],
    [8, 1, 0, 0, 0, 0, 0, 0],
    [1, 0, 0, 0, 0, 0, 0, 0],
    [6, 0, 0, 0, 0, 0, 0, 0]
   ]
  },
  "no_standardize": {
   "vocabulary": [
    "", "[UNK]", "the", "and", "cat", "a", "space", "dog", "The", "\u00c9COLE", "true)", "trailing", "too", "token",
    "tabs", "stop-believing", "spaces", "sat", "r\u00e9sum\u00e9", "on", "non\u00a0breaking", "newlines",
    "na\u00efve", "my", "mat.", "lower", "is", "homework!!", "friends.", "don't", "dog,", "cat,", "bird;", "ate",
    "and\u2003em", "all", "UPPER", "MiXeD", "Leading", "Case", "Caf\u00e9", "A", "@home", "100%", "(it's", "#1",
    "!!!"
   ],
   "ids": [
    [2, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [41, 1, 1, 1, 1, 1, 1, 1, 1, 1, 19, 3, 19, 3, 19],
    [9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
   ]
  },
  "lower": {
   "vocabulary": [
    "", "[UNK]", "the", "and", "a", "cat", "space", "dog", "\u00c9cole", "upper", "true)", "trailing", "too", "token",
    "tabs", "stop-believing", "spaces", "sat", "r\u00e9sum\u00e9", "on", "non\u00a0breaking", "newlines",
    "na\u00efve", "my", "mixed", "mat.", "lower", "leading", "is", "homework!!", "friends.", "don't", "dog,", "cat,",
    "case", "caf\u00e9", "bird;", "ate", "and\u2003em", "all", "[unk]", "@home", "100%", "(it's", "#1", "!!!"
   ],
   "ids": [
    [2, 5, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 19, 3, 19, 3, 19],
    [8, 35, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
   ]
  },
  "strip_punctuation": {
   "vocabulary": [
    "", "[UNK]", "the", "cat", "and", "dog", "a", "space", "The", "\u00c9COLE", "true", "trailing", "too", "token",
    "tabs", "stopbelieving", "spaces", "sat", "r\u00e9sum\u00e9", "on", "non\u00a0breaking", "newlines", "na\u00efve",
    "my", "mat", "lower", "its", "is", "homework", "home", "friends", "dont", "bird", "ate", "and\u2003em", "all",
    "UPPER", "UNK", "MiXeD", "Leading", "Case", "Caf\u00e9", "A", "100", "1"
   ],
   "ids": [
    [2, 3, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [42, 1, 1, 1, 1, 1, 1, 1, 1, 1, 19, 4, 19, 4, 19],
    [9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [37, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
   ]
  },
  "character": {
   "vocabulary": [
    "", "[UNK]", " ", "e", "a", "t", "n", "o", "s", "d", "i", "c", "r", "l", "h", "m", "g", "p", "u", "k"
   ],
   "ids": [
    [5, 14, 3, 2, 11, 4, 5, 2, 4, 6],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [4, 2, 1, 3, 12, 1, 2, 1, 3, 12],
    [1, 11, 7, 13, 3, 2, 11, 4, 1, 1],
    [18, 6, 19, 0, 0, 0, 0, 0, 0, 0],
    [9, 7, 16, 0, 0, 0, 0, 0, 0, 0]
   ]
  },
  "bigrams": {
   "vocabulary": [
    "", "[UNK]", "the", "cat", "and", "a", "dog", "the the", "the cat", "space", "\u00c9cole na\u00efve",
    "\u00c9cole", "upper lower", "upper", "unk is", "unk", "true 1", "true", "trailing spaces", "trailing", "too",
    "token too", "token", "the mat", "the dog", "tabs and", "tabs", "stopbelieving its", "stopbelieving",
    "spaces and", "spaces", "space and\u2003em", "sat on", "sat", "r\u00e9sum\u00e9", "on the", "on",
    "non\u00a0breaking space", "non\u00a0breaking", "newlines", "na\u00efve r\u00e9sum\u00e9", "na\u00efve",
    "my homework", "my", "mixed case", "mixed", "mat", "lower mixed", "lower", "leading and", "leading", "its 100",
    "its", "is a", "is", "homework", "home", "friends", "dont stopbelieving", "dont", "dog ate", "dog and", "cat sat",
    "cat dog", "cat cat", "cat a", "case", "caf\u00e9 \u00c9cole", "caf\u00e9", "bird all", "bird", "ate my", "ate",
    "and\u2003em space", "and\u2003em", "and trailing", "and tabs", "and newlines", "and a", "all friends", "all",
    "a token", "a dog", "a cat", "a bird", "100 true", "100", "1 home", "1"
   ],
   "ids": [
    [2, 3, 4, 2, 1, 8, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 36, 4, 36, 4, 36, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    [11, 68, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    [6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
   ]
  },
  "ngrams_1_3": {
   "vocabulary": [
    "", "[UNK]", "the", "cat", "and", "a", "dog", "space", "\u00c9cole na\u00efve r\u00e9sum\u00e9", "\u00c9cole",
    "upper lower mixed", "upper", "unk is a", "unk", "true 1 home", "true", "trailing spaces and", "trailing", "too",
    "token", "the the the", "the the cat", "the dog ate", "the cat sat", "the cat cat", "tabs and newlines", "tabs",
    "stopbelieving its 100", "stopbelieving", "spaces and tabs", "spaces", "space and\u2003em space", "sat on the",
    "sat", "r\u00e9sum\u00e9", "on the mat", "on", "non\u00a0breaking space and\u2003em", "non\u00a0breaking",
    "newlines", "na\u00efve", "my", "mixed", "mat", "lower mixed case", "lower", "leading and trailing", "leading",
    "its 100 true", "its", "is a token", "is", "homework", "home", "friends", "dont stopbelieving its", "dont",
    "dog ate my", "dog and a", "cat sat on", "cat cat dog", "cat a dog", "case", "caf\u00e9 \u00c9cole na\u00efve",
    "caf\u00e9", "bird all friends", "bird", "ate my homework", "ate", "and\u2003em", "and trailing spaces",
    "and tabs and", "and a bird", "all", "a token too", "a dog and", "a cat a", "a bird all", "100 true 1", "100",
    "1"
   ],
   "ids": [
    [2, 3, 4, 2, 1, 1],
    [0, 0, 0, 0, 0, 0],
    [5, 1, 1, 1, 1, 1],
    [9, 64, 0, 0, 0, 0],
    [13, 0, 0, 0, 0, 0],
    [6, 0, 0, 0, 0, 0]
   ]
  },
  "no_split": {
   "vocabulary": [
    "", "[UNK]", "upper lower mixed case", "unk is a token too", "the the the cat cat dog", "the dog ate my homework",
    "the cat sat on the mat", "non\u00a0breaking space and\u2003em space", "dont stopbelieving its 100 true 1 home",
    "caf\u00e9 \u00c9cole na\u00efve r\u00e9sum\u00e9", "a cat a dog and a bird all friends",
    "  leading and trailing   spaces\tand\ttabs\nand newlines\r\n  "
   ],
   "ids": [
    1, 0, 1, 1, 1, 1
   ]
  }
 },
 "sl": {
  "default": {
   "vocabulary": [
    "[UNK]", "d", "b", "\u00e9", "z", "e", "c", "a", "E", ""
   ],
   "ids": [
    [7, 4, 0],
    [9, 3, 0]
   ],
   "inverted": [
    "[UNK]", "d", "b", "\u00e9", "[UNK]"
   ]
  },
  "mask": {
   "vocabulary": [
    "", "[UNK]", "d", "b", "\u00e9", "z", "e", "c", "a", "E"
   ],
   "ids": [
    [8, 5, 1],
    [0, 4, 1]
   ],
   "inverted": [
    "", "[UNK]", "d", "b", "[UNK]"
   ]
  },
  "max_tokens_4": {
   "vocabulary": [
    "[UNK]", "d", "b", "\u00e9"
   ],
   "ids": [
    [0, 0, 0],
    [0, 3, 0]
   ],
   "inverted": [
    "[UNK]", "d", "b", "\u00e9", "[UNK]"
   ]
  },
  "mask_max_tokens_4": {
   "vocabulary": [
    "", "[UNK]", "d", "b"
   ],
   "ids": [
    [1, 1, 1],
    [0, 1, 1]
   ],
   "inverted": [
    "", "[UNK]", "d", "b", "[UNK]"
   ]
  },
  "custom_oov": {
   "vocabulary": [
    "<?>", "d", "b", "\u00e9", "z", "e", "c", "a", "[UNK]", "E", ""
   ],
   "ids": [
    [7, 4, 0],
    [10, 3, 8]
   ],
   "inverted": [
    "<?>", "d", "b", "\u00e9", "<?>"
   ]
  }
 }
}
""")


def adapted_text_vectorization(**kwargs) -> TextVectorization:
    layer = TextVectorization(**kwargs)
    layer.adapt(ADAPT)
    return layer


# -- Keras' docstring examples ------------------------------------------------------------------
def test_keras_docstring_text_vectorization_adapt():
    layer = TextVectorization(max_tokens=5000, output_mode="int", output_sequence_length=4)
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    out = layer([["foo qux bar"], ["qux baz"]])
    assert out.dtype == np.int64
    assert out.tolist() == [[4, 1, 3, 0], [1, 2, 0, 0]]


def test_keras_docstring_text_vectorization_vocabulary():
    layer = TextVectorization(max_tokens=5000, output_sequence_length=4, vocabulary=["earth", "wind", "and", "fire"])
    assert layer.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]
    assert layer(["wind and fire", "water"]).tolist() == [[3, 4, 5, 0], [1, 0, 0, 0]]


def test_keras_docstring_string_lookup():
    vocab, data = ["a", "b", "c", "d"], [["a", "c", "d"], ["d", "z", "b"]]
    assert StringLookup(vocabulary=vocab)(data).tolist() == [[1, 3, 4], [4, 0, 2]]
    layer = StringLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    assert layer(data).tolist() == [[5, 3, 1], [1, 2, 4]]
    inverse = StringLookup(vocabulary=vocab, invert=True)
    assert inverse([[1, 3, 4], [4, 0, 2]]).tolist() == [["a", "c", "d"], ["d", "[UNK]", "b"]]
    assert inverse(StringLookup(vocabulary=vocab)(data)).tolist() == [["a", "c", "d"], ["d", "[UNK]", "b"]]


# -- the recorded Keras outputs ---------------------------------------------------------------------
@pytest.mark.parametrize("case", TV_CASES)
def test_text_vectorization_matches_keras(case):
    layer = adapted_text_vectorization(**TV_CASES[case])
    expected = KERAS["tv"][case]
    assert layer.get_vocabulary() == expected["vocabulary"]
    assert layer.vocabulary_size() == len(expected["vocabulary"])
    out = layer(CALL)
    assert out.dtype == np.int64
    assert out.tolist() == expected["ids"]


@pytest.mark.parametrize("case", SL_CASES)
def test_string_lookup_matches_keras(case):
    layer = StringLookup(**SL_CASES[case])
    layer.adapt(SL_ADAPT)
    expected = KERAS["sl"][case]
    assert layer.get_vocabulary() == expected["vocabulary"]
    assert layer(SL_CALL).tolist() == expected["ids"]
    inverse = StringLookup(vocabulary=layer.get_vocabulary(include_special_tokens=False), invert=True,
                           **SL_CASES[case])
    assert inverse(INVERT_IDS).tolist() == expected["inverted"]


# -- shapes, padding, truncation ----------------------------------------------------------------------
def test_texts_as_a_column_a_list_or_one_string():
    layer = adapted_text_vectorization()
    flat = layer(CALL)
    assert np.array_equal(layer(np.array(CALL)[:, None]), flat)         # (B, 1), as Keras takes it
    assert np.array_equal(layer(tuple(CALL)), flat)
    assert np.array_equal(layer([t.encode("utf-8") for t in CALL]), flat)   # bytes are decoded
    one = layer("the cat and the unicorn")
    assert one.shape == (5,) and np.array_equal(one, flat[0, :5])
    assert layer([]).shape == (0, 0)


def test_padding_after_and_truncation_at_the_end():
    layer = TextVectorization(vocabulary=["a", "b", "c"], output_sequence_length=3)
    assert layer(["a", "a b c a b", "c x"]).tolist() == [[2, 0, 0], [2, 3, 4], [4, 1, 0]]
    no_length = TextVectorization(vocabulary=["a", "b", "c"])
    assert no_length(["a", "a b c a b", "c x"]).tolist() == [[2, 0, 0, 0, 0], [2, 3, 4, 2, 3], [4, 1, 0, 0, 0]]


def test_max_tokens_keeps_the_most_frequent_with_ties_high_to_low():
    layer = TextVectorization(max_tokens=5)
    layer.adapt(["b a c", "c b", "c d"])               # c: 3, b: 2, then a and d tie at 1: d before a
    assert layer.get_vocabulary() == ["", "[UNK]", "c", "b", "d"]
    assert layer(["a b c d"]).tolist() == [[1, 3, 2, 4]]


def test_no_split_keeps_the_token_array_shape():
    layer = TextVectorization(split=None, standardize=None, vocabulary=["x", "y"], output_sequence_length=4)
    assert layer([["x", "y", "z"], ["y", "", "x"]]).tolist() == [[2, 3, 1, 0], [3, 0, 2, 0]]
    with pytest.raises(ValueError, match="shaped \\(batch, steps\\)"):
        layer(["x", "y"])


def test_callable_standardize_and_split_get_one_string():
    layer = TextVectorization(standardize=lambda s: s.upper(), split=lambda s: s.split("-"))
    layer.adapt(["a-b-a", "c"])
    assert layer.get_vocabulary() == ["", "[UNK]", "A", "C", "B"]
    assert layer(["c-a-q"]).tolist() == [[3, 2, 1]]


def test_ngrams_int_means_every_width_up_to_it():
    layer = TextVectorization(ngrams=3, standardize=None)
    assert layer.tokenize("a b c") == ["a", "b", "c", "a b", "b c", "a b c"]
    assert TextVectorization(ngrams=(2,)).tokenize("A b") == ["a b"]


# -- the vocabulary: adapt, set, save ------------------------------------------------------------------
def test_adapt_reads_a_generator_of_batches_and_steps():
    layer = TextVectorization()
    layer.adapt(iter([["a b"], ["b c"], ["z z z z"]]), steps=2)     # the third batch is never read
    assert layer.get_vocabulary() == ["", "[UNK]", "b", "c", "a"]
    layer.adapt(["q"])                                                # a new adapt starts from scratch
    assert layer.get_vocabulary() == ["", "[UNK]", "q"]
    layer.reset_state()
    layer.update_state(["x y"])
    layer.update_state(["y"])
    layer.finalize_state()
    assert layer.get_vocabulary(include_special_tokens=False) == ["y", "x"]


def test_set_vocabulary_with_or_without_the_special_tokens(tmp_path):
    layer = TextVectorization()
    layer.set_vocabulary(["", "[UNK]", "hello", "world"])
    assert layer.get_vocabulary() == ["", "[UNK]", "hello", "world"]
    layer.set_vocabulary(["world", "hello"])
    assert layer(["hello world"]).tolist() == [[3, 2]]
    path = tmp_path / "vocab.txt"
    path.write_text("one\ntwo\nthree\n\n", encoding="utf-8")
    from_file = TextVectorization(vocabulary=str(path))
    assert from_file.get_vocabulary() == ["", "[UNK]", "one", "two", "three"]
    assert StringLookup(vocabulary=path).vocabulary_size() == 4


def test_config_round_trips_through_json_with_the_vocabulary():
    layer = adapted_text_vectorization(max_tokens=12, output_sequence_length=7, ngrams=(1, 2), name="words")
    config = json.loads(json.dumps(layer.get_config()))
    restored = TextVectorization.from_config(config)
    assert restored.name == "words" and restored.max_tokens == 12
    assert restored.get_vocabulary() == layer.get_vocabulary()
    assert np.array_equal(restored(CALL), layer(CALL))
    lookup = StringLookup(mask_token="", max_tokens=6)
    lookup.adapt(SL_ADAPT)
    again = StringLookup.from_config(json.loads(json.dumps(lookup.get_config())))
    assert again.get_vocabulary() == lookup.get_vocabulary()
    assert np.array_equal(again(SL_CALL), lookup(SL_CALL))


def test_max_tokens_with_room_for_the_special_tokens_only_round_trips():
    lookup = StringLookup(max_tokens=2, mask_token="")
    lookup.adapt(["a", "b"])
    assert lookup.get_vocabulary() == ["", "[UNK]"]
    assert lookup(["a", ""]).tolist() == [1, 0]
    assert StringLookup.from_config(lookup.get_config()).get_vocabulary() == ["", "[UNK]"]


def test_string_lookup_mask_and_no_oov_indices():
    lookup = StringLookup(vocabulary=["a", "b"], mask_token="[PAD]", num_oov_indices=0)
    assert lookup.get_vocabulary() == ["[PAD]", "a", "b"]
    assert lookup([["a", "[PAD]"], ["b", "b"]]).tolist() == [[1, 0], [2, 2]]
    with pytest.raises(ValueError, match=r"num_oov_indices=0.*\['c'\]"):
        lookup(["a", "c"])
    inverse = StringLookup(vocabulary=["a", "b"], mask_token="[PAD]", invert=True)
    assert inverse(np.array([[0, 1, 2, 3, 9]])).tolist() == [["[PAD]", "[UNK]", "a", "b", "[UNK]"]]


# -- errors ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, match", [
    ({"output_mode": "multi_hot"}, ValueError, "output_mode='int' only"),
    ({"output_mode": "ints"}, ValueError, "output_mode must be 'int'"),
    ({"max_tokens": 1}, ValueError, "greater than 1"),
    ({"max_tokens": 2.5}, TypeError, "max_tokens must be an integer"),
    ({"standardize": "lowercase"}, ValueError, "standardize must be one of"),
    ({"split": "words"}, ValueError, "split must be one of"),
    ({"ngrams": 0}, ValueError, "ngrams must be None"),
    ({"ngrams": (1, "2")}, ValueError, "ngrams must be None"),
    ({"split": None, "ngrams": 2}, ValueError, "ngrams needs a split"),
    ({"output_sequence_length": 0}, ValueError, "output_sequence_length must be a positive integer"),
    ({"ragged": True}, ValueError, "ragged=True is not supported"),
    ({"sparse": True}, ValueError, "sparse=True"),
    ({"pad_to_max_tokens": True, "max_tokens": 5}, ValueError, "pad_to_max_tokens"),
    ({"idf_weights": [1.0]}, ValueError, "idf_weights"),
    ({"vocabulary": ["a", "b", "a"]}, ValueError, r"repeated tokens.*\['a'\]"),
    ({"vocabulary": ["a", "", "b"]}, ValueError, "reserved mask_token '' at index 1"),
    ({"vocabulary": ["a", "b", "c"], "max_tokens": 4}, ValueError, "5 entries.*max_tokens=4"),
    ({"vocabulary": []}, ValueError, "empty vocabulary"),
    ({"vocabulary": "/no/such/vocabulary.txt"}, ValueError, "does not exist"),
    ({"vocabulary": [["a"], ["b"]]}, ValueError, "1-D list of tokens"),
])
def test_text_vectorization_refuses_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        TextVectorization(**kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"num_oov_indices": 2}, ValueError, "0 or 1"),
    ({"num_oov_indices": -1}, ValueError, "greater than or equal to 0"),
    ({"mask_token": 0}, TypeError, "mask_token must be a string"),
    ({"oov_token": None}, TypeError, "oov_token must be a string"),
    ({"vocabulary": ["a", "[UNK]"], "invert": True}, ValueError, "reserved oov_token"),
    ({"encoding": "no-such-codec"}, LookupError, "no-such-codec"),
])
def test_string_lookup_refuses_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        StringLookup(**kwargs)


def test_bad_calls_are_refused_before_anything_changes():
    layer = TextVectorization()
    with pytest.raises(ValueError, match="no vocabulary yet"):
        layer(["hello"])
    with pytest.raises(ValueError, match="no vocabulary yet"):
        StringLookup()(["hello"])
    with pytest.raises(ValueError, match="found no tokens"):
        layer.adapt(["", "!!! ?"])
    assert not layer.has_vocabulary
    layer.adapt(["one two"])
    with pytest.raises(TypeError, match="expects strings, got int"):
        layer([1, 2])
    with pytest.raises(TypeError, match="expects strings, got list"):
        layer.adapt([["a b"], "c"])
    with pytest.raises(ValueError, match=r"got shape \(1, 2\)"):
        layer([["a", "b"]])
    with pytest.raises(ValueError, match="steps applies to an iterable"):
        layer.adapt(["a"], steps=1)
    with pytest.raises(TypeError, match="got int"):
        layer.adapt(5)
    assert layer.get_vocabulary() == ["", "[UNK]", "two", "one"]
    with pytest.raises(TypeError, match="integer indices"):
        StringLookup(vocabulary=["a"], invert=True)(["a"])
    with pytest.raises(ValueError, match="callable standardize has no JSON config"):
        TextVectorization(standardize=str.lower).get_config()
