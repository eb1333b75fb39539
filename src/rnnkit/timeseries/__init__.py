"""Time-series forecasting: windows, scalers, multi-step forecasts, baselines, metrics and backtests.

A typical run, on a 1-D series ``y`` with the last years held out::

    from rnnkit import timeseries as ts

    train = y[:split]
    scaler = ts.StandardScaler().fit(train)               # statistics of the training part only
    x, t = ts.make_windows(scaler.transform(train), 24)     # (N, 24, 1), (N, 1)
    model.fit(x, t, ...)                                    # e.g. Input(shape=(24, 1)), LSTM, Dense(1)
    table = ts.backtest(ts.forecaster_from_model(model, scaler), y, initial=split, horizon=3, season=11)
    print(ts.format_table(table))                           # model vs naive, seasonal naive, drift, mean

Every function takes NumPy arrays and returns NumPy arrays; nothing here trains a model.
"""

from __future__ import annotations

from rnnkit.timeseries.backtest import backtest, format_table
from rnnkit.timeseries.baselines import (
    BASELINES,
    drift_forecast,
    mean_forecast,
    naive_forecast,
    seasonal_naive_forecast,
)
from rnnkit.timeseries.forecasting import forecast_direct, forecast_recursive, forecaster_from_model
from rnnkit.timeseries.metrics import mae, mase, mase_scale, rmse, smape
from rnnkit.timeseries.scalers import MinMaxScaler, StandardScaler
from rnnkit.timeseries.windows import make_windows, timeseries_dataset_from_array

__all__ = [
    "timeseries_dataset_from_array", "make_windows",
    "StandardScaler", "MinMaxScaler",
    "forecast_recursive", "forecast_direct", "forecaster_from_model",
    "naive_forecast", "seasonal_naive_forecast", "drift_forecast", "mean_forecast", "BASELINES",
    "mae", "rmse", "smape", "mase", "mase_scale",
    "backtest", "format_table",
]
