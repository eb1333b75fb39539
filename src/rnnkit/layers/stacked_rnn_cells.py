"""``StackedRNNCells``: several cells run one above the other within each time step."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.layers.base import Layer
from rnnkit.layers.gru_cell import GRUCell
from rnnkit.layers.lstm_cell import LSTMCell
from rnnkit.layers.rnn_cell import output_size_of, takes_training
from rnnkit.layers.simple_rnn_cell import SimpleRNNCell


def check_cell(cell: Any, what: str = "cell") -> None:
    """Raise a clear error unless ``cell`` has Keras' cell API (``call`` and ``state_size``)."""
    if not callable(getattr(cell, "call", None)):
        raise TypeError(f"{what} must be an RNN cell with a call(inputs, states) method, got "
                        f"{type(cell).__name__}: {cell!r}.")
    size = getattr(cell, "state_size", None)
    if size is None:
        raise ValueError(f"{what} {type(cell).__name__} has no state_size. An RNN cell sets self.state_size in its "
                         "__init__: an integer (one state) or a list of integers, one per state array.")
    if not _valid_size(size):
        raise ValueError(f"{what} {type(cell).__name__} has state_size={size!r}; expected a positive integer or a "
                         "list of positive integers, one per state array.")
    if not isinstance(cell, Layer):
        raise TypeError(f"{what} must be an rnnkit Layer (a subclass of rnnkit.layers.Layer with call and backward), "
                        f"got {type(cell).__name__}.")


def _valid_size(size: Any) -> bool:
    if isinstance(size, (list, tuple)):
        return len(size) > 0 and all(_valid_size(s) for s in size)
    return isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0


def cell_from_config(config: Any) -> Layer:
    """A cell object as given, or one rebuilt from ``{"class_name": ..., "config": ...}`` (built-in cells only)."""
    if not isinstance(config, dict):
        return config
    name = config.get("class_name")
    if name not in CELL_CLASSES:
        valid = ", ".join(CELL_CLASSES)
        raise ValueError(f"Unknown cell class {name!r} in a cell config. Configs rebuild the built-in cells ({valid}); "
                         "pass a user's cell as an object, e.g. RNN(MyCell(4)).")
    inner = config.get("config", {})
    if not isinstance(inner, dict):
        raise TypeError(f"The config of cell {name!r} must be a dict, got {type(inner).__name__}.")
    return CELL_CLASSES[name](**inner)


def serialize_cell(cell: Layer) -> dict:
    return {"class_name": type(cell).__name__, "config": cell.get_config()}


