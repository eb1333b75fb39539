"""Diagnostics: gradient flow (against PyTorch autograd), training telemetry, NaN origin, gradient check, plots, CLI.

The per-step norms are checked against PyTorch in float64 with copied weights: an explicit
cell loop in Keras' layout (``x W + h U + b``) that keeps every ``h_t`` with ``retain_grad``,
so ``h_t.grad`` is the total ``dL/dh_t`` that BPTT carries back, computed by autograd.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.callbacks import LambdaCallback
from rnnkit.cli import main as cli_main
from rnnkit.diagnostics import (
    adding_problem,
    check_gradients,
    find_nonfinite_origin,
    gradient_flow,
    plot_comparison,
)
from rnnkit.layers import GRU, LSTM, Bidirectional, Dense, Input, SimpleRNN

TORCH_TOL = 1e-8
FLOAT32_MAX = float(np.finfo(np.float32).max)


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


# -- PyTorch reference: explicit cell loops in Keras' layout -------------------------------------

def torch_cell(kind: str, weights: list[np.ndarray], H: int):
    """``step(x_t, state) -> state`` for SimpleRNN, LSTM or GRU (reset_after) with rnnkit's weights."""
    W, U, b = (torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in weights)
    if kind == "SimpleRNN":
        return lambda x, s: (torch.tanh(x @ W + s[0] @ U + b),)
    if kind == "LSTM":
        def lstm(x, s):
            z = x @ W + s[0] @ U + b
            i, f, o = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H]), torch.sigmoid(z[:, 3 * H:])
            c = f * s[1] + i * torch.tanh(z[:, 2 * H:3 * H])
            return o * torch.tanh(c), c
        return lstm

    def gru(x, s):
        xz, hu = x @ W + b[0], s[0] @ U + b[1]
        z = torch.sigmoid(xz[:, :H] + hu[:, :H])
        r = torch.sigmoid(xz[:, H:2 * H] + hu[:, H:2 * H])
        hh = torch.tanh(xz[:, 2 * H:] + r * hu[:, 2 * H:])
        return (z * s[0] + (1 - z) * hh,)
    return gru


def torch_run(step, x: torch.Tensor, n_states: int, H: int, reverse: bool = False):
    """Run ``step`` over the steps of ``x (B, T, D)``; returns the ``h_t`` (retaining grad) in time order."""
    B, T, _ = x.shape
    state = tuple(torch.zeros(B, H, dtype=torch.float64) for _ in range(n_states))
    hs = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        state = step(x[:, t], state)
        state[0].retain_grad()
        hs[t] = state[0]
    return hs


def torch_jacobian_norms(hs: list[torch.Tensor], last: int) -> np.ndarray:
    """Batch mean of the spectral norm of d h_last / d h_t for every t, by autograd (one pass per unit)."""
    B, H = hs[last].shape
    rows = [torch.autograd.grad(hs[last][:, k].sum(), hs, retain_graph=True, allow_unused=True) for k in range(H)]
    norms = []
    for t in range(len(hs)):
        J = torch.stack([torch.zeros(B, H, dtype=torch.float64) if r[t] is None else r[t] for r in rows], dim=1)
        norms.append(torch.linalg.matrix_norm(J, ord=2).mean().item())       # J (B, H, H): row k = d h_last[k]
    return np.array(norms)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("kind", ["SimpleRNN", "LSTM", "GRU"])
