"""``rnnkit demo sentiment``: its quick run reaches its bar; its baseline's gradient and fit are checked."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.examples import sentiment


def test_quick_run_meets_its_bar(capsys):
    result = sentiment.main(["--quick", "--seed", "0"])
    out = capsys.readouterr().out
    assert result["test_size"] == 148                        # 74 of the 296 twin pairs
    assert result["accuracy"] >= 0.65 and result["bar_met"]
    assert 0.6 <= result["baseline_accuracy"] <= 1.0
    assert 0 < result["negated"] < result["test_size"]
    assert "bag of words, logistic regression" in out and "BiLSTM(16)" in out


def test_pair_split_keeps_twins_together_and_is_balanced():
    train, test = sentiment.pair_split(592, 0.25, seed=3)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 592 and len(test) == 148
    assert set((test // 2).tolist()).isdisjoint((train // 2).tolist())     # no pair is split
    labels = np.arange(592) % 2 == 0
    assert labels[test].sum() == 74 and labels[train].sum() == 222
    again = sentiment.pair_split(592, 0.25, seed=3)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)


def test_bag_of_words_marks_words_not_padding():
    ids = np.array([[2, 3, 2, 0], [1, 0, 0, 0]])
    assert sentiment.bag_of_words(ids, 5).tolist() == [[0, 0, 1, 1, 0], [0, 1, 0, 0, 0]]


def test_logistic_loss_gradient_against_finite_differences():
    rng = np.random.default_rng(0)
    x = (rng.random((30, 7)) < 0.3).astype(np.float64)
    y = rng.integers(0, 2, size=30).astype(np.float64)
    w, b, l2 = rng.normal(size=7), 0.3, 0.05
    _, dw, db = sentiment.logistic_loss(w, b, x, y, l2)
    eps = 1e-6
    for i in range(7):
        step = np.zeros(7)
        step[i] = eps
        numeric = (sentiment.logistic_loss(w + step, b, x, y, l2)[0]
                   - sentiment.logistic_loss(w - step, b, x, y, l2)[0]) / (2 * eps)
        assert abs(numeric - dw[i]) < 1e-8
    numeric_b = (sentiment.logistic_loss(w, b + eps, x, y, l2)[0]
                 - sentiment.logistic_loss(w, b - eps, x, y, l2)[0]) / (2 * eps)
    assert abs(numeric_b - db) < 1e-8


def test_logistic_regression_reaches_sklearns_solution():
    """scikit-learn minimises C * sum(loss) + |w|^2 / 2: the same optimum as ours with l2 = 1 / (C n)."""
    from sklearn import linear_model
    rng = np.random.default_rng(1)
    x = (rng.random((80, 10)) < 0.3).astype(np.float64)
    y = ((x @ rng.normal(size=10) + 0.3 * rng.normal(size=80)) > 0.2).astype(np.float64)
    l2 = 0.01
    w, b = sentiment.logistic_regression(x, y, l2=l2, steps=20000, learning_rate=2.0)
    reference = linear_model.LogisticRegression(C=1.0 / (l2 * len(y)), tol=1e-12, max_iter=10000).fit(x, y)
    assert np.allclose(w, reference.coef_[0], atol=1e-5)
    assert abs(b - reference.intercept_[0]) < 1e-5


def test_bad_options_are_refused():
    for argv in (["--max-tokens", "2"], ["--length", "0"], ["--test-size", "0"], ["--epochs", "0"], ["--units", "0"]):
        with pytest.raises(SystemExit):
            sentiment.main(argv)
