"""rnnkit against PyTorch, in float64, with the same weights copied into both.

PyTorch computes every gradient by automatic differentiation, so agreement here checks
rnnkit's hand-written backward passes (BPTT, Dense, the fused softmax cross-entropy) and
its optimizer update rules against an independent implementation, to rounding error:

* ``SimpleRNN`` (+ ``Dense`` softmax) forward, loss and every weight gradient against
  ``torch.nn.RNN`` + ``torch.nn.Linear`` + ``F.cross_entropy``;
* ``SGD``, ``Adam``, ``RMSprop``, ``Adagrad`` and gradient clipping against ``torch.optim``
  and ``torch.nn.utils.clip_grad_*``;
* whole training steps (``train_on_batch`` with Adam) against a PyTorch training loop.

Layout mapping (Keras -> PyTorch): ``kernel (D, H)`` is ``weight_ih.T``, ``recurrent_kernel
(H, H)`` is ``weight_hh.T``, ``bias`` is ``bias_ih`` (with ``bias_hh = 0``), and the Dense
``kernel (H, K)`` is ``Linear.weight.T``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import rnnkit
from rnnkit.layers import Dense, SimpleRNN
from rnnkit.optimizers import SGD, Adagrad, Adam, RMSprop

pytestmark = pytest.mark.usefixtures("float64")

MODEL_TOL = 1e-8      # outputs, losses, gradients and trained weights
OPT_TOL = 1e-10       # optimizer trajectories on given gradients
SEEDS = (0, 1, 2)
#: (return_sequences, go_backwards) of the SimpleRNN
STRUCTURES = {
    "last": (False, False),
    "go_backwards": (False, True),
    "sequences": (True, False),
    "sequences_go_backwards": (True, True),
}


# -- helpers ----------------------------------------------------------------------

def rel_err(a, b) -> float:
    """``max|a - b| / max(max|b|, 1e-12)``: the error of ``a`` relative to the reference ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1e-12))


