"""The compiled recurrent core against the NumPy reference, PyTorch and itself.

* It is built and active (CI fails here rather than testing the NumPy fallback twice).
* On every instruction set this CPU has (forced one by one; "wide" is the AVX-512 build's code
  compiled for AVX2, so its vector-width logic is checked here too), every cell and option gives the
  reference's outputs, final states and gradients (input, initial states, weights): within 1e-10
  relative in float64, 1e-5 in float32, over masks, dropout, initial states, go_backwards, batch
  sizes that split unevenly over threads, and one-step sequences.
* The products outside the time loop (``kernels.matmul``) equal NumPy's, every transpose form.
* In float64 it matches PyTorch's LSTM, GRU and RNN (autograd) within 1e-10.
* Rows are independent (a row computed alone equals the same row in a batch); predict, which keeps
  no BPTT cache, gives what a training forward gives; the kernels never leave flush-to-zero on in
  the caller's thread; they release the GIL; and a malformed call is an error, never a wild write.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import rnnkit
from rnnkit import _kernels, kernels
from rnnkit.layers import GRU, LSTM, Bidirectional, SimpleRNN

ISAS = _kernels.info()["available"] if _kernels is not None else []

CELLS = {
    "simple_tanh": lambda **kw: SimpleRNN(6, **kw),
    "simple_relu": lambda **kw: SimpleRNN(6, activation="relu", **kw),
    "lstm": lambda **kw: LSTM(6, **kw),
    "lstm_relu_tanh_gates": lambda **kw: LSTM(6, activation="relu", recurrent_activation="tanh", **kw),
    "gru_after": lambda **kw: GRU(6, **kw),
    "gru_before": lambda **kw: GRU(6, reset_after=False, **kw),
    "gru_linear": lambda **kw: GRU(6, activation="linear", **kw),
}

#: (options, batch, steps, mask kind, initial states given)
CASES = {
    "plain": ({}, 5, 7, None, False),
    "sequences_go_backwards": ({"return_sequences": True, "go_backwards": True}, 9, 6, "gaps", True),
    "masked_dropout": ({"return_sequences": True, "dropout": 0.3, "recurrent_dropout": 0.4}, 33, 8, "padding", True),
    "one_step": ({"return_state": True}, 3, 1, None, True),
    "big_batch": ({"return_state": True, "return_sequences": True}, 100, 5, "padding", False),
}


def test_the_compiled_core_is_built_and_active():
    """If the C extension did not build, CI fails here instead of testing the NumPy path twice."""
    assert _kernels is not None, "rnnkit._kernels is not built: pip install needs a C compiler"
    info = rnnkit.kernels_info()
    assert info["path"] == "kernel" and info["isa"] in info["available"] and info["threads"] >= 1
    assert "base" in info["available"]


def _mask(kind, B, T, rng):
    if kind is None:
        return None
    if kind == "padding":
        lengths = rng.integers(0, T + 1, size=B)              # some rows fully masked
        return np.arange(T)[None, :] < lengths[:, None]
    m = rng.random((B, T)) > 0.35
    m[0] = False
    return m


def _run(layer, x, mask, states, dy_seed, d_states):
    """Forward then backward with fixed dropout draws; everything the layer computes, as a flat list."""
    layer._rng = np.random.default_rng(11)
    if hasattr(layer, "forward_layer"):
        for sub in (layer.forward_layer, layer.backward_layer):
            sub._rng = np.random.default_rng(11)
    y = layer.forward(x, training=True, mask=mask, initial_state=states)
    outs = y if isinstance(y, list) else [y]
    dys = [np.cos(np.arange(o.size) + dy_seed).reshape(o.shape) for o in outs]
    dx = layer.backward(dys[0], dstates=dys[1:] if len(dys) > 1 else None)
    return [*outs, dx, *layer.initial_state_grads, *[g.copy() for g in layer.grads.values()]]


def _compare(make, options, B, T, mask_kind, with_states, dtype, tol, seed=0):
    rnnkit.set_floatx(dtype)
    try:
        rng = np.random.default_rng(seed)
        layer = make(seed=3, **options)
        x = rng.normal(size=(B, T, 4))
        layer.build(x.shape[1:])
        for w in layer.params.values():                       # non-zero biases, weights away from init
            w += rng.normal(scale=0.2, size=w.shape)
        mask = _mask(mask_kind, B, T, rng)
        n = getattr(layer, "n_states", 1)
        states = [rng.normal(size=(B, layer.units)) for _ in range(n)] if with_states else None
        got = _run(layer, x, mask, states, 1, None)
        with kernels.use_numpy():
            want = _run(layer, x, mask, states, 1, None)
    finally:
        rnnkit.set_floatx("float32")
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.dtype == np.dtype(dtype)
        scale = max(np.abs(b).max(), 1e-30)
        assert np.abs(a - b).max() / scale <= tol


@pytest.fixture(params=ISAS)
def isa(request):
    """Each instruction set this CPU has, forced in turn (then the best one again)."""
    best = _kernels.info()["isa"]
    assert kernels.set_isa(request.param)
    yield request.param
    kernels.set_isa(best)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("cell", CELLS)
def test_float64_equals_the_reference(cell, case, isa):
    options, B, T, mask, states = CASES[case]
    _compare(CELLS[cell], options, B, T, mask, states, "float64", 1e-10)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("cell", CELLS)
def test_float32_is_within_1e5_of_the_reference(cell, case, isa):
    options, B, T, mask, states = CASES[case]
    _compare(CELLS[cell], options, B, T, mask, states, "float32", 1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru_after", "simple_tanh"])
def test_bidirectional_runs_both_directions_and_matches(cell, isa):
    make = lambda **kw: Bidirectional(CELLS[cell](return_sequences=True, return_state=True,
                                                  seed=kw.pop("seed")), **kw)
    _compare(make, {}, 17, 6, "padding", False, "float64", 1e-10)


WIDE = {"simple": lambda **kw: SimpleRNN(37, **kw), "lstm": lambda **kw: LSTM(37, **kw),
        "gru_after": lambda **kw: GRU(37, **kw), "gru_before": lambda **kw: GRU(37, reset_after=False, **kw)}


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("cell", WIDE)
def test_wider_layers_equal_the_reference(cell, dtype, tol, isa):
    """37 units: gate blocks span whole register tiles (up to 64 columns wide) and a ragged tail."""
    _compare(WIDE[cell], {"return_sequences": True, "return_state": True}, 20, 9, "padding", True, dtype, tol)


MATMUL_SHAPES = [(1, 1, 1), (5, 3, 7), (6, 16, 64), (13, 37, 150), (300, 70, 200), (64, 500, 48)]


@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m, k, n", MATMUL_SHAPES)
def test_matmul_equals_numpy(m, k, n, trans_a, trans_b, isa):
    """The products outside the time loop: every transpose form, shapes from one number to ones that are
    split over threads by rows and by columns, in both float types; accumulate adds to C."""
    rng = np.random.default_rng(m + k + n)
    for dtype, tol in ((np.float64, 1e-13), (np.float32, 1e-5)):
        a = rng.normal(size=(k, m) if trans_a else (m, k)).astype(dtype)
        b = rng.normal(size=(n, k) if trans_b else (k, n)).astype(dtype)
        want = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
        got = kernels.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
        assert got.dtype == dtype and got.shape == (m, n)
        assert np.abs(got - want).max() <= tol * max(1.0, np.abs(want).max()) * np.sqrt(k)
        c = np.ones((m, n), dtype)
        _kernels.matmul(a, b, c, trans_a, trans_b, True)
        assert np.abs(c - 1 - want).max() <= tol * max(1.0, np.abs(want).max()) * np.sqrt(k) + tol


def test_matmul_reads_column_slices_in_place_and_copies_other_layouts():
    rng = np.random.default_rng(5)
    wide = rng.normal(size=(40, 90))
    b = rng.normal(size=(40, 30))
    np.testing.assert_allclose(kernels.matmul(wide[:, 30:60], b, trans_a=True), wide[:, 30:60].T @ b, rtol=1e-12)
    strided = wide[:, ::3]                                    # not contiguous along rows: copied first
    np.testing.assert_allclose(kernels.matmul(strided, b, trans_a=True), strided.T @ b, rtol=1e-12)
    np.testing.assert_allclose(kernels.column_sums(wide), wide.sum(axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match="shapes do not fit: op\\(A\\) is 40 x 90, op\\(B\\) 40 x 30"):
        _kernels.matmul(wide, b, np.empty((40, 30)), False, False, False)
    with pytest.raises(TypeError, match="B has another float type than A"):
        _kernels.matmul(wide, b.astype(np.float32), np.empty((90, 30)), True, False, False)
    with pytest.raises(ValueError, match="C must be a 2-D float32 or float64 array"):
        _kernels.matmul(wide, b, np.empty((90, 30), np.int64), True, False, False)


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
def test_float64_matches_pytorch_within_1e10(name, float64):
    import torch

    from rnnkit.interop import from_torch

    torch.manual_seed(0)
    module = getattr(torch.nn, name)(4, 8, batch_first=True, dtype=torch.float64)
    (layer,) = from_torch(module, return_sequences=True)
    x = np.random.default_rng(0).normal(size=(6, 9, 4))
    xt = torch.tensor(x, requires_grad=True)
    out, _ = module(xt)
    w = torch.tensor(np.sin(np.arange(out.numel())).reshape(out.shape))
    (out * w).sum().backward()
    y = layer(x)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-10, atol=1e-12)
    dx = layer.backward(w.numpy())
    assert np.abs(dx - xt.grad.numpy()).max() / np.abs(xt.grad.numpy()).max() < 1e-10
    grads = dict(layer.grads)
    ref = module.weight_hh_l0.grad.numpy()
    if name == "GRU":                                      # torch gate order r, z, n; Keras z, r, h
        ref = np.concatenate([ref[8:16], ref[:8], ref[16:]])
    assert np.abs(grads["recurrent_kernel"] - ref.T).max() / np.abs(ref).max() < 1e-10


def test_a_row_alone_gives_what_it_gives_in_a_batch(float64):
    rng = np.random.default_rng(1)
    layer = LSTM(16, return_sequences=True, seed=0)
    x = rng.normal(size=(40, 12, 5))
    whole = layer(x)
    for b in (0, 17, 39):
        np.testing.assert_allclose(layer(x[b:b + 1])[0], whole[b], rtol=0, atol=1e-14)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_predict_keeps_no_cache_and_gives_the_training_forward(return_sequences, float64):
    rng = np.random.default_rng(2)
    model = rnnkit.Sequential([rnnkit.Input((7, 3)), GRU(5, return_sequences=return_sequences, seed=0)])
    x = rng.normal(size=(8, 7, 3))
    got = model.predict(x, verbose=0)
    assert model.layers[0]._cache is None or return_sequences
    np.testing.assert_array_equal(got, model.layers[0].forward(x))
    model.compile("sgd", "mse")
    model.train_on_batch(x, got)                           # a training step after predict: cache kept again
    assert model.layers[0]._cache is not None


def test_flush_to_zero_stays_inside_the_kernels():
    tiny = np.array([1e-40], dtype=np.float32)             # a subnormal float32
    layer = LSTM(32, seed=0)
    layer(np.random.default_rng(0).normal(size=(64, 20, 8)).astype(np.float32))
    assert (tiny * np.float32(1.0))[0] != 0, "the caller's thread was left flushing subnormals to zero"


def test_the_gil_is_released_while_kernels_run():
    layer = LSTM(256, return_sequences=True, seed=0)
    x = np.random.default_rng(0).normal(size=(64, 100, 64)).astype(np.float32)
    layer(x[:2])
    done = threading.Event()
    ticks = []

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    t0 = time.perf_counter()
    for _ in range(3):
        layer(x)
    elapsed = time.perf_counter() - t0
    done.set()
    counter.join()
    # with the GIL held the counter could not run while a kernel does; released, it ticks throughout
    assert len([t for t in ticks if t0 < t < t0 + elapsed]) >= max(3, elapsed / 0.01)


def test_malformed_calls_are_errors_not_wild_writes():
    H, B, T = 4, 3, 2
    ok = dict(kind="simple_rnn_forward", T=T, B=B, H=H, xw=np.zeros((T, B, H), np.float32),
              U=np.zeros((H, H), np.float32), hs=np.zeros((T + 1, B, H), np.float32))
    _kernels.run([ok])
    with pytest.raises(ValueError, match="array hs holds 27 numbers, expected 36"):
        _kernels.run([{**ok, "hs": np.zeros((T + 1, B, H - 1), np.float32)}])
    with pytest.raises(TypeError, match="array U has format 'd', expected float32"):
        _kernels.run([{**ok, "U": np.zeros((H, H))}])
    with pytest.raises(ValueError, match="array xw is required"):
        _kernels.run([{k: v for k, v in ok.items() if k != "xw"}])
    with pytest.raises(ValueError, match="unknown kind"):
        _kernels.run([{**ok, "kind": "transformer"}])
    with pytest.raises(ValueError, match="not C-contiguous"):
        _kernels.run([{**ok, "hs": np.zeros((T + 1, B, 2 * H), np.float32)[:, :, ::2]}])
    with pytest.raises(ValueError, match="Unknown instruction set"):
        kernels.set_isa("sse9")


def test_kernels_info_and_version(capsys):
    from rnnkit.cli import main

    with pytest.raises(SystemExit):
        main(["--version"])
    out = capsys.readouterr().out
    assert f"compiled kernels, {rnnkit.kernels_info()['isa']}" in out
    with kernels.use_numpy():
        info = rnnkit.kernels_info()
        assert info["path"] == "numpy" and "use_numpy" in info["reason"]


def test_the_environment_variable_selects_the_reference():
    """RNNKIT_KERNELS=numpy, read at import, puts every recurrent layer on the NumPy path."""
    code = "import rnnkit; print(rnnkit.kernels_info()['path'], rnnkit.kernels_info()['reason'])"
    env = {**os.environ, "RNNKIT_KERNELS": "numpy"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "numpy" and "RNNKIT_KERNELS=numpy is set" in out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_products_on_the_kernels_threads_equal_numpys(dtype):
    """Dense runs its three products on the kernels' threads (no spinning BLAS threads); same numbers as NumPy."""
    from rnnkit import kernels as kernels_module
    from rnnkit.layers import Dense
    from rnnkit.layers.base import numpy_products

    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 7, 13)).astype(dtype)
    dy = rng.standard_normal((5, 7, 11)).astype(dtype)
    layer = Dense(11, activation="tanh", seed=0)
    layer.build((7, 13))
    layer.params = {k: v.astype(dtype) for k, v in layer.params.items()}
    assert kernels_module.products_for(x, layer.params["kernel"]) is not numpy_products
    y_k = layer.forward(x)
    dx_k = layer.backward(dy)
    grads_k = dict(layer.grads)
    with kernels_module.use_numpy():
        assert kernels_module.products_for(x, layer.params["kernel"]) is numpy_products
        y_n = layer.forward(x)
        dx_n = layer.backward(dy)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for a, b in [(y_k, y_n), (dx_k, dx_n), *((grads_k[k], layer.grads[k]) for k in grads_k)]:
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_products_for_keeps_numpys_promotion_and_empty_arrays():
    from rnnkit import kernels as kernels_module
    from rnnkit.layers.base import numpy_products

    a32, a64 = np.ones((2, 3), np.float32), np.ones((3, 4))
    assert kernels_module.products_for(a32, a64) is numpy_products          # mixed types: NumPy promotes
    assert kernels_module.products_for(np.ones((2, 3), np.float16)) is numpy_products
    assert kernels_module.products_for(np.ones((0, 3)), a64) is numpy_products
    assert kernels_module.products_for(np.ones((2, 3)), a64) is not numpy_products