def test_norms_and_jacobians_equal_torch_autograd(kind):
    """Many-to-one, softmax cross-entropy on the last state: per-step ||dL/dh_t|| and ||dh_T/dh_t||."""
    rng = np.random.default_rng(7)
    B, T, D, H, K = 5, 9, 3, 4, 3
    x = rng.normal(size=(B, T, D))
    labels = rng.integers(0, K, size=B)
    cell = {"SimpleRNN": SimpleRNN, "LSTM": LSTM, "GRU": GRU}[kind](H)
    model = rnnkit.Sequential([Input((T, D)), cell, Dense(K, activation="softmax")], seed=3)
    model.compile("sgd", "sparse_categorical_crossentropy")
    flow = gradient_flow(model, x, labels, jacobian_samples=None)

    weights = model.get_weights()
    hs = torch_run(torch_cell(kind, weights[:3], H), torch.tensor(x), 2 if kind == "LSTM" else 1, H)
    logits = hs[-1] @ torch.tensor(weights[3]) + torch.tensor(weights[4])
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    loss.backward(retain_graph=True)
    expected = np.array([h.grad.norm(dim=1).mean().item() for h in hs])
    key = model.layers[0].name

    assert flow.loss == pytest.approx(loss.item(), rel=1e-12)
    assert rel_err(flow.norms[key], expected) < TORCH_TOL
    assert rel_err(flow.jacobian_norms[key], torch_jacobian_norms(hs, T - 1)) < TORCH_TOL
    assert flow.jacobian_norms[key][-1] == pytest.approx(1.0, abs=1e-12)   # dh_T/dh_T = I


@pytest.mark.usefixtures("float64")
def test_bidirectional_norms_equal_torch_autograd():
    """Bidirectional SimpleRNN with a loss at every step: one array per direction, each in time order."""
    rng = np.random.default_rng(8)
    B, T, D, H = 4, 7, 2, 3
    x, y = rng.normal(size=(B, T, D)), rng.normal(size=(B, T, 2 * H))
    model = rnnkit.Sequential([Input((T, D)), Bidirectional(SimpleRNN(H, return_sequences=True))], seed=1)
    model.compile("sgd", "mse")
    flow = gradient_flow(model, x, y, jacobian_samples=None)
    assert set(flow.norms) == {"bidirectional/forward", "bidirectional/backward"}

    w = model.get_weights()
    xt = torch.tensor(x)
    hf = torch_run(torch_cell("SimpleRNN", w[:3], H), xt, 1, H)
    hb = torch_run(torch_cell("SimpleRNN", w[3:], H), xt, 1, H, reverse=True)
    out = torch.cat([torch.stack(hf, 1), torch.stack(hb, 1)], dim=-1)      # (B, T, 2H)
    ((out - torch.tensor(y)) ** 2).mean().backward(retain_graph=True)
    for key, hs, last in (("bidirectional/forward", hf, T - 1), ("bidirectional/backward", hb, 0)):
        assert rel_err(flow.norms[key], [h.grad.norm(dim=1).mean().item() for h in hs]) < TORCH_TOL
        assert rel_err(flow.jacobian_norms[key], torch_jacobian_norms(hs, last)) < TORCH_TOL
    assert flow.layers["bidirectional/backward"].first == T - 1     # reads from the end


# -- verdicts --------------------------------------------------------------------------------------

def long_sequences(T=100, D=8, B=16):
    rng = np.random.default_rng(0)
    return rng.normal(size=(B, T, D)).astype("float32"), rng.normal(size=(B, 1)).astype("float32")


def many_to_one(cell, T=100, D=8):
    model = rnnkit.Sequential([Input((T, D)), cell, Dense(1)], seed=0)
    model.compile("sgd", "mse")
    return model


def test_simple_rnn_vanishes_while_lstm_keeps_orders_of_magnitude_more():
    """T = 100, loss on the last step, Keras' default initialisation."""
    x, y = long_sequences()
    rnn = gradient_flow(many_to_one(SimpleRNN(32)), x, y)
    lstm = gradient_flow(many_to_one(LSTM(32)), x, y)
    r_rnn, r_lstm = rnn.layers["simple_rnn"].ratio, lstm.layers["lstm"].ratio
    assert rnn.verdicts == {"simple_rnn": "vanishing"}
    assert r_rnn < 1e-9
    assert r_lstm > 1e3 * r_rnn
    text = rnn.summary()
    assert "vanishing: the gradient at t=0 is" in text and "of that at t=99" in text
    assert f"{r_rnn:.1e}" in text
    # the tanh recurrence is what shrinks it: the orthogonal U keeps every direction (radius 1)
    assert rnn.spectral_radius["simple_rnn"]["recurrent_kernel"] == pytest.approx(1.0, abs=1e-5)


