"""The CTC demo: its strings are built as described, and its quick run meets its own bar."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.examples import ctc as demo
from rnnkit.examples import demos


def test_strings_lay_images_side_by_side():
    rng = np.random.default_rng(0)
    images = rng.uniform(0.1, 1.0, size=(5, 8, 8)).astype(np.float32)   # no empty column: gaps are visible
    digits = np.array([3, 1, 4, 1, 5])
    x, y, used = demo.make_strings(images, digits, 20, rng)
    assert x.shape == (20, demo.STEPS, 8) and y.shape == (20, demo.MAX_DIGITS)
    for xi, yi, picks in zip(x, y, used):
        assert demo.MIN_DIGITS <= len(picks) <= demo.MAX_DIGITS
        np.testing.assert_array_equal(yi, np.pad(digits[picks] + 1, (0, demo.MAX_DIGITS - len(picks))))
        filled = np.flatnonzero(xi.any(axis=1))                        # the columns the images occupy
        assert len(filled) == 8 * len(picks)
        for j, k in enumerate(picks):                                  # each image, column by column, in order
            np.testing.assert_array_equal(xi[filled[8 * j:8 * j + 8]], images[k].T)
        gaps = np.diff(filled)
        assert gaps.max() <= demo.MAX_GAP + 1 and not xi[filled[-1] + 1:].any()


def test_demo_is_listed():
    assert demos()["ctc"].startswith("Read strings of handwritten digits with CTC")


def test_quick_run_meets_its_bar(capsys):
    result = demo.main(["--quick", "--seed", "0"])
    out = capsys.readouterr().out
    assert "CTC model, greedy decoding" in out and "Bar (quick: greedy CER below 15%): met" in out
    assert result["bar_met"] and result["cer_greedy"] < 0.15 and result["cer_beam"] < 0.15
    assert result["exact_greedy"] > 0.5 and result["final_loss"] < 2.0
    assert 0.0 <= result["baseline_cer"] < 0.10                      # a good image classifier, positions given


def test_option_errors():
    with pytest.raises(SystemExit):
        demo.main(["--quick", "--beam-width", "-1"])
