"""``GRU``: gated recurrent unit, Keras' semantics, gate order z, r, h, both reset placements."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import kernels
from rnnkit.layers.base import numpy_products
from rnnkit.layers.recurrent import GatedRecurrent


def gru_weights(layer: Any, input_dim: int, dtype: np.dtype, rng: np.random.Generator) -> dict:
    """``kernel (D, 3H)``, ``recurrent_kernel (H, 3H)`` (gates z, r, h) and ``bias``, drawn in this order.

    ``bias`` is ``(2, 3H)`` (input bias, recurrent bias) with ``reset_after``, else ``(3H,)``.
    Shared by ``GRU`` and ``GRUCell`` (``layer`` is either: its ``units``, ``use_bias``,
    ``reset_after`` and initializers are read), so both make the same weights from the same seed.
    """
    d, h = input_dim, layer.units
    params = {"kernel": layer.kernel_initializer((d, 3 * h), dtype, rng),
              "recurrent_kernel": layer.recurrent_initializer((h, 3 * h), dtype, rng)}
    if layer.use_bias:
        shape = (2, 3 * h) if layer.reset_after else (3 * h,)
        params["bias"] = layer.bias_initializer(shape, dtype, rng)
    return params


class GRU(GatedRecurrent):
    """An update gate ``z`` and a reset gate ``r``; no separate cell state::

        z = s(x_t W_z + h_{t-1} U_z + b_z)        r = s(x_t W_r + h_{t-1} U_r + b_r)
        reset_after=True  (PyTorch/cuDNN form):  hh = act(x_t W_h + b_h + r * (h_{t-1} U_h + b'_h))
        reset_after=False (original form):       hh = act(x_t W_h + b_h + (r * h_{t-1}) U_h)
        h_t = z * h_{t-1} + (1 - z) * hh

    ``kernel (D, 3H)``, ``recurrent_kernel (H, 3H)``, blocks in the order z, r, h;
    ``bias (2, 3H)`` (input bias, recurrent bias) when ``reset_after`` else ``(3H,)``.
    BPTT: ``dh_{t-1} = dh * z`` directly, plus what flows back through the gates' matmuls.
    """

    gates = 3

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False,
                 unroll: bool = False, reset_after: bool = True, zero_output_for_mask: bool = False,
                 implementation: int = 2, seed: int | None = None, name: str | None = None, input_shape: Any = None):
        super().__init__(units, recurrent_activation=recurrent_activation, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint,
                         dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         zero_output_for_mask=zero_output_for_mask, implementation=implementation,
                         name=name, input_shape=input_shape, seed=seed)
        self.reset_after = bool(reset_after)

    def make_params(self, input_shape, dtype, rng):
        return gru_weights(self, input_shape[-1], dtype, rng)

    def _biases(self, H, dtype):
        if not self.use_bias:
            return 0.0, np.zeros(3 * H, dtype=dtype)
        b = self.params["bias"]
        return (b[0], b[1]) if self.reset_after else (b, None)

    def run_forward(self, x_tm, states0):
        T, B, D = x_tm.shape
        H = self.units
        W, U = self.params["kernel"], self.params["recurrent_kernel"]
        act, ract = self.activation, self.recurrent_activation
        mask, rm = self._mask_tm, self._rec_mask
        b_in, b_rec = self._biases(H, x_tm.dtype)
        gates = (x_tm.reshape(T * B, D) @ W).reshape(T, B, 3 * H)  # (T, B, 3H) input part, all steps
        gates += b_in
        hs = np.empty((T + 1, B, H), dtype=x_tm.dtype)
        hs[0] = states0[0]
        # reset_after: h_{t-1} U_h + b'_h of every step, needed by backward
        rec_h = np.empty((T, B, H), dtype=x_tm.dtype) if self.reset_after else None
        if not self.reset_after:   # contiguous copies: per-step products with column slices are slower
            U_zr, U_h = np.ascontiguousarray(U[:, :2 * H]), np.ascontiguousarray(U[:, 2 * H:])
        with self.loop_threads(B):
            for t in range(T):
                hp = hs[t] if rm is None else hs[t] * rm                 # (B, H) into the recurrent matmul
                zr, xh = gates[t, :, :2 * H], gates[t, :, 2 * H:]
                if self.reset_after:
                    hu = hp @ U                                          # (B, 3H) one recurrent matmul
                    hu += b_rec
                    zr += hu[:, :2 * H]
                    ract.forward_blocks_(zr, H)                          # z, r
                    r = zr[:, H:]
                    rec_h[t] = hu[:, 2 * H:]
                    xh += r * rec_h[t]
                else:
                    zr += hp @ U_zr
                    ract.forward_blocks_(zr, H)
                    r = zr[:, H:]
                    xh += (r * hp) @ U_h
                act.forward_(xh)                                         # hh
                z = zr[:, :H]
                h = hs[t + 1]
                np.subtract(hs[t], xh, out=h)                            # h_t = hh + z (h_{t-1} - hh)
                h *= z
                h += xh
                if mask is not None:
                    np.copyto(h, hs[t], where=~mask[t])
        self._cache = (x_tm, hs, gates, rec_h)
        return hs[1:], [hs[T]]

    # -- the compiled core (csrc/gru.c): the same steps as the loops above and below -------------------
    def kernel_covers(self, dtype):
        return kernels.covers(dtype, self.activation, self.recurrent_activation)

    def _kernel_args(self, dtype) -> dict:
        return dict(act=kernels.ACTIVATIONS[self.activation.name],
                    ract=kernels.ACTIVATIONS[self.recurrent_activation.name], reset_after=int(self.reset_after),
                    double=int(dtype == np.float64), mask=kernels.as_mask(self._mask_tm), rec_mask=self._rec_mask)

    def kernel_forward(self, x_tm, states0):
        T, B, D = x_tm.shape
        H = self.units
        b_in, b_rec = self._biases(H, x_tm.dtype)
        gates = kernels.matmul(x_tm.reshape(T * B, D), self.params["kernel"]).reshape(T, B, 3 * H)   # (T, B, 3H)
        gates += b_in
        keep = self.keep_cache or self.return_sequences      # every step, or just the running state
        hs = np.empty((T + 1 if keep else 2, B, H), dtype=x_tm.dtype)
        hs[0] = states0[0]
        rec_h = np.empty((T, B, H), dtype=x_tm.dtype) if self.reset_after else None
        call = dict(kind="gru_forward", T=T, B=B, H=H, keep=int(keep), U=self.params["recurrent_kernel"],
                    rec_bias=kernels.contiguous(b_rec, x_tm.dtype) if self.reset_after else None, hs=hs, gates=gates,
                    aux=rec_h, **self._kernel_args(x_tm.dtype))

        def done():
            if not keep:                                     # inference: no cache, only h_T
                self._cache = None
                return None, [hs[T % 2].copy()]
            self._cache = (x_tm, hs, gates, rec_h)
            return hs[1:], [hs[T]]

        return call, done

    def kernel_backward(self, dh_seq, dfinal):
        x_tm, hs, gates, rec_h = self._cache
        T, B, H = x_tm.shape[0], x_tm.shape[1], self.units
        dx_pre = np.empty((T, B, 3 * H), dtype=hs.dtype)         # dL/d(x W + b_in), filled by the kernel
        dr_pre = np.empty((T, B, 3 * H), dtype=hs.dtype) if self.reset_after else None
        dh = np.zeros((B, H), dtype=hs.dtype) if dfinal[0] is None else np.array(dfinal[0], hs.dtype, order="C")
        call = dict(kind="gru_backward", T=T, B=B, H=H, UT=np.ascontiguousarray(self.params["recurrent_kernel"].T),
                    hs=hs, gates=gates, aux=rec_h, dh_seq=kernels.contiguous(dh_seq, hs.dtype), dh=dh, dz=dx_pre,
                    dr=dr_pre, **self._kernel_args(hs.dtype))
        return call, lambda: self._weight_grads(x_tm, hs, gates, dx_pre, dr_pre, dh, kernels)

    def run_backward(self, dh_seq, dfinal):
        x_tm, hs, gates, rec_h = self._cache
        T, B, D = x_tm.shape
        H = self.units
        U = self.params["recurrent_kernel"]
        act, ract = self.activation, self.recurrent_activation
        mask, rm = self._mask_tm, self._rec_mask
        dh = np.zeros((B, H), dtype=hs.dtype) if dfinal[0] is None else dfinal[0]
        dx_pre = np.empty((T, B, 3 * H), dtype=hs.dtype)          # dL/d(x W + b_in), blocks z, r, h
        dr_pre = np.empty((T, B, 3 * H), dtype=hs.dtype) if self.reset_after else None  # dL/d(h U + b_rec)
        record = self._new_state_grads(T, B, hs.dtype)
        # contiguous copies: per-step products with transposed views are slower
        if self.reset_after:
            UT = np.ascontiguousarray(U.T)
        else:
            U_zrT, U_hT = np.ascontiguousarray(U[:, :2 * H].T), np.ascontiguousarray(U[:, 2 * H:].T)
        with self.loop_threads(B):
            for t in reversed(range(T)):
                g = dh + dh_seq[t] if dh_seq is not None else dh
                if record is not None:
                    record[t] = g                                       # total dL/dh_t
                if mask is not None:
                    skip = np.where(mask[t], 0.0, g)
                    g = g * mask[t]
                z, r, hh = gates[t, :, :H], gates[t, :, H:2 * H], gates[t, :, 2 * H:]
                hp_raw = hs[t]
                hp = hp_raw if rm is None else hp_raw * rm
                da_h = act.backward(g * (1.0 - z), hh)                  # through hh = act(.)
                dx_pre[t, :, :H] = ract.backward(g * (hp_raw - hh), z)
                dx_pre[t, :, 2 * H:] = da_h
                if self.reset_after:
                    dx_pre[t, :, H:2 * H] = ract.backward(da_h * rec_h[t], r)
                    dr_pre[t, :, :2 * H] = dx_pre[t, :, :2 * H]
                    dr_pre[t, :, 2 * H:] = da_h * r
                    dhp = dr_pre[t] @ UT                                # (B, H)
                else:
                    d_rhp = da_h @ U_hT                                  # dL/d(r * h_{t-1})
                    dx_pre[t, :, H:2 * H] = ract.backward(d_rhp * hp, r)
                    dhp = dx_pre[t, :, :2 * H] @ U_zrT + d_rhp * r
                if rm is not None:
                    dhp *= rm
                dh = dhp + g * z                                        # + the direct path h_t = z h_{t-1} + ...
                if mask is not None:
                    dh += skip
        return self._weight_grads(x_tm, hs, gates, dx_pre, dr_pre, dh)

    def _weight_grads(self, x_tm, hs, gates, dx_pre, dr_pre, dh, mm=numpy_products):
        """The weight gradients, each one matmul over all steps (two blocks for reset_after=False), and dL/dx
        (the products by ``mm``: NumPy's, or the compiled core's)."""
        T, B, D = x_tm.shape
        H = self.units
        W, U, rm = self.params["kernel"], self.params["recurrent_kernel"], self._rec_mask
        dx2 = dx_pre.reshape(T * B, 3 * H)
        h_prev = hs[:-1] if rm is None else hs[:-1] * rm
        hp2 = h_prev.reshape(T * B, H)
        self.grads["kernel"] = mm.matmul(x_tm.reshape(T * B, D), dx2, trans_a=True)       # (D, 3H)
        if self.reset_after:
            dr2 = dr_pre.reshape(T * B, 3 * H)
            self.grads["recurrent_kernel"] = mm.matmul(hp2, dr2, trans_a=True)            # (H, 3H)
            if self.use_bias:
                self.grads["bias"] = np.stack([mm.column_sums(dx2), mm.column_sums(dr2)])  # (2, 3H)
        else:
            dU = np.empty_like(U)
            dU[:, :2 * H] = mm.matmul(hp2, dx2[:, :2 * H], trans_a=True)
            rhp = (gates[:, :, H:2 * H] * h_prev).reshape(T * B, H)               # r * h_{t-1}, all steps
            dU[:, 2 * H:] = mm.matmul(rhp, dx2[:, 2 * H:], trans_a=True)
            self.grads["recurrent_kernel"] = dU
            if self.use_bias:
                self.grads["bias"] = mm.column_sums(dx2)                           # (3H,)
        dx = mm.matmul(dx2, W, trans_b=True).reshape(T, B, D) if self.need_input_grad else None  # (T, B, D)
        return dx, [dh]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}
