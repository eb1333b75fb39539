"""``RNN``: Keras' generic recurrent layer, which runs any cell over a sequence, with BPTT.

The loop is the one every recurrent layer has (``Recurrent``): time-major, masked steps keep
the states, ``go_backwards``, ``stateful``; only the step is the cell's. Backward is an
explicit reversed loop over the steps: before each step's ``cell.backward`` the cell's call
state of that step is restored (``set_call_state``), and the steps' weight gradients are summed.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from rnnkit.layers.base import Layer
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.rnn_cell import output_size_of, takes_training
from rnnkit.layers.stacked_rnn_cells import StackedRNNCells, cell_from_config, check_cell, serialize_cell


def state_structure(cell: Any) -> list:
    """How ``RNN`` lays out a cell's states: a list with one size per state array.

    A stack has one entry per cell, that cell's own list, as Keras returns them:
    ``StackedRNNCells([LSTMCell(4), GRUCell(3)])`` gives ``[[4, 4], [3]]``.
    """
    if isinstance(cell, StackedRNNCells):
        return [state_structure(c) for c in cell.cells]
    size = cell.state_size
    return _sizes(size) if isinstance(size, (list, tuple)) else [int(size)]


def _sizes(size: Sequence) -> list:
    return [_sizes(s) if isinstance(s, (list, tuple)) else int(s) for s in size]


def leaves(structure: Any) -> list[int]:
    """The sizes in a (nested) structure, in order: one per state array."""
    if isinstance(structure, list):
        return [s for sub in structure for s in leaves(sub)]
    return [structure]


def pack(flat: Iterator, structure: Any) -> Any:
    """Lay out the arrays of ``flat`` as ``structure`` (the inverse of ``flatten_states``)."""
    if isinstance(structure, list):
        return [pack(flat, s) for s in structure]
    return next(flat)


def flatten_states(values: Any, structure: list, what: str) -> list:
    """The state arrays in ``values`` (laid out as ``structure``, or already flat), one per size.

    A bare array stands for a group of one state, and None for a group without a value (no gradient).
    """
    try:
        return _flatten(values, structure)
    except _Mismatch:
        n = len(leaves(structure))
        raise ValueError(f"{what} must be {n} state array(s) laid out as {_describe(structure)} (or a flat list "
                         f"of {n}), got {_describe_given(values)}.") from None


class _Mismatch(Exception):
    pass


def _flatten(values: Any, structure: list) -> list:
    n = len(leaves(structure))
    if values is None:
        return [None] * n
    if not isinstance(values, (list, tuple)):
        if n != 1:
            raise _Mismatch
        return [values]
    values = list(values)
    if len(values) == n and not any(isinstance(v, (list, tuple)) for v in values):
        return values                                       # already flat
    if len(values) != len(structure):
        raise _Mismatch
    out: list = []
    for v, s in zip(values, structure):
        if isinstance(s, list):
            out += _flatten(v, s)
        elif isinstance(v, (list, tuple)):
            raise _Mismatch
        else:
            out.append(v)
    return out


def _describe_given(values: Any) -> str:
    if isinstance(values, (list, tuple)):
        return "[" + ", ".join(_describe_given(v) for v in values) + "]"
    return "None" if values is None else f"an array of shape {np.shape(values)}"


def _describe(structure: Any) -> str:
    if isinstance(structure, list):
        return "[" + ", ".join(_describe(s) for s in structure) + "]"
    return f"(B, {structure})"


class RNN(Recurrent):
    """Run ``cell`` over the time axis: ``RNN(LSTMCell(n))`` computes what ``LSTM(n)`` does.

    ``cell`` is a cell object (``SimpleRNNCell``, ``LSTMCell``, ``GRUCell``, ``StackedRNNCells`` or
    a user's ``Layer`` with ``state_size``, ``call`` and ``backward``), a list of cells (stacked),
    or a cell config ``{"class_name", "config"}`` of a built-in cell. Each step::

        y_t, states_t = cell.call(x_t, states_{t-1})              x_t (B, D), y_t (B, O)

    At a masked step the states are kept and the output repeats the previous one (zeros before the
    first real step), as in Keras. ``forward(x, training=False, initial_state=None, mask=None)``
    returns ``y (B, O)``, ``(B, T, O)`` with ``return_sequences``, and with ``return_state``
    ``[output, *states]``: for one cell its state arrays, for a stack one list per cell.

    ``params`` are the cell's weight arrays themselves (a stack's named ``cell_<k>/<name>``), so
    updates and ``set_weights`` reach the cell. ``n_states`` is the number of entries after the
    output with ``return_state`` (one per cell of a stack), ``units`` the size every state array
    shares (None if they differ), ``output_size`` the width of ``y``.
    """

    call_state = ("_cache", "_mask_tm")

    def __init__(self, cell: Any, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, name: str | None = None, input_shape: Any = None):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        cell = cell_from_config(cell)
        check_cell(cell, "The cell of RNN")
        output_size = output_size_of(cell)
        if isinstance(output_size, bool) or not isinstance(output_size, (int, np.integer)) or output_size <= 0:
            raise ValueError(f"The cell {type(cell).__name__} has output_size={output_size!r}; expected a positive "
                             "integer (set self.output_size, or make state_size's first entry the output width).")
        super().__init__(int(output_size), return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, zero_output_for_mask=zero_output_for_mask,
                         name=name, input_shape=input_shape)
        self.cell = cell
        self.unroll = bool(unroll)             # accepted for Keras; the NumPy loop is the same either way
        self.output_size = int(output_size)
        self.state_structure = state_structure(cell)
        self.state_sizes = leaves(self.state_structure)
        self.n_states = len(self.state_structure)
        self.units = self.state_sizes[0] if len(set(self.state_sizes)) == 1 else None
        self._takes_training = takes_training(cell)
        self._training = False

    # -- building -------------------------------------------------------------------------
    def make_params(self, input_shape, dtype, rng):
        cell = self.cell
        if cell.name is None:
            cell.name = cell.default_name()
        if cell.seed is None and cell.fallback_seed is None:
            cell.fallback_seed = self.fallback_seed         # a seeded model seeds the cell as it seeds a layer
        if not cell.built:
            cell.build((input_shape[-1],))
            cell.built = True
        self.non_trainable_weights = tuple(cell.non_trainable_weights)
        self.regularizers, self.constraints = dict(cell.regularizers), dict(cell.constraints)
        return dict(cell.params)                            # the same arrays, not copies

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_size) if self.return_sequences else (self.output_size,)

    def output_shape_for_call(self, input_shape, **kwargs):
        out = self.compute_output_shape(input_shape)
        if not self.return_state:
            return out
        if any(isinstance(s, list) for s in self.state_structure):
            raise ValueError(
                f"Layer '{self.name}' (RNN of {type(self.cell).__name__}) returns its states as one list per cell "
                "(as Keras), which a model graph cannot hold as separate outputs; call the layer on arrays, or "
                "stack RNN layers with return_state instead."
            )
        return [out, *[(s,) for s in self.state_sizes]]

    # -- state --------------------------------------------------------------------------------
    def _initial_states(self, batch, dtype, initial_state):
        if initial_state is None:
            if self.stateful and self.states is not None:
                if self.states[0].shape[0] != batch:
                    raise ValueError(
                        f"Stateful layer '{self.name}' carries state for batch size {self.states[0].shape[0]} "
                        f"but got a batch of {batch}; feed batches of one size or call reset_states()."
                    )
                return [s.copy() for s in self.states]
            if not hasattr(self.cell, "get_initial_state"):
                return [np.zeros((batch, s), dtype=dtype) for s in self.state_sizes]
            initial_state = self.cell.get_initial_state(batch_size=batch)      # as Keras asks the cell
        what = f"The initial_state of layer '{self.name}' (RNN of {type(self.cell).__name__})"
        states = flatten_states(initial_state, self.state_structure, what)
        out = []
        for s, size in zip(states, self.state_sizes):
            s = np.asarray(s, dtype=dtype)
            if s.shape != (batch, size):
                raise ValueError(f"{what} must be arrays of shapes {_describe(self.state_structure)} with "
                                 f"B={batch}; got one of shape {s.shape} where ({batch}, {size}) belongs.")
            out.append(s.copy())
        return out

    def reset_states(self, states: Any = None) -> None:
        """Forget the carried state of a ``stateful`` layer (or set it to ``states``, flat or per cell)."""
        if states is not None:
            states = flatten_states(states, self.state_structure, f"The states of layer '{self.name}'")
        super().reset_states(states)

    # -- forward ------------------------------------------------------------------------------
    def start_forward(self, x, training=False, initial_state=None, mask=None):
        """The whole forward pass (a cell's steps run in Python, so there is no kernel call to hand back)."""
        x_tm = self._time_major(x, mask)                    # (T, B, D); a cell draws its own dropout masks
        states0 = self._initial_states(x.shape[0], x_tm.dtype, initial_state)
        self._training = bool(training)
        y_seq, final_states = self.run_forward(x_tm, states0)
        if self.stateful:
            self.states = [s.copy() for s in final_states]
        out = self._layer_output(y_seq, y_seq[-1])          # a cell's output need not be its first state
        result = [out, *pack(iter(final_states), self.state_structure)] if self.return_state else out
        return None, lambda: result

    def _call_cell(self, x_t: np.ndarray, states: list) -> tuple:
        packed = pack(iter(states), self.state_structure)
        if self._takes_training:
            return self.cell.call(x_t, packed, training=self._training)
        return self.cell.call(x_t, packed)

    def run_forward(self, x_tm, states0):
        """The steps in reading order: ``y_seq (T, B, O)`` (masked steps repeat the output) and final states."""
        T, B, D = x_tm.shape
        cell, mask = self.cell, self._mask_tm
        if hasattr(cell, "start_sequence"):
            cell.start_sequence(B, self._training)         # this sequence's dropout masks
        what = f"The cell {type(cell).__name__} of layer '{self.name}'"
        y_seq = np.empty((T, B, self.output_size), dtype=x_tm.dtype)
        y_prev = np.zeros((B, self.output_size), dtype=x_tm.dtype)
        states = list(states0)
        steps = []                                          # each step's cell call state, for backward
        for t in range(T):
            y, new_states = self._call_cell(x_tm[t], states)
            new_states = flatten_states(new_states, self.state_structure, f"{what} returned states that")
            steps.append(cell.get_call_state())
            if t == 0:
                self._check_step(y, new_states, B, what)
            if mask is not None:                            # masked: keep the states, repeat the output
                y = np.where(mask[t], y, y_prev)
                new_states = [np.where(mask[t], n, s) for n, s in zip(new_states, states)]
            y_seq[t] = y
            y_prev, states = y_seq[t], new_states
        self._cache = (steps, x_tm.shape)
        return y_seq, states

    def _check_step(self, y, states, batch, what):
        if np.shape(y) != (batch, self.output_size):
            raise ValueError(f"{what} returned an output of shape {np.shape(y)}; expected ({batch}, "
                             f"{self.output_size}) from its output_size.")
        for s, size in zip(states, self.state_sizes):
            if np.shape(s) != (batch, size):
                raise ValueError(f"{what} returned a state of shape {np.shape(s)}; expected ({batch}, {size}) "
                                 f"from its state_size {self.cell.state_size!r}.")

    # -- backward -----------------------------------------------------------------------------
    def start_backward(self, dy: np.ndarray, dstates: Sequence | None = None):
        """BPTT from ``dL/d output`` (and optionally ``dL/d final states``, flat or laid out as returned).

        The gradient with respect to the initial states is left in ``initial_state_grads``,
        laid out as the states are returned. Runs whole, like ``start_forward``.
        """
        if type(self.cell).backward is Layer.backward:
            raise NotImplementedError(f"The cell {type(self.cell).__name__} of layer '{self.name}' has no backward; "
                                      "a cell used in training writes backward(d_output, d_states) -> (d_inputs, "
                                      "d_states) for one step, setting self.grads[name] for each weight.")
        dfinal = flatten_states(dstates, self.state_structure, f"The state gradients of layer '{self.name}'")
        dy_seq, d_last = self._output_grads(dy)
        dx_tm, dstates0 = self.run_backward(dy_seq, dfinal, d_last)
        self.initial_state_grads = pack(iter(dstates0), self.state_structure)
        if dx_tm is not None and self.go_backwards:
            dx_tm = dx_tm[::-1]
        dx = None if dx_tm is None else dx_tm.transpose(1, 0, 2)   # (B, T, D); None for a model's first layer
        return None, lambda: dx

    def run_backward(self, dy_seq, dfinal, d_last=None):
        """The reversed loop: ``dy_seq (T, B, O)`` or None, ``dfinal`` per state, ``d_last`` (B, O) or None.

        ``g_y`` is the total gradient of step t's output: its own (``dy_seq[t]``) plus what the
        next step passed back when it was masked and repeated it. The gradient of the last output
        (``return_sequences=False``) enters that carry before the last step.
        """
        steps, (T, B, D) = self._cache
        cell, mask = self.cell, self._mask_tm
        dtype = self.dtype
        d_states = [np.zeros((B, s), dtype=dtype) if d is None else d for d, s in zip(dfinal, self.state_sizes)]
        d_carry = np.zeros((B, self.output_size), dtype=dtype) if d_last is None else d_last
        totals = {k: np.zeros_like(self.params[k]) for k in self.grads}
        dx_tm = np.zeros((T, B, D), dtype=dtype) if self.need_input_grad else None   # (T, B, D)
        cell.need_input_grad = self.need_input_grad
        what = f"The cell {type(cell).__name__} of layer '{self.name}'"
        for t in reversed(range(T)):
            g_y = d_carry if dy_seq is None else d_carry + dy_seq[t]
            if mask is not None:                            # a masked step passes its gradients straight back
                d_carry = np.where(mask[t], 0.0, g_y)
                skipped = [np.where(mask[t], 0.0, d) for d in d_states]
                g_y = np.where(mask[t], g_y, 0.0)
                d_states = [np.where(mask[t], d, 0.0) for d in d_states]
            else:                                           # unmasked: y_t does not depend on y_{t-1}
                d_carry = np.zeros_like(g_y)
            cell.set_call_state(steps[t])
            dx_t, d_prev = cell.backward(g_y, pack(iter(d_states), self.state_structure))
            d_prev = flatten_states(d_prev, self.state_structure, f"{what} backward returned state gradients that")
            for k, total in totals.items():
                g = cell.grads.get(k)
                if g is None:
                    raise ValueError(f"{what}: its backward did not set grads[{k!r}].")
                total += g
            if dx_tm is not None and dx_t is not None:
                dx_tm[t] = dx_t
            if mask is not None:
                d_prev = [d + s for d, s in zip(d_prev, skipped)]
            d_states = d_prev
        self.grads = totals
        self.state_grads = None
        return dx_tm, d_states

    def get_config(self):
        config = {**Layer.get_config(self), "return_sequences": self.return_sequences,
                  "return_state": self.return_state, "go_backwards": self.go_backwards, "stateful": self.stateful,
                  "unroll": self.unroll, "zero_output_for_mask": self.zero_output_for_mask,
                  "cell": serialize_cell(self.cell)}
        return config
