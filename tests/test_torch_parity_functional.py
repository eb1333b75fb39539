"""A GRU encoder-decoder with attention against the same model written in PyTorch, in float64.

The PyTorch side is written out from the equations with Keras' weight layouts (GRU gates z, r,
h with ``reset_after``, its two bias rows; the attention scores of Keras' ``Attention`` and
``AdditiveAttention``), so autograd's gradients are an independent reference for rnnkit's
whole graph: the padding mask of the source sentence made by ``Masking``, the masked encoder,
its final state starting the decoder, attention over the encoder's outputs that leaves padded
steps out, concatenation, and the softmax output whose cross-entropy is fused. Outputs, the
loss and the gradient of every weight must agree within 1e-8.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit import Input, Model
from rnnkit.layers import GRU, AdditiveAttention, Attention, Concatenate, Dense, Masking

pytestmark = pytest.mark.usefixtures("float64")
TOL = 1e-8
B, TS, TT, D, E, H, V = 3, 6, 4, 5, 3, 7, 6


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def build(attention):
    src, tgt = Input((TS, D), name="source"), Input((TT, E), name="target")
    enc_seq, enc_h = GRU(H, return_sequences=True, return_state=True, name="encoder", seed=0)(Masking(0.0)(src))
    dec_seq = GRU(H, return_sequences=True, name="decoder", seed=1)(tgt, initial_state=enc_h)
    context = attention([dec_seq, enc_seq])
    out = Dense(V, activation="softmax", name="out", seed=2)(Concatenate()([dec_seq, context]))
    model = Model([src, tgt], out)
    model.compile("sgd", "categorical_crossentropy")
    return model


def torch_gru(x, kernel, recurrent, bias, h, mask=None):
    """Keras' GRU (reset_after=True): z, r, h blocks; a masked step keeps the state and repeats the output."""
    outs, prev = [], torch.zeros_like(h)
    for t in range(x.shape[1]):
        xw, hu = x[:, t] @ kernel + bias[0], h @ recurrent + bias[1]
        z = torch.sigmoid(xw[:, :H] + hu[:, :H])
        r = torch.sigmoid(xw[:, H:2 * H] + hu[:, H:2 * H])
        cand = torch.tanh(xw[:, 2 * H:] + r * hu[:, 2 * H:])
        new = z * h + (1 - z) * cand
        if mask is not None:
            m = mask[:, t:t + 1]
            new, out = torch.where(m, new, h), torch.where(m, new, prev)
        else:
            out = new
        outs.append(out)
        h, prev = new, out
    return torch.stack(outs, 1), h


def torch_model(w, src, tgt, kind):
    mask = (src != 0).any(-1)                                         # Masking(0.0)
    enc_seq, enc_h = torch_gru(src * mask[..., None], w["encoder/kernel"], w["encoder/recurrent_kernel"],
                               w["encoder/bias"], torch.zeros(B, H, dtype=torch.float64), mask)
    dec_seq, _ = torch_gru(tgt, w["decoder/kernel"], w["decoder/recurrent_kernel"], w["decoder/bias"], enc_h)
    if kind == "additive":
        scores = (w["attention/scale"] * torch.tanh(dec_seq[:, :, None] + enc_seq[:, None])).sum(-1)
    else:
        scores = dec_seq @ enc_seq.transpose(1, 2)
        if kind == "scaled":
            scores = scores * w["attention/scale"]
    scores = scores - 1e9 * (~mask[:, None, :]).to(scores.dtype)      # padded source steps get no weight
    context = torch.softmax(scores, -1) @ enc_seq
    logits = torch.cat([dec_seq, context], -1) @ w["out/kernel"] + w["out/bias"]
    return torch.softmax(logits, -1), logits


ATTENTION = {"dot": lambda: Attention(name="attention"),
             "scaled": lambda: Attention(use_scale=True, name="attention"),
             "additive": lambda: AdditiveAttention(name="attention", seed=3)}


@pytest.mark.parametrize("kind", ATTENTION)
def test_encoder_decoder_with_attention_matches_torch(kind, rng):
    model = build(ATTENTION[kind]())
    for w in model.trainable_weights:                                 # move every weight off its initial value
        w += rng.normal(scale=0.3, size=w.shape)
    src = rng.normal(size=(B, TS, D))
    src[0, 4:] = 0.0                                                  # padded source sentences
    src[1, 2:] = 0.0
    tgt = rng.normal(size=(B, TT, E))
    labels = rng.integers(0, V, size=(B, TT))
    y = np.eye(V)[labels]
    names = [f"{layer.name}/{k}" for layer in model.leaf_layers() for k in layer.trainable_weight_names]
    weights = {n: torch.tensor(w.copy(), requires_grad=True) for n, w in zip(names, model.trainable_weights)}
    probs, logits = torch_model(weights, torch.tensor(src), torch.tensor(tgt), kind)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(labels).reshape(-1))
    loss.backward()

    assert rel_err(model.predict([src, tgt], verbose=0), probs.detach().numpy()) < TOL
    value, grads = model.loss_and_gradients([src, tgt], y)
    assert abs(value - loss.item()) / loss.item() < TOL
    for name, g in zip(names, grads):
        assert rel_err(g, weights[name].grad.numpy()) < TOL, name
    assert {"encoder/kernel", "decoder/recurrent_kernel", "out/kernel"} <= set(names)
