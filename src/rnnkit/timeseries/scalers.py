"""Scalers for a series: learn the statistics on the training part only, then apply them everywhere.

Fitting on the whole series would let the test years leak into the inputs (their mean, their
range); ``fit`` on the training part, ``transform`` every part, and ``inverse_transform`` the
forecasts back to the series' units. The arithmetic is scikit-learn's ``StandardScaler`` and
``MinMaxScaler``, with two differences for series: a 1-D array is one variable (not one sample),
and an array of any rank works, its last axis being the features (so windows ``(N, L, F)`` can be
scaled with statistics fitted on ``(T, F)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.checks import as_numeric_array


class _Scaler:
    """``fit`` / ``transform`` / ``inverse_transform`` around one affine map ``x -> (x - offset) / scale``."""

    def __init__(self) -> None:
        self.n_features_in_: int | None = None   # None before fit; 0 for a 1-D (one variable) fit

    def _fit_stats(self, x: np.ndarray) -> None:
        raise NotImplementedError  # pragma: no cover

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        """(offset, scale) with ``transform(x) = (x - offset) / scale``."""
        raise NotImplementedError  # pragma: no cover

    @property
    def fitted(self) -> bool:
        return self.n_features_in_ is not None

    def fit(self, x: Any) -> _Scaler:
        """Learn the statistics of ``x``: ``(T,)`` one variable, or ``(..., F)`` one per feature."""
        x = as_numeric_array(x, "x", dtype=np.float64)
        if x.ndim == 1:
            self._fit_stats(x)                                        # scalars
            self.n_features_in_ = 0
        else:
            self._fit_stats(x.reshape(-1, x.shape[-1]))               # (T*..., F) -> (F,) each
            self.n_features_in_ = x.shape[-1]
        return self

    def _check(self, x: Any, what: str) -> np.ndarray:
        if not self.fitted:
            raise ValueError(f"This {type(self).__name__} is not fitted yet; call fit(train) on the training part "
                             f"before {what}.")
        x = as_numeric_array(x, "x")
        if self.n_features_in_ and (x.ndim < 2 or x.shape[-1] != self.n_features_in_):
            raise ValueError(f"This {type(self).__name__} was fitted on {self.n_features_in_} features (last axis); "
                             f"got an array of shape {x.shape}.")
        return x

    def transform(self, x: Any) -> np.ndarray:
        """Scaled ``x`` (same shape; float64, or x's float type if it has one)."""
        x = self._check(x, "transform")
        offset, scale = self._affine()
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return ((x - offset) / scale).astype(dtype, copy=False)

    def fit_transform(self, x: Any) -> np.ndarray:
        return self.fit(x).transform(x)

    def inverse_transform(self, x: Any) -> np.ndarray:
        """``x`` back in the units of the data the scaler was fitted on."""
        x = self._check(x, "inverse_transform")
        offset, scale = self._affine()
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        return (x * scale + offset).astype(dtype, copy=False)


def _nonzero(scale: np.ndarray) -> np.ndarray:
    """A constant variable has no spread to divide by; scikit-learn then divides by 1, and so do we."""
    return np.where(scale == 0.0, 1.0, scale)


class StandardScaler(_Scaler):
    """``(x - mean_) / scale_`` with the mean and the (population) standard deviation of the training data.

    Args:
        with_mean: subtract the mean (False: ``mean_`` is 0).
        with_std: divide by the standard deviation (False: ``scale_`` is 1).

    Attributes after ``fit``: ``mean_``, ``var_``, ``scale_`` (scalars for a 1-D fit, ``(F,)``
    otherwise), ``n_features_in_``.
    """

    def __init__(self, with_mean: bool = True, with_std: bool = True) -> None:
        super().__init__()
        self.with_mean = bool(with_mean)
        self.with_std = bool(with_std)

    def _fit_stats(self, x: np.ndarray) -> None:
        self.mean_ = x.mean(axis=0)
        self.var_ = x.var(axis=0)
        self.scale_ = _nonzero(np.sqrt(self.var_))

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.mean_ if self.with_mean else 0.0), (self.scale_ if self.with_std else 1.0)

    def get_config(self) -> dict:
        return {"with_mean": self.with_mean, "with_std": self.with_std}


class MinMaxScaler(_Scaler):
    """Map the training data's range ``[data_min_, data_max_]`` onto ``feature_range`` (default ``(0, 1)``).

    ``transform(x) = x * scale_ + min_`` with ``scale_ = (hi - lo) / data_range_`` and
    ``min_ = lo - data_min_ * scale_``, as scikit-learn writes it. Values outside the training range
    map outside ``feature_range`` (no clipping: a forecast may exceed the past).

    Attributes after ``fit``: ``data_min_``, ``data_max_``, ``data_range_``, ``scale_``, ``min_``,
    ``n_features_in_``.
    """

    def __init__(self, feature_range: tuple[float, float] = (0, 1)) -> None:
        super().__init__()
        try:
            lo, hi = (float(v) for v in feature_range)
        except (TypeError, ValueError):
            raise TypeError(f"feature_range must be two numbers (min, max), got {feature_range!r}.") from None
        if not lo < hi:
            raise ValueError(f"feature_range must be (min, max) with min < max, got {feature_range!r}.")
        self.feature_range = (lo, hi)

    def _fit_stats(self, x: np.ndarray) -> None:
        lo, hi = self.feature_range
        self.data_min_ = x.min(axis=0)
        self.data_max_ = x.max(axis=0)
        self.data_range_ = self.data_max_ - self.data_min_
        self.scale_ = (hi - lo) / _nonzero(self.data_range_)
        self.min_ = lo - self.data_min_ * self.scale_

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        # x * scale_ + min_  ==  (x - offset) / (1 / scale_)  with  offset = -min_ / scale_
        return -self.min_ / self.scale_, 1.0 / self.scale_

    def get_config(self) -> dict:
        return {"feature_range": self.feature_range}
