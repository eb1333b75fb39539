"""Layers built from other layers: ``TimeDistributed`` and ``Bidirectional``.

Bidirectional is *composed* from a forward layer and a copy of it that reads the
sequence backwards, not re-implemented: its gradient is the sum of the two layers'.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rnnkit import kernels
from rnnkit.layers.base import Layer
from rnnkit.layers.recurrent import Recurrent


def _layer_from_config(config: Any) -> Layer:
    if isinstance(config, Layer):
        return config
    from rnnkit.layers import LAYER_CLASSES

    if not isinstance(config, dict) or config.get("class_name") not in LAYER_CLASSES:
        raise ValueError(f"Expected a layer or a layer config {{'class_name', 'config'}}, got {config!r}.")
    return LAYER_CLASSES[config["class_name"]](**config.get("config", {}))


def _serialize(layer: Layer) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


class TimeDistributed(Layer):
    """Apply ``layer`` to every timestep: ``(B, T, ...) -> (B * T, ...) -> layer -> (B, T, ...)``."""

    supports_masking = True

    def __init__(self, layer: Any, name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        self.layer = _layer_from_config(layer)
        if isinstance(self.layer, Recurrent):
            raise ValueError(
                "TimeDistributed applies a layer to each step; wrap a Dense-like layer, not a recurrent one."
            )
        # the wrapped layer's activity_regularizer is not applied: Keras 3 runs the wrapped layer's call
        # directly, step by step, which leaves it out, and rnnkit gives Keras' numbers
        self._bt: tuple[int, int] | None = None

    def check_input_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                f"Layer '{self.name}' (TimeDistributed) expects inputs of rank >= 3 (batch, timesteps, ...), "
                f"got shape {(None, *input_shape)}; set return_sequences=True on the recurrent layer before it."
            )

    def build(self, input_shape):
        super().build(input_shape)
        if self.layer.name is None:
            self.layer.name = self.layer.default_name()
        if self.layer.seed is None and self.fallback_seed is not None:
            self.layer.fallback_seed = [*np.atleast_1d(self.fallback_seed).tolist(), 0]
        self.layer.build(tuple(input_shape[1:]))
        self.params = self.layer.params                   # the same arrays: updates reach the inner layer
        self.grads = self.layer.grads
        self.regularizers, self.constraints = self.layer.regularizers, self.layer.constraints
        self.output_shape = self.compute_output_shape(self.input_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.layer.compute_output_shape(tuple(input_shape[1:])))

    call_state = ("_bt",)

    def get_call_state(self):
        return super().get_call_state(), self.layer.get_call_state()

    def set_call_state(self, state):
        own, inner = state
        super().set_call_state(own)
        self.layer.set_call_state(inner)

    @property
    def activation(self):
        return getattr(self.layer, "activation", None)

    @property
    def logits(self):
        b, t = self._bt
        return self.layer.logits.reshape(b, t, *self.layer.logits.shape[1:])

    def forward(self, x, training=False):
        b, t = x.shape[:2]
        self._bt = (b, t)
        y = self.layer.forward(x.reshape(b * t, *x.shape[2:]), training=training)   # (B*T, ...)
        return y.reshape(b, t, *y.shape[1:])

    def _merge(self, dy):
        b, t = self._bt
        return dy.reshape(b * t, *dy.shape[2:])

    def _split(self, dx):
        if dx is None:
            return None
        b, t = self._bt
        return dx.reshape(b, t, *dx.shape[1:])

    def backward(self, dy):
        self.layer.need_input_grad = self.need_input_grad
        dx = self.layer.backward(self._merge(dy))
        self.grads = self.layer.grads
        return self._split(dx)

    def backward_from_logits(self, dz):
        self.layer.need_input_grad = self.need_input_grad
        dx = self.layer.backward_from_logits(self._merge(dz))
        self.grads = self.layer.grads
        return self._split(dx)

    def get_config(self):
        return {**super().get_config(), "layer": _serialize(self.layer)}


def _both(started_f: tuple, started_b: tuple) -> tuple:
    """Finish two directions started with ``start_forward`` / ``start_backward``: their kernel calls
    (if they run on the compiled core) go to the thread pool together, so both directions run at once."""
    calls = [call for call, _ in (started_f, started_b) if call is not None]
    if calls:
        kernels.run(*calls)
    return started_f[1](), started_b[1]()


MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Run ``layer`` forwards and a copy of it backwards over the sequence and merge the two.

    The backward layer reads the steps in reverse (``go_backwards``); with
    ``return_sequences`` its output is flipped back into time order before merging, so
    step t of the result sees the whole sequence. ``merge_mode``: ``"concat"`` (default),
    ``"sum"``, ``"mul"``, ``"ave"`` or ``None`` (a list of both outputs). With
    ``return_state`` the result is ``[output, *forward_states, *backward_states]``. Masked
    steps output zeros in both directions, as in Keras. Weights: forward, then backward.
    """

    input_rank = 3
    supports_masking = True
    consumes_mask = True

    def __init__(self, layer: Any, merge_mode: str | None = "concat", backward_layer: Any = None,
                 name: str | None = None, input_shape: Any = None):
        super().__init__(name=name, input_shape=input_shape)
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Unknown merge_mode {merge_mode!r}. Valid merge modes are: concat, sum, mul, ave, None.")
        forward_layer = _layer_from_config(layer)
        if not isinstance(forward_layer, Recurrent):
            raise TypeError(
                f"Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU), got {type(forward_layer).__name__}."
            )
        if backward_layer is None:
            config = forward_layer.get_config()
            config["go_backwards"] = not forward_layer.go_backwards
            config["name"] = None
            if forward_layer.seed is not None:
                config["seed"] = forward_layer.seed + 1
            backward_layer = type(forward_layer)(**config)
        else:
            backward_layer = _layer_from_config(backward_layer)
            if not isinstance(backward_layer, Recurrent):
                raise TypeError("backward_layer must be a recurrent layer.")
            if backward_layer.go_backwards == forward_layer.go_backwards:
                raise ValueError("backward_layer must have go_backwards opposite to the forward layer's.")
        for attr in ("return_sequences", "return_state", "stateful"):
            if getattr(backward_layer, attr) != getattr(forward_layer, attr):
                raise ValueError(f"Forward and backward layers must agree on {attr}.")
        sizes = (getattr(forward_layer, "units", None), getattr(backward_layer, "units", None))
        if merge_mode in ("sum", "mul", "ave") and sizes[0] != sizes[1]:
            raise ValueError(
                f"merge_mode={merge_mode!r} combines the two directions element by element, so they need the same "
                f"number of units; got {sizes[0]} forward and {sizes[1]} backward (use merge_mode='concat' or None "
                "for directions of different sizes).")
        if forward_layer.stateful:
            raise ValueError("Bidirectional does not support stateful layers.")
        regs = (forward_layer.activity_regularizer, backward_layer.activity_regularizer)
        if any(r is not None for r in regs):
            # with concat (or no merge) the penalty of the merged outputs is the sum of the two directions',
            # which is what Keras adds; after sum, ave or mul it is not
            from rnnkit import regularizers

            if merge_mode not in ("concat", None) or regularizers.serialize(regs[0]) != regularizers.serialize(regs[1]):
                raise ValueError(
                    "Bidirectional supports an activity_regularizer on the wrapped layer only with merge_mode='concat' "
                    f"or None and the same one on both directions; got merge_mode={merge_mode!r} and {regs}."
                )
            self.activity_regularizer = regs[0]
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = forward_layer.return_sequences
        self.return_state = forward_layer.return_state
        self.go_backwards = False
        for sub in (forward_layer, backward_layer):
            sub.zero_output_for_mask = sub.return_sequences   # as Keras forces it
        self._outputs: tuple | None = None

    @property
    def n_states(self) -> int:
        return 2 * self.forward_layer.n_states

    @property
    def units(self) -> int:
        return self.forward_layer.units

    def check_input_shape(self, input_shape):
        self.forward_layer.name = self.forward_layer.name or self.forward_layer.default_name()
        self.forward_layer.check_input_shape(input_shape)

    def build(self, input_shape):
        super().build(input_shape)
        base = self.forward_layer.default_name()
        if self.forward_layer.name in (None, base):
            self.forward_layer.name = f"forward_{base}"
        if self.backward_layer.name is None:
            self.backward_layer.name = f"backward_{self.backward_layer.default_name()}"
        for sub, suffix in ((self.forward_layer, 0), (self.backward_layer, 1)):
            if sub.seed is None and self.fallback_seed is not None:
                sub.fallback_seed = [*np.atleast_1d(self.fallback_seed).tolist(), suffix]
            sub.build(input_shape)
        self.params = {**{f"forward/{k}": v for k, v in self.forward_layer.params.items()},
                       **{f"backward/{k}": v for k, v in self.backward_layer.params.items()}}
        self._collect_grads()
        # the directions' penalties and projections, under the names their weights have here
        for attr in ("regularizers", "constraints"):
            setattr(self, attr, {f"{prefix}/{k}": v for prefix, sub in (("forward", self.forward_layer),
                                                                        ("backward", self.backward_layer))
                                 for k, v in getattr(sub, attr).items()})
        self.output_shape = self.compute_output_shape(self.input_shape)

    def _collect_grads(self):
        self.grads = {**{f"forward/{k}": v for k, v in self.forward_layer.grads.items()},
                      **{f"backward/{k}": v for k, v in self.backward_layer.grads.items()}}

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            shape = (*shape[:-1], 2 * shape[-1])
        return shape

    def output_shape_for_call(self, input_shape, **kwargs):
        out = self.compute_output_shape(input_shape)
        if self.merge_mode is None:
            out = [out, out]
        if not self.return_state:
            return out
        return [*(out if isinstance(out, list) else [out]), *[(self.units,)] * self.n_states]

    def compute_mask(self, inputs, mask):
        if isinstance(mask, list):
            mask = mask[0]
        out = mask if self.return_sequences else None
        n_out = 2 if self.merge_mode is None else 1
        if n_out == 1 and not self.return_state:
            return out
        return [out] * n_out + [None] * (self.n_states if self.return_state else 0)

    call_state = ("_outputs",)

    def get_call_state(self):
        return (super().get_call_state(), self.forward_layer.get_call_state(),
                self.backward_layer.get_call_state())

    def set_call_state(self, state):
        own, fwd, bwd = state
        super().set_call_state(own)
        self.forward_layer.set_call_state(fwd)
        self.backward_layer.set_call_state(bwd)

    def forward(self, x, training=False, initial_state=None, mask=None):
        n = self.forward_layer.n_states
        init_f = init_b = None
        if initial_state is not None:
            states = list(initial_state)
            if len(states) != 2 * n:
                raise ValueError(f"Layer '{self.name}' takes {2 * n} initial states (forward, then backward), "
                                 f"got {len(states)}.")
            init_f, init_b = states[:n], states[n:]
        for sub in (self.forward_layer, self.backward_layer):
            sub.keep_cache = self.keep_cache
        yf, yb = _both(self.forward_layer.start_forward(x, training, init_f, mask),
                       self.backward_layer.start_forward(x, training, init_b, mask))
        for sub in (self.forward_layer, self.backward_layer):
            sub.keep_cache = True
        states = []
        if self.return_state:
            yf, states_f = yf[0], yf[1:]
            yb, states_b = yb[0], yb[1:]
            states = [*states_f, *states_b]
        if self.return_sequences:
            yb = yb[:, ::-1]                                  # back into time order
        self._outputs = (yf, yb)
        if self.merge_mode == "concat":
            out = np.concatenate([yf, yb], axis=-1)
        elif self.merge_mode == "sum":
            out = yf + yb
        elif self.merge_mode == "ave":
            out = (yf + yb) / 2
        elif self.merge_mode == "mul":
            out = yf * yb
        else:
            out = [yf, yb]
        if self.return_state:
            return [*(out if isinstance(out, list) else [out]), *states]
        return out

    def backward(self, dy: Any, dstates: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
        yf, yb = self._outputs
        h = yf.shape[-1]
        if self.merge_mode == "concat":
            dyf, dyb = dy[..., :h], dy[..., h:]
        elif self.merge_mode == "sum":
            dyf = dyb = dy
        elif self.merge_mode == "ave":
            dyf = dyb = dy / 2
        elif self.merge_mode == "mul":
            dyf, dyb = dy * yb, dy * yf
        else:
            dyf, dyb = dy
        if self.return_sequences:
            dyb = dyb[:, ::-1]
        n = self.forward_layer.n_states
        ds = [None] * (2 * n) if dstates is None else list(dstates)
        for sub in (self.forward_layer, self.backward_layer):
            sub.need_input_grad = self.need_input_grad
        dx_f, dx_b = _both(self.forward_layer.start_backward(dyf, ds[:n]),
                           self.backward_layer.start_backward(dyb, ds[n:]))
        self._collect_grads()
        return None if dx_f is None else dx_f + dx_b

    def backward_call(self, output_grads):
        n_out = 2 if self.merge_mode is None else 1
        dy = output_grads[0] if n_out == 1 else output_grads[:2]
        dx = self.backward(dy, dstates=output_grads[n_out:] if self.return_state else None)
        return dx, {"initial_state": self.initial_state_grads}

    @property
    def initial_state_grads(self):
        return [*self.forward_layer.initial_state_grads, *self.backward_layer.initial_state_grads]

    def get_config(self):
        return {**super().get_config(), "layer": _serialize(self.forward_layer), "merge_mode": self.merge_mode,
                "backward_layer": _serialize(self.backward_layer)}
