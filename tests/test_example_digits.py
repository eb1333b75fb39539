"""``rnnkit demo digits``: its quick run reaches its bar; its options are checked."""

from __future__ import annotations

import pytest
import sklearn  # noqa: F401  (a test dependency: a missing one must fail, not skip)

from rnnkit.examples import digits


def test_quick_run_meets_its_bar(capsys):
    result = digits.main(["--quick", "--seed", "0"])
    out = capsys.readouterr().out
    assert result["test_size"] == 450                       # 25 % of 1,797, stratified
    assert result["accuracy"] > 0.93 and result["bar_met"]
    assert result["baseline_accuracy"] > 0.90               # logistic regression on the pixels is a real baseline
    assert result["errors"] == round((1 - result["accuracy"]) * result["test_size"])
    assert "LogisticRegression, 64 pixels" in out and "GRU(32), rows as steps" in out


def test_split_is_stratified_and_rows_are_steps():
    x_train, x_test, y_train, y_test = digits.load_split(0.25, seed=0)
    assert x_train.shape[1:] == x_test.shape[1:] == (8, 8)
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    for label in range(10):   # each class is held out in the same proportion, to within one image
        share = (y_test == label).sum() / ((y_test == label).sum() + (y_train == label).sum())
        assert abs(share - 0.25) < 0.01


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--units", "0"], ["--test-size", "1.5"], ["--cell", "rnn"]])
def test_bad_options_are_refused(argv):
    with pytest.raises(SystemExit):
        digits.main(argv)
