"""Truncated BPTT: ``rnnkit.text.StreamBatches`` lays a stream out as char-rnn does, and a stateful model trained
on it with ``ResetStates`` equals a manual PyTorch loop that carries the detached state from batch to batch."""

from __future__ import annotations

import numpy as np
import pytest

import rnnkit
from rnnkit.layers import LSTM, Dense, Embedding
from rnnkit.text import ResetStates, StreamBatches


def test_layout_is_char_rnns_rows_and_windows():
    ids = np.arange(103)
    stream = StreamBatches(ids, batch_size=2, seq_len=5)
    # (103 - 1) // (2 * 5) = 10 batches; 100 tokens: row 0 is 0..49, row 1 is 50..99
    assert (stream.num_batches, len(stream), stream.tokens) == (10, 10, 100)
    assert stream.x.shape == stream.y.shape == (20, 5)
    for j in range(10):
        x, y = stream.batch(j)
        np.testing.assert_array_equal(x, [np.arange(5 * j, 5 * j + 5), np.arange(50 + 5 * j, 55 + 5 * j)])
        np.testing.assert_array_equal(y, x + 1)                          # the next token
        np.testing.assert_array_equal(stream.x[2 * j:2 * j + 2], x)       # fit's j-th batch of 2 rows
    # row r of batch j + 1 continues row r of batch j
    assert all(stream.batch(j + 1)[0][r, 0] == stream.batch(j)[0][r, -1] + 1 for j in range(9) for r in range(2))
    assert [x.tolist() for x, _ in stream] == [stream.batch(j)[0].tolist() for j in range(10)]
    np.testing.assert_array_equal(stream.batch(-1)[0], stream.batch(9)[0])


def test_layout_of_text_keeps_every_target_in_the_stream():
    vocab = rnnkit.CharVocabulary("abcdefgh")
    ids = vocab.encode("abcdefghabcdefghabcdefgh")                       # 24 tokens
    stream = StreamBatches(ids, batch_size=3, seq_len=2)                 # 23 // 6 = 3 batches, 18 tokens
    assert stream.num_batches == 3
    rows_x = np.concatenate([stream.batch(j)[0] for j in range(3)], axis=1)   # (3, 6): the rows, whole
    rows_y = np.concatenate([stream.batch(j)[1] for j in range(3)], axis=1)
    np.testing.assert_array_equal(rows_x.ravel(), ids[:18])
    np.testing.assert_array_equal(rows_y.ravel(), ids[1:19])


@pytest.mark.parametrize("args, error, match", [
    ((np.arange(10), 2, 5), ValueError, r"needs more than batch_size \* seq_len = 10 tokens .* got 10"),
    ((np.arange(10).reshape(2, 5), 1, 2), TypeError, r"expects a 1-D sequence of integer token ids, got an array "
                                                     r"of shape \(2, 5\)"),
    ((np.linspace(0, 1, 20), 1, 2), TypeError, r"dtype float64; encode text first"),
    ((np.arange(20), 0, 2), ValueError, r"batch_size must be a positive integer, got 0"),
    ((np.arange(20), 2, -1), ValueError, r"seq_len must be a positive integer, got -1"),
    (([], 1, 1), ValueError, r"got 0"),
])
def test_bad_streams_are_refused(args, error, match):
    with pytest.raises(error, match=match):
        StreamBatches(*args)


def test_batch_index_out_of_range():
    with pytest.raises(IndexError, match=r"batch index must be an integer in \[0, 2\), got 2"):
        StreamBatches(np.arange(9), 2, 2).batch(2)


def test_reset_states_callback_forgets_the_state_at_each_epoch_start():
    model = rnnkit.Sequential([rnnkit.Input(shape=(None,), dtype="int32"), Embedding(5, 3),
                               LSTM(4, return_sequences=True, stateful=True), Dense(5, activation="softmax")], seed=0)
    model.predict_on_batch(np.array([[1, 2, 3]]))
    lstm = model.layers[1]
    assert lstm.states is not None
    cb = ResetStates()
    cb.set_model(model)
    cb.on_epoch_begin(0)
    assert lstm.states is None


