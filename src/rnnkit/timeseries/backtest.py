"""Rolling-origin evaluation: every method forecasts from the same origins and is scored on the same values.

With a series ``y_0 .. y_{n-1}``, the origins are ``o = initial, initial + step, ...`` while
``o + horizon <= n``. At each origin a method sees only ``y_0 .. y_{o-1}`` (the *history*) and
forecasts ``y_o .. y_{o+horizon-1}``. The metrics pool every (origin, step) forecast:
MAE, RMSE and sMAPE over all of them; MASE divides each error by the scale of *its own* history
(the in-sample seasonal naive MAE up to that origin) before averaging, so every origin is scaled by
data the forecaster could have seen.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rnnkit.timeseries._checks import as_series, check_int
from rnnkit.timeseries.baselines import BASELINES, get_baseline
from rnnkit.timeseries.metrics import mase_scale, smape_terms

ForecastFn = Callable[[np.ndarray, int], Any]

METRIC_NAMES = ("mae", "rmse", "smape", "mase")


def _pooled(metric: str, actual: np.ndarray, pred: np.ndarray, scales: np.ndarray) -> float:
    """One metric over every (origin, step) forecast: ``actual``, ``pred`` (O, H), ``scales`` (O, 1)."""
    err = actual - pred                                          # (O, H)
    if metric == "mae":
        return float(np.mean(np.abs(err)))
    if metric == "rmse":
        return float(np.sqrt(np.mean(err ** 2)))
    if metric == "smape":
        return float(np.mean(smape_terms(actual, pred)))
    return float(np.mean(np.abs(err) / scales))                  # mase


def _named_forecasters(forecaster: Any) -> dict[str, ForecastFn]:
    if forecaster is None:
        return {}
    if callable(forecaster):
        return {"model": forecaster}
    if isinstance(forecaster, Mapping) and all(isinstance(k, str) and callable(f) for k, f in forecaster.items()):
        return dict(forecaster)
    raise TypeError("forecaster must be a function fit_predict(history, horizon) -> forecasts, a dict "
                    f"{{name: function}}, or None (baselines only); got {type(forecaster).__name__}.")


def backtest(forecaster: ForecastFn | Mapping[str, ForecastFn] | None, series: Any, initial: int,
             horizon: int = 1, step: int = 1, season: int = 1,
             baselines: Sequence[str] = ("naive", "seasonal_naive", "drift", "mean"),
             metrics: Sequence[str] = METRIC_NAMES, return_forecasts: bool = False):
    """Score a forecaster and the baselines by rolling-origin evaluation on exactly the same windows.

    Args:
        forecaster: ``fit_predict(history (o,), horizon) -> (horizon,)``: may refit on the history at
            each origin (a statistical model) or only read it (a network trained once on the part
            before ``initial``; see ``forecaster_from_model``). A dict ``{name: fit_predict}`` scores
            several; ``None`` scores the baselines alone.
        series: ``(n,)`` the whole series.
        initial: the first origin, i.e. the length of the first history (the training part).
        horizon: steps forecast from each origin.
        step: steps between two origins.
        season: the season length ``m`` of the seasonal naive baseline and of MASE's scale.
        baselines: names from ``naive``, ``seasonal_naive``, ``drift``, ``mean``.
        metrics: names from ``mae``, ``rmse``, ``smape``, ``mase``.
        return_forecasts: also return the forecasts.

    Returns:
        ``{metric: {method: value}}``, methods in the order forecasters then baselines; with
        ``return_forecasts``, also ``{"origins": (O,), "actual": (O, H), method: (O, H), ...}``.
    """
    methods = _named_forecasters(forecaster)
    horizon = check_int("horizon", horizon)
    step = check_int("step", step)
    season = check_int("season", season)
    initial = check_int("initial", initial)
    y = as_series(series, "series")
    if isinstance(baselines, str):
        baselines = (baselines,)
    for name in baselines:
        get_baseline(name)
        if name in methods:
            raise ValueError(f"The forecaster name {name!r} is also a baseline's; rename it.")
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    for name in metrics:
        if name not in METRIC_NAMES:
            raise ValueError(f"Unknown metric {name!r}; the metrics are: {', '.join(METRIC_NAMES)}.")
    if not methods and not baselines:
        raise ValueError("Nothing to score: give a forecaster or at least one baseline.")
    if initial + horizon > len(y):
        raise ValueError(f"The first origin initial={initial} plus horizon={horizon} goes past the end of the "
                         f"series ({len(y)} values); lower initial or horizon.")
    if initial < max(season + 1, 2):
        raise ValueError(f"The first history (initial={initial} values) must be longer than season={season} "
                         "(and at least 2 values): the seasonal naive baseline, drift and MASE's scale need it.")

    origins = np.arange(initial, len(y) - horizon + 1, step)                     # (O,)
    actual = np.stack([y[o:o + horizon] for o in origins])                       # (O, H)
    scales = np.array([[mase_scale(y[:o], season)] for o in origins]) if "mase" in metrics else None  # (O, 1)
    for name in baselines:
        methods[name] = (lambda fn: lambda history, h: fn(history, h, season))(BASELINES[name])

    forecasts: dict[str, np.ndarray] = {}
    for name, fit_predict in methods.items():
        rows = []
        for o in origins:
            f = np.asarray(fit_predict(y[:o].copy(), horizon), dtype=np.float64).reshape(-1)   # a copy: no peeking
            if f.shape != (horizon,) or not np.isfinite(f).all():
                raise ValueError(f"Method {name!r} must return {horizon} finite forecast(s) at origin {o}; got "
                                 f"{f.size} value(s){'' if np.isfinite(f).all() else ' with NaN or infinity'}.")
            rows.append(f)
        forecasts[name] = np.stack(rows)                                          # (O, H)

    table = {m: {name: _pooled(m, actual, forecasts[name], scales) for name in forecasts} for m in metrics}
    if return_forecasts:
        return table, {"origins": origins, "actual": actual, **forecasts}
    return table


def format_table(table: Mapping[str, Mapping[str, float]], digits: int = 3) -> str:
    """``backtest``'s result as text: one row per method, one column per metric."""
    metrics = list(table)
    methods = list(next(iter(table.values()))) if table else []
    width = max([len("method"), *(len(m) for m in methods)])
    lines = [f"{'method':<{width}}" + "".join(f"{m.upper():>10}" for m in metrics)]
    for name in methods:
        lines.append(f"{name:<{width}}" + "".join(f"{table[m][name]:>10.{digits}f}" for m in metrics))
    return "\n".join(lines)
