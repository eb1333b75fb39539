"""The simple forecasts every model must beat (Hyndman & Athanasopoulos, *Forecasting: Principles and
Practice*, section 5.2), each ``f(history, horizon) -> (horizon,)`` for a history ``y_1 .. y_T``:

* ``mean``:            ``y_hat_{T+h} = (y_1 + ... + y_T) / T``
* ``naive``:           ``y_hat_{T+h} = y_T``
* ``seasonal_naive``:  ``y_hat_{T+h} = y_{T+h-m(k+1)}``, ``k = floor((h-1)/m)``: the last value of the same season
* ``drift``:           ``y_hat_{T+h} = y_T + h (y_T - y_1) / (T - 1)``: the line through the first and last values
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from rnnkit.timeseries._checks import as_series, check_int


def mean_forecast(history: Any, horizon: int) -> np.ndarray:
    """The mean of the history, ``horizon`` times. Returns ``(horizon,)``."""
    horizon = check_int("horizon", horizon)
    y = as_series(history, "history")
    return np.full(horizon, y.mean())


def naive_forecast(history: Any, horizon: int) -> np.ndarray:
    """The last value, ``horizon`` times (the random-walk forecast). Returns ``(horizon,)``."""
    horizon = check_int("horizon", horizon)
    y = as_series(history, "history")
    return np.full(horizon, y[-1])


def seasonal_naive_forecast(history: Any, horizon: int, season: int = 1) -> np.ndarray:
    """The value one season (``season`` steps) earlier, repeating the last full season.

    ``season=1`` is the naive forecast. Needs at least ``season`` values. Returns ``(horizon,)``.
    """
    horizon = check_int("horizon", horizon)
    season = check_int("season", season)
    y = as_series(history, "history", min_length=season)
    last_season = y[-season:]                                   # (m,) y_{T-m+1} .. y_T
    return last_season[np.arange(horizon) % season]             # h = 1 -> y_{T-m+1}, h = m -> y_T, ...


def drift_forecast(history: Any, horizon: int) -> np.ndarray:
    """The last value plus ``h`` times the average change per step. Needs 2 values. Returns ``(horizon,)``."""
    horizon = check_int("horizon", horizon)
    y = as_series(history, "history", min_length=2)
    slope = (y[-1] - y[0]) / (len(y) - 1)
    return y[-1] + slope * np.arange(1, horizon + 1)


#: name -> forecast function taking ``(history, horizon, season)``: what ``backtest(baselines=...)`` accepts
BASELINES: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "naive": lambda y, h, m: naive_forecast(y, h),
    "seasonal_naive": seasonal_naive_forecast,
    "drift": lambda y, h, m: drift_forecast(y, h),
    "mean": lambda y, h, m: mean_forecast(y, h),
}


def get_baseline(name: str) -> Callable[[np.ndarray, int, int], np.ndarray]:
    if not isinstance(name, str) or name not in BASELINES:
        raise ValueError(f"Unknown baseline {name!r}; the baselines are: {', '.join(BASELINES)}.")
    return BASELINES[name]
