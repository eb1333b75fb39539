"""The part every recurrent layer shares: batch/time layout, direction, what is returned.

A concrete layer (``SimpleRNN``; the gated cells later) implements two methods on
*time-major* arrays:

* ``run_forward(x (T, B, D), states0 [(B, H), ...]) -> (h_seq (T, B, H), final_states)``
* ``run_backward(dh_seq (T, B, H) or None, dfinal [(B, H), ...]) -> (dx (T, B, D), dstates0)``

``run_backward`` is backpropagation through time: a reversed loop over the steps that
adds the gradient arriving from the step's own output to the one carried back from the
step after it. This class turns Keras' batch-major ``(B, T, D)`` inputs into that form,
applies ``go_backwards`` and returns the last output, the whole sequence and/or the
final states.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rnnkit import backend
from rnnkit.layers.base import Layer, check_positive_int


class Recurrent(Layer):
    input_rank = 3
    #: how many state arrays of shape (B, H) the layer carries (1 for SimpleRNN and GRU, 2 for LSTM)
    n_states = 1

    def __init__(self, units: int, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, name: str | None = None, input_shape: Any = None,
                 seed: int | None = None):
        super().__init__(name=name, input_shape=input_shape, seed=seed)
        self.units = check_positive_int("units", units)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.initial_state_grads: list[np.ndarray] | None = None

    def check_input_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects 3-D input (batch, timesteps, "
                f"features), got shape {(None, *input_shape)}. If it follows another recurrent "
                "layer, set return_sequences=True on that layer."
            )
        if input_shape[-1] is None:
            raise ValueError(f"Layer '{self.name}' needs the number of input features to be known.")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units) if self.return_sequences else (self.units,)

    # -- forward ------------------------------------------------------------------
    def __call__(self, x: Any, training: bool = False, initial_state: Any = None):
        x = np.asarray(x, dtype=self.dtype if self.built else backend.float_dtype())
        if not self.built:
            self.build(x.shape[1:])
        return self.forward(x, training=training, initial_state=initial_state)

    def _initial_states(self, batch: int, dtype, initial_state: Any) -> list[np.ndarray]:
        if initial_state is None:
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

    def forward(self, x, training=False, initial_state=None):
        x_tm = x.transpose(1, 0, 2)                       # (T, B, D)
        if self.go_backwards:
            x_tm = x_tm[::-1]
        x_tm = np.ascontiguousarray(x_tm, dtype=self.dtype)
        states0 = self._initial_states(x.shape[0], x_tm.dtype, initial_state)
        h_seq, final_states = self.run_forward(x_tm, states0, training)
        out = h_seq.transpose(1, 0, 2) if self.return_sequences else final_states[0]  # (B, T, H) | (B, H)
        return [out, *final_states] if self.return_state else out

    # -- backward -----------------------------------------------------------------
    def backward(self, dy: np.ndarray, dstates: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
        """BPTT from ``dL/d output`` (and optionally ``dL/d final states``) to ``dL/dx``.

        The gradient with respect to the initial states is left in ``initial_state_grads``.
        """
        dfinal = [None] * self.n_states if dstates is None else list(dstates)
        if self.return_sequences:
            dh_seq = dy.transpose(1, 0, 2)                # (T, B, H)
        else:
            dh_seq = None
            dfinal[0] = dy if dfinal[0] is None else dfinal[0] + dy
        dx_tm, self.initial_state_grads = self.run_backward(dh_seq, dfinal)
        if self.go_backwards:
            dx_tm = dx_tm[::-1]
        return dx_tm.transpose(1, 0, 2)                   # (B, T, D)

    def run_forward(self, x_tm, states0, training):  # pragma: no cover - abstract
        raise NotImplementedError

    def run_backward(self, dh_seq, dfinal):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "units": self.units, "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards}
