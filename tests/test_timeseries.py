"""rnnkit.timeseries: windows (vs Keras), scalers (vs scikit-learn), forecasts, baselines, metrics, backtests."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rnnkit.layers import LSTM, Dense, Input
from rnnkit.models import Sequential
from rnnkit.timeseries import (
    MinMaxScaler,
    StandardScaler,
    backtest,
    drift_forecast,
    forecast_direct,
    forecast_recursive,
    forecaster_from_model,
    format_table,
    mae,
    make_windows,
    mase,
    mase_scale,
    mean_forecast,
    naive_forecast,
    rmse,
    seasonal_naive_forecast,
    smape,
    timeseries_dataset_from_array,
)


# -- timeseries_dataset_from_array against Keras ---------------------------------------------------------------
class _GrainStandIn:
    """Just enough of grain's ``MapDataset`` for Keras' unshuffled windows: a list of samples.

    Keras builds ``tf.data`` datasets (TensorFlow, not installed here) or Grain ones; both choose the
    windows and targets with the same index arithmetic, in NumPy. Standing in for Grain's containers
    runs Keras' own code for *which* windows and targets, which is what is compared.
    """

    def __init__(self, items):
        self.items = list(items)

    @classmethod
    def source(cls, items):
        return cls(items)

    def to_iter_dataset(self):
        return self

    def batch(self, batch_size, batch_fn):
        return _GrainStandIn(batch_fn(self.items[i:i + batch_size]) for i in range(0, len(self.items), batch_size))

    def shuffle(self, seed):
        raise AssertionError("the Keras reference is only run unshuffled")

    def __iter__(self):
        return iter(self.items)


@pytest.fixture(scope="module")
def keras_windows():
    """Keras' ``timeseries_dataset_from_array`` (its Grain path), returning NumPy arrays like rnnkit's."""
    import keras
    from keras.src.utils import timeseries_dataset_utils as tdu

    stand_in = SimpleNamespace(MapDataset=_GrainStandIn, experimental=SimpleNamespace(
        ZipMapDataset=lambda parts: _GrainStandIn(zip(*(p.items for p in parts)))))
    saved, tdu.grain = tdu.grain, stand_in

    def run(data, targets, **kwargs):
        ds = keras.utils.timeseries_dataset_from_array(data, targets, format="grain", **kwargs)
        np_ = keras.ops.convert_to_numpy
        if kwargs.get("batch_size", 128) is not None:
            return [tuple(np_(a) for a in b) if targets is not None else np_(b) for b in ds]
        items = list(ds)
        if targets is None:
            return np.stack(items)
        return np.stack([a for a, _ in items]), np.stack([b for _, b in items])

    yield run
    tdu.grain = saved


CASES = [
    dict(sequence_length=5),
    dict(sequence_length=1),
    dict(sequence_length=10, sampling_rate=2, sequence_stride=3),
    dict(sequence_length=4, sequence_stride=7),
    dict(sequence_length=3, sampling_rate=5),
    dict(sequence_length=6, start_index=10),
    dict(sequence_length=6, end_index=40),
    dict(sequence_length=4, sampling_rate=3, sequence_stride=2, start_index=5, end_index=77),
    dict(sequence_length=20, sequence_stride=20),
    dict(sequence_length=99),
]


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("features", [None, 3])
@pytest.mark.parametrize("with_targets", [True, False])
def test_windows_equal_keras(keras_windows, kwargs, features, with_targets):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(100,) if features is None else (100, features))
    targets = rng.integers(0, 9, size=100) if with_targets else None
    expected = keras_windows(data, targets, batch_size=None, **kwargs)
    got = timeseries_dataset_from_array(data, targets, **kwargs)
    if with_targets:
        assert got[0].shape == expected[0].shape and got[1].shape == expected[1].shape
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
        assert got[0].dtype == data.dtype and got[1].dtype == targets.dtype
    else:
        assert got.shape == expected.shape and np.array_equal(got, expected)


@pytest.mark.parametrize("n_targets", [30, 50, 80])
def test_targets_shorter_than_data_limit_the_windows_as_in_keras(keras_windows, n_targets):
    data, targets = np.arange(80.0), np.arange(100, 100 + n_targets)
    ex, ey = keras_windows(data, targets, sequence_length=10, batch_size=None)
    x, y = timeseries_dataset_from_array(data, targets, sequence_length=10)
    assert len(x) == min(71, n_targets)
    assert np.array_equal(x, ex) and np.array_equal(y, ey)


@pytest.mark.parametrize("batch_size", [1, 7, 32, 128])
def test_batches_equal_keras(keras_windows, batch_size):
    data, targets = np.arange(90, dtype="int64"), np.arange(90, dtype="int64") * 10
    kw = dict(sequence_length=8, sequence_stride=2, sampling_rate=2, batch_size=batch_size)
    expected = keras_windows(data, targets, **kw)
    got = timeseries_dataset_from_array(data, targets, **kw)
    assert len(got) == len(expected)
    for (x, y), (ex, ey) in zip(got, expected):
        assert np.array_equal(x, ex) and np.array_equal(y, ey)
    no_targets = timeseries_dataset_from_array(data, None, **kw)
    assert all(np.array_equal(a, b[0]) for a, b in zip(no_targets, got))


def test_keras_docstring_examples():
    # Example 1: indices 0..98, sequence_length=10, sampling_rate=2, sequence_stride=3
    x = timeseries_dataset_from_array(np.arange(99), None, sequence_length=10, sampling_rate=2, sequence_stride=3)
    assert x[0].tolist() == list(range(0, 19, 2)) and x[1].tolist() == list(range(3, 22, 2))
    assert x[-1].tolist() == list(range(78, 97, 2))
    # Example 2: the past 10 steps predict the next one
    data = np.random.default_rng(1).normal(size=50)
    x, y = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10)
    assert np.array_equal(x[0], data[:10]) and y[0] == data[10] and len(x) == 31
    assert np.array_equal(x[-1], data[30:40]) and y[-1] == data[40]


def test_shuffle_keeps_each_window_with_its_target_and_is_seeded():
    data = np.arange(60.0)
    targets = data * 100
    x, y = timeseries_dataset_from_array(data, targets, sequence_length=5, sequence_stride=2)
    xs, ys = timeseries_dataset_from_array(data, targets, sequence_length=5, sequence_stride=2, shuffle=True, seed=3)
    assert not np.array_equal(xs, x)                                            # the order did change
    order = np.argsort(xs[:, 0])
    assert np.array_equal(xs[order], x) and np.array_equal(ys[order], y)      # same windows, same pairs
    assert np.array_equal(ys, xs[:, 0] * 100)
    again = timeseries_dataset_from_array(data, targets, sequence_length=5, sequence_stride=2, shuffle=True, seed=3)
    other = timeseries_dataset_from_array(data, targets, sequence_length=5, sequence_stride=2, shuffle=True, seed=4)
    assert np.array_equal(again[0], xs) and not np.array_equal(other[0], xs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(sequence_length=11), "spans 11 steps, longer than the 10 steps"),
    (dict(sequence_length=4, sampling_rate=4), "spans 13 steps"),
    (dict(sequence_length=3, sequence_stride=0), "sequence_stride must be an integer >= 1, got 0"),
    (dict(sequence_length=3, sampling_rate=0), "sampling_rate must be an integer >= 1, got 0"),
    (dict(sequence_length=0), "sequence_length must be an integer >= 1"),
    (dict(sequence_length=3, start_index=10), "start_index must be lower than the length of the data"),
    (dict(sequence_length=3, start_index=-1), "start_index must be an integer >= 0"),
    (dict(sequence_length=3, start_index=5, end_index=5), "end_index must be higher than start_index"),
    (dict(sequence_length=3, end_index=11), "end_index must be at most the length"),
    (dict(sequence_length=3, batch_size=0), "batch_size must be an integer >= 1"),
])
def test_window_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        timeseries_dataset_from_array(np.arange(10.0), None, **kwargs)


def test_window_input_errors():
    with pytest.raises(ValueError, match=r"data contains 1 NaN or infinite value\(s\), the first at index \(3,\)"):
        timeseries_dataset_from_array(np.array([0, 1, 2, np.nan, 4.0]), None, sequence_length=2)
    with pytest.raises(ValueError, match="targets contains 1 NaN"):
        timeseries_dataset_from_array(np.arange(5.0), np.array([0, np.inf, 0, 0, 0]), sequence_length=2)
    with pytest.raises(TypeError, match="sequence_length must be an integer >= 1, got float: 2.0"):
        timeseries_dataset_from_array(np.arange(5.0), None, sequence_length=2.0)
    with pytest.raises(ValueError, match=r"the windows need targets\[3:13\]"):     # Keras fails in its gather here
        timeseries_dataset_from_array(np.arange(20.0), np.arange(10), sequence_length=3, start_index=3)


# -- make_windows ---------------------------------------------------------------------------------------------
def test_make_windows_hand_computed():
    x, y = make_windows(np.arange(7.0), 3, horizon=2)
    assert x.shape == (3, 3, 1) and y.shape == (3, 2)
    assert x[..., 0].tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert y.tolist() == [[3, 4], [4, 5], [5, 6]]
    x, y = make_windows(np.arange(10.0), 2, sequence_stride=3, start_index=1, end_index=9)
    assert x[..., 0].tolist() == [[1, 2], [4, 5]] and y.tolist() == [[3], [6]]     # targets stay before end_index


@pytest.mark.parametrize("horizon", [1, 4])
def test_make_windows_agrees_with_keras_style_windows(horizon):
    s = np.random.default_rng(2).normal(size=(40, 2))
    x, y = make_windows(s, 6, horizon=horizon, sequence_stride=2)
    both = timeseries_dataset_from_array(s, None, sequence_length=6 + horizon, sequence_stride=2)
    assert x.shape == (len(both), 6, 2) and y.shape == (len(both), horizon, 2)
    assert np.array_equal(x, both[:, :6]) and np.array_equal(y, both[:, 6:])
    x1, y1 = make_windows(s[:, 0], 6)
    kx, ky = timeseries_dataset_from_array(s[:-1, 0], s[6:, 0], sequence_length=6)   # Keras' example 2
    assert np.array_equal(x1[..., 0], kx) and np.array_equal(y1[:, 0], ky)


def test_make_windows_errors():
    with pytest.raises(ValueError, match="horizon must be an integer >= 1, got 0"):
        make_windows(np.arange(10.0), 3, horizon=0)
    with pytest.raises(ValueError, match=r"needs 11 steps, but series\[0:10\] has 10"):
        make_windows(np.arange(10.0), 8, horizon=3)
    with pytest.raises(ValueError, match="NaN"):
        make_windows(np.array([1.0, np.nan, 2, 3, 4]), 2)
    with pytest.raises(ValueError, match="series must be"):
        make_windows(np.zeros((10, 2, 2)), 2)


# -- scalers ---------------------------------------------------------------------------------------------------
def test_scalers_match_scikit_learn():
    from sklearn import preprocessing

    rng = np.random.default_rng(3)
    train = rng.normal(loc=[5.0, -2.0, 0.0], scale=[3.0, 0.1, 1.0], size=(50, 3))
    train[:, 2] = 7.0                                                             # a constant feature
    test = rng.normal(size=(20, 3)) * 4
    for ours, ref in [(StandardScaler(), preprocessing.StandardScaler()),
                      (MinMaxScaler(feature_range=(-1, 2)), preprocessing.MinMaxScaler(feature_range=(-1, 2)))]:
        ours.fit(train)
        ref.fit(train)
        assert np.allclose(ours.transform(test), ref.transform(test), rtol=1e-12, atol=1e-12)
        assert np.allclose(ours.inverse_transform(test), ref.inverse_transform(test), rtol=1e-12, atol=1e-12)
        assert np.allclose(ours.inverse_transform(ours.transform(test)), test, rtol=1e-12, atol=1e-12)
        # a 1-D series is one variable: the same as scikit-learn on a single column
        ours.fit(train[:, 0])
        ref.fit(train[:, :1])
        assert np.allclose(ours.transform(test[:, 0]), ref.transform(test[:, :1])[:, 0], rtol=1e-12, atol=1e-12)


def test_scaler_uses_training_statistics_only_and_scales_windows():
    series = np.arange(20.0)
    scaler = StandardScaler().fit(series[:10])
    assert scaler.mean_ == 4.5 and np.isclose(scaler.scale_, np.std(np.arange(10.0)))
    assert np.allclose(scaler.transform(series[10:]), (series[10:] - 4.5) / np.std(np.arange(10.0)))
    windows = np.random.default_rng(4).normal(size=(6, 5, 2))
    per_feature = StandardScaler().fit(windows.reshape(-1, 2))
    assert np.allclose(per_feature.transform(windows), per_feature.transform(windows.reshape(-1, 2)).reshape(6, 5, 2))


def test_scaler_errors():
    with pytest.raises(ValueError, match="not fitted yet; call fit"):
        StandardScaler().transform([1.0, 2.0])
    with pytest.raises(ValueError, match="MinMaxScaler is not fitted yet"):
        MinMaxScaler().inverse_transform([1.0, 2.0])
    with pytest.raises(ValueError, match="fitted on 2 features"):
        StandardScaler().fit(np.zeros((4, 2))).transform(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        StandardScaler().fit([1.0, np.nan])
    with pytest.raises(ValueError, match="min < max"):
        MinMaxScaler(feature_range=(1, 0))


# -- baselines and metrics -------------------------------------------------------------------------------------
def test_baselines_hand_computed():
    history = [1.0, 2, 3, 4, 5, 6, 7]
    assert naive_forecast(history, 3).tolist() == [7, 7, 7]
    assert seasonal_naive_forecast(history, 5, season=3).tolist() == [5, 6, 7, 5, 6]
    assert seasonal_naive_forecast(history, 2, season=1).tolist() == [7, 7]
    assert np.allclose(drift_forecast([1.0, 4, 2, 7], 3), [9, 11, 13])          # slope (7 - 1) / 3 = 2
    assert mean_forecast(history, 2).tolist() == [4, 4]
    with pytest.raises(ValueError, match="at least 4 are needed"):
        seasonal_naive_forecast([1.0, 2, 3], 2, season=4)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1, got 0"):
        naive_forecast(history, 0)
    with pytest.raises(ValueError, match="NaN"):
        mean_forecast([1.0, np.nan], 1)


def test_metrics_hand_computed_and_against_references():
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error
    from statsmodels.tools import eval_measures

    y, p, train = [1.0, 2, 3], [2.0, 2, 5], [1.0, 3, 2, 5]
    assert np.isclose(mae(y, p), 1.0) and np.isclose(rmse(y, p), np.sqrt(5 / 3))
    assert np.isclose(smape(y, p), (200 / 3 + 0 + 50) / 3)
    assert np.isclose(mase(y, p, train), 1.0 / 2.0)                                # naive in-sample MAE (2+1+3)/3
    assert np.isclose(mase(y, p, train, season=2), 1.0 / 1.5)                      # (|2-1| + |5-3|) / 2
    assert smape([0.0, 1.0], [0.0, 1.0]) == 0.0                                    # 0/0: a perfect forecast

    rng = np.random.default_rng(5)
    y, p, train = rng.normal(size=30), rng.normal(size=30), rng.normal(size=60)
    assert np.isclose(mae(y, p), mean_absolute_error(y, p), rtol=1e-13)
    assert np.isclose(mae(y, p), eval_measures.meanabs(y, p), rtol=1e-13)
    assert np.isclose(rmse(y, p), root_mean_squared_error(y, p), rtol=1e-13)
    assert np.isclose(rmse(y, p), eval_measures.rmse(y, p), rtol=1e-13)
    for m in (1, 4):
        assert np.isclose(mase(y, p, train, season=m),
                          mean_absolute_error(y, p) / mean_absolute_error(train[m:], train[:-m]), rtol=1e-13)


def test_metric_errors():
    with pytest.raises(ValueError, match="same number of values, got 3 and 2"):
        mae([1.0, 2, 3], [1.0, 2])
    with pytest.raises(ValueError, match="MASE is undefined"):
        mase([1.0], [2.0], [3.0, 3, 3])
    with pytest.raises(ValueError, match="longer than season=3"):
        mase_scale([1.0, 2, 3], season=3)
    with pytest.raises(ValueError, match="NaN"):
        rmse([1.0, np.nan], [1.0, 2])


# -- forecasts -------------------------------------------------------------------------------------------------
def test_recursive_forecast_equals_statsmodels_ar_prediction():
    """A linear one-step model fed back on itself is an AR model's dynamic forecast."""
    from statsmodels.tsa.ar_model import AutoReg

    history = np.sin(np.arange(60) / 3.0) + np.random.default_rng(6).normal(scale=0.1, size=60)
    params = np.array([0.05, 0.9, -0.3, 0.2])                                      # const, lag 1, lag 2, lag 3

    def ar_model(x):                                                               # x (1, 3, 1): oldest first
        return np.array([[params[0] + params[1:] @ x[0, ::-1, 0]]])

    ours = forecast_recursive(ar_model, history, 8, sequence_length=3)
    ref = AutoReg(history, lags=3, trend="c").predict(params, start=60, end=67)
    assert np.allclose(ours, ref, rtol=1e-12, atol=1e-12)


