"""``rnnkit demo forecast --quick``: an LSTM on the yearly sunspot numbers beats the naive forecast (MASE)."""

from __future__ import annotations

import pytest
import statsmodels  # noqa: F401  (a test dependency: a missing one must fail, not skip)

from rnnkit import examples

#: ``--quick`` reached MASE 0.589, 0.548, 0.540, 0.601, 0.566 for seeds 0-4 (naive 2.057, seasonal naive 1.098)
QUICK_MASE_BAR = 0.75


def test_forecast_demo_is_listed():
    assert "forecast" in examples.demos()
    assert "sunspot" in examples.demos()["forecast"]


def test_quick_forecast_beats_the_naive_forecast(capsys):
    result = examples.get("forecast")(["--quick", "--seed", "0"])
    out = capsys.readouterr().out
    assert result["origins"] == 33                                      # 35 held-out years, 3-year forecasts
    assert result["lstm_mase"] < QUICK_MASE_BAR
    assert result["lstm_mase"] < result["naive_mase"]
    assert result["beats_baselines"] is True
    # every method was scored on the same origins, and the table printed what was returned
    for method in ("lstm", "ar", "naive", "seasonal_naive", "drift", "mean"):
        assert f"{result[f'{method}_mase']:.3f}" in out
    assert 0.0 < result["ar_mase"] < result["mean_mase"]


def test_bad_test_length_is_refused():
    with pytest.raises(ValueError, match="--test must leave"):
        examples.get("forecast")(["--quick", "--test", "300"])
