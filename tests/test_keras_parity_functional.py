"""Functional models against Keras 3 (PyTorch backend), with only the imports changed.

As in ``test_keras_parity.py``: each Keras model is built first, its initial weights are
copied into the rnnkit model with ``set_weights`` (both list weights in ``model.layers`` order),
and both train the same way with ``shuffle=False``; the per-epoch losses must agree within
1e-4 relative (float32 on both sides, computed in a different order).

* Keras' character-level sequence-to-sequence example (keras.io "lstm_seq2seq"): two inputs,
  the encoder's LSTM states start the decoder, teacher forcing, ``validation_split``; then its
  inference sub-models, built from the trained model's tensors, decode greedily.
* A functional bidirectional LSTM classifier (keras.io "bidirectional_lstm_imdb"), with padding
  masks from ``Embedding(mask_zero=True)``.
* A model with two outputs: the per-output losses and the log names Keras 3 uses.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import rnnkit
from rnnkit.datasets import sentence_pairs
from rnnkit.diagnostics.telemetry import TELEMETRY_KEYS

RTOL = 1e-4


def rel_err(actual, expected) -> float:
    a, e = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, (a.shape, e.shape)
    return float(np.max(np.abs(a - e) / np.maximum(np.abs(e), 1e-6)))


def keras_logs(history: dict) -> dict:
    return {k: v for k, v in history.items() if k not in TELEMETRY_KEYS}


# -- the seq2seq example -------------------------------------------------------------------------------

def vectorize(pairs):
    """The data preparation of Keras' example, line for line in spirit: one-hot characters, "\\t" starts
    and "\\n" ends a target, padding with spaces, and the target shifted by one step for teacher forcing."""
    input_texts = [en for en, _ in pairs]
    target_texts = ["\t" + fr + "\n" for _, fr in pairs]
    input_chars = sorted(set("".join(input_texts)) | {" "})
    target_chars = sorted(set("".join(target_texts)) | {" "})
    in_index = {c: i for i, c in enumerate(input_chars)}
    out_index = {c: i for i, c in enumerate(target_chars)}
    max_in, max_out = max(map(len, input_texts)), max(map(len, target_texts))
    enc = np.zeros((len(pairs), max_in, len(input_chars)), dtype="float32")
    dec = np.zeros((len(pairs), max_out, len(target_chars)), dtype="float32")
    target = np.zeros_like(dec)
    for i, (src, tgt) in enumerate(zip(input_texts, target_texts)):
        for t, ch in enumerate(src):
            enc[i, t, in_index[ch]] = 1.0
        enc[i, len(src):, in_index[" "]] = 1.0
        for t, ch in enumerate(tgt):
            dec[i, t, out_index[ch]] = 1.0
            if t > 0:
                target[i, t - 1, out_index[ch]] = 1.0
        dec[i, len(tgt):, out_index[" "]] = 1.0
        target[i, len(tgt) - 1:, out_index[" "]] = 1.0
    return enc, dec, target, target_chars, max_out


def seq2seq(lib, num_encoder_tokens, num_decoder_tokens, latent_dim):
    """The training model of the example; ``lib`` is ``keras`` or ``rnnkit`` (the only difference)."""
    layers = lib.layers
    encoder_inputs = lib.Input(shape=(None, num_encoder_tokens))
    encoder = layers.LSTM(latent_dim, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = lib.Input(shape=(None, num_decoder_tokens))
    decoder_lstm = layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = layers.Dense(num_decoder_tokens, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = lib.Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def inference_models(lib, model, latent_dim):
    """The example's encoder and decoder models, from the trained model's own tensors and layers."""
    encoder_inputs = model.input[0]
    encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output
    encoder_model = lib.Model(encoder_inputs, [state_h_enc, state_c_enc])
    decoder_inputs = model.input[1]
    decoder_state_input_h = lib.Input(shape=(latent_dim,))
    decoder_state_input_c = lib.Input(shape=(latent_dim,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(decoder_inputs, initial_state=decoder_states_inputs)
    decoder_outputs = model.layers[4](decoder_outputs)
    decoder_model = lib.Model([decoder_inputs] + decoder_states_inputs, [decoder_outputs, state_h_dec, state_c_dec])
    return encoder_model, decoder_model


def decode_sequence(encoder_model, decoder_model, input_seq, target_chars, max_len):
    """Greedy decoding, one character per step, the states carried by hand (as the example does)."""
    index = {c: i for i, c in enumerate(target_chars)}
    states_value = encoder_model.predict(input_seq, verbose=0)
    target_seq = np.zeros((1, 1, len(target_chars)), dtype="float32")
    target_seq[0, 0, index["\t"]] = 1.0
    decoded = ""
    while True:
        output_tokens, h, c = decoder_model.predict([target_seq] + list(states_value), verbose=0)
        ch = target_chars[int(np.argmax(output_tokens[0, -1, :]))]
        decoded += ch
        if ch == "\n" or len(decoded) > max_len:
            return decoded
        target_seq = np.zeros((1, 1, len(target_chars)), dtype="float32")
        target_seq[0, 0, index[ch]] = 1.0
        states_value = [h, c]


def test_seq2seq_example_trains_and_decodes_like_keras():
    enc, dec, target, target_chars, max_out = vectorize(sentence_pairs(40))
    latent_dim = 24
    keras.utils.set_random_seed(0)
    km = seq2seq(keras, enc.shape[-1], dec.shape[-1], latent_dim)
    rm = seq2seq(rnnkit, enc.shape[-1], dec.shape[-1], latent_dim)
    assert [type(a).__name__ for a in rm.layers] == [type(a).__name__ for a in km.layers]
    rm.set_weights(km.get_weights())
    fit = dict(batch_size=8, epochs=3, validation_split=0.2, shuffle=False, verbose=0)
    kh = km.fit([enc, dec], target, **fit).history
    rh = rm.fit([enc, dec], target, **fit).history
    assert sorted(keras_logs(rh)) == sorted(kh)
    for key in kh:
        assert rel_err(rh[key], kh[key]) <= RTOL, (key, rh[key], kh[key])
    # the trained weights, and the greedy decodings of the inference sub-models
    for a, b in zip(rm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    k_models, r_models = inference_models(keras, km, latent_dim), inference_models(rnnkit, rm, latent_dim)
    for i in range(0, 40, 8):
        k_text = decode_sequence(*k_models, enc[i:i + 1], target_chars, max_out)
        r_text = decode_sequence(*r_models, enc[i:i + 1], target_chars, max_out)
        assert r_text == k_text


# -- a functional bidirectional classifier ---------------------------------------------------------------

def bidirectional_classifier(lib, mask_zero):
    inputs = lib.Input(shape=(None,), dtype="int32")
    x = lib.layers.Embedding(20, 8, mask_zero=mask_zero)(inputs)
    x = lib.layers.Bidirectional(lib.layers.LSTM(6, return_sequences=True))(x)
    x = lib.layers.Bidirectional(lib.layers.LSTM(5))(x)
    outputs = lib.layers.Dense(1, activation="sigmoid")(x)
    model = lib.Model(inputs, outputs)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("mask_zero", [False, True])
def test_functional_bidirectional_classifier_trains_like_keras(mask_zero):
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, size=(32, 9))
    lengths = rng.integers(3, 10, size=32)
    x[np.arange(9)[None, :] >= lengths[:, None]] = 0            # right-padded sequences
    y = (x[:, 0] > 10).astype("float32")
    keras.utils.set_random_seed(1)
    km = bidirectional_classifier(keras, mask_zero)
    rm = bidirectional_classifier(rnnkit, mask_zero)
    rm.set_weights(km.get_weights())
    kh = km.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history
    rh = rm.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0).history
    for key in kh:
        assert rel_err(rh[key], kh[key]) <= RTOL, (key, rh[key], kh[key])
    assert rel_err(rm.predict(x, verbose=0), km.predict(x, verbose=0)) <= RTOL


# -- several outputs --------------------------------------------------------------------------------------

def two_output_model(lib):
    inputs = lib.Input(shape=(6, 3), name="series")
    h = lib.layers.GRU(8)(inputs)
    cls = lib.layers.Dense(3, activation="softmax", name="cls")(h)
    reg = lib.layers.Dense(2, name="reg")(h)
    model = lib.Model(inputs, [cls, reg])
    model.compile("adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
                  metrics=[["accuracy"], ["mae"]])
    return model


def test_two_outputs_log_per_output_losses_and_metrics_like_keras():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(24, 6, 3)).astype("float32")
    ya, yb = rng.integers(0, 3, size=24), rng.normal(size=(24, 2)).astype("float32")
    keras.utils.set_random_seed(2)
    km, rm = two_output_model(keras), two_output_model(rnnkit)
    rm.set_weights(km.get_weights())
    kh = km.fit(x, [ya, yb], batch_size=8, epochs=3, shuffle=False, verbose=0).history
    rh = rm.fit(x, [ya, yb], batch_size=8, epochs=3, shuffle=False, verbose=0).history
    assert sorted(keras_logs(rh)) == sorted(kh) == ["cls_accuracy", "cls_loss", "loss", "reg_loss",
                                                            "reg_mae"]
    for key in kh:
        assert rel_err(rh[key], kh[key]) <= RTOL, (key, rh[key], kh[key])
    k_eval = km.evaluate(x, [ya, yb], verbose=0, return_dict=True)
    r_eval = rm.evaluate(x, [ya, yb], verbose=0, return_dict=True)
    assert sorted(r_eval) == sorted(k_eval)
    for key in k_eval:
        assert rel_err(r_eval[key], k_eval[key]) <= RTOL, key
    # evaluate's list: the total, each output's loss, then the metrics, in Keras' order
    assert rel_err(rm.evaluate(x, [ya, yb], verbose=0), km.evaluate(x, [ya, yb], verbose=0)) <= RTOL
    k_pred, r_pred = km.predict(x, verbose=0), rm.predict(x, verbose=0)
    assert isinstance(r_pred, list) and len(r_pred) == 2
    for a, b in zip(r_pred, k_pred):
        assert rel_err(a, b) <= RTOL


# -- regularization inside wrappers ----------------------------------------------------------------------

def wrapped_regularizers(lib):
    reg = lib.regularizers
    inputs = lib.Input(shape=(5, 3))
    x = lib.layers.Bidirectional(lib.layers.LSTM(4, return_sequences=True, kernel_regularizer=reg.L2(0.1),
                                                 activity_regularizer=reg.L1(0.05)))(inputs)
    x = lib.layers.TimeDistributed(lib.layers.Dense(2, activity_regularizer=reg.L2(0.2),
                                                    bias_regularizer=reg.L1(0.3)))(x)
    model = lib.Model(inputs, lib.layers.Dense(1)(lib.layers.Flatten()(x)))
    model.compile("sgd", "mse")
    return model


def test_regularizers_inside_wrappers_count_as_in_keras():
    """Weight and activity penalties of layers inside Bidirectional and TimeDistributed: the loss Keras
    reports and the training after it. (Keras 3 leaves out the activity penalty of a layer inside
    TimeDistributed, which runs the layer's call directly; so does rnnkit.)"""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 5, 3)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    keras.utils.set_random_seed(3)
    km, rm = wrapped_regularizers(keras), wrapped_regularizers(rnnkit)
    rm.set_weights([w + 0.1 for w in km.get_weights()])           # non-zero biases: every penalty counts
    km.set_weights(rm.get_weights())
    assert rel_err(rm.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0)) <= RTOL
    kh = km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    rh = rm.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history
    assert rel_err(rh["loss"], kh["loss"]) <= RTOL