def _tiny_lstm(outputs: int, window: int = 5) -> Sequential:
    model = Sequential([Input(shape=(window, 1)), LSTM(4), Dense(outputs)], seed=0)
    model.compile(optimizer="adam", loss="mse")
    return model


def test_forecasts_with_an_rnnkit_model():
    history = np.linspace(-1, 1, 12)
    one_step = _tiny_lstm(1)
    got = forecast_recursive(one_step, history, 3)                                 # window 5 read from the model
    window = list(history[-5:])
    for v in got:
        assert np.isclose(v, one_step.predict(np.array(window[-5:])[None, :, None], verbose=0)[0, 0], atol=1e-6)
        window.append(v)
    three_steps = _tiny_lstm(3)
    direct = forecast_direct(three_steps, history)
    assert direct.shape == (3,)
    assert np.allclose(direct, three_steps.predict(history[None, -5:, None], verbose=0)[0], atol=1e-6)
    assert np.allclose(forecast_direct(three_steps, history, horizon=2), direct[:2])
    with pytest.raises(ValueError, match="returns 3. For a model that predicts several steps at once use"):
        forecast_recursive(three_steps, history, 2)
    with pytest.raises(ValueError, match="fewer than horizon=4"):
        forecast_direct(three_steps, history, horizon=4)
    with pytest.raises(ValueError, match="fewer than the model's window of sequence_length=5"):
        forecast_recursive(one_step, history[:4], 2)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        forecast_recursive(one_step, history, 0)

    scaler = StandardScaler().fit(history * 10)
    fit_predict = forecaster_from_model(one_step, scaler)
    scaled = forecast_recursive(one_step, scaler.transform(history * 10), 2)
    assert np.allclose(fit_predict(history * 10, 2), scaler.inverse_transform(scaled))