def assert_close(a, b, tol, what=""):
    err = rel_err(a, b)
    assert err < tol, f"{what}: relative error {err:.3e} >= {tol:.0e}"


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def t64(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def random_dims(rng):
    """Batch B in 1..8, steps T in 1..12, and small D, H, K."""
    return (int(rng.integers(1, 9)), int(rng.integers(1, 13)), int(rng.integers(1, 6)),
            int(rng.integers(1, 7)), int(rng.integers(2, 6)))


def random_targets(rng, shape, k, kind):
    """Targets for ``(..., K)`` outputs: one-hot, soft (rows of probabilities) or integer labels."""
    labels = rng.integers(0, k, size=shape)
    if kind == "sparse":
        return labels
    if kind == "onehot":
        return np.eye(k)[labels]
    soft = rng.random((*shape, k)) + 0.05
    return soft / soft.sum(axis=-1, keepdims=True)


def build_rnnkit(rng, dims, activation, return_sequences, go_backwards, loss, optimizer="sgd"):
    """A compiled ``SimpleRNN -> Dense(softmax)`` model with random weights (biases nonzero)."""
    _, t, d, h, k = dims
    model = rnnkit.Sequential(seed=int(rng.integers(2**31)))
    model.add(SimpleRNN(h, activation=activation, input_shape=(t, d),
                        return_sequences=return_sequences, go_backwards=go_backwards))
    model.add(Dense(k, activation="softmax"))
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    kernel, recurrent, _, dense_kernel, _ = model.get_weights()
    model.set_weights([kernel, recurrent, rng.normal(0, 0.3, h), dense_kernel, rng.normal(0, 0.3, k)])
    for w in model.get_weights():
        assert w.dtype == np.float64
    return model


def torch_rnn(kernel, recurrent, bias, activation):
    """A ``torch.nn.RNN`` holding Keras-layout SimpleRNN weights (``bias_hh`` fixed at zero)."""
    d, h = kernel.shape
    rnn = torch.nn.RNN(d, h, nonlinearity=activation, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(t64(kernel.T))
        rnn.weight_hh_l0.copy_(t64(recurrent.T))
        rnn.bias_ih_l0.copy_(t64(bias))
        rnn.bias_hh_l0.zero_()
    # Keras has one bias; keeping bias_hh at zero keeps the two models the same when trained.
    rnn.bias_hh_l0.requires_grad_(False)
    return rnn


class TorchRNNClassifier(torch.nn.Module):
    """``nn.RNN`` + ``nn.Linear`` loaded from Keras-layout weights; ``forward`` returns logits."""

    def __init__(self, weights, activation, return_sequences, go_backwards):
        super().__init__()
        kernel, recurrent, bias, dense_kernel, dense_bias = weights
        self.rnn = torch_rnn(kernel, recurrent, bias, activation)
        self.linear = torch.nn.Linear(*dense_kernel.shape, dtype=torch.float64)
        with torch.no_grad():
            self.linear.weight.copy_(t64(dense_kernel.T))
            self.linear.bias.copy_(t64(dense_bias))
        self.return_sequences, self.go_backwards = return_sequences, go_backwards

    def forward(self, x):
        if self.go_backwards:           # Keras reads the steps last to first and returns them in that order
            x = x.flip(1)
        seq, h_last = self.rnn(x)
        return self.linear(seq if self.return_sequences else h_last[0])

    def keras_params(self):
        """The trainable tensors in Keras' ``get_weights()`` order (torch layout)."""
        return [self.rnn.weight_ih_l0, self.rnn.weight_hh_l0, self.rnn.bias_ih_l0,
                self.linear.weight, self.linear.bias]

    def keras_weights(self):
        return [to_numpy(p.T if p.ndim == 2 else p) for p in self.keras_params()]

    def keras_grads(self):
        return [to_numpy(p.grad.T if p.ndim == 2 else p.grad) for p in self.keras_params()]


def torch_loss(logits, y, kind):
    """Mean softmax cross-entropy over every position, as Keras' ``sum_over_batch_size``."""
    k = logits.shape[-1]
    flat = logits.reshape(-1, k)
    if kind == "sparse":
        return F.cross_entropy(flat, torch.as_tensor(np.asarray(y).reshape(-1), dtype=torch.long))
    return F.cross_entropy(flat, t64(y).reshape(-1, k))


LOSS_NAMES = {"onehot": "categorical_crossentropy", "soft": "categorical_crossentropy",
              "sparse": "sparse_categorical_crossentropy"}


def check_model_parity(seed, activation, structure, kind):
    """Compare predictions, loss and all five gradients of one random problem; return the worst error."""
    rng = np.random.default_rng([seed, 7919])
    dims = random_dims(rng)
    b, t, d, _, k = dims
    return_sequences, go_backwards = STRUCTURES[structure]
    model = build_rnnkit(rng, dims, activation, return_sequences, go_backwards, LOSS_NAMES[kind])
    x = rng.normal(size=(b, t, d))
    y = random_targets(rng, (b, t) if return_sequences else (b,), k, kind)

    net = TorchRNNClassifier(model.get_weights(), activation, return_sequences, go_backwards)
    logits = net(t64(x))
    loss = torch_loss(logits, y, kind)
    loss.backward()

    errors = {"predict": rel_err(model.predict(x), to_numpy(torch.softmax(logits, dim=-1)))}
    value, grads = model.loss_and_gradients(x, y)
    errors["loss"] = rel_err(value, loss.item())
    names = ["kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias"]
    for name, g, ref in zip(names, grads, net.keras_grads()):
        errors[name] = rel_err(g, ref)
    bad = {n: e for n, e in errors.items() if not e < MODEL_TOL}
    assert not bad, f"dims (B, T, D, H, K)={dims}: relative errors {bad}"
    return max(errors.values())


# -- 1. forward, loss and BPTT gradients ---------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("structure", list(STRUCTURES))
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_matches_torch_categorical(activation, structure, seed):
    """SimpleRNN + Dense softmax with one-hot targets: predictions, loss and every weight
    gradient equal torch.nn.RNN + Linear + cross_entropy, for the last output, go_backwards,
    and return_sequences (Dense per step, loss averaged over all B*T positions)."""
    check_model_parity(seed, activation, structure, "onehot")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("structure", list(STRUCTURES))
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_matches_torch_sparse(activation, structure, seed):
    """The same with sparse_categorical_crossentropy and integer labels ((B,) or (B, T))."""
    check_model_parity(seed, activation, structure, "sparse")


@pytest.mark.parametrize("structure", ["last", "sequences"])
def test_simple_rnn_matches_torch_soft_targets(structure):
    """categorical_crossentropy with soft (non one-hot) target distributions matches torch's
    cross_entropy with probability targets: the fused gradient is softmax * sum(y) - y."""
    check_model_parity(11, "tanh", structure, "soft")


def test_simple_rnn_parity_covers_edge_sizes():
    """B = 1 and T = 1 (one sample, one step) also match torch exactly."""
    for activation in ("tanh", "relu"):
        for structure in STRUCTURES:
            rng = np.random.default_rng(3)
            dims = (1, 1, 2, 3, 2)
            return_sequences, go_backwards = STRUCTURES[structure]
            model = build_rnnkit(rng, dims, activation, return_sequences, go_backwards, "categorical_crossentropy")
            x = rng.normal(size=(1, 1, 2))
            y = random_targets(rng, (1, 1) if return_sequences else (1,), 2, "onehot")
            net = TorchRNNClassifier(model.get_weights(), activation, return_sequences, go_backwards)
            loss = torch_loss(net(t64(x)), y, "onehot")
            loss.backward()
            value, grads = model.loss_and_gradients(x, y)
            assert_close(value, loss.item(), MODEL_TOL, f"{activation}/{structure} loss")
            for g, ref in zip(grads, net.keras_grads()):
                assert_close(g, ref, MODEL_TOL, f"{activation}/{structure} gradient")


@pytest.mark.parametrize("structure", list(STRUCTURES))
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_layer_input_and_state_gradients_match_torch(activation, structure):
    """The layer on its own, with an initial state and return_state=True: outputs, final state,
    and the gradients for the input x (reversed back to input order under go_backwards), the
    initial state and every weight equal torch's for L = sum(w_out * out) + sum(w_state * h_T)."""
    for seed in SEEDS:
        rng = np.random.default_rng([seed, 31])
        b, t, d, h, _ = random_dims(rng)
        return_sequences, go_backwards = STRUCTURES[structure]
        layer = SimpleRNN(h, activation=activation, return_sequences=return_sequences,
                          go_backwards=go_backwards, return_state=True, seed=seed)
        layer.build((t, d))
        layer.set_weights([layer.params["kernel"], layer.params["recurrent_kernel"], rng.normal(0, 0.3, h)])
        x, h0 = rng.normal(size=(b, t, d)), rng.normal(size=(b, h))
        out, h_final = layer(x, initial_state=h0)
        w_out, w_state = rng.normal(size=out.shape), rng.normal(size=h_final.shape)
        dx = layer.backward(w_out, [w_state])

        rnn = torch_rnn(*layer.get_weights(), activation)
        tx, th0 = t64(x).requires_grad_(True), t64(h0).requires_grad_(True)
        seq, t_final = rnn(tx.flip(1) if go_backwards else tx, th0[None])
        t_out = seq if return_sequences else t_final[0]
        ((t64(w_out) * t_out).sum() + (t64(w_state) * t_final[0]).sum()).backward()

        assert_close(out, to_numpy(t_out), MODEL_TOL, "output")
        assert_close(h_final, to_numpy(t_final[0]), MODEL_TOL, "final state")
        assert_close(dx, to_numpy(tx.grad), MODEL_TOL, "input gradient")
        assert_close(layer.initial_state_grads[0], to_numpy(th0.grad), MODEL_TOL, "initial state gradient")
        torch_grads = [rnn.weight_ih_l0.grad.T, rnn.weight_hh_l0.grad.T, rnn.bias_ih_l0.grad]
        for name, ref in zip(["kernel", "recurrent_kernel", "bias"], torch_grads):
            assert_close(layer.grads[name], to_numpy(ref), MODEL_TOL, name)


def test_unfused_categorical_crossentropy_matches_torch():
    """The probability-space loss (used when the output is not fused with softmax) matches
    torch autograd through p / sum(p), clip to [1e-7, 1 - 1e-7] and -sum(y log p) / N."""
    rng = np.random.default_rng(5)
    for shape in [(4, 3), (2, 5, 4)]:
        p = rng.random(shape) + 0.05                    # unnormalised, well inside the clip range
        y = random_targets(rng, shape[:-1], shape[-1], "soft")
        value, grad = rnnkit.losses.get("categorical_crossentropy").value_and_grad(y, p)
        tp = t64(p).requires_grad_(True)
        q = (tp / tp.sum(dim=-1, keepdim=True)).clamp(1e-7, 1 - 1e-7)
        ref = -(t64(y) * q.log()).sum() / math.prod(shape[:-1])
        ref.backward()
        assert_close(value, ref.item(), MODEL_TOL, "loss")
        assert_close(grad, to_numpy(tp.grad), MODEL_TOL, "gradient")


# -- 2. optimizer update rules -----------------------------------------------------------------

SHAPES = [(3, 4), (4, 4), (4,), (4, 2)]
STEPS = 20


def random_params_and_grads(seed, scale=1.0, steps=STEPS):
    """Random starting parameters and a sequence of ``steps`` random gradient lists."""
    rng = np.random.default_rng([seed, 104729])
    params = [rng.normal(size=s) for s in SHAPES]
    grads = [[scale * rng.normal(size=s) for s in SHAPES] for _ in range(steps)]
    return params, grads


def run_rnnkit(opt, params, grads):
    """Apply ``opt`` once per gradient list; return the parameters after every step."""
    params = [p.copy() for p in params]
    history = []
    for g in grads:
        opt.apply(params, [x.copy() for x in g])
        history.append([p.copy() for p in params])
    return history


def run_torch(make_opt, params, grads, before_step=None):
    """The same with a torch optimizer; ``before_step(opt, tensors, step)`` runs before each
    ``opt.step()`` (after the gradients are set), e.g. to set eps or clip the gradients."""
    tensors = [t64(p).requires_grad_(True) for p in params]
    opt = make_opt(tensors)
    history = []
    for step, g in enumerate(grads, start=1):
        for t, x in zip(tensors, g):
            t.grad = t64(x)
        if before_step is not None:
            before_step(opt, tensors, step)
        opt.step()
        history.append([to_numpy(t) for t in tensors])
    return history


def trajectory_error(ours, ref) -> float:
    """The worst relative error over every step and every parameter."""
    return max(rel_err(a, b) for step_a, step_b in zip(ours, ref) for a, b in zip(step_a, step_b))


def keras_adam_eps(eps, beta_2):
    """A ``before_step`` giving torch's Adam the eps that makes it Keras' update at step t."""
    def set_eps(opt, tensors, step):
        opt.param_groups[0]["eps"] = eps / math.sqrt(1.0 - beta_2 ** step)
    return set_eps


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.8, 0.95)])
@pytest.mark.parametrize("scale", [1.0, 1e-6])
def test_adam_without_epsilon_matches_torch(scale, betas, amsgrad):
    """Adam(epsilon=0) equals torch.optim.Adam(eps=0) step for step, with and without amsgrad
    (both keep the running maximum of the raw second moment and bias-correct it afterwards)."""
    params, grads = random_params_and_grads(1, scale)
    ours = run_rnnkit(Adam(learning_rate=0.05, beta_1=betas[0], beta_2=betas[1], epsilon=1e-300,
                           amsgrad=amsgrad), params, grads)
    ref = run_torch(lambda ps: torch.optim.Adam(ps, lr=0.05, betas=betas, eps=1e-300, amsgrad=amsgrad),
                    params, grads)
    assert trajectory_error(ours, ref) < OPT_TOL


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("scale", [1.0, 1e-6])
def test_adam_keras_epsilon_matches_torch_with_mapped_eps(scale, amsgrad):
    """Adam(epsilon=1e-7) (epsilon outside the bias correction, as Keras) equals torch's Adam
    whose eps is set to 1e-7 / sqrt(1 - beta_2**t) before step t. With gradients of size 1e-6,
    epsilon is a tenth of sqrt(v), so the test also checks that torch with a constant eps
    differs: the mapping (and so rnnkit's placement of epsilon) is really being tested."""
    params, grads = random_params_and_grads(2, scale)
    ours = run_rnnkit(Adam(learning_rate=0.05, epsilon=1e-7, amsgrad=amsgrad), params, grads)
    ref = run_torch(lambda ps: torch.optim.Adam(ps, lr=0.05, eps=1e-7, amsgrad=amsgrad),
                    params, grads, before_step=keras_adam_eps(1e-7, 0.999))
    assert trajectory_error(ours, ref) < OPT_TOL
    if scale < 1e-3:
        unmapped = run_torch(lambda ps: torch.optim.Adam(ps, lr=0.05, eps=1e-7, amsgrad=amsgrad), params, grads)
        assert trajectory_error(ours, unmapped) > 1e-6


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True)])
def test_sgd_matches_torch(momentum, nesterov):
    """Keras' SGD (m = mu m - lr g; p += m, or p += mu m - lr g with Nesterov) equals torch's
    (b = mu b + g; p -= lr b, or p -= lr (g + mu b)) for a constant learning rate."""
    params, grads = random_params_and_grads(3)
    ours = run_rnnkit(SGD(learning_rate=0.1, momentum=momentum, nesterov=nesterov), params, grads)
    ref = run_torch(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=momentum, nesterov=nesterov),
                    params, grads)
    assert trajectory_error(ours, ref) < OPT_TOL


