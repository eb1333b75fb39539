"""What the diagnostics know about each recurrent cell: its gates, its blocks of ``U``, and its cache.

Every reader here works on the time-major cache of a layer's last forward call, in the
order the layer read the steps (reversed for ``go_backwards``):

* ``SimpleRNN``  ``(x_tm, hs)``                   ``h_t = act(a_t)``, ``a_t = x_t W + h_{t-1} U + b``
* ``LSTM``       ``(x_tm, hs, cs, gates, tc)``    gates i, f, c (the candidate g), o, stored activated
* ``GRU``        ``(x_tm, hs, gates, rec_h)``     gates z, r, h (the candidate hh), stored activated

with ``x_tm (T, B, D)``, ``hs (T + 1, B, H)`` (``hs[0]`` the initial state) and ``gates (T, B, G*H)``.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from rnnkit.layers.base import Layer
from rnnkit.layers.gru import GRU
from rnnkit.layers.lstm import LSTM
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.simple_rnn import SimpleRNN

#: gate blocks in weight order, as Keras lays them out
GATES = {SimpleRNN: (), LSTM: ("i", "f", "c", "o"), GRU: ("z", "r", "h")}
#: the gate that keeps the state when it is close to 1: LSTM's forget gate, GRU's update gate
KEEP_GATE = {LSTM: "f", GRU: "z"}
#: a gate activation counts as saturated where its derivative is below this fraction of its peak
SATURATION_LEVEL = 0.1
_PEAK_DERIVATIVE = {"sigmoid": 0.25}


def _cell_type(layer: Recurrent) -> type:
    for cls in GATES:
        if isinstance(layer, cls):
            return cls
    raise TypeError(f"Layer '{layer.name}' ({type(layer).__name__}) is not a SimpleRNN, LSTM or GRU.")


def units_of(layer: Layer) -> list[tuple[str, Recurrent]]:
    """``(key, recurrent layer)`` pairs inside ``layer``: itself, a Bidirectional's two directions, or none.

    The key is the layer's name; a ``Bidirectional`` layer gives ``"<name>/forward"`` and ``"<name>/backward"``.
    Only SimpleRNN, LSTM and GRU layers are read; ``RNN(cell)`` layers (any cell) are skipped.
    """
    if isinstance(layer, Recurrent):
        pairs = [(layer.name, layer)]
    elif hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        pairs = [(f"{layer.name}/forward", layer.forward_layer), (f"{layer.name}/backward", layer.backward_layer)]
    else:
        return []
    return [(key, unit) for key, unit in pairs if isinstance(unit, tuple(GATES))]


def recurrent_units(model) -> Iterator[tuple[str, Recurrent]]:
    """``(key, layer)`` for every recurrent layer of ``model``, in order (see ``units_of``)."""
    for layer in model.leaf_layers():
        yield from units_of(layer)


def sublayers(layer: Layer) -> Iterator[Layer]:
    """The layer and the layers it wraps (a Bidirectional's two directions, a TimeDistributed's layer)."""
    yield layer
    for attr in ("forward_layer", "backward_layer", "layer"):
        inner = getattr(layer, attr, None)
        if isinstance(inner, Layer):
            yield from sublayers(inner)


def gate_names(layer: Recurrent) -> tuple[str, ...]:
    return GATES[_cell_type(layer)]


def keep_gate(layer: Recurrent) -> str | None:
    return KEEP_GATE.get(_cell_type(layer))


def gate_activations(layer: Recurrent) -> tuple:
    """The activation of each gate block, in ``gate_names`` order."""
    act, ract = layer.activation, getattr(layer, "recurrent_activation", None)
    cls = _cell_type(layer)
    if cls is LSTM:
        return (ract, ract, act, ract)
    if cls is GRU:
        return (ract, ract, act)
    return ()


def recurrent_blocks(layer: Recurrent) -> dict[str, np.ndarray]:
    """The ``(H, H)`` blocks of the recurrent kernel: one per gate, or the whole ``U`` of a SimpleRNN."""
    U, H = layer.params["recurrent_kernel"], layer.units
    names = gate_names(layer)
    if not names:
        return {"recurrent_kernel": U}
    return {name: U[:, k * H:(k + 1) * H] for k, name in enumerate(names)}


def gate_values(layer: Recurrent) -> np.ndarray | None:
    """The activated gates of the last forward call, ``(T, B, G*H)``, or None for a SimpleRNN."""
    cls = _cell_type(layer)
    if cls is LSTM:
        return layer._cache[3]
    if cls is GRU:
        return layer._cache[2]
    return None


def initial_states(layer: Recurrent) -> list[np.ndarray]:
    """The states ``[(B, H), ...]`` the last forward call started from."""
    cache = layer._cache
    if _cell_type(layer) is LSTM:
        return [cache[1][0], cache[2][0]]
    return [cache[1][0]]


def saturation(activation, values: np.ndarray) -> float:
    """Fraction of ``values`` (outputs of ``activation``) where its derivative is below 10 % of its peak.

    For a sigmoid that is outside about [0.03, 0.97]; for tanh, ``|y| > 0.95``; for relu, zero outputs.
    """
    if values.size == 0 or not getattr(activation, "elementwise", False):
        return float("nan")
    peak = _PEAK_DERIVATIVE.get(activation.name, 1.0)
    return float(np.mean(activation.derivative(values) < SATURATION_LEVEL * peak))


def _pre_activations(layer: Recurrent) -> np.ndarray:
    """``x_t W + h_{t-1} U + b`` of every step, recomputed from the cache: ``(T, B, G*H)``.

    For a GRU with ``reset_after`` the candidate block is ``x W_h + b_h + r * (h U_h + b'_h)``;
    without it, ``x W_h + b_h + (r * h) U_h``.
    """
    x_tm, hs = layer._cache[0], layer._cache[1]
    T, B, D = x_tm.shape
    W, U = layer.params["kernel"], layer.params["recurrent_kernel"]
    H = layer.units
    h_prev = hs[:-1] if layer._rec_mask is None else hs[:-1] * layer._rec_mask     # (T, B, H)
    pre = (x_tm.reshape(T * B, D) @ W).reshape(T, B, -1)                              # (T, B, G*H)
    if not isinstance(layer, GRU):
        if layer.use_bias:
            pre += layer.params["bias"]
        pre += (h_prev.reshape(T * B, H) @ U).reshape(T, B, -1)
        return pre
    b_in, b_rec = layer._biases(H, x_tm.dtype)
    pre += b_in
    r = layer._cache[2][:, :, H:2 * H]                                                # (T, B, H)
    if layer.reset_after:
        hu = (h_prev.reshape(T * B, H) @ U).reshape(T, B, 3 * H) + b_rec               # (T, B, 3H)
        pre[:, :, :2 * H] += hu[:, :, :2 * H]
        pre[:, :, 2 * H:] += r * hu[:, :, 2 * H:]
    else:
        pre[:, :, :2 * H] += (h_prev.reshape(T * B, H) @ U[:, :2 * H]).reshape(T, B, 2 * H)
        pre[:, :, 2 * H:] += ((r * h_prev).reshape(T * B, H) @ U[:, 2 * H:]).reshape(T, B, H)
    return pre


def forward_quantities(layer: Recurrent) -> list[tuple[str, np.ndarray]]:
    """What one step computes, in the order it computes it: ``[(quantity, (T, B, ...)), ...]``.

    Pre-activations, then the gates, then the cell state (LSTM), then the output ``h_t``;
    every array is time-major in the order the layer read the steps.
    """
    cls = _cell_type(layer)
    out = [("pre-activation", _pre_activations(layer))]
    gates = gate_values(layer)
    if gates is not None:
        H = layer.units
        for k, name in enumerate(gate_names(layer)):
            out.append((f"gate {name}", gates[:, :, k * H:(k + 1) * H]))
    if cls is LSTM:
        out.append(("cell state", layer._cache[2][1:]))
    out.append(("output", layer._cache[1][1:]))
    return out
