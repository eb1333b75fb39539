"""``SimpleRNNCell``: one step of the Elman recurrence, for ``RNN``."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.layers.base import sum_rows
from rnnkit.layers.rnn_cell import DropoutRNNCell, add_grads
from rnnkit.layers.simple_rnn import simple_rnn_weights


class SimpleRNNCell(DropoutRNNCell):
    """One step of ``SimpleRNN``; ``RNN(SimpleRNNCell(n))`` computes what ``SimpleRNN(n)`` does::

        h_t = act(x_t W + h_{t-1} U + b)          output = h_t,  states = [h_t]

    Backward for this step, with ``g = dL/dh_t`` (from the output and from the next step)::

        da = g * act'(a),  dW = x_t^T da,  dU = h_{t-1}^T da,  db = sum_B da,  dx_t = da W^T,  dh_{t-1} = da U^T
    """

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, name: str | None = None):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, name=name)

    def make_params(self, input_shape, dtype, rng):
        return simple_rnn_weights(self, input_shape[-1], dtype, rng)

    def call(self, inputs: np.ndarray, states: list, training: bool = False) -> tuple:
        x, hp, in_mask, rec_mask = self._step_inputs(inputs, states[0], training)
        a = x @ self.params["kernel"]                                 # (B, H) x_t W
        a += hp @ self.params["recurrent_kernel"]                     # + h_{t-1} U
        if self.use_bias:
            a += self.params["bias"]
        h = self.activation.forward_(a)                               # h_t = act(a), in place
        self._cache = (x, hp, h, in_mask, rec_mask)
        return h, [h]

    def backward(self, d_output: np.ndarray | None, d_states: list) -> tuple:
        x, hp, h, in_mask, rec_mask = self._cache
        g = add_grads(d_output, d_states[0])                          # dL/dh_t
        if g is None:
            g = np.zeros_like(h)
        da = self.activation.backward(g, h)                           # (B, H)
        self.grads["kernel"] = x.T @ da                               # (D, H)
        self.grads["recurrent_kernel"] = hp.T @ da                    # (H, H)
        if self.use_bias:
            self.grads["bias"] = sum_rows(da)                         # (H,)
        dh_prev = da @ self.params["recurrent_kernel"].T              # (B, H)
        if rec_mask is not None:
            dh_prev *= rec_mask
        return self._input_grads(da, in_mask), [dh_prev]