def test_window_length_defaults_and_forecaster_options():
    seen = []

    def any_length(x):                                                             # no fixed input length
        seen.append(x.shape)
        return x[:, -1, :].sum(axis=1, keepdims=True) + 1.0                        # the last value plus one

    assert forecast_recursive(any_length, [1.0, 2, 3], 3).tolist() == [4, 5, 6]
    assert seen == [(1, 3, 1)] * 3                                                 # the whole history, sliding
    direct = forecaster_from_model(lambda x: x[:, -2:, 0] * 2, strategy="direct", sequence_length=2)
    assert direct(np.array([1.0, 2, 3]), 2).tolist() == [4, 6]
    with pytest.raises(ValueError, match="strategy must be 'recursive' or 'direct'"):
        forecaster_from_model(any_length, strategy="mimo")
    with pytest.raises(TypeError, match="scaler must have transform and inverse_transform"):
        forecaster_from_model(any_length, scaler=object())


# -- backtest --------------------------------------------------------------------------------------------------
def test_backtest_scores_every_method_on_the_same_origins():
    rng = np.random.default_rng(7)
    y = 10 + np.sin(np.arange(40) * 2 * np.pi / 6) * 3 + rng.normal(scale=0.3, size=40)
    seen = []

    def oracle(history, horizon):                                                  # knows the future: zero error
        seen.append(len(history))
        return y[len(history):len(history) + horizon]

    table, f = backtest(oracle, y, initial=25, horizon=3, step=2, season=6, return_forecasts=True)
    origins = list(range(25, 38, 2))
    assert seen == origins and f["origins"].tolist() == origins
    assert list(table) == ["mae", "rmse", "smape", "mase"]
    assert list(table["mae"]) == ["model", "naive", "seasonal_naive", "drift", "mean"]
    assert all(table[m]["model"] == 0.0 for m in table)

    # the same figures, forecast and pooled by hand
    actual = np.stack([y[o:o + 3] for o in origins])
    snaive = np.stack([seasonal_naive_forecast(y[:o], 3, season=6) for o in origins])
    assert np.array_equal(f["actual"], actual) and np.array_equal(f["seasonal_naive"], snaive)
    err = np.abs(actual - snaive)
    assert np.isclose(table["mae"]["seasonal_naive"], err.mean())
    assert np.isclose(table["rmse"]["seasonal_naive"], np.sqrt((err ** 2).mean()))
    assert np.isclose(table["smape"]["seasonal_naive"], np.mean([smape(a, p) for a, p in zip(actual, snaive)]))
    scales = np.array([np.abs(y[6:o] - y[:o - 6]).mean() for o in origins])
    assert np.isclose(table["mase"]["seasonal_naive"], (err / scales[:, None]).mean())
    assert np.isclose(table["mase"]["naive"], np.mean([mase(y[o:o + 3], naive_forecast(y[:o], 3), y[:o], season=6)
                                                       for o in origins]))
    assert table["mase"]["seasonal_naive"] < table["mase"]["mean"]                # a seasonal series
    text = format_table(table)
    assert text.splitlines()[0].split() == ["method", "MAE", "RMSE", "SMAPE", "MASE"]
    assert f"{table['mase']['drift']:.3f}" in text.splitlines()[4]


