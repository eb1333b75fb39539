"""What the built-in cells share, and how a recurrent loop drives any cell.

A *cell* computes one time step (Keras' cell API)::

    output, new_states = cell.call(inputs (B, D), states [(B, S), ...], training=False)
    d_inputs, d_states = cell.backward(d_output (B, O), d_new_states [(B, S), ...])

``state_size`` is an int (one state) or a list of ints; ``output_size`` the width of the
output. ``backward`` reverses the most recent ``call`` and *sets* ``grads`` to that step's
weight gradients; ``RNN`` saves ``get_call_state()`` after each step, restores it before the
step's backward and sums the steps' ``grads`` (the layer contract of ``rnnkit.layers.base``).

Dropout is variational, as in Keras and in the fused layers: one ``(B, D)`` input mask and one
``(B, H)`` recurrent mask per sequence, reused at every step. ``RNN`` calls
``start_sequence(batch, training)`` before the first step; it draws the masks from the cell's
own generator, input mask first, exactly as ``Recurrent`` draws them, so ``RNN(LSTMCell(n,
seed=s, dropout=p))`` drops the same units as ``LSTM(n, seed=s, dropout=p)``.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from rnnkit import activations, initializers
from rnnkit.layers.base import Layer, check_positive_int
from rnnkit.layers.recurrent import _check_rate


def takes_training(cell: Any) -> bool:
    """Whether ``cell.call`` accepts ``training=`` (a user's cell may leave it out, as in Keras)."""
    try:
        params = inspect.signature(cell.call).parameters
    except (TypeError, ValueError):
        return False
    return "training" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def output_size_of(cell: Any) -> int:
    """The width of a cell's output: ``output_size``, else its (first) state size, as Keras."""
    size = getattr(cell, "output_size", None)
    if size is None:
        size = cell.state_size
        while isinstance(size, (list, tuple)):
            size = size[0]
    return size


class DropoutRNNCell(Layer):
    """Base of ``SimpleRNNCell``, ``LSTMCell`` and ``GRUCell``: settings, dropout masks, config.

    Subclasses set ``state_size`` and write ``call``/``backward`` for one step.
    """

    input_rank = 2                      # (B, D): one time step
    call_state = ("_cache",)

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, name: str | None = None):
        super().__init__(name=name, seed=seed)
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.state_size: int | list[int] = self.units
        self.output_size = self.units
        self._cache: tuple | None = None
        self._in_mask: np.ndarray | None = None     # (B, D) this sequence's input dropout mask
        self._rec_mask: np.ndarray | None = None    # (B, H) this sequence's recurrent dropout mask
        self._rng: np.random.Generator | None = None

    def build(self, input_shape):
        super().build(input_shape)
        # the weights were drawn from a fresh generator; dropout masks continue the stream (as Recurrent.build)
        self._rng = np.random.default_rng(np.random.SeedSequence(self.seed if self.seed is not None
                                                                 else self.fallback_seed).spawn(1)[0])

    def compute_output_shape(self, input_shape):
        return (self.units,)

    def get_initial_state(self, batch_size: int) -> list[np.ndarray]:
        """Zero states, one ``(batch_size, size)`` array per entry of ``state_size``."""
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [np.zeros((batch_size, s), dtype=self.dtype) for s in sizes]

    def __call__(self, inputs: Any, states: Any, training: bool = False):
        """``cell(inputs, states)`` on arrays, as in Keras: build on first use, then one step."""
        inputs = self._as_array(inputs)
        if not self.built:
            self.build(inputs.shape[1:])
        return self.call(inputs, states, training=training)

    # -- dropout: one mask per sequence -------------------------------------------------
    def start_sequence(self, batch: int, training: bool) -> None:
        """Forget the previous sequence's dropout masks and, in training, draw this one's."""
        self._in_mask = self._rec_mask = None
        if training:
            self._dropout_masks(batch, self.input_shape[-1], training=True)

    def _dropout_masks(self, batch: int, input_dim: int, training: bool) -> tuple:
        """``(input mask (B, D) or None, recurrent mask (B, H) or None)`` of the current sequence.

        Drawn on first use in training (a cell called directly, outside ``RNN``) and kept until
        the next ``start_sequence``; the formula is ``Recurrent._dropout_mask``'s.
        """
        if not training:
            return None, None
        dtype = self.dtype
        if self.dropout and (self._in_mask is None or self._in_mask.shape != (batch, input_dim)):
            keep = self._rng.random((batch, input_dim)) >= self.dropout
            self._in_mask = keep.astype(dtype) / (1.0 - self.dropout)
        if self.recurrent_dropout and (self._rec_mask is None or self._rec_mask.shape != (batch, self.units)):
            keep = self._rng.random((batch, self.units)) >= self.recurrent_dropout
            self._rec_mask = keep.astype(dtype) / (1.0 - self.recurrent_dropout)
        return self._in_mask, self._rec_mask

    def _step_inputs(self, inputs: np.ndarray, h_prev: np.ndarray, training: bool) -> tuple:
        """``(x_t, h_{t-1}, input mask, recurrent mask)``: the step's inputs as they enter the matmuls,
        with this sequence's dropout masks (None where there is none) applied."""
        in_mask, rec_mask = self._dropout_masks(inputs.shape[0], inputs.shape[1], training)
        x = inputs if in_mask is None else inputs * in_mask          # (B, D)
        hp = h_prev if rec_mask is None else h_prev * rec_mask       # (B, H)
        return x, hp, in_mask, rec_mask

    def _input_grads(self, dz: np.ndarray, in_mask: np.ndarray | None) -> np.ndarray | None:
        """``dL/dx_t = dz W^T`` (times the input mask), or None where nothing needs it."""
        if not self.need_input_grad:
            return None
        dx = dz @ self.params["kernel"].T                             # (B, D)
        return dx if in_mask is None else dx * in_mask

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout}


def add_grads(total: np.ndarray | None, g: np.ndarray | None) -> np.ndarray | None:
    """``total + g`` where either may be None (no gradient)."""
    if g is None:
        return total
    return g if total is None else total + g
