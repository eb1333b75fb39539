"""The part every recurrent layer shares: batch/time layout, direction, masks, dropout, state.

A concrete layer (``SimpleRNN``, ``LSTM``, ``GRU``) implements two methods on *time-major*
arrays:

* ``run_forward(x (T, B, D), states0 [(B, H), ...]) -> (h_seq (T, B, H), final_states)``
* ``run_backward(dh_seq (T, B, H) or None, dfinal [(B, H) or None, ...]) -> (dx (T, B, D), dstates0)``

``run_backward`` is backpropagation through time: a reversed loop over the steps that adds
the gradient arriving from the step's own output to the one carried back from the step
after it. This class turns Keras' batch-major ``(B, T, D)`` inputs into that form and back,
and prepares what the loops read from ``self``:

* ``self._mask_tm`` ``(T, B, 1)`` bool or None: at a masked step the state is carried over
  unchanged (``h_t = h_{t-1}``), so its gradient passes straight through to ``h_{t-1}``;
* ``self._rec_mask`` ``(B, H)`` or None: variational recurrent dropout, one mask per
  sequence multiplied into ``h_{t-1}`` where it enters the recurrent matmul.

Input dropout (one ``(B, D)`` mask per sequence, reused at every step) is applied here.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rnnkit import activations, initializers, kernels
from rnnkit.layers import penalties
from rnnkit.layers.base import Layer, check_positive_int
from rnnkit.threads import step_threads


def _check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}.")
    return float(value)


class Recurrent(Layer):
    input_rank = 3
    supports_masking = True
    consumes_mask = True
    call_state = ("_cache", "_mask_tm", "_in_mask", "_rec_mask")
    #: how many state arrays of shape (B, H) the layer carries (1 for SimpleRNN and GRU, 2 for LSTM)
    n_states = 1

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False, zero_output_for_mask: bool = False,
                 implementation: int = 2, name: str | None = None, input_shape: Any = None, seed: int | None = None):
        """Store Keras' settings of a recurrent layer.

        The regularizers and constraints (names, configs or objects) go to ``self.regularizers`` /
        ``self.constraints`` under the weight names ``kernel``, ``recurrent_kernel`` and ``bias``
        (bias ones are ignored when ``use_bias`` is False, as in Keras).

        ``unroll`` and ``implementation`` are accepted for compatibility with Keras and checked, but
        change nothing: they choose how Keras schedules the same computation (a Python loop unrolled
        into the graph; one fused matmul per step or one per gate), and rnnkit always runs the
        explicit time loop with the input projection of all steps hoisted out of it.
        """
        super().__init__(name=name, input_shape=input_shape, seed=seed)
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        weights = {"kernel": (kernel_regularizer, kernel_constraint),
                   "recurrent_kernel": (recurrent_regularizer, recurrent_constraint)}
        if self.use_bias:
            weights["bias"] = (bias_regularizer, bias_constraint)
        penalties.attach(self, weights, activity_regularizer)
        if not isinstance(unroll, (bool, np.bool_)):
            raise TypeError(f"unroll must be True or False, got {type(unroll).__name__}: {unroll!r}.")
        self.unroll = bool(unroll)
        if isinstance(implementation, bool) or implementation not in (1, 2):
            raise ValueError(f"implementation must be 1 or 2 (as in Keras), got {implementation!r}.")
        self.implementation = int(implementation)
        self._cache: tuple | None = None
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states: list[np.ndarray] | None = None   # carried between calls when stateful
        self.initial_state_grads: list[np.ndarray] | None = None
        self._mask_tm: np.ndarray | None = None
        self._in_mask: np.ndarray | None = None
        self._rec_mask: np.ndarray | None = None
        self._rng: np.random.Generator | None = None
        #: when True, backward keeps the total gradient dL/dh_t of every step in ``state_grads``
        self.record_state_grads = False
        self.state_grads: np.ndarray | None = None

    def check_input_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects 3-D input (batch, timesteps, "
                f"features), got shape {(None, *input_shape)}. If it follows another recurrent "
                "layer, set return_sequences=True on that layer."
            )
        if input_shape[-1] is None:
            raise ValueError(f"Layer '{self.name}' needs the number of input features to be known.")

    def build(self, input_shape):
        super().build(input_shape)
        # the weights were drawn from a fresh generator; dropout masks continue the stream
        self._rng = np.random.default_rng(np.random.SeedSequence(self.seed if self.seed is not None
                                                                 else self.fallback_seed).spawn(1)[0])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    def output_shape_for_call(self, input_shape, **kwargs):
        out = self.compute_output_shape(input_shape)
        return [out, *[(self.units,)] * self.n_states] if self.return_state else out

    def compute_mask(self, inputs, mask):
        if isinstance(mask, list):          # Keras: the time-step mask of the (first) input
            mask = mask[0]
        out = mask if self.return_sequences else None
        return [out, *[None] * self.n_states] if self.return_state else out

    # -- state ----------------------------------------------------------------------
    def reset_states(self, states: Sequence[Any] | None = None) -> None:
        """Forget the carried state of a ``stateful`` layer (or set it to ``states``)."""
        if not self.stateful:
            raise ValueError(f"Layer '{self.name}' is not stateful; pass stateful=True to carry state.")
        if states is None:
            self.states = None
            return
        batch = np.asarray(states[0] if not isinstance(states, np.ndarray) else states).shape[0]
        self.states = self._initial_states(batch, self.dtype, states)

    def _initial_states(self, batch: int, dtype, initial_state: Any) -> list[np.ndarray]:
        if initial_state is None:
            if self.stateful and self.states is not None:
                if self.states[0].shape[0] != batch:
                    raise ValueError(
                        f"Stateful layer '{self.name}' carries state for batch size {self.states[0].shape[0]} "
                        f"but got a batch of {batch}; feed batches of one size (fit(..., shuffle=False) with "
                        "a batch_size that divides the data) or call reset_states()."
                    )
                return [s.copy() for s in self.states]
            return [np.zeros((batch, self.units), dtype=dtype) for _ in range(self.n_states)]
        states = [initial_state] if isinstance(initial_state, np.ndarray) else list(initial_state)
        if len(states) != self.n_states:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) takes {self.n_states} initial state "
                f"array(s) of shape ({batch}, {self.units}), got {len(states)}."
            )
        out = []
        for s in states:
            s = np.asarray(s, dtype=dtype)
            if s.shape != (batch, self.units):
                raise ValueError(
                    f"Layer '{self.name}' initial state must have shape ({batch}, {self.units}), got {s.shape}."
                )
            out.append(s.copy())
        return out

    # -- forward ------------------------------------------------------------------------
    def _dropout_mask(self, shape: tuple, rate: float, dtype) -> np.ndarray:
        return (self._rng.random(shape) >= rate).astype(dtype) / (1.0 - rate)

    def forward(self, x, training=False, initial_state=None, mask=None):
        call, finish = self.start_forward(x, training, initial_state, mask)
        if call is not None:
            kernels.run(call)
        return finish()

    def start_forward(self, x, training=False, initial_state=None, mask=None) -> tuple[dict | None, Any]:
        """Forward up to the time loop: ``(kernel call or None, finish)``; ``finish()`` gives the output.

        On the NumPy path the loop has run already and the call is None; on the compiled path the
        caller runs the call (``kernels.run``), which lets Bidirectional run both directions at once.
        """
        B, T, D = x.shape
        x_tm = self._time_major(x, mask)                  # (T, B, D), in reading order
        self._in_mask = self._rec_mask = None
        if training and self.dropout:
            self._in_mask = self._dropout_mask((B, D), self.dropout, x_tm.dtype)
            x_tm = x_tm * self._in_mask                   # the same mask at every step (a copy: x_tm may view x)
        if training and self.recurrent_dropout:
            self._rec_mask = self._dropout_mask((B, self.units), self.recurrent_dropout, x_tm.dtype)
        states0 = self._initial_states(B, x_tm.dtype, initial_state)
        if self.kernel_covers(x_tm.dtype):
            call, loop_done = self.kernel_forward(x_tm, states0)
        else:
            call, result = None, self.run_forward(x_tm, states0)
            loop_done = lambda: result                    # noqa: E731

        def finish():
            h_seq, final_states = loop_done()
            if self.stateful:
                self.states = [s.copy() for s in final_states]
            out = self._layer_output(h_seq, final_states[0])
            return [out, *final_states] if self.return_state else out

        return call, finish

    def _time_major(self, x: np.ndarray, mask: Any) -> np.ndarray:
        """``x (B, T, D)`` as a contiguous ``(T, B, D)`` in reading order; the mask kept in ``_mask_tm``."""
        B, T, D = x.shape
        x_tm = x.transpose(1, 0, 2)                       # (T, B, D)
        if self.go_backwards:
            x_tm = x_tm[::-1]
        x_tm = np.ascontiguousarray(x_tm, dtype=self.dtype)
        self._mask_tm = None
        if mask is not None:
            m = np.asarray(mask, dtype=bool).T            # (T, B)
            if m.shape != (T, B):
                raise ValueError(f"Layer '{self.name}' got a mask of shape {np.shape(mask)}, expected ({B}, {T}).")
            self._mask_tm = np.ascontiguousarray(m[::-1] if self.go_backwards else m)[:, :, None]  # (T, B, 1)
        return x_tm

    def _layer_output(self, seq: np.ndarray, last: np.ndarray) -> np.ndarray:
        """The output: the sequence ``(T, B, H) -> (B, T, H)`` or the ``last (B, H)``, masked as Keras does."""
        out_mask = self._output_mask()
        if self.return_sequences:
            if out_mask is not None:
                seq = seq * out_mask
            return seq.transpose(1, 0, 2)                 # (B, T, H)
        return last if out_mask is None else last * out_mask[-1]   # (B, H): the last unmasked output

    def _output_grads(self, dy: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(dL/d sequence (T, B, H) or None, dL/d last output (B, H) or None)``: ``_layer_output`` reversed."""
        out_mask = self._output_mask()
        if self.return_sequences:
            dy_seq = dy.transpose(1, 0, 2)                # (T, B, H)
            return (dy_seq if out_mask is None else dy_seq * out_mask), None
        return None, (dy if out_mask is None else dy * out_mask[-1])

    def _output_mask(self) -> np.ndarray | None:
        """Which outputs are real, as Keras computes them: (T, B, 1) or None.

        At a masked step Keras repeats the previous *output*, which starts as zeros, so outputs
        before a sequence's first real step are zero even when the initial state is not; with
        ``zero_output_for_mask`` every masked step's output is zero.
        """
        if self._mask_tm is None:
            return None
        if self.zero_output_for_mask and self.return_sequences:
            return self._mask_tm
        return np.logical_or.accumulate(self._mask_tm, axis=0)   # seen a real step yet?

    # -- backward -------------------------------------------------------------------------
    def backward(self, dy: np.ndarray, dstates: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
        """BPTT from ``dL/d output`` (and optionally ``dL/d final states``) to ``dL/dx``.

        The gradient with respect to the initial states is left in ``initial_state_grads``.
        """
        call, finish = self.start_backward(dy, dstates)
        if call is not None:
            kernels.run(call)
        return finish()

    def start_backward(self, dy: np.ndarray, dstates: Sequence[np.ndarray | None] | None = None):
        """Backward up to the reversed time loop: ``(kernel call or None, finish)``, as ``start_forward``."""
        if self._cache is None:
            raise RuntimeError(f"Layer '{self.name}' ran forward without keeping what backward needs "
                               "(keep_cache was False); run it again with keep_cache=True.")
        dfinal = [None] * self.n_states if dstates is None else list(dstates)
        dh_seq, d_last = self._output_grads(dy)
        if d_last is not None:                            # the output is the final state h_T
            dfinal[0] = d_last if dfinal[0] is None else dfinal[0] + d_last
        if self.kernel_covers(self.dtype) and not self.record_state_grads:
            call, loop_done = self.kernel_backward(dh_seq, dfinal)
        else:
            call, result = None, self.run_backward(dh_seq, dfinal)
            loop_done = lambda: result                    # noqa: E731

        def finish():
            dx_tm, self.initial_state_grads = loop_done()
            if self.state_grads is not None and self.go_backwards:
                self.state_grads = self.state_grads[::-1]     # (T, B, H) in time order, like the input
            if dx_tm is None:                                 # the model's first layer: not needed
                return None
            if self._in_mask is not None:
                dx_tm *= self._in_mask
            if self.go_backwards:
                dx_tm = dx_tm[::-1]
            return dx_tm.transpose(1, 0, 2)                   # (B, T, D)

        return call, finish

    # -- the compiled core: a cell that has kernels overrides these --------------------------------------
    def kernel_covers(self, dtype) -> bool:
        """Whether the compiled core runs this layer's time loop (else the NumPy reference does)."""
        return False

    def kernel_forward(self, x_tm, states0) -> tuple[dict, Any]:  # pragma: no cover - abstract
        """``(kernel call, done)``: ``done()`` gives what ``run_forward`` returns, once the call has run."""
        raise NotImplementedError

    def kernel_backward(self, dh_seq, dfinal) -> tuple[dict, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward_call(self, output_grads):
        if self.return_state:
            dx = self.backward(output_grads[0], dstates=output_grads[1:])
        else:
            dx = self.backward(output_grads[0])
        return dx, {"initial_state": self.initial_state_grads}

    #: how many gate blocks the recurrent kernel has (H x G*H): 1 SimpleRNN, 4 LSTM, 3 GRU
    gates = 1

    def loop_threads(self, batch: int) -> step_threads:
        """BLAS threads for the time loop: one when the step's (B, H) x (H, G*H) matmul is small."""
        return step_threads(2.0 * batch * self.units * self.gates * self.units)

    def _new_state_grads(self, T: int, B: int, dtype) -> np.ndarray | None:
        """The buffer the BPTT loop fills with dL/dh_t when ``record_state_grads`` is on."""
        if not self.record_state_grads:
            self.state_grads = None
            return None
        self.state_grads = np.empty((T, B, self.units), dtype=dtype)
        return self.state_grads

    def run_forward(self, x_tm, states0):  # pragma: no cover - abstract
        raise NotImplementedError

    def run_backward(self, dh_seq, dfinal):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        config = {**super().get_config(), "units": self.units, "return_sequences": self.return_sequences,
                  "return_state": self.return_state, "go_backwards": self.go_backwards,
                  "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                  "kernel_initializer": initializers.serialize(self.kernel_initializer),
                  "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                  "bias_initializer": initializers.serialize(self.bias_initializer)}
        config.update(penalties.config(self, {"kernel": "kernel", "recurrent_kernel": "recurrent", "bias": "bias"}))
        for key, default in (("dropout", 0.0), ("recurrent_dropout", 0.0), ("stateful", False),
                             ("zero_output_for_mask", False), ("unroll", False), ("implementation", 2)):
            if getattr(self, key) != default:
                config[key] = getattr(self, key)
        return config


class GatedRecurrent(Recurrent):
    """What LSTM and GRU add: a ``recurrent_activation`` (sigmoid by default) for their gates."""

    def __init__(self, units: int, recurrent_activation: Any = "sigmoid", **kwargs):
        super().__init__(units, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)

    def get_config(self):
        return {**super().get_config(),
                "recurrent_activation": activations.serialize(self.recurrent_activation)}
