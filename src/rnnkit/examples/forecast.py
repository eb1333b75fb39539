"""Forecast the yearly sunspot numbers with an LSTM, scored against naive, seasonal naive and AR forecasts.

Data: the yearly sunspot numbers 1700-2008 that statsmodels ships (public domain). The last
``--test`` years are held out. A ``StandardScaler`` and recurrent forecasters (``LSTM`` or ``GRU``
then ``Dense(1)``, on windows of ``--window`` years; ``--ensemble`` of them from consecutive seeds)
are fitted on the years before them only. From every year of the held-out part (a rolling origin)
each network forecasts the next ``--horizon`` years recursively, reading the observed years up to
the origin, and their forecasts are averaged. The naive, seasonal naive (m = 11, the solar cycle),
drift and mean forecasts and an AR(``--ar-lags``) model (statsmodels ``AutoReg`` fitted on the
training years) forecast from the same origins, and all are scored on the same values (MAE, RMSE,
sMAPE, MASE scaled by the in-sample seasonal naive MAE).

The bar: the networks' MASE is below the naive and the seasonal naive forecasts' (``--quick``, one
network instead of five: below the naive forecast's).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

SEASON = 11   # years in a solar cycle, near enough: the seasonal naive forecast repeats the last cycle


def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """``(years (309,), sunspot numbers (309,))`` for 1700-2008, from statsmodels' copy of the data."""
    from rnnkit.examples import require

    require("statsmodels", "datasets")
    from statsmodels.datasets import sunspots  # statsmodels.api.datasets.sunspots, without importing all of api

    frame = sunspots.load_pandas().data
    return frame["YEAR"].to_numpy(dtype=np.int64), frame["SUNACTIVITY"].to_numpy(dtype=np.float64)


def ar_forecaster(train: np.ndarray, lags: int):
    """AR(``lags``) with a constant, fitted once on ``train``; at each origin it forecasts from the history with
    those parameters (statsmodels' out-of-sample prediction, so each step feeds on the steps before)."""
    from statsmodels.tsa.ar_model import AutoReg

    params = AutoReg(train, lags=lags, trend="c").fit().params

    def fit_predict(history: np.ndarray, horizon: int) -> np.ndarray:
        model = AutoReg(history, lags=lags, trend="c")
        return np.asarray(model.predict(params, start=len(history), end=len(history) + horizon - 1))

    return fit_predict


def build_model(cell: str, window: int, units: int, learning_rate: float, seed: int):
    from rnnkit.layers import GRU, LSTM, Dense, Input
    from rnnkit.models import Sequential
    from rnnkit.optimizers import Adam

    recurrent = {"lstm": LSTM, "gru": GRU}[cell]
    model = Sequential([Input(shape=(window, 1)), recurrent(units), Dense(1)], seed=seed)
    model.compile(optimizer=Adam(learning_rate=learning_rate), loss="mse")
    return model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="rnnkit demo forecast", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one network instead of five (seconds)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first network (default 0)")
    p.add_argument("--cell", choices=("lstm", "gru"), default="lstm", help="recurrent layer (default lstm)")
    p.add_argument("--test", type=int, default=35, help="held-out final years (default 35)")
    p.add_argument("--window", type=int, default=24, help="years the network sees (default 24)")
    p.add_argument("--horizon", type=int, default=3, help="years forecast from each origin (default 3)")
    p.add_argument("--units", type=int, default=16, help="recurrent units (default 16)")
    p.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    p.add_argument("--ensemble", type=int, default=None,
                   help="networks (seeds seed, seed+1, ...) whose forecasts are averaged (default 5; quick 1)")
    p.add_argument("--learning-rate", type=float, default=0.005, help="Adam's step size (default 0.005)")
    p.add_argument("--ar-lags", type=int, default=9, help="lags of the AR model (default 9)")
    args = p.parse_args(argv)
    if args.ensemble is None:
        args.ensemble = 1 if args.quick else 5
    for name in ("test", "window", "horizon", "units", "epochs", "ensemble", "ar_lags"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.horizon > args.test:
        p.error(f"--horizon ({args.horizon}) cannot exceed the held-out years --test ({args.test})")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from rnnkit import timeseries as ts

    years, y = load_sunspots()
    split = len(y) - args.test                                   # first held-out year's index
    if not 0 < args.test <= len(y) - args.window - SEASON - 1:
        raise ValueError(f"--test must leave at least --window + {SEASON + 1} training years, got {args.test}.")
    train = y[:split]
    print(f"Sunspots {years[0]}-{years[-1]}: train {years[0]}-{years[split - 1]} ({split} years), "
          f"held out {years[split]}-{years[-1]} ({args.test} years)")

    scaler = ts.StandardScaler().fit(train)                      # training years only: no peeking at the test
    x, t = ts.make_windows(scaler.transform(train), args.window)   # (N, window, 1), (N, 1)
    what = f"{args.cell.upper()}({args.units}) -> Dense(1)"
    print(f"Training {args.ensemble} x {what} on {len(x)} windows of {args.window} years, {args.epochs} epochs ...")
    members, t0 = [], time.perf_counter()
    for k in range(args.ensemble):
        model = build_model(args.cell, args.window, args.units, args.learning_rate, args.seed + k)
        history = model.fit(x, t, epochs=args.epochs, batch_size=32, verbose=0)
        print(f"  network {k + 1}/{args.ensemble} (seed {args.seed + k}): final training loss (scaled MSE) "
              f"{history.history['loss'][-1]:.4f}")
        members.append(ts.forecaster_from_model(model, scaler, strategy="recursive"))
    train_seconds = time.perf_counter() - t0
    print(f"  trained in {train_seconds:.1f} s")

    def network(history: np.ndarray, horizon: int) -> np.ndarray:
        # each network forecasts recursively on its own; averaging the paths cancels part of their separate errors
        return np.mean([member(history, horizon) for member in members], axis=0)

    name = args.cell
    forecasters = {name: network, "ar": ar_forecaster(train, args.ar_lags)}
    table = ts.backtest(forecasters, y, initial=split, horizon=args.horizon, season=SEASON,
                        baselines=("naive", "seasonal_naive", "drift", "mean"))
    n_origins = len(y) - args.horizon + 1 - split
    print(f"\nRolling origin over the held-out years: {n_origins} origins, {args.horizon}-year forecasts "
          f"(MASE scaled by the in-sample seasonal naive MAE, m={SEASON})\n"
          f"ar: statsmodels AutoReg, {args.ar_lags} lags and a constant, fitted on the training years")
    print(ts.format_table(table, digits=3))

    mase = table["mase"]
    bars = ["naive"] if args.quick else ["naive", "seasonal_naive"]
    beats = all(mase[name] < mase[b] for b in bars)
    print(f"\n{name.upper()} MASE {mase[name]:.3f} vs " + ", ".join(f"{b} {mase[b]:.3f}" for b in bars)
          + (": beats them" if beats else ": does NOT beat them"))
    result: dict[str, Any] = {f"{method}_{metric}": value for metric, row in table.items()
                              for method, value in row.items()}
    result.update(model=name, train_seconds=train_seconds, beats_baselines=beats, origins=n_origins)
    return result


if __name__ == "__main__":
    main()
