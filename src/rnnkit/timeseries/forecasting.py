"""Multi-step forecasts from a model trained on windows: the recursive and the direct strategy.

A one-step model ``f`` maps the last ``L`` values to the next one. To forecast ``H`` steps:

* **recursive**: predict ``y_hat_{T+1} = f(y_{T-L+1} .. y_T)``, append it to the history as if it had
  been observed, predict ``y_hat_{T+2}`` from the window that now ends with it, and so on ``H``
  times. One model serves every horizon, but its errors feed back into its inputs.
* **direct**: train the model to output all ``H`` values at once (``make_windows(..., horizon=H)``
  and a ``Dense(H)`` head); one call forecasts ``y_hat_{T+1} .. y_hat_{T+H}`` from observed values
  only. No feedback of errors, but a model per horizon length.

The model is an rnnkit (or Keras) model with ``predict`` or any callable, taking ``(1, L, 1)``
windows (one sample, ``L`` steps, one feature), as ``make_windows`` builds them for a 1-D series.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from rnnkit.timeseries._checks import as_series, check_int


def _model_sequence_length(model: Any) -> int | None:
    """The fixed number of time steps the model's input takes, if it declares one."""
    inputs = getattr(model, "inputs", None)
    try:
        shape = tuple(inputs[0].shape)                           # (None, L, F), rnnkit's and Keras' alike
    except (TypeError, IndexError, AttributeError):
        return None
    return int(shape[1]) if len(shape) == 3 and isinstance(shape[1], (int, np.integer)) else None


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    """The model's outputs for ``x (1, L, 1)`` as one row of numbers."""
    out = model.predict(x, verbose=0) if hasattr(model, "predict") else model(x)
    out = np.asarray(out, dtype=np.float64)
    if out.ndim == 0 or out.shape[0] != 1:
        raise ValueError(f"The model must return one prediction per window (batch axis first); for a batch of 1 it "
                         f"returned shape {out.shape}.")
    return out.reshape(-1)                                       # (k,)


def _window_setup(model: Any, history: Any, sequence_length: int | None) -> tuple[np.ndarray, int]:
    y = as_series(history, "history")
    if sequence_length is None:
        sequence_length = _model_sequence_length(model) or len(y)   # a model of any length sees it all
    sequence_length = check_int("sequence_length", sequence_length)
    if len(y) < sequence_length:
        raise ValueError(f"The history has {len(y)} value(s), fewer than the model's window of "
                         f"sequence_length={sequence_length}.")
    return y, sequence_length


def forecast_recursive(model: Any, history: Any, steps: int, sequence_length: int | None = None) -> np.ndarray:
    """Forecast ``steps`` values with a one-step model, feeding each forecast back as an input.

    Args:
        model: maps ``(1, L, 1)`` to one value (output ``(1,)`` or ``(1, 1)``).
        history: ``(T,)`` the observed series, in the units the model was trained on (scale it first).
        steps: how many values to forecast.
        sequence_length: the window ``L``; by default the model's input length, or all of ``history``
            for a model that takes any length.

    Returns:
        ``(steps,)`` the forecasts ``y_hat_{T+1} .. y_hat_{T+steps}``.
    """
    steps = check_int("steps", steps)
    y, L = _window_setup(model, history, sequence_length)
    buf = np.concatenate([y[-L:], np.zeros(steps)])              # (L + steps,) the window slides along it
    for i in range(steps):
        out = _predict(model, buf[None, i:i + L, None])          # (1, L, 1) -> (k,)
        if out.size != 1:
            raise ValueError(f"forecast_recursive needs a one-step model (one output value); this model returns "
                             f"{out.size}. For a model that predicts several steps at once use forecast_direct.")
        buf[L + i] = out[0]
    return buf[L:].copy()


def forecast_direct(model: Any, history: Any, horizon: int | None = None,
                    sequence_length: int | None = None) -> np.ndarray:
    """Forecast with a model that outputs every step of the horizon at once, from observed values only.

    Args:
        model: maps ``(1, L, 1)`` to ``H`` values (output ``(1, H)``), as trained on
            ``make_windows(series, L, horizon=H)``.
        history: ``(T,)`` the observed series, in the model's units.
        horizon: how many of the ``H`` values to return (default: all).
        sequence_length: as in ``forecast_recursive``.

    Returns:
        ``(horizon,)`` the forecasts ``y_hat_{T+1} .. y_hat_{T+horizon}``.
    """
    if horizon is not None:
        horizon = check_int("horizon", horizon)
    y, L = _window_setup(model, history, sequence_length)
    out = _predict(model, y[None, -L:, None])                     # (1, L, 1) -> (H,)
    if horizon is not None and horizon > out.size:
        raise ValueError(f"The model predicts {out.size} step(s) at once, fewer than horizon={horizon}; train it on "
                         f"make_windows(..., horizon={horizon}) or use forecast_recursive.")
    return out[:horizon].copy()


def forecaster_from_model(model: Any, scaler: Any = None, strategy: str = "recursive",
                          sequence_length: int | None = None) -> Callable[[np.ndarray, int], np.ndarray]:
    """A trained model as a ``fit_predict(history, horizon) -> (horizon,)`` function for ``backtest``.

    The history is scaled with ``scaler.transform`` (a scaler fitted on the training part), the
    forecast made by ``strategy`` (``"recursive"`` or ``"direct"``) and mapped back with
    ``scaler.inverse_transform``. The model is not refitted at each origin: it was trained once, on
    data before the first origin, and only reads the newer observations as inputs.
    """
    if strategy not in ("recursive", "direct"):
        raise ValueError(f"strategy must be 'recursive' or 'direct', got {strategy!r}.")
    if scaler is not None and not (hasattr(scaler, "transform") and hasattr(scaler, "inverse_transform")):
        raise TypeError(f"scaler must have transform and inverse_transform (e.g. rnnkit.timeseries.StandardScaler), "
                        f"got {type(scaler).__name__}.")

    def fit_predict(history: np.ndarray, horizon: int) -> np.ndarray:
        h = history if scaler is None else scaler.transform(history)
        if strategy == "recursive":
            f = forecast_recursive(model, h, horizon, sequence_length)
        else:
            f = forecast_direct(model, h, horizon, sequence_length)
        return f if scaler is None else scaler.inverse_transform(f)

    return fit_predict