class StackedRNNCells(Layer):
    """Run ``cells`` one above the other: each step feeds the output of cell k to cell k + 1.

    As in Keras: ``state_size`` is ``[cell.state_size for cell in cells]``, the states passed to
    ``call`` are one entry per cell (a list of that cell's states, or a bare array for a cell
    with one state), the output is the last cell's. ``RNN(StackedRNNCells(cells))`` returns, with
    ``return_state``, ``[output, states of cell 1, states of cell 2, ...]``, each a list.
    Weights are the cells' in order, named ``cell_<k>/<name>``.
    """

    input_rank = 2
    call_state = ("_cache",)

    def __init__(self, cells: Any, name: str | None = None):
        super().__init__(name=name)
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"StackedRNNCells takes a non-empty list of cells, got {cells!r}.")
        self.cells = [cell_from_config(c) for c in cells]
        for k, cell in enumerate(self.cells):
            check_cell(cell, f"cell {k} of StackedRNNCells")
        self._takes_training = [takes_training(c) for c in self.cells]
        self._cache: tuple | None = None

    @property
    def state_size(self) -> list:
        return [c.state_size for c in self.cells]

    @property
    def output_size(self) -> int:
        return output_size_of(self.cells[-1])

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.check_input_shape(shape)
        for k, cell in enumerate(self.cells):
            if cell.seed is None and cell.fallback_seed is None and self.fallback_seed is not None:
                cell.fallback_seed = [*np.atleast_1d(self.fallback_seed).tolist(), k]
            if not cell.built:
                cell.build(shape)
                cell.built = True
            shape = (output_size_of(cell),)
        self.params = {f"cell_{k}/{n}": v for k, c in enumerate(self.cells) for n, v in c.params.items()}
        self.grads = {f"cell_{k}/{n}": v for k, c in enumerate(self.cells) for n, v in c.grads.items()}
        self.non_trainable_weights = tuple(f"cell_{k}/{n}" for k, c in enumerate(self.cells)
                                           for n in c.non_trainable_weights)
        self.regularizers = {f"cell_{k}/{n}": r for k, c in enumerate(self.cells) for n, r in c.regularizers.items()}
        self.constraints = {f"cell_{k}/{n}": r for k, c in enumerate(self.cells) for n, r in c.constraints.items()}
        self.input_shape = tuple(input_shape)
        self.output_shape = (self.output_size,)
        self.built = True

    def compute_output_shape(self, input_shape):
        return (self.output_size,)

    def get_initial_state(self, batch_size: int) -> list:
        """One entry per cell: the cell's ``get_initial_state`` or zeros of its ``state_size``."""
        out = []
        for cell in self.cells:
            if hasattr(cell, "get_initial_state"):
                out.append(cell.get_initial_state(batch_size))
            else:
                sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
                out.append([np.zeros((batch_size, s), dtype=self.dtype) for s in sizes])
        return out

    def start_sequence(self, batch: int, training: bool) -> None:
        """Let every cell draw its dropout masks for a new sequence."""
        for cell in self.cells:
            if hasattr(cell, "start_sequence"):
                cell.start_sequence(batch, training)

    def __call__(self, inputs: Any, states: Any, training: bool = False):
        inputs = self._as_array(inputs)
        if not self.built:
            self.build(inputs.shape[1:])
        return self.call(inputs, states, training=training)

    def call(self, inputs: np.ndarray, states: list, training: bool = False) -> tuple:
        """``inputs (B, D)``, ``states`` one entry per cell -> ``(output of the last cell, new states)``."""
        if len(states) != len(self.cells):
            raise ValueError(f"StackedRNNCells of {len(self.cells)} cells takes one state entry per cell, "
                             f"got {len(states)}.")
        new_states, as_list = [], []
        for cell, s, train in zip(self.cells, states, self._takes_training):
            is_list = isinstance(s, (list, tuple))
            s = list(s) if is_list else [s]
            inputs, s_new = cell.call(inputs, s, training=training) if train else cell.call(inputs, s)
            s_new = list(s_new) if isinstance(s_new, (list, tuple)) else [s_new]
            new_states.append(s_new if is_list else s_new[0])
            as_list.append(is_list)
        self._cache = tuple(as_list)
        return inputs, new_states

    def backward(self, d_output: np.ndarray, d_states: list) -> tuple:
        """Through the cells from the top: each cell's input gradient is the output gradient of the one below."""
        as_list = self._cache
        d_in, d_prev = d_output, [None] * len(self.cells)
        for k in reversed(range(len(self.cells))):
            cell = self.cells[k]
            ds = d_states[k]
            if ds is None:
                ds = [None] * (len(cell.state_size) if isinstance(cell.state_size, (list, tuple)) else 1)
            ds = list(ds) if isinstance(ds, (list, tuple)) else [ds]
            cell.need_input_grad = self.need_input_grad or k > 0
            d_in, ds_prev = cell.backward(d_in, ds)
            ds_prev = list(ds_prev) if isinstance(ds_prev, (list, tuple)) else [ds_prev]
            d_prev[k] = ds_prev if as_list[k] else ds_prev[0]
        self.grads = {f"cell_{k}/{n}": g for k, c in enumerate(self.cells) for n, g in c.grads.items()}
        return d_in, d_prev

    # a step's call state is the stack's and every cell's
    def get_call_state(self):
        return super().get_call_state(), tuple(c.get_call_state() for c in self.cells)

    def set_call_state(self, state):
        own, cells = state
        super().set_call_state(own)
        for cell, s in zip(self.cells, cells):
            cell.set_call_state(s)

    def get_config(self):
        return {**super().get_config(), "cells": [serialize_cell(c) for c in self.cells]}


#: the cells a config may name
CELL_CLASSES = {cls.__name__: cls for cls in (SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells)}