# -- a stateful training run equals PyTorch's truncated BPTT, the state detached between windows -----------------
V, E, H, BATCH, SEQ, LR, EPOCHS = 7, 4, 5, 3, 4, 0.5, 3


def _data():
    rng = np.random.default_rng(2)
    return StreamBatches(rng.integers(0, V, size=BATCH * SEQ * 5 + 1), BATCH, SEQ)    # 5 batches


def _rnnkit_model():
    model = rnnkit.Sequential([rnnkit.Input(shape=(None,), dtype="int32"), Embedding(V, E),
                               LSTM(H, return_sequences=True, stateful=True), Dense(V, activation="softmax")], seed=1)
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    return model


def _torch_run(model, stream, carry_state: bool):
    """SGD over the stream, in order, for EPOCHS epochs; returns (per-epoch mean losses, final weights)."""
    import torch

    from rnnkit.interop import to_torch

    emb_w, *_ = model.layers[0].get_weights()
    lstm = to_torch(model.layers[1])
    dense_w, dense_b = model.layers[2].get_weights()
    emb = torch.nn.Embedding(V, E, dtype=torch.float64)
    head = torch.nn.Linear(H, V, dtype=torch.float64)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(emb_w))
        head.weight.copy_(torch.from_numpy(dense_w.T))
        head.bias.copy_(torch.from_numpy(dense_b))
    lstm.bias_hh_l0.requires_grad_(False)       # zero and frozen: Keras' LSTM has one bias; two would both learn
    params = [p for p in (*emb.parameters(), *lstm.parameters(), *head.parameters()) if p.requires_grad]
    opt = torch.optim.SGD(params, lr=LR)
    losses = []
    for _ in range(EPOCHS):
        state, epoch_losses = None, []
        for x, y in stream:
            out, new_state = lstm(emb(torch.from_numpy(x)), state)          # (B, T, H)
            logits = head(out)                                              # (B, T, V)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch_losses.append(float(loss.detach()))
            # truncated BPTT: the next window starts from this state, as a constant (no gradient into the past)
            state = tuple(s.detach() for s in new_state) if carry_state else None
        losses.append(float(np.mean(epoch_losses)))
    w_ih, w_hh = lstm.weight_ih_l0.detach().numpy(), lstm.weight_hh_l0.detach().numpy()
    b = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
    weights = [emb.weight.detach().numpy(), w_ih.T, w_hh.T, b, head.weight.detach().numpy().T,
               head.bias.detach().numpy()]
    return losses, weights


def test_stateful_fit_equals_a_manual_loop_carrying_the_detached_state(float64):
    stream = _data()
    model = _rnnkit_model()
    reference = _rnnkit_model()                 # the same initial weights, for the PyTorch loop
    model.compile(optimizer=rnnkit.optimizers.SGD(LR), loss="sparse_categorical_crossentropy")
    history = model.fit(stream.x, stream.y, batch_size=stream.batch_size, epochs=EPOCHS, shuffle=False,
                        callbacks=[ResetStates()], verbose=0)
    losses, weights = _torch_run(reference, stream, carry_state=True)
    np.testing.assert_allclose(history.history["loss"], losses, rtol=1e-10)
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # the comparison can fail: a loop that does not carry the state ends elsewhere
    _, forgetful = _torch_run(_rnnkit_model(), stream, carry_state=False)
    assert max(float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), forgetful)) > 1e-4


def test_without_reset_the_state_runs_on_into_the_next_epoch(float64):
    """ResetStates matters: without it epoch 2 starts from epoch 1's last state, and training differs."""
    stream = _data()
    runs = []
    for callbacks in ([ResetStates()], []):
        model = _rnnkit_model()
        model.compile(optimizer=rnnkit.optimizers.SGD(LR), loss="sparse_categorical_crossentropy")
        model.fit(stream.x, stream.y, batch_size=stream.batch_size, epochs=2, shuffle=False, callbacks=callbacks,
                  verbose=0)
        runs.append(model.get_weights())
    assert max(float(np.abs(a - b).max()) for a, b in zip(*runs)) > 1e-6
