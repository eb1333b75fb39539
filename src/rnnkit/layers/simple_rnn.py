"""``SimpleRNN``: the Elman recurrence of the article, with BPTT written out."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import kernels
from rnnkit.layers.base import numpy_products
from rnnkit.layers.recurrent import Recurrent


def simple_rnn_weights(layer: Any, input_dim: int, dtype: np.dtype, rng: np.random.Generator) -> dict:
    """``kernel (D, H)``, ``recurrent_kernel (H, H)``, ``bias (H,)``, drawn from ``rng`` in this order.

    Shared by ``SimpleRNN`` and ``SimpleRNNCell`` (``layer`` is either: its ``units``, ``use_bias``
    and initializers are read), so both make the same weights from the same seed.
    """
    d, h = input_dim, layer.units
    params = {"kernel": layer.kernel_initializer((d, h), dtype, rng),
              "recurrent_kernel": layer.recurrent_initializer((h, h), dtype, rng)}
    if layer.use_bias:
        params["bias"] = layer.bias_initializer((h,), dtype, rng)
    return params


class SimpleRNN(Recurrent):
    """Fully connected recurrent layer; the same weights are used at every step::

        h_t = act(x_t W + h_{t-1} U + b)          W = kernel (D, H), U = recurrent_kernel (H, H), b = bias (H,)

    Backpropagation through time, for ``t = T .. 1`` with ``g_t = dL/dh_t``::

        g_t  = (dL/dy_t from this step's output) + (carried back from step t+1)
        da_t = g_t * act'(a_t)                      a_t is the pre-activation
        carried back to step t-1:  da_t U^T
        dW = sum_t x_t^T da_t,   dU = sum_t h_{t-1}^T da_t,   db = sum_t da_t,   dx_t = da_t W^T

    The three weight gradients are each one matmul over all steps after the loop.
    """

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False, zero_output_for_mask: bool = False,
                 implementation: int = 2, seed: int | None = None, name: str | None = None, input_shape: Any = None):
        super().__init__(units, activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
                         kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint,
                         dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         zero_output_for_mask=zero_output_for_mask, implementation=implementation,
                         name=name, input_shape=input_shape, seed=seed)

    def make_params(self, input_shape, dtype, rng):
        return simple_rnn_weights(self, input_shape[-1], dtype, rng)

    def run_forward(self, x_tm, states0):
        T, B, D = x_tm.shape
        H = self.units
        W, U = self.params["kernel"], self.params["recurrent_kernel"]
        mask, rm = self._mask_tm, self._rec_mask
        xw = (x_tm.reshape(T * B, D) @ W).reshape(T, B, H)    # (T, B, H) input part of a_t, all steps
        if self.use_bias:
            xw += self.params["bias"]
        hs = np.empty((T + 1, B, H), dtype=x_tm.dtype)         # hs[t + 1] = h_t, hs[0] = h_0
        hs[0] = states0[0]
        with self.loop_threads(B):
            for t in range(T):
                h_prev = hs[t] if rm is None else hs[t] * rm
                a = np.matmul(h_prev, U, out=hs[t + 1])            # (B, H) h_{t-1} U
                a += xw[t]                                         # a_t = x_t W + h_{t-1} U + b
                self.activation.forward_(a)                        # h_t = act(a_t), in place
                if mask is not None:                               # masked step: h_t = h_{t-1}
                    np.copyto(hs[t + 1], hs[t], where=~mask[t])
        self._cache = (x_tm, hs)
        return hs[1:], [hs[T]]

    # -- the compiled core (csrc/simple_rnn.c): the same steps as the loops above and below ------------
    def kernel_covers(self, dtype):
        return kernels.covers(dtype, self.activation)

    def kernel_forward(self, x_tm, states0):
        T, B, D = x_tm.shape
        H = self.units
        xw = kernels.matmul(x_tm.reshape(T * B, D), self.params["kernel"]).reshape(T, B, H)   # (T, B, H)
        if self.use_bias:
            xw += self.params["bias"]
        keep = self.keep_cache or self.return_sequences      # every step, or just the running state
        hs = np.empty((T + 1 if keep else 2, B, H), dtype=xw.dtype)
        hs[0] = states0[0]
        call = dict(kind="simple_rnn_forward", T=T, B=B, H=H, act=kernels.ACTIVATIONS[self.activation.name],
                    keep=int(keep), double=int(xw.dtype == np.float64), xw=xw, U=self.params["recurrent_kernel"],
                    hs=hs, mask=kernels.as_mask(self._mask_tm), rec_mask=self._rec_mask)

        def done():
            if not keep:                                     # inference: no cache, only h_T
                self._cache = None
                return None, [hs[T % 2].copy()]
            self._cache = (x_tm, hs)
            return hs[1:], [hs[T]]

        return call, done

    def kernel_backward(self, dh_seq, dfinal):
        x_tm, hs = self._cache
        T, B, D = x_tm.shape
        H = self.units
        da = np.empty((T, B, H), dtype=hs.dtype)                 # dL/da_t, filled by the kernel
        dh = np.zeros((B, H), dtype=hs.dtype) if dfinal[0] is None else np.array(dfinal[0], hs.dtype, order="C")
        call = dict(kind="simple_rnn_backward", T=T, B=B, H=H, act=kernels.ACTIVATIONS[self.activation.name],
                    double=int(hs.dtype == np.float64), UT=np.ascontiguousarray(self.params["recurrent_kernel"].T),
                    hs=hs, mask=kernels.as_mask(self._mask_tm), rec_mask=self._rec_mask,
                    dh_seq=kernels.contiguous(dh_seq, hs.dtype), dh=dh, dz=da)
        return call, lambda: self._weight_grads(x_tm, hs, da, dh, kernels)   # dh: dL/dh_0 once the call has run

    def run_backward(self, dh_seq, dfinal):
        x_tm, hs = self._cache
        T, B, D = x_tm.shape
        H = self.units
        U = self.params["recurrent_kernel"]
        mask, rm = self._mask_tm, self._rec_mask
        dh = np.zeros((B, H), dtype=hs.dtype) if dfinal[0] is None else dfinal[0]
        da = np.empty((T, B, H), dtype=hs.dtype)               # dL/da_t for every step
        record = self._new_state_grads(T, B, hs.dtype)
        # act'(a_t) for every step at once, from the outputs (element-wise activations)
        deriv = self.activation.derivative(hs[1:]) if self.activation.elementwise else None
        UT = np.ascontiguousarray(U.T)     # per-step products with a transposed view are slower
        with self.loop_threads(B):
            for t in reversed(range(T)):
                g = da[t]
                if dh_seq is not None:
                    np.add(dh, dh_seq[t], out=g)                   # g_t: own output + carried back
                else:
                    g[...] = dh
                if record is not None:
                    record[t] = g                                  # total dL/dh_t
                if mask is not None:
                    skipped = np.where(mask[t], 0.0, g)            # a masked step passes g_t to h_{t-1}
                    g *= mask[t]
                # at unmasked steps hs[t + 1] is act(a_t); at masked ones g is 0 anyway
                if deriv is not None:
                    g *= deriv[t]                                  # da_t = g_t * act'(a_t)
                else:
                    g[...] = self.activation.backward(g, hs[t + 1])
                dh = g @ UT                                        # (B, H) carried back to h_{t-1}
                if rm is not None:
                    dh *= rm
                if mask is not None:
                    dh += skipped
        return self._weight_grads(x_tm, hs, da, dh)

    def _weight_grads(self, x_tm, hs, da, dh, mm=numpy_products):
        """The three weight gradients, each one matmul over all steps, and dL/dx (the products by ``mm``:
        NumPy's, or the compiled core's)."""
        T, B, D = x_tm.shape
        H = self.units
        W, rm = self.params["kernel"], self._rec_mask
        da2 = da.reshape(T * B, H)
        h_prev = hs[:-1] if rm is None else hs[:-1] * rm
        self.grads["kernel"] = mm.matmul(x_tm.reshape(T * B, D), da2, trans_a=True)           # (D, H)
        self.grads["recurrent_kernel"] = mm.matmul(h_prev.reshape(T * B, H), da2, trans_a=True)  # (H, H)
        if self.use_bias:
            self.grads["bias"] = mm.column_sums(da2)                                           # (H,)
        dx_tm = mm.matmul(da2, W, trans_b=True).reshape(T, B, D) if self.need_input_grad else None  # (T, B, D)
        return dx_tm, [dh]

