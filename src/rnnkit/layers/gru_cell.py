"""``GRUCell``: one step of the gated recurrent unit, both reset placements, for ``RNN``."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import activations
from rnnkit.layers.base import sum_rows
from rnnkit.layers.gru import gru_weights
from rnnkit.layers.rnn_cell import DropoutRNNCell, add_grads


class GRUCell(DropoutRNNCell):
    """One step of ``GRU``; ``RNN(GRUCell(n))`` computes what ``GRU(n)`` does::

        z = s(x_t W_z + h_{t-1} U_z + b_z)        r = s(x_t W_r + h_{t-1} U_r + b_r)
        reset_after=True  (PyTorch/cuDNN form):  hh = act(x_t W_h + b_h + r * (h_{t-1} U_h + b'_h))
        reset_after=False (original form):       hh = act(x_t W_h + b_h + (r * h_{t-1}) U_h)
        h_t = z * h_{t-1} + (1 - z) * hh                                 output = h_t,  states = [h_t]

    ``bias`` is ``(2, 3H)`` (input bias, recurrent bias) with ``reset_after``, else ``(3H,)``.
    Backward for this step: ``dh_{t-1} = dh * z`` directly, plus what flows back through the
    gates' matmuls (see ``GRU``).
    """

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, reset_after: bool = True,
                 seed: int | None = None, name: str | None = None):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, name=name)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def make_params(self, input_shape, dtype, rng):
        return gru_weights(self, input_shape[-1], dtype, rng)

    def _biases(self) -> tuple:
        """(input bias (3H,), recurrent bias (3H,) or None); zeros where the cell has no bias."""
        if not self.use_bias:
            zero = np.zeros(3 * self.units, dtype=self.dtype)
            return zero, (zero if self.reset_after else None)
        b = self.params["bias"]
        return (b[0], b[1]) if self.reset_after else (b, None)

    def call(self, inputs: np.ndarray, states: list, training: bool = False) -> tuple:
        h_prev = states[0]
        H = self.units
        U = self.params["recurrent_kernel"]
        act, ract = self.activation, self.recurrent_activation
        b_in, b_rec = self._biases()
        x, hp, in_mask, rec_mask = self._step_inputs(inputs, h_prev, training)
        gates = x @ self.params["kernel"]                             # (B, 3H) x_t W
        gates += b_in
        zr, xh = gates[:, :2 * H], gates[:, 2 * H:]
        rec_h = None
        if self.reset_after:
            hu = hp @ U                                               # (B, 3H) h_{t-1} U
            hu += b_rec
            zr += hu[:, :2 * H]
            ract.forward_blocks_(zr, H)                               # z, r
            rec_h = hu[:, 2 * H:]                                     # h_{t-1} U_h + b'_h
            xh += zr[:, H:] * rec_h
        else:
            zr += hp @ U[:, :2 * H]
            ract.forward_blocks_(zr, H)
            xh += (zr[:, H:] * hp) @ U[:, 2 * H:]                     # (r * h_{t-1}) U_h
        act.forward_(xh)                                              # hh
        z = zr[:, :H]
        h = z * h_prev + (1.0 - z) * xh                               # (B, H) h_t
        self._cache = (x, hp, h_prev, gates, rec_h, in_mask, rec_mask)
        return h, [h]

    def backward(self, d_output: np.ndarray | None, d_states: list) -> tuple:
        x, hp, h_prev, gates, rec_h, in_mask, rec_mask = self._cache
        H = self.units
        U = self.params["recurrent_kernel"]
        act, ract = self.activation, self.recurrent_activation
        z, r, hh = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
        g = add_grads(d_output, d_states[0])
        g = np.zeros_like(h_prev) if g is None else g                 # dL/dh_t
        dx_pre = np.empty_like(gates)                                 # (B, 3H) dL/d(x W + b_in), blocks z, r, h
        da_h = act.backward(g * (1.0 - z), hh)                        # through hh = act(.)
        dx_pre[:, :H] = ract.backward(g * (h_prev - hh), z)
        dx_pre[:, 2 * H:] = da_h
        if self.reset_after:
            dx_pre[:, H:2 * H] = ract.backward(da_h * rec_h, r)
            d_hu = np.concatenate([dx_pre[:, :2 * H], da_h * r], axis=1)   # (B, 3H) dL/d(h U + b_rec)
            dhp = d_hu @ U.T                                          # (B, H)
            self.grads["recurrent_kernel"] = hp.T @ d_hu              # (H, 3H)
            if self.use_bias:
                self.grads["bias"] = np.stack([sum_rows(dx_pre), sum_rows(d_hu)])   # (2, 3H)
        else:
            d_rhp = da_h @ U[:, 2 * H:].T                             # dL/d(r * h_{t-1})
            dx_pre[:, H:2 * H] = ract.backward(d_rhp * hp, r)
            dhp = dx_pre[:, :2 * H] @ U[:, :2 * H].T + d_rhp * r
            dU = np.empty_like(U)
            dU[:, :2 * H] = hp.T @ dx_pre[:, :2 * H]
            dU[:, 2 * H:] = (r * hp).T @ da_h
            self.grads["recurrent_kernel"] = dU                       # (H, 3H)
            if self.use_bias:
                self.grads["bias"] = sum_rows(dx_pre)                 # (3H,)
        self.grads["kernel"] = x.T @ dx_pre                           # (D, 3H)
        if rec_mask is not None:
            dhp *= rec_mask
        dh_prev = dhp + g * z                                         # + the direct path h_t = z h_{t-1} + ...
        return self._input_grads(dx_pre, in_mask), [dh_prev]

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": activations.serialize(self.recurrent_activation),
                "reset_after": self.reset_after}
