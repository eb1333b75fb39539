"""Sliding windows over a time series: Keras' ``timeseries_dataset_from_array``, as NumPy arrays.

Keras returns a ``tf.data`` (or Grain) dataset of batches; rnnkit's ``fit`` takes arrays and does its
own batching and shuffling, so here the same windows and targets come back as arrays ``(x, y)``:

* window ``i`` starts at ``start_index + i * sequence_stride`` and takes ``sequence_length`` steps
  ``sampling_rate`` apart, so it spans ``(sequence_length - 1) * sampling_rate + 1`` steps;
* its target is ``targets[start_index + i * sequence_stride]``, the target of the window's *first*
  step (Keras' convention: to predict the step after a window, pass ``targets = data[sequence_length:]``;
  ``make_windows`` does that for you, for one or several steps ahead);
* windows are made while they fit in ``data[start_index:end_index]`` and, with targets, while a
  target is there for them (at most ``len(targets)`` windows, as in Keras).

Where rnnkit differs from Keras, on purpose: arrays instead of a dataset (``batch_size=None`` by
default; an integer gives a list of batches); the shuffled order comes from NumPy, not TensorFlow;
``end_index=len(data)`` and strides or sampling rates as long as the data are accepted; a setting
that leaves no window at all, NaN in the data, or targets too short for the windows raise a
``ValueError`` (Keras returns an empty dataset, or fails later, inside its gather).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.checks import as_numeric_array
from rnnkit.timeseries._checks import check_int


def _window_starts(n_data: int, sequence_length: int, sequence_stride: int, sampling_rate: int,
                   start_index: int, end_index: int, n_targets: int | None) -> np.ndarray:
    """The first index (relative to ``start_index``) of every window, as Keras computes them."""
    span = (sequence_length - 1) * sampling_rate + 1
    num_seqs = end_index - start_index - span + 1
    if num_seqs <= 0:
        raise ValueError(
            f"A window of sequence_length={sequence_length} and sampling_rate={sampling_rate} spans {span} steps, "
            f"longer than the {end_index - start_index} steps of data[{start_index}:{end_index}]; "
            "use shorter windows or more data."
        )
    if n_targets is not None:
        num_seqs = min(num_seqs, n_targets)                    # Keras: never more windows than targets
        if start_index + num_seqs > n_targets:
            # Keras would fail inside its gather; say why instead
            raise ValueError(
                f"targets has {n_targets} entries, but the windows need targets[{start_index}:"
                f"{start_index + num_seqs}] (targets[i] belongs to the window starting at data[i]); "
                "give targets as long as data."
            )
    return np.arange(0, num_seqs, sequence_stride)             # (N,)


def timeseries_dataset_from_array(data: Any, targets: Any, sequence_length: int, sequence_stride: int = 1,
                                  sampling_rate: int = 1, batch_size: int | None = None, shuffle: bool = False,
                                  seed: int | None = None, start_index: int | None = None,
                                  end_index: int | None = None):
    """Sliding windows over ``data`` (time on axis 0) and their targets, as Keras makes them.

    Args:
        data: ``(T, ...)`` consecutive time steps (a number or a feature vector per step).
        targets: ``(T', ...)``; ``targets[i]`` is the target of the window starting at ``data[i]``.
            ``None`` for windows only.
        sequence_length: steps per window.
        sequence_stride: steps between the starts of two windows.
        sampling_rate: steps between two entries of one window.
        batch_size: ``None`` (the default here, unlike Keras' 128): return whole arrays, which is
            what ``fit`` takes. An integer: return a list of batches in Keras' order, each
            ``(x_batch, y_batch)`` (or ``x_batch`` without targets), for loops written for Keras.
        shuffle: shuffle the windows (with their targets). rnnkit draws the order from
            ``numpy.random.default_rng(seed)``, so the order differs from Keras' (which shuffles with
            TensorFlow); the set of windows is the same.
        seed: seed of the shuffle.
        start_index, end_index: use only ``data[start_index:end_index]`` (e.g. to keep a test part
            out). ``end_index`` may be ``len(data)``, which Keras refuses.

    Returns:
        ``(x, y)`` with ``x (N, sequence_length, ...)`` and ``y (N, ...)``, or ``x`` alone when
        ``targets`` is None, or a list of batches when ``batch_size`` is given. Arrays keep the
        dtypes of ``data`` and ``targets``.

    Raises:
        ValueError: no window fits, integers below 1, ``start_index``/``end_index`` out of range,
            too few targets, NaN or infinite values in ``data`` or ``targets``.
        TypeError: non-integer settings, non-numeric data.
    """
    # every check before any work, in the order Keras makes them
    data = as_numeric_array(data, "data")
    sequence_length = check_int("sequence_length", sequence_length)
    sequence_stride = check_int("sequence_stride", sequence_stride)
    sampling_rate = check_int("sampling_rate", sampling_rate)
    n = len(data)
    start = 0 if start_index is None else check_int("start_index", start_index, minimum=0)
    if start >= n:
        raise ValueError(f"start_index must be lower than the length of the data ({n}), got {start}.")
    end = n if end_index is None else check_int("end_index", end_index, minimum=1)
    if end > n:
        raise ValueError(f"end_index must be at most the length of the data ({n}), got {end}.")
    if end <= start:
        raise ValueError(f"end_index must be higher than start_index, got start_index={start}, end_index={end}.")
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {type(shuffle).__name__}: {shuffle!r}.")
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    if targets is not None:
        targets = as_numeric_array(targets, "targets")

    starts = _window_starts(n, sequence_length, sequence_stride, sampling_rate, start, end,
                            None if targets is None else len(targets))
    if shuffle:
        starts = np.random.default_rng(seed).permutation(starts)
    steps = np.arange(sequence_length) * sampling_rate        # (L,) offsets inside a window
    x = data[start + starts[:, None] + steps]                  # (N, L, ...)
    y = None if targets is None else targets[start + starts]   # (N, ...)

    if batch_size is None:
        return x if y is None else (x, y)
    cuts = range(0, len(starts), batch_size)
    if y is None:
        return [x[i:i + batch_size] for i in cuts]
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in cuts]


def make_windows(series: Any, sequence_length: int, horizon: int = 1, sequence_stride: int = 1,
                 start_index: int | None = None, end_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Supervised pairs for forecasting: each window of ``sequence_length`` steps and the ``horizon`` after it.

    Window ``i`` is ``series[s : s + sequence_length]`` and its target ``series[s + sequence_length :
    s + sequence_length + horizon]``, with ``s = start_index + i * sequence_stride``; every window
    whose target lies inside ``series[start_index:end_index]`` is made.

    Args:
        series: ``(T,)`` one value per step, or ``(T, F)`` F features per step.
        sequence_length: steps the model sees.
        horizon: steps it predicts (1: the next value; more: a direct multi-step model).
        sequence_stride: steps between the starts of two windows.
        start_index, end_index: use only ``series[start_index:end_index]`` (targets included).

    Returns:
        ``x (N, sequence_length, F)`` (``F = 1`` for a 1-D series: recurrent layers want a feature
        axis) and ``y (N, horizon)`` for a 1-D series, ``(N, horizon, F)`` otherwise.

    Raises:
        ValueError: ``horizon < 1``, a window and its horizon longer than the series, NaN in it.
    """
    series = as_numeric_array(series, "series")
    if series.ndim > 2:
        raise ValueError(f"series must be (T,) or (T, features), got shape {series.shape}.")
    sequence_length = check_int("sequence_length", sequence_length)
    horizon = check_int("horizon", horizon)
    sequence_stride = check_int("sequence_stride", sequence_stride)
    n = len(series)
    start = 0 if start_index is None else check_int("start_index", start_index, minimum=0)
    end = n if end_index is None else check_int("end_index", end_index, minimum=1)
    if end > n or start >= end:
        raise ValueError(f"Need 0 <= start_index < end_index <= len(series) = {n}, got start_index={start}, "
                         f"end_index={end}.")
    if sequence_length + horizon > end - start:
        raise ValueError(
            f"A window of sequence_length={sequence_length} plus horizon={horizon} needs "
            f"{sequence_length + horizon} steps, but series[{start}:{end}] has {end - start}; "
            "use shorter windows, a shorter horizon or more data."
        )
    starts = np.arange(start, end - sequence_length - horizon + 1, sequence_stride)   # (N,)
    x = series[starts[:, None] + np.arange(sequence_length)]                            # (N, L) or (N, L, F)
    y = series[starts[:, None] + sequence_length + np.arange(horizon)]                  # (N, h) or (N, h, F)
    if series.ndim == 1:
        x = x[..., None]                                                                 # (N, L, 1)
    return x, y
