"""``Attention`` (Luong) and ``AdditiveAttention`` (Bahdanau) over ``[query, value]`` or ``[query, value, key]``.

Shapes: ``query (B, Tq, D)``, ``value (B, Tv, Dv)``, ``key (B, Tv, D)`` (the value when not given),
``scores`` and the attention distribution ``a`` ``(B, Tq, Tv)``, result ``(B, Tq, Dv)``.

One call, in Keras 3's order::

    s = score(q, k)                                   # (B, Tq, Tv), see each class
    s = where(keep, s, s - 1e9)                       # keep = value mask (B, 1, Tv) and/or causal (1, Tq, Tv)
    a = softmax(s)                                    # over Tv
    w = a * drop / (1 - rate)                         # training only; drop ~ Bernoulli(1 - rate)
    y = where(query_mask, w @ v, 0)                   # (B, Tq, Dv)

and ``return_attention_scores=True`` returns ``[y, w]``. Backward runs the same steps in reverse:
``dw = dy v^T (+ d_scores)``, ``da = dw * drop / (1 - rate)``, ``ds = a * (da - sum(da * a))``, then
through the score function. The masks are constants: they get no gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import initializers
from rnnkit.layers.base import Layer, is_shape_list

SCORE_MODES = ("dot", "concat")


def _padding_bias(dtype: np.dtype) -> float:
    """What Keras subtracts from the scores of keys that may not be attended to (65504 is float16's max)."""
    return 65504.0 if dtype == np.float16 else 1.0e9


class Attention(Layer):
    """Dot-product (Luong-style) attention with Keras 3's arguments and defaults.

    ``score_mode="dot"``: ``s = scale * q k^T`` (``scale`` a learned scalar when ``use_scale``, else 1).
    ``score_mode="concat"``: ``s = c * sum_D tanh(scale * (q_i + k_j))`` with the learned scalar
    ``c`` (``concat_score_weight``). ``dropout`` drops entries of the attention distribution in
    training, drawing from the layer's own generator.
    """

    consumes_mask = True
    call_state = ("_cache",)

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 seed: int | None = None, name: str | None = None):
        super().__init__(name=name, seed=seed)
        if score_mode not in SCORE_MODES:
            raise ValueError(f"Invalid value for argument score_mode: expected one of {set(SCORE_MODES)}, "
                             f"got score_mode={score_mode!r}.")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{type(self).__name__} dropout must be a number in [0, 1), got {dropout!r}.")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self._rng: np.random.Generator | None = None
        self._cache: tuple | None = None

    # -- shapes -------------------------------------------------------------------------------
    def _what(self) -> str:
        return f"Layer '{self.name}' ({type(self).__name__})"

    def check_input_shape(self, input_shape):
        what = self._what()
        if not is_shape_list(input_shape):
            raise ValueError(f"{what} must be called on a list of inputs [query, value] or [query, value, key], "
                             f"got one input of shape {(None, *input_shape)}.")
        if len(input_shape) not in (2, 3):
            raise ValueError(f"{what} takes a list of 2 or 3 inputs ([query, value] or [query, value, key]), "
                             f"got {len(input_shape)}: {[(None, *s) for s in input_shape]}.")
        for role, shape in zip(("query", "value", "key"), input_shape):
            if len(shape) != 2:
                raise ValueError(f"{what} expects a {role} of rank 3 (batch, timesteps, features), "
                                 f"got shape {(None, *shape)}.")
        q, v = input_shape[0], input_shape[1]
        k = input_shape[2] if len(input_shape) == 3 else v
        key_role = "key" if len(input_shape) == 3 else "value (the key when none is given)"
        if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
            raise ValueError(f"{what}: the query and the {key_role} need the same number of features, got "
                             f"query {(None, *q)} and {key_role} {(None, *k)}.")
        if v[0] is not None and k[0] is not None and v[0] != k[0]:
            raise ValueError(f"{what}: the value and the key need the same number of timesteps, got "
                             f"value {(None, *v)} and key {(None, *k)}.")

    def compute_output_shape(self, input_shape):
        q, v = input_shape[0], input_shape[1]
        return (*q[:-1], v[-1])                                          # (Tq, Dv)

    def output_shape_for_call(self, input_shape, return_attention_scores=False, **kwargs):
        out = self.compute_output_shape(input_shape)
        if not return_attention_scores:
            return out
        key = input_shape[2] if len(input_shape) == 3 else input_shape[1]
        return [out, (*input_shape[0][:-1], key[0])]                     # [(Tq, Dv), (Tq, Tv)]

    def compute_mask(self, inputs, mask):
        """The query mask (Keras' output mask), or None."""
        self._check_mask_list(mask)
        if mask is None or mask[0] is None:
            return None
        return np.asarray(mask[0])

    def _check_mask_list(self, mask: Any) -> None:
        if mask is None:
            return
        if not isinstance(mask, (list, tuple)):
            raise ValueError(f"{self._what()} takes mask=[query_mask, value_mask] (a list; either may be None), "
                             f"got a {type(mask).__name__}.")
        if len(mask) not in (2, 3):
            raise ValueError(f"{self._what()} takes a mask list of 2 or 3 entries ([query_mask, value_mask], "
                             f"optionally a key mask that is not used), got {len(mask)}.")

    def _as_bool_mask(self, m: Any, role: str, shape: tuple) -> np.ndarray | None:
        if m is None:
            return None
        m = np.asarray(m)
        if m.shape != shape:
            raise ValueError(f"{self._what()}: the {role} mask must have shape {shape} (batch, timesteps), "
                             f"got {m.shape}.")
        return m.astype(bool, copy=False)

    # -- weights ------------------------------------------------------------------------------
    def make_params(self, input_shape, dtype, rng):
        self._rng = rng                      # dropout masks continue the stream the weights started
        ones = initializers.get("ones")
        params = {}
        # scalar weights, shape () as in Keras (the initializers return at least 1-D arrays)
        if self.use_scale:
            params["scale"] = ones((), dtype, rng).reshape(())
        if self.score_mode == "concat":
            params["concat_score_weight"] = ones((), dtype, rng).reshape(())
        return params

    # -- the score function and its backward (what AdditiveAttention replaces) ---------------------
    def _scores(self, q: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, tuple]:
        """``(s, saved)``: the raw scores (B, Tq, Tv) and what ``_scores_backward`` needs."""
        if self.score_mode == "dot":
            qk = q @ k.swapaxes(-1, -2)                                      # (B, Tq, Tv)
            return (qk * self.params["scale"] if self.use_scale else qk), (qk,)
        u = q[:, :, None, :] + k[:, None, :, :]                              # (B, Tq, Tv, D)
        t = np.tanh(self.params["scale"] * u if self.use_scale else u)      # (B, Tq, Tv, D)
        t_sum = t.sum(axis=-1)                                               # (B, Tq, Tv)
        return self.params["concat_score_weight"] * t_sum, (u, t, t_sum)

    def _scores_backward(self, ds: np.ndarray, q: np.ndarray, k: np.ndarray, saved: tuple):
        """``(dq, dk)`` from ``ds = dL/ds`` (B, Tq, Tv); sets the weight gradients."""
        if self.score_mode == "dot":
            (qk,) = saved
            if self.use_scale:
                self.grads["scale"] = np.asarray((ds * qk).sum(), dtype=ds.dtype)
                ds = ds * self.params["scale"]
            return ds @ k, ds.swapaxes(-1, -2) @ q                           # (B, Tq, D), (B, Tv, D)
        u, t, t_sum = saved
        c = self.params["concat_score_weight"]
        self.grads["concat_score_weight"] = np.asarray((ds * t_sum).sum(), dtype=ds.dtype)
        du = (ds * c)[..., None] * (1.0 - t * t)                           # (B, Tq, Tv, D)
        if self.use_scale:
            self.grads["scale"] = np.asarray((du * u).sum(), dtype=ds.dtype)
            du *= self.params["scale"]
        return du.sum(axis=2), du.sum(axis=1)                                # (B, Tq, D), (B, Tv, D)

    # -- computing ------------------------------------------------------------------------------
    def forward(self, inputs, training=False, mask=None, return_attention_scores=False, use_causal_mask=False):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{self._what()} must be called on a list of inputs [query, value] or "
                             f"[query, value, key], got one array of shape {np.shape(inputs)}.")
        inputs = [np.asarray(x) for x in inputs]
        if any(x.ndim != 3 for x in inputs):
            raise ValueError(f"{self._what()} expects inputs of rank 3 (batch, timesteps, features), got shapes "
                             f"{[x.shape for x in inputs]}.")
        shapes = [x.shape[1:] for x in inputs]
        self.check_input_shape(shapes)
        if self.built and not self.accepts_input_shape(shapes):
            raise ValueError(f"{self._what()} was built for inputs of shape {[(None, *s) for s in self.input_shape]}"
                             f" and cannot be called on shapes {[x.shape for x in inputs]}.")
        if len({x.shape[0] for x in inputs}) != 1:
            raise ValueError(f"{self._what()}: the inputs need the same batch size, got shapes "
                             f"{[x.shape for x in inputs]}.")
        self._check_mask_list(mask)
        q, v = inputs[0], inputs[1]
        has_key = len(inputs) == 3
        k = inputs[2] if has_key else v
        (b, tq, _), tv = q.shape, k.shape[1]
        q_mask = self._as_bool_mask(mask[0], "query", (b, tq)) if mask else None
        v_mask = self._as_bool_mask(mask[1], "value", (b, tv)) if mask else None

        s, saved = self._scores(q, k)                                        # (B, Tq, Tv)
        keep = None if v_mask is None else v_mask[:, None, :]                # (B, 1, Tv)
        if use_causal_mask:
            causal = np.tri(tq, tv, dtype=bool)[None]                        # (1, Tq, Tv): key j <= query i
            keep = causal if keep is None else keep & causal
        if keep is not None:
            s = np.where(keep, s, s - _padding_bias(s.dtype))
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        a = e / e.sum(axis=-1, keepdims=True)                                # (B, Tq, Tv)
        drop = None
        if training and self.dropout > 0.0:
            if self._rng is None:
                self._rng = self.make_rng()
            drop = (self._rng.random(a.shape) >= self.dropout).astype(a.dtype) / (1.0 - self.dropout)
            w = a * drop
        else:
            w = a
        y = w @ v                                                            # (B, Tq, Dv)
        if q_mask is not None:
            y = np.where(q_mask[..., None], y, 0.0).astype(y.dtype, copy=False)
        self._cache = (q, v, k, has_key, q_mask, saved, a, drop, w, bool(return_attention_scores))
        return [y, w] if return_attention_scores else y

    def backward(self, dy):
        """``[d_query, d_value]`` (or ``[d_query, d_value, d_key]``) from ``dy``, which is
        ``[d_result, d_scores]`` after a call with ``return_attention_scores=True``."""
        q, v, k, has_key, q_mask, saved, a, drop, w, returned_scores = self._cache
        if returned_scores:
            if not isinstance(dy, (list, tuple)) or len(dy) != 2:
                raise ValueError(f"{self._what()} returned [result, scores], so backward takes "
                                 "[d_result, d_scores] (either may be None).")
            dy, d_scores = dy
        else:
            d_scores = None
        dw = np.zeros_like(w) if d_scores is None else np.array(d_scores, dtype=w.dtype)   # (B, Tq, Tv)
        dv = np.zeros_like(v)
        if dy is not None:
            if q_mask is not None:
                dy = np.where(q_mask[..., None], dy, 0.0)
            dw += dy @ v.swapaxes(-1, -2)                                    # (B, Tq, Tv)
            dv = w.swapaxes(-1, -2) @ dy                                     # (B, Tv, Dv)
        da = dw if drop is None else dw * drop
        ds = a * (da - (da * a).sum(axis=-1, keepdims=True))                 # softmax backward, (B, Tq, Tv)
        dq, dk = self._scores_backward(ds, q, k, saved)
        if not self.need_input_grad:
            return [None] * (3 if has_key else 2)
        return [dq, dv, dk] if has_key else [dq, dv + dk]

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau-style) attention with Keras 3's arguments and defaults.

    ``s_ij = sum_D scale * tanh(q_i + k_j)`` with the learned vector ``scale (D,)`` when
    ``use_scale`` (glorot-uniform initial values, as Keras), else 1.
    """

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, seed: int | None = None,
                 name: str | None = None):
        super().__init__(use_scale=use_scale, score_mode="dot", dropout=dropout, seed=seed, name=name)

    def make_params(self, input_shape, dtype, rng):
        params = {}
        if self.use_scale:
            d = input_shape[0][-1]
            if d is None:
                raise ValueError(f"{self._what()} needs the number of query features to be known for its scale.")
            params["scale"] = initializers.get("glorot_uniform")((d,), dtype, rng)
        self._rng = rng
        return params

    def _scores(self, q, k):
        u = q[:, :, None, :] + k[:, None, :, :]                              # (B, Tq, Tv, D)
        t = np.tanh(u)
        st = t * self.params["scale"] if self.use_scale else t               # (B, Tq, Tv, D)
        return st.sum(axis=-1), (t,)

    def _scores_backward(self, ds, q, k, saved):
        (t,) = saved
        if self.use_scale:
            self.grads["scale"] = ds.reshape(-1) @ t.reshape(-1, t.shape[-1])  # (B*Tq*Tv,) @ (B*Tq*Tv, D)
            dt = ds[..., None] * self.params["scale"]                        # (B, Tq, Tv, D)
        else:
            dt = np.broadcast_to(ds[..., None], t.shape)
        du = dt * (1.0 - t * t)                                              # (B, Tq, Tv, D)
        return du.sum(axis=2), du.sum(axis=1)                                # (B, Tq, D), (B, Tv, D)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config