def test_open_forget_gate_is_healthy():
    """An LSTM whose forget gates are open (as training makes the memory units) keeps the gradient."""
    x, y = long_sequences()
    model = many_to_one(LSTM(32))
    w = model.get_weights()
    w[2][32:64] = 5.0                                      # forget-gate bias: f = sigmoid(5 + ...) ~ 0.99
    model.set_weights(w)
    layer = gradient_flow(model, x, y).layers["lstm"]
    assert layer.verdict == "healthy" and layer.ratio > 1e-2
    assert layer.gate_means["f"] > 0.95 and layer.open_units == 32
    assert set(layer.gate_saturation) == {"i", "f", "c", "o"}
    assert all(0.0 <= v <= 1.0 for v in layer.gate_saturation.values())


def test_linear_rnn_with_large_recurrent_kernel_explodes():
    x, y = long_sequences()
    model = many_to_one(SimpleRNN(32, activation="linear"))
    w = model.get_weights()
    w[1] *= 1.1                                            # every eigenvalue has modulus 1.1
    model.set_weights(w)
    flow = gradient_flow(model, x, y)
    assert flow.verdicts == {"simple_rnn": "exploding"}
    assert flow.layers["simple_rnn"].ratio == pytest.approx(1.1 ** 99, rel=0.05)
    assert flow.spectral_radius["simple_rnn"]["recurrent_kernel"] == pytest.approx(1.1, rel=1e-5)


def test_gradient_flow_leaves_model_and_state_alone():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 6, 3)), rng.normal(size=(4, 5))
    model = rnnkit.Sequential([Input((6, 3), batch_size=4), GRU(5, stateful=True), Dense(5)], seed=0)
    model.compile("adam", "mse")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    before = model.get_weights()
    state = [s.copy() for s in model.layers[0].states]
    flow = gradient_flow(model, x, y)
    assert set(flow.gate_means["gru"]) == {"z", "r", "h"}
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert all(np.array_equal(a, b) for a, b in zip(state, model.layers[0].states))
    assert model.layers[0].record_state_grads is False


def test_gradient_flow_refuses_models_without_recurrent_layers():
    model = rnnkit.Sequential([Input((4,)), Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="has no recurrent layer"):
        gradient_flow(model, np.zeros((2, 4)), np.zeros((2, 2)))


# -- plots -------------------------------------------------------------------------------------------

def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_plot_writes_small_png(tmp_path):
    x, y = long_sequences(T=30)
    flow = gradient_flow(many_to_one(LSTM(8), T=30), x, y)
    path = flow.plot(tmp_path / "flow.png")
    assert png_size(path) == (600, 350)
    assert path.stat().st_size < 100_000
    other = gradient_flow(many_to_one(SimpleRNN(8), T=30), x, y)
    both = plot_comparison({"LSTM": flow, "SimpleRNN": other}, tmp_path / "both.png", before={"LSTM": flow})
    assert png_size(both) == (600, 350)
    with pytest.raises(ValueError, match=r"ending in \.png"):
        flow.plot(tmp_path / "flow.jpg")


def test_plot_without_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    import sys

    x, y = long_sequences(T=5)
    flow = gradient_flow(many_to_one(SimpleRNN(4), T=5), x, y)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'rnnkit\[plot\]'"):
        flow.plot(tmp_path / "flow.png")
    assert not (tmp_path / "flow.png").exists()


# -- telemetry ----------------------------------------------------------------------------------------

def small_problem(seed=0, n=40, T=6, D=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, T, D)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")


def small_model(optimizer="adam", activation="tanh", **kwargs):
    model = rnnkit.Sequential([Input((6, 3)), SimpleRNN(5, activation=activation, **kwargs), Dense(2)], seed=0)
    model.compile(optimizer, "mse")
    return model


def test_fit_records_pre_clip_gradient_norm():
    x, y = small_problem()
    reference = small_model()
    _, grads = reference.loss_and_gradients(x[:16], y[:16])
    history = small_model().fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "grad_norm", "grad_norm_max"}
    assert len(history.grad_norms) == 9                                    # 3 epochs x 3 steps
    first = np.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    assert history.grad_norms[0] == pytest.approx(first, rel=1e-6)
    for epoch in range(3):
        steps = history.grad_norms[3 * epoch:3 * epoch + 3]
        assert history.history["grad_norm"][epoch] == pytest.approx(np.mean(steps), rel=1e-12)
        assert history.history["grad_norm_max"][epoch] == max(steps)