@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("rho", [0.9, 0.7])
def test_rmsprop_without_epsilon_matches_torch(rho, centered, momentum):
    """RMSprop(epsilon=0) equals torch.optim.RMSprop(alpha=rho, eps=0), plain, centered and with
    momentum (Keras accumulates lr * g / sqrt(v); torch accumulates g / sqrt(v) then scales by lr)."""
    params, grads = random_params_and_grads(4)
    ours = run_rnnkit(RMSprop(learning_rate=0.01, rho=rho, momentum=momentum, epsilon=1e-300,
                              centered=centered), params, grads)
    ref = run_torch(lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=rho, eps=1e-300, momentum=momentum,
                                                   centered=centered), params, grads)
    assert trajectory_error(ours, ref) < OPT_TOL


@pytest.mark.parametrize("initial", [0.1, 1.0])
def test_adagrad_without_epsilon_matches_torch(initial):
    """Adagrad(epsilon=0) with an initial accumulator equals torch.optim.Adagrad(eps=0) with
    the same initial_accumulator_value."""
    params, grads = random_params_and_grads(5)
    ours = run_rnnkit(Adagrad(learning_rate=0.1, initial_accumulator_value=initial, epsilon=1e-300),
                      params, grads)
    ref = run_torch(lambda ps: torch.optim.Adagrad(ps, lr=0.1, initial_accumulator_value=initial, eps=1e-300),
                    params, grads)
    assert trajectory_error(ours, ref) < OPT_TOL


