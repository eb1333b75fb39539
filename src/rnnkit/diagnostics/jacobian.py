"""``||dh_T/dh_t||``: how much of a change in the state at step t is still felt at the last step.

The Jacobian ``J_t = dh_T/dh_t`` (H, H) of each sequence comes from the layer's own BPTT: the
last forward call is repeated on H copies of every sequence, and backward is started from the
unit vectors ``e_k`` at ``h_T``, so copy k records row k of ``J_t`` at every step. The norm is the
spectral norm (largest singular value), so ``||J_t|| < 1`` means every direction shrinks.
"""

from __future__ import annotations

import numpy as np

from rnnkit.diagnostics.cells import initial_states
from rnnkit.layers.recurrent import Recurrent

#: about how many numbers one chunk of copied sequences may hold, to bound memory
_CHUNK_ELEMENTS = 2 ** 22


def state_jacobian_norms(layer: Recurrent, samples: int | None = None) -> np.ndarray:
    """Batch mean of the spectral norm of ``dh_T/dh_t`` for every step: ``(T,)``, in input time order.

    Uses the inputs, mask and initial states of the layer's last forward call (its cache) and
    the first ``samples`` sequences (all with None). ``h_T`` is the last state the layer
    computed, so for a layer that reads backwards (``go_backwards``) ``T`` is input step 0. For
    an LSTM the cell state ``c_t`` is held fixed: the derivative counts every path from ``h_t``
    to ``h_T``, the cell state's from step t + 1 on included.
    """
    x_tm = layer._cache[0]                                     # (T, B, D), in reading order
    states0 = initial_states(layer)
    mask_tm = layer._mask_tm
    T, B, _ = x_tm.shape
    H = layer.units
    n = B if samples is None else max(1, min(B, int(samples)))
    per_chunk = max(1, _CHUNK_ELEMENTS // (8 * T * H * H))    # sequences per chunk (x H copies each)
    saved = (layer._cache, layer._mask_tm, layer._rec_mask, layer.record_state_grads, layer.state_grads,
             dict(layer.grads))
    eye = np.eye(H, dtype=x_tm.dtype)
    norms = np.empty((T, n))
    try:
        layer._rec_mask = None
        layer.record_state_grads = True
        for lo in range(0, n, per_chunk):
            hi = min(n, lo + per_chunk)
            m = hi - lo
            x_rep = np.repeat(x_tm[:, lo:hi], H, axis=1)       # (T, m*H, D): H copies of each sequence
            s_rep = [np.repeat(s[lo:hi], H, axis=0) for s in states0]
            layer._mask_tm = None if mask_tm is None else np.repeat(mask_tm[:, lo:hi], H, axis=1)
            layer.run_forward(x_rep, s_rep)
            dfinal = [np.tile(eye, (m, 1))] + [None] * (layer.n_states - 1)   # (m*H, H): e_k at h_T
            layer.run_backward(None, dfinal)
            J = layer.state_grads.reshape(T, m, H, H)          # J[t, b, k] = d h_T[k] / d h_t
            norms[:, lo:hi] = np.linalg.norm(J.astype(np.float64), ord=2, axis=(2, 3))
    finally:
        (layer._cache, layer._mask_tm, layer._rec_mask, layer.record_state_grads, layer.state_grads,
         grads) = saved
        layer.grads.clear()
        layer.grads.update(grads)
    mean = norms.mean(axis=1)
    return mean[::-1].copy() if layer.go_backwards else mean