def test_backtest_errors():
    y = np.arange(30.0)
    naive = lambda h, n: np.full(n, h[-1])
    with pytest.raises(ValueError, match="goes past the end of the series"):
        backtest(naive, y, initial=28, horizon=3)
    with pytest.raises(ValueError, match="must be longer than season=11"):
        backtest(naive, y, initial=11, season=11)
    with pytest.raises(ValueError, match="Unknown baseline 'arima'"):
        backtest(naive, y, initial=20, baselines=("arima",))
    with pytest.raises(ValueError, match="Unknown metric 'mape'"):
        backtest(naive, y, initial=20, metrics=("mape",))
    with pytest.raises(ValueError, match="horizon must be an integer >= 1, got 0"):
        backtest(naive, y, initial=20, horizon=0)
    with pytest.raises(ValueError, match=r"must return 2 finite forecast\(s\) at origin 20; got 1 value"):
        backtest(lambda h, n: [1.0], y, initial=20, horizon=2)
    with pytest.raises(ValueError, match="NaN"):
        backtest(naive, np.where(y == 5, np.nan, y), initial=20)
    with pytest.raises(TypeError, match="forecaster must be a function"):
        backtest(42, y, initial=20)
    assert list(backtest(None, y, initial=20)["mae"]) == ["naive", "seasonal_naive", "drift", "mean"]