def mixed_size_grads(seed):
    """Gradient lists whose sizes alternate between far above and far below a norm of 1."""
    params, grads = random_params_and_grads(seed)
    return params, [[g * (10.0 if i % 2 else 0.01) for g in gs] for i, gs in enumerate(grads)]


def torch_clip_norm(tensors, max_norm):
    """``clip_grad_norm_`` without its ``+ 1e-6`` on the norm, so it scales by max_norm / norm exactly."""
    norm = math.sqrt(sum(float((t.grad * t.grad).sum()) for t in tensors))
    torch.nn.utils.clip_grad_norm_(tensors, max_norm * (norm + 1e-6) / norm)


def test_global_clipnorm_matches_torch_clip_grad_norm():
    """SGD(global_clipnorm=c) scales all gradients together to a joint norm of at most c, as
    torch.nn.utils.clip_grad_norm_ followed by an SGD step (momentum 0.9, so clipped
    gradients also enter the state)."""
    params, grads = mixed_size_grads(6)
    ours = run_rnnkit(SGD(learning_rate=0.1, momentum=0.9, global_clipnorm=1.0), params, grads)
    ref = run_torch(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), params, grads,
                    before_step=lambda opt, ts, step: torch_clip_norm(ts, 1.0))
    assert trajectory_error(ours, ref) < OPT_TOL