@pytest.mark.parametrize("clip", ["global_clipnorm", "clipnorm", "clipvalue"])
def test_clip_fraction_counts_the_steps_that_were_clipped(clip):
    x, y = small_problem(n=64)
    free = small_model().fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    assert "clip_fraction" not in free.history
    for threshold, fraction in ((1e-6, 1.0), (1e6, 0.0)):
        h = small_model(rnnkit.optimizers.Adam(**{clip: threshold})).fit(x, y, epochs=2, batch_size=8, verbose=0)
        assert h.history["clip_fraction"] == [fraction, fraction]
    # in between, global clipping acts exactly on the steps whose pre-clip norm is above the threshold
    if clip == "global_clipnorm":
        threshold = float(np.median(free.grad_norms))
        h = small_model(rnnkit.optimizers.SGD(0.0001, global_clipnorm=threshold)).fit(
            x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
        assert 0.0 < h.history["clip_fraction"][0] < 1.0
        assert h.history["clip_fraction"][0] == np.mean(np.array(h.grad_norms) > threshold)


def test_progress_line_shows_gradient_norm(capsys):
    x, y = small_problem()
    small_model().fit(x, y, epochs=1, batch_size=16, verbose=1)
    line = capsys.readouterr().out.splitlines()[1]
    assert " - grad_norm: " in line and "grad_norm_max" not in line


# -- NaN origin ----------------------------------------------------------------------------------------

def exploding_relu_model(T=60, H=8, dropout=0.0):
    """A relu SimpleRNN with U = 10 I: the state grows tenfold per step until float32 overflows."""
    model = rnnkit.Sequential([Input((T, 2)), SimpleRNN(H, activation="relu", dropout=dropout), Dense(1)], seed=0)
    model.compile(rnnkit.optimizers.Adam(0.01), "mse")
    w = model.get_weights()
    w[1] = 10 * np.eye(H, dtype="float32")
    model.set_weights(w)
    return model


def first_overflow_step(model, x) -> int:
    """The first step whose pre-activation x_t W + h_{t-1} U + b leaves float32, simulated in float64."""
    W, U, b = (w.astype(np.float64) for w in model.get_weights()[:3])
    h = np.zeros((len(x), U.shape[0]))
    for t in range(x.shape[1]):
        a = x[:, t].astype(np.float64) @ W + h @ U + b
        if np.abs(a).max() > FLOAT32_MAX:
            return t
        h = np.maximum(a, 0.0)
    raise AssertionError("no overflow")


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_nan_origin_of_an_exploding_relu_rnn(dropout):
    """fit stops at once, names layer, step and quantity, and leaves weights and Adam untouched."""
    x = np.random.default_rng(0).random((16, 60, 2)).astype("float32")
    y = np.zeros((16, 1), dtype="float32")
    model = exploding_relu_model(dropout=dropout)
    before = model.get_weights()
    with pytest.raises(rnnkit.NonFiniteError) as info:
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    report = info.value.report
    assert (report.layer, report.layer_class, report.quantity, report.value) == \
        ("simple_rnn", "SimpleRNN", "pre-activation", "inf")
    if dropout == 0.0:   # with dropout the masks scale the inputs, but the search repeats them exactly
        assert report.step == first_overflow_step(model, x)
    assert report.reproduced and report.context == "epoch 1/2, batch 1/1"
    message = str(info.value)
    assert "layer 'simple_rnn' (SimpleRNN), time step t=" in message and "pre-activation became inf" in message
    for remedy in ("global_clipnorm", "lower the learning rate", "activation='tanh'", "terminate_on_nan=False"):
        assert remedy in message
    assert isinstance(info.value, FloatingPointError)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_weights_and_optimizer_state_are_the_last_finite_ones(optimizer):
    """A relu RNN driven to explode by a large learning rate fails after some good steps."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 30, 3)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    opt = rnnkit.optimizers.SGD(1.0) if optimizer == "sgd" else rnnkit.optimizers.Adam(1.0)
    model = rnnkit.Sequential([Input((30, 3)), SimpleRNN(8, activation="relu"), Dense(1)], seed=0)
    model.compile(opt, "mse")
    seen = []

    def remember(batch, logs=None):
        slots = [{k: v.copy() for k, v in s.items()} for s in (opt._slots or [])]
        seen.append((model.get_weights(), slots, opt.iterations))

    with pytest.raises(rnnkit.NonFiniteError) as info:
        model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=[LambdaCallback(on_train_batch_begin=remember)])
    weights, slots, iterations = seen[-1]
    assert len(seen) >= 2, "the failure should come after at least one good step"
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    assert opt.iterations == iterations == len(seen) - 1
    for old, new in zip(slots, opt._slots or []):
        assert all(np.array_equal(old[k], new[k]) for k in old)
    assert info.value.report.layer == "simple_rnn"


def test_terminate_on_nan_false_keeps_training_and_records():
    x = np.random.default_rng(0).random((32, 60, 2)).astype("float32")
    y = np.zeros((32, 1), dtype="float32")
    model = exploding_relu_model()
    with pytest.warns(RuntimeWarning, match="First non-finite value: layer 'simple_rnn'"):
        history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, terminate_on_nan=False)
    assert history.history["nonfinite_steps"] == [2, 2]
    assert np.isnan(history.history["loss"]).all()
    assert model.optimizer.iterations == 4


def test_gradient_origin_when_the_forward_pass_is_finite():
    """A linear RNN with U = 10 I fed only at its last step: the forward pass is tiny, but BPTT
    multiplies dL/dh by 10 per step back until float32 overflows."""
    T, H = 100, 4
    model = rnnkit.Sequential([Input((T, 1)), SimpleRNN(H, activation="linear", use_bias=False), Dense(1)],
                              seed=0)
    model.compile("sgd", "mse")
    w = model.get_weights()
    w[0][:] = 1.0
    w[1] = 10 * np.eye(H, dtype="float32")
    model.set_weights(w)
    x = np.zeros((2, T, 1), dtype="float32")
    x[:, -1] = 1.0
    y = np.zeros((2, 1), dtype="float32")
    report = find_nonfinite_origin(model, x, y)
    # h_{T-1} = (1, ..., 1), out = sum(V); dL/dh_{T-1} = 2 out / B V^T, then x10 per step back
    V = w[2].astype(np.float64).ravel()
    largest = np.abs(2 * V.sum() / len(x) * V).max()
    k = int(np.ceil(np.log10(FLOAT32_MAX / largest)))              # steps back until it overflows
    assert (report.layer, report.quantity, report.value) == ("simple_rnn", "gradient dL/dh_t", "inf")
    assert abs(report.step - (T - 1 - k)) <= 1


def test_nonfinite_dense_pre_activation_and_finite_models():
    x, y = small_problem()
    model = small_model()
    assert find_nonfinite_origin(model, x, y) is None
    model.layers[1].params["kernel"][...] = 3e38                        # tanh outputs summed: overflow
    report = find_nonfinite_origin(model, x, y)
    assert (report.layer, report.layer_class, report.quantity, report.step) == ("dense", "Dense", "pre-activation",
                                                                                  None)


def test_lstm_origin_is_the_pre_activation_at_the_first_step():
    x, y = small_problem()
    model = rnnkit.Sequential([Input((6, 3)), LSTM(4), Dense(2)], seed=0)
    model.compile("sgd", "mse")
    model.layers[0].params["kernel"][0, 5] = np.inf                    # the forget gate of unit 1
    report = find_nonfinite_origin(model, x, y)
    assert (report.layer, report.step, report.quantity) == ("lstm", 0, "pre-activation")


def test_train_on_batch_refuses_a_nonfinite_update():
    x = np.random.default_rng(0).random((16, 60, 2)).astype("float32")
    model = exploding_relu_model()
    before = model.get_weights()
    with pytest.raises(rnnkit.NonFiniteError, match=r"train_on_batch\(\.\.\., terminate_on_nan=False\)"):
        model.train_on_batch(x, np.zeros((16, 1)))
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# -- finite-difference check -----------------------------------------------------------------------------

class DoubledDense(Dense):
    """A Dense layer with a wrong backward pass: its kernel gradient is twice the true one."""

    def backward_from_logits(self, dz):
        dx = super().backward_from_logits(dz)
        self.grads["kernel"] = 2 * self.grads["kernel"]
        return dx


def test_check_gradients_passes_correct_layers_and_catches_a_wrong_one():
    x, y = small_problem(n=3)
    model = small_model()
    before = model.get_weights()
    errors = check_gradients(model, x, y)
    assert set(errors) == {"simple_rnn/kernel", "simple_rnn/recurrent_kernel", "simple_rnn/bias",
                           "dense/kernel", "dense/bias"}
    assert max(errors.values()) < 1e-6
    assert model.dtype == np.float32 and all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))

    broken = rnnkit.Sequential([Input((6, 3)), LSTM(3), DoubledDense(2)], seed=0)
    broken.compile("sgd", "mse")
    errors = check_gradients(broken, x, y, max_elements=4)
    assert errors["doubled_dense/kernel"] > 0.4
    assert errors["lstm/recurrent_kernel"] < 1e-6 and errors["doubled_dense/bias"] < 1e-6


# -- the adding problem and the CLI ---------------------------------------------------------------------

def test_adding_problem():
    x, y = adding_problem(50, steps=20, seed=3)
    assert x.shape == (50, 20, 2) and y.shape == (50, 1) and x.dtype == np.float32
    markers = x[:, :, 1]
    assert (markers.sum(axis=1) == 2).all()
    assert (markers[:, :10].sum(axis=1) == 1).all() and (markers[:, 10:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(adding_problem(50, steps=20, seed=3)[0], x)


def test_cli_diagnose_prints_verdicts_and_writes_pngs(tmp_path, capsys):
    code = cli_main(["diagnose", "--steps", "12", "--epochs", "1", "--units", "6", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    for cell in ("SimpleRNN(6)", "LSTM(6)", "GRU(6)"):
        assert cell in out
    assert out.count("at initialisation: ") == 3 and out.count("after training: ") == 3
    for name in ("simple_rnn", "lstm", "gru", "gradient_flow"):
        assert png_size(tmp_path / f"{name}.png") == (600, 350)


def test_cli_diagnose_rejects_bad_arguments(capsys):
    assert cli_main(["diagnose", "--steps", "1"]) == 2
    assert "--steps must be at least 2" in capsys.readouterr().err


@pytest.mark.parametrize("cell", [SimpleRNN(4), LSTM(4), GRU(4), GRU(4, reset_after=False), LSTM(4, use_bias=False)],
                         ids=["SimpleRNN", "LSTM", "GRU", "GRU-reset-before", "LSTM-no-bias"])
def test_recomputed_pre_activations_give_the_cached_gates(cell):
    """The NaN search names pre-activations it recomputes from the cache; activated, they are the gates."""
    from rnnkit.diagnostics.cells import forward_quantities, gate_activations

    x, y = small_problem(n=5)
    model = rnnkit.Sequential([Input((6, 3)), cell, Dense(2)], seed=0)
    model.compile("sgd", "mse")
    model.loss_and_gradients(x, y)                                     # a forward pass that keeps its cache
    quantities = dict(forward_quantities(cell))
    pre = quantities["pre-activation"]                                   # (T, B, G*H)
    H = cell.units
    if isinstance(cell, SimpleRNN):
        np.testing.assert_allclose(np.tanh(pre), quantities["output"], rtol=1e-5, atol=1e-6)
        return
    for k, (name, act) in enumerate(zip([q[5:] for q in quantities if q.startswith("gate ")], gate_activations(cell))):
        np.testing.assert_allclose(act(pre[:, :, k * H:(k + 1) * H]), quantities[f"gate {name}"], rtol=1e-5, atol=1e-6)
