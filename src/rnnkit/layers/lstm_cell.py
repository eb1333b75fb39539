"""``LSTMCell``: one step of long short-term memory, for ``RNN``."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import activations
from rnnkit.layers.base import sum_rows
from rnnkit.layers.lstm import lstm_weights
from rnnkit.layers.rnn_cell import DropoutRNNCell, add_grads


class LSTMCell(DropoutRNNCell):
    """One step of ``LSTM``; ``RNN(LSTMCell(n))`` computes what ``LSTM(n)`` does::

        [i, f, g, o] = [s(.), s(.), act(.), s(.)] of  x_t W + h_{t-1} U + b     (B, 4H), s = recurrent_activation
        c_t = f * c_{t-1} + i * g,    h_t = o * act(c_t)              output = h_t,  states = [h_t, c_t]

    Backward for this step, from ``dh = dL/dh_t`` and ``dc = dL/dc_t``::

        dc += dh * o * act'(c_t),   do = dh * act(c_t)
        di = dc * g,  df = dc * c_{t-1},  dg = dc * i,   dc_{t-1} = dc * f
        dz = [di s'(i), df s'(f), dg act'(g), do s'(o)],  dh_{t-1} = dz U^T,  dx_t = dz W^T
    """

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, name: str | None = None):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, name=name)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def make_params(self, input_shape, dtype, rng):
        return lstm_weights(self, input_shape[-1], dtype, rng)

    def call(self, inputs: np.ndarray, states: list, training: bool = False) -> tuple:
        h_prev, c_prev = states
        H = self.units
        act, ract = self.activation, self.recurrent_activation
        x, hp, in_mask, rec_mask = self._step_inputs(inputs, h_prev, training)
        z = x @ self.params["kernel"]                                 # (B, 4H) x_t W
        z += hp @ self.params["recurrent_kernel"]                     # + h_{t-1} U
        if self.use_bias:
            z += self.params["bias"]
        ract.forward_blocks_(z[:, :2 * H], H)                         # i, f
        act.forward_(z[:, 2 * H:3 * H])                               # g
        ract.forward_(z[:, 3 * H:])                                   # o
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        c = f * c_prev + i * g                                        # (B, H) c_t
        tc = act.forward(c)                                           # act(c_t)
        h = o * tc                                                    # h_t
        self._cache = (x, hp, c_prev, z, tc, in_mask, rec_mask)
        return h, [h, c]

    def backward(self, d_output: np.ndarray | None, d_states: list) -> tuple:
        x, hp, c_prev, z, tc, in_mask, rec_mask = self._cache
        H = self.units
        act, ract = self.activation, self.recurrent_activation
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        dh = add_grads(d_output, d_states[0])
        dh = np.zeros_like(tc) if dh is None else dh                  # dL/dh_t
        dc = np.zeros_like(tc) if d_states[1] is None else d_states[1]
        dc = dc + act.backward(dh * o, tc)                            # dL/dc_t, both paths
        dz = np.empty_like(z)                                         # (B, 4H) dL/d pre-activations
        dz[:, :H] = ract.backward(dc * g, i)
        dz[:, H:2 * H] = ract.backward(dc * c_prev, f)
        dz[:, 2 * H:3 * H] = act.backward(dc * i, g)
        dz[:, 3 * H:] = ract.backward(dh * tc, o)
        self.grads["kernel"] = x.T @ dz                               # (D, 4H)
        self.grads["recurrent_kernel"] = hp.T @ dz                    # (H, 4H)
        if self.use_bias:
            self.grads["bias"] = sum_rows(dz)                         # (4H,)
        dh_prev = dz @ self.params["recurrent_kernel"].T              # (B, H)
        if rec_mask is not None:
            dh_prev *= rec_mask
        return self._input_grads(dz, in_mask), [dh_prev, dc * f]

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": activations.serialize(self.recurrent_activation),
                "unit_forget_bias": self.unit_forget_bias}