def test_clipnorm_matches_torch_clip_grad_norm_per_tensor():
    """SGD(clipnorm=c) clips each gradient to norm c on its own: clip_grad_norm_ per tensor."""
    params, grads = mixed_size_grads(7)
    ours = run_rnnkit(SGD(learning_rate=0.1, clipnorm=0.5), params, grads)

    def clip_each(opt, tensors, step):
        for t in tensors:
            torch_clip_norm([t], 0.5)

    ref = run_torch(lambda ps: torch.optim.SGD(ps, lr=0.1), params, grads, before_step=clip_each)
    assert trajectory_error(ours, ref) < OPT_TOL


def test_clipvalue_matches_torch_clip_grad_value():
    """SGD(clipvalue=v) clips every gradient element to [-v, v], as clip_grad_value_."""
    params, grads = mixed_size_grads(8)
    ours = run_rnnkit(SGD(learning_rate=0.1, momentum=0.9, clipvalue=0.3), params, grads)
    ref = run_torch(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), params, grads,
                    before_step=lambda opt, ts, step: torch.nn.utils.clip_grad_value_(ts, 0.3))
    assert trajectory_error(ours, ref) < OPT_TOL


# -- 3. whole training steps -------------------------------------------------------------------

@pytest.mark.parametrize("structure, kind", [("last", "onehot"), ("go_backwards", "sparse"),
                                             ("sequences", "onehot"), ("sequences_go_backwards", "sparse")])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_train_on_batch_with_adam_matches_torch(activation, structure, kind):
    """Five model.train_on_batch steps with Adam(learning_rate=0.01), each on a new batch, give
    the same batch losses and the same weights after every step as a torch model trained with
    torch.optim.Adam (eps mapped per step to Keras' epsilon placement)."""
    rng = np.random.default_rng([17, len(structure), len(activation)])
    dims = random_dims(rng)
    b, t, d, _, k = dims
    return_sequences, go_backwards = STRUCTURES[structure]
    model = build_rnnkit(rng, dims, activation, return_sequences, go_backwards, LOSS_NAMES[kind],
                         optimizer=Adam(learning_rate=0.01))
    net = TorchRNNClassifier(model.get_weights(), activation, return_sequences, go_backwards)
    opt = torch.optim.Adam(net.keras_params(), lr=0.01, betas=(0.9, 0.999))
    set_eps = keras_adam_eps(1e-7, 0.999)
    for step in range(1, 6):
        x = rng.normal(size=(b, t, d))
        y = random_targets(rng, (b, t) if return_sequences else (b,), k, kind)
        value, _accuracy = model.train_on_batch(x, y)
        opt.zero_grad()
        loss = torch_loss(net(t64(x)), y, kind)
        loss.backward()
        set_eps(opt, None, step)
        opt.step()
        assert_close(value, loss.item(), MODEL_TOL, f"loss at step {step}")
        for name, ours, ref in zip(["kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias"],
                                   model.get_weights(), net.keras_weights()):
            assert_close(ours, ref, MODEL_TOL, f"{name} after step {step}")
    assert model.optimizer.iterations == 5
