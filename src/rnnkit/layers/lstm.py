"""``LSTM``: long short-term memory, Keras' semantics, gate order i, f, c, o."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import kernels
from rnnkit.layers.base import numpy_products
from rnnkit.layers.recurrent import GatedRecurrent


def lstm_weights(layer: Any, input_dim: int, dtype: np.dtype, rng: np.random.Generator) -> dict:
    """``kernel (D, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)`` (gates i, f, c, o), drawn in this order.

    Shared by ``LSTM`` and ``LSTMCell`` (``layer`` is either: its ``units``, ``use_bias``,
    ``unit_forget_bias`` and initializers are read), so both make the same weights from the same seed.
    With ``unit_forget_bias`` the forget gate's bias starts at one.
    """
    d, h = input_dim, layer.units
    params = {"kernel": layer.kernel_initializer((d, 4 * h), dtype, rng),
              "recurrent_kernel": layer.recurrent_initializer((h, 4 * h), dtype, rng)}
    if layer.use_bias:
        if layer.unit_forget_bias:
            params["bias"] = np.concatenate([layer.bias_initializer((h,), dtype, rng), np.ones(h, dtype),
                                             layer.bias_initializer((2 * h,), dtype, rng)])
        else:
            params["bias"] = layer.bias_initializer((4 * h,), dtype, rng)
    return params


class LSTM(GatedRecurrent):
    """Three gates and a cell state that the forget gate can keep for many steps::

        [i, f, g, o] = [s(.), s(.), act(.), s(.)] of  x_t W + h_{t-1} U + b     (B, 4H), s = recurrent_activation
        c_t = f * c_{t-1} + i * g                                                 (forget, then write)
        h_t = o * act(c_t)                                                        (read)

    ``kernel (D, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)``, gate blocks in the order
    i, f, c, o. BPTT carries two gradients back, ``dL/dh`` and ``dL/dc``; the path through
    ``c_{t-1} = ... * f`` is the one that lets gradient survive many steps::

        dc   += dh * o * act'(c_t)        do = dh * act(c_t)
        di = dc * g,  df = dc * c_{t-1},  dg = dc * i,   dc_{t-1} = dc * f
        dz = [di s'(i), df s'(f), dg act'(g), do s'(o)]      dh_{t-1} = dz U^T
    """

    n_states = 2
    gates = 4

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False, zero_output_for_mask: bool = False,
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
        self.unit_forget_bias = bool(unit_forget_bias)

    def make_params(self, input_shape, dtype, rng):
        return lstm_weights(self, input_shape[-1], dtype, rng)

    def run_forward(self, x_tm, states0):
        T, B, D = x_tm.shape
        H = self.units
        W, U = self.params["kernel"], self.params["recurrent_kernel"]
        b = self.params["bias"] if self.use_bias else None
        act, ract = self.activation, self.recurrent_activation
        mask, rm = self._mask_tm, self._rec_mask
        # With Keras' defaults (sigmoid gates, tanh candidate) one tanh call covers all four blocks:
        # s(z) = (1 + tanh(z / 2)) / 2, and the halving is folded into copies of the weights of the
        # i, f, o columns (exact: a power of two), leaving two cheap affine steps per gate block.
        fused = ract.name == "sigmoid" and act.name == "tanh"
        if fused:
            half = np.ones(4 * H, dtype=W.dtype)
            half[:2 * H] = half[3 * H:] = 0.5
            W, U, b = W * half, U * half, None if b is None else b * half
        gates = (x_tm.reshape(T * B, D) @ W).reshape(T, B, 4 * H)   # (T, B, 4H) input part, all steps
        if b is not None:
            gates += b
        hs = np.empty((T + 1, B, H), dtype=x_tm.dtype)
        cs = np.empty((T + 1, B, H), dtype=x_tm.dtype)
        tc = np.empty((T, B, H), dtype=x_tm.dtype)                # act(c_t)
        hs[0], cs[0] = states0
        with self.loop_threads(B):
            for t in range(T):
                z = gates[t]                                      # (B, 4H)
                z += (hs[t] if rm is None else hs[t] * rm) @ U    # + h_{t-1} U
                if fused:
                    np.tanh(z, out=z)
                    for gate in (z[:, :2 * H], z[:, 3 * H:]):     # i, f and o: (1 + tanh) / 2
                        gate *= 0.5
                        gate += 0.5
                else:
                    ract.forward_blocks_(z[:, :2 * H], H)         # i, f
                    act.forward_(z[:, 2 * H:3 * H])               # g
                    ract.forward_(z[:, 3 * H:])                   # o
                i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
                c = np.multiply(f, cs[t], out=cs[t + 1])          # c_t = f c_{t-1} + i g
                c += i * g
                act.forward_into(c, tc[t])
                np.multiply(o, tc[t], out=hs[t + 1])              # h_t = o act(c_t)
                if mask is not None:                              # masked step: carry h and c
                    np.copyto(hs[t + 1], hs[t], where=~mask[t])
                    np.copyto(cs[t + 1], cs[t], where=~mask[t])
        self._cache = (x_tm, hs, cs, gates, tc)
        return hs[1:], [hs[T], cs[T]]

    # -- the compiled core (csrc/lstm.c): the same steps as the loops above and below ------------------
    def kernel_covers(self, dtype):
        return kernels.covers(dtype, self.activation, self.recurrent_activation)

    def _kernel_args(self, dtype) -> dict:
        return dict(act=kernels.ACTIVATIONS[self.activation.name],
                    ract=kernels.ACTIVATIONS[self.recurrent_activation.name], double=int(dtype == np.float64),
                    mask=kernels.as_mask(self._mask_tm), rec_mask=self._rec_mask)

    def kernel_forward(self, x_tm, states0):
        T, B, D = x_tm.shape
        H = self.units
        gates = kernels.matmul(x_tm.reshape(T * B, D), self.params["kernel"]).reshape(T, B, 4 * H)   # (T, B, 4H)
        if self.use_bias:
            gates += self.params["bias"]
        keep = self.keep_cache or self.return_sequences      # every step, or just the running state
        steps = T + 1 if keep else 2
        hs = np.empty((steps, B, H), dtype=x_tm.dtype)
        cs = np.empty((steps, B, H), dtype=x_tm.dtype)
        tc = np.empty((T, B, H), dtype=x_tm.dtype)                # act(c_t)
        hs[0], cs[0] = states0
        call = dict(kind="lstm_forward", T=T, B=B, H=H, keep=int(keep), U=self.params["recurrent_kernel"], hs=hs,
                    cs=cs, gates=gates, aux=tc, **self._kernel_args(x_tm.dtype))

        def done():
            if not keep:                                     # inference: no cache, only the final states
                self._cache = None
                return None, [hs[T % 2].copy(), cs[T % 2].copy()]
            self._cache = (x_tm, hs, cs, gates, tc)
            return hs[1:], [hs[T], cs[T]]

        return call, done

    def kernel_backward(self, dh_seq, dfinal):
        x_tm, hs, cs, gates, tc = self._cache
        T, B, D = x_tm.shape
        H = self.units
        dz = np.empty((T, B, 4 * H), dtype=hs.dtype)             # dL/d pre-activations, filled by the kernel
        dh, dc = (np.zeros((B, H), dtype=hs.dtype) if d is None else np.array(d, hs.dtype, order="C") for d in dfinal)
        call = dict(kind="lstm_backward", T=T, B=B, H=H, UT=np.ascontiguousarray(self.params["recurrent_kernel"].T),
                    hs=hs, cs=cs, gates=gates, aux=tc, dh_seq=kernels.contiguous(dh_seq, hs.dtype), dh=dh, dc=dc,
                    dz=dz, **self._kernel_args(hs.dtype))
        return call, lambda: self._weight_grads(x_tm, hs, dz, dh, dc, kernels)

    def run_backward(self, dh_seq, dfinal):
        x_tm, hs, cs, gates, tc = self._cache
        T, B, D = x_tm.shape
        H = self.units
        U = self.params["recurrent_kernel"]
        act, ract = self.activation, self.recurrent_activation
        mask, rm = self._mask_tm, self._rec_mask
        dh = np.zeros((B, H), dtype=hs.dtype) if dfinal[0] is None else dfinal[0]
        dc = np.zeros((B, H), dtype=hs.dtype) if dfinal[1] is None else dfinal[1]
        dz = np.empty((T, B, 4 * H), dtype=hs.dtype)              # dL/d pre-activations
        record = self._new_state_grads(T, B, hs.dtype)
        UT = np.ascontiguousarray(U.T)      # per-step products with a transposed view are slower
        with self.loop_threads(B):
            for t in reversed(range(T)):
                g_h = dh + dh_seq[t] if dh_seq is not None else dh
                if record is not None:
                    record[t] = g_h                                   # total dL/dh_t
                if mask is not None:                                  # masked: gradients skip the cell
                    skip_h, skip_c = np.where(mask[t], 0.0, g_h), np.where(mask[t], 0.0, dc)
                    g_h, dc = g_h * mask[t], dc * mask[t]
                i, f, g, o = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
                dc = dc + act.backward(g_h * o, tc[t])
                dz[t, :, :H] = ract.backward(dc * g, i)
                dz[t, :, H:2 * H] = ract.backward(dc * cs[t], f)
                dz[t, :, 2 * H:3 * H] = act.backward(dc * i, g)
                dz[t, :, 3 * H:] = ract.backward(g_h * tc[t], o)
                dc = dc * f                                           # dL/dc_{t-1}
                dh = dz[t] @ UT                                       # (B, H) dL/dh_{t-1}
                if rm is not None:
                    dh *= rm
                if mask is not None:
                    dh += skip_h
                    dc += skip_c
        return self._weight_grads(x_tm, hs, dz, dh, dc)

    def _weight_grads(self, x_tm, hs, dz, dh, dc, mm=numpy_products):
        """The weight gradients, each one matmul over all steps, and dL/dx (the products by ``mm``: NumPy's,
        or the compiled core's)."""
        T, B, D = x_tm.shape
        H = self.units
        W, rm = self.params["kernel"], self._rec_mask
        dz2 = dz.reshape(T * B, 4 * H)
        h_prev = hs[:-1] if rm is None else hs[:-1] * rm
        self.grads["kernel"] = mm.matmul(x_tm.reshape(T * B, D), dz2, trans_a=True)            # (D, 4H)
        self.grads["recurrent_kernel"] = mm.matmul(h_prev.reshape(T * B, H), dz2, trans_a=True)  # (H, 4H)
        if self.use_bias:
            self.grads["bias"] = mm.column_sums(dz2)                                            # (4H,)
        dx = mm.matmul(dz2, W, trans_b=True).reshape(T, B, D) if self.need_input_grad else None  # (T, B, D)
        return dx, [dh, dc]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}
