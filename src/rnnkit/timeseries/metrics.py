"""Forecast accuracy, with ``e_t = y_t - y_hat_t`` over the forecast steps ``t = 1 .. n``:

* ``mae``   = mean |e_t|
* ``rmse``  = sqrt(mean e_t^2)
* ``smape`` = mean 200 |e_t| / (|y_t| + |y_hat_t|), in percent (0 to 200; the M4 competition's form).
  A step where both ``y_t`` and ``y_hat_t`` are 0 is a perfect forecast and counts 0.
* ``mase``  = mean |e_t| / s, with ``s = mean_{t>m} |y_t - y_{t-m}|`` over the *training* series:
  the in-sample MAE of the seasonal naive forecast (Hyndman & Koehler 2006). Below 1, the forecast
  beats the one-step seasonal naive forecast on the training data; ``season=1`` scales by the naive one.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from rnnkit.timeseries._checks import as_series, check_int


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = as_series(np.ravel(y_true) if np.ndim(y_true) > 1 else y_true, "y_true")
    y_pred = as_series(np.ravel(y_pred) if np.ndim(y_pred) > 1 else y_pred, "y_pred")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same number of values, got {len(y_true)} and "
                         f"{len(y_pred)}.")
    return y_true, y_pred


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def smape_terms(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``200 |e_t| / (|y_t| + |y_hat_t|)`` per step, 0 where both are 0."""
    denom = np.abs(y_true) + np.abs(y_pred)
    safe = np.where(denom == 0.0, 1.0, denom)                   # 0/0: both exact zeros, a perfect forecast
    return 200.0 * np.abs(y_true - y_pred) / safe


def smape(y_true: Any, y_pred: Any) -> float:
    """Symmetric mean absolute percentage error, in percent (0 to 200)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(smape_terms(y_true, y_pred)))


def mase_scale(y_train: Any, season: int = 1) -> float:
    """The in-sample MAE of the seasonal naive forecast: ``mean_{t>m} |y_t - y_{t-m}|``."""
    season = check_int("season", season)
    y = as_series(y_train, "y_train")
    if len(y) <= season:
        raise ValueError(f"MASE needs a training series longer than season={season}, got {len(y)} value(s).")
    scale = float(np.mean(np.abs(y[season:] - y[:-season])))
    if scale == 0.0:
        raise ValueError(f"MASE is undefined: the training series does not change over {season} step(s), so the "
                         "seasonal naive forecast has no in-sample error to scale by.")
    return scale


def mase(y_true: Any, y_pred: Any, y_train: Any, season: int = 1) -> float:
    """Mean absolute scaled error: ``mae(y_true, y_pred) / mase_scale(y_train, season)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)) / mase_scale(y_train, season))


#: the metrics ``backtest`` reports, by name
METRICS: dict[str, Callable[..., float]] = {"mae": mae, "rmse": rmse, "smape": smape, "mase": mase}
