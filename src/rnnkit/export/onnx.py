"""``to_onnx``: write a trained model as an ONNX file that onnxruntime (or any ONNX runtime) can run.

The model's graph is walked call by call and each layer becomes a few ONNX operators:

* ``SimpleRNN`` / ``LSTM`` / ``GRU`` -> ``RNN`` / ``LSTM`` / ``GRU`` (time-major, so the input is
  transposed ``(B, T, D) -> (T, B, D)``). ONNX stores ``W (dirs, G*H, D)``, ``R (dirs, G*H, H)`` and
  ``B (dirs, 2*G*H)`` (input bias, then recurrent bias): Keras' ``kernel (D, G*H)`` transposed. ONNX's
  LSTM gate order is i, o, f, c (Keras': i, f, c, o); GRU's is z, r, h in both. Keras' single bias is
  the input bias with a zero recurrent bias, except GRU ``reset_after`` whose ``bias (2, 3H)`` is both
  (and ``reset_after`` is ONNX's ``linear_before_reset=1``). ``go_backwards`` is ``direction="reverse"``
  (its ``Y`` is in time order, Keras' in reading order: flipped back); ``Bidirectional`` is one
  ``direction="bidirectional"`` operator whose ``Y (T, 2, B, H)`` is merged.
* ``Dense`` -> ``MatMul`` + ``Add`` + activation (also inside ``TimeDistributed``); ``Embedding`` -> ``Gather``;
  ``Activation``;
  ``Dropout`` -> nothing (inference); ``Add`` / ``Subtract`` / ``Multiply`` / ``Average`` /
  ``Maximum`` / ``Minimum`` -> ``Sum`` / ``Sub`` / ``Mul`` / ``Mean`` / ``Max`` / ``Min`` (inputs of
  one shape); ``Concatenate`` -> ``Concat``.
* The mask of ``Embedding(mask_zero=True)`` becomes the recurrent operators' ``sequence_lens``,
  computed in the graph as ``ReduceSum(ids != 0)`` over time. That equals Keras' mask only when the
  padding zeros come at the *end* of each sequence (post-padding, ``pad_sequences(padding="post")``);
  the exported model assumes so.

Batch and time are dynamic axes (``"batch"``, ``"time"``). An input an ``Embedding`` reads keeps its
``Input``'s integer type (int32 indices are fed as int32; other integer types are cast to int64 in the
graph; a float ``Input`` read as indices is declared int64).

Weights and computation are float32, except for a float64 model, which is written in float64 throughout.
onnxruntime runs ``RNN`` / ``LSTM`` / ``GRU`` in float32 only ("does not support double"), so a float64
model's recurrent layers are written out as a ``Scan`` over time whose body is one step of Keras'
equations (MatMul, Add, Mul, Sigmoid, Tanh, Relu, all defined for double), with a padded step keeping
the state, as ``sequence_lens`` does; the rest of the graph is the same as for float32.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.layers.activation import Activation
from rnnkit.layers.dense import Dense
from rnnkit.layers.dropout import Dropout
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.gru import GRU
from rnnkit.layers.input_layer import InputLayer
from rnnkit.layers.lstm import LSTM
from rnnkit.layers.merge import Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract
from rnnkit.layers.recurrent import GatedRecurrent, Recurrent
from rnnkit.layers.simple_rnn import SimpleRNN
from rnnkit.layers.wrappers import Bidirectional, TimeDistributed

#: the opset written when none is asked for (opset 14 added the recurrent operators' ``layout``, 13
#: moved ``ReduceSum``'s axes to an input and made ``Softmax`` act on one axis)
DEFAULT_OPSET = 17
MIN_OPSET = 14

# rnnkit activation name -> ONNX operator (for Dense / Activation) and recurrent activation name
_ELEMENTWISE = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "softmax": "Softmax", "linear": None}
_RECURRENT_ACT = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu"}
_ELEMENTWISE_MERGE = {Add: "Sum", Subtract: "Sub", Multiply: "Mul", Average: "Mean", Maximum: "Max", Minimum: "Min"}
_BIDIRECTIONAL_MERGE = {"sum": "Add", "mul": "Mul", "ave": "Add"}


def _require_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("Exporting to ONNX needs the onnx package: pip install 'rnnkit[onnx]'.") from None
    return onnx, helper, numpy_helper


class _Unsupported(Exception):
    """One layer that cannot be written; collected so that the error lists every such layer."""


class _Builder:
    """Collects nodes and weights; names every ONNX value uniquely."""

    def __init__(self, helper, numpy_helper, float_dtype: Any = np.float32, counter: list | None = None):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.float_dtype = np.dtype(float_dtype)       # the weights' and the computation's type
        self.nodes: list = []
        self.initializers: list = []
        self._counter = [0] if counter is None else counter   # shared with subgraphs: names unique in the model

    def sub(self) -> _Builder:
        """A builder for a subgraph (a ``Scan`` body): its own nodes, the same names and float type."""
        return _Builder(self.helper, self.numpy_helper, self.float_dtype, self._counter)

    def name(self, hint: str) -> str:
        self._counter[0] += 1
        return f"{hint}_{self._counter[0]}"

    def const(self, value: Any, hint: str, dtype: Any = None) -> str:
        """An initializer holding ``value``, of the model's float type unless ``dtype`` says otherwise."""
        name = self.name(hint)
        dtype = self.float_dtype if dtype is None else dtype
        self.initializers.append(self.numpy_helper.from_array(np.array(value, dtype=dtype, order="C"), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, n_out: int = 1, **attrs) -> Any:
        outputs = [self.name(f"{hint}_{op_type}") for _ in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, inputs, outputs, name=self.name(op_type), **attrs))
        return outputs[0] if n_out == 1 else outputs


# -- recurrent weights in ONNX's layout ---------------------------------------------------------------
def _onnx_weights(layer: Recurrent) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``W (G*H, D)``, ``R (G*H, H)``, ``B (2*G*H,)`` of one direction, and GRU's ``linear_before_reset``."""
    H = layer.units
    W, U = layer.params["kernel"], layer.params["recurrent_kernel"]      # (D, G*H), (H, G*H)
    G = W.shape[1] // H
    wb, rb = np.zeros(G * H), np.zeros(G * H)
    linear_before_reset = 0
    if isinstance(layer, GRU):
        linear_before_reset = int(layer.reset_after)
        if layer.use_bias:
            b = layer.params["bias"]
            wb, rb = (b[0], b[1]) if layer.reset_after else (b, rb)
    elif layer.use_bias:
        wb = layer.params["bias"]
    if isinstance(layer, LSTM):
        # Keras blocks i, f, c, o -> ONNX i, o, f, c
        order = np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 3, 1, 2)])
        W, U, wb, rb = W[:, order], U[:, order], wb[order], rb[order]
    return W.T, U.T, np.concatenate([wb, rb]), linear_before_reset


def _recurrent_problems(layer: Recurrent) -> list[str]:
    problems = []
    if not isinstance(layer, (SimpleRNN, LSTM, GRU)):
        problems.append(f"{type(layer).__name__} has no ONNX operator")
        return problems
    if layer.stateful:
        problems.append("stateful=True (ONNX runs each call from a zero state)")
    acts = [("activation", layer.activation.name)]
    if isinstance(layer, GatedRecurrent):
        acts.append(("recurrent_activation", layer.recurrent_activation.name))
    for what, act in acts:
        if act not in _RECURRENT_ACT:
            problems.append(f"{what}={act!r} (the ONNX recurrent operators take {', '.join(_RECURRENT_ACT)})")
    return problems


class _Exporter:
    """Writes the model's calls one by one, keeping for every symbolic tensor its ONNX value and its mask."""

    def __init__(self, model: Any, helper, numpy_helper, opset: int = DEFAULT_OPSET):
        self.model = model
        self.opset = opset
        # float64 models are written in float64 (weights and computation); every other float type in float32
        self.b = _Builder(helper, numpy_helper, np.float64 if model.dtype == np.float64 else np.float32)
        self.values: dict[int, str] = {}       # symbolic tensor id -> ONNX value name
        self.lens: dict[int, str | None] = {}  # symbolic tensor id -> sequence_lens (B,) int32 or None

    # -- helpers ----------------------------------------------------------------------------------------
    def activation(self, x: str, name: str, hint: str) -> str:
        op = _ELEMENTWISE[name]
        if op is None:
            return x
        return self.b.op(op, [x], hint, axis=-1) if op == "Softmax" else self.b.op(op, [x], hint)

    def to_batch_major(self, y_tm: str, hint: str) -> str:
        return self.b.op("Transpose", [y_tm], hint, perm=[1, 0, 2])                       # (T, B, H) -> (B, T, H)

    def flip_time(self, y_tm: str, hint: str) -> str:
        """Reverse axis 0 of ``(T, ...)``: a Slice with step -1."""
        b = self.b
        start, end = b.const([-1], "start", np.int64), b.const([np.iinfo(np.int64).min], "end", np.int64)
        return b.op("Slice", [y_tm, start, end, b.const([0], "axis", np.int64), b.const([-1], "step", np.int64)], hint)

    def carry_last(self, y_tm: str, lens: str, hint: str) -> str:
        """Keras' output at a padded step of a forward layer: the last real step's, ``Y[min(t, len-1)]``."""
        b = self.b
        shape = b.op("Shape", [y_tm], hint)                                               # [T, B, H]
        T = b.op("Gather", [shape, b.const(0, "zero", np.int64)], hint, axis=0)           # scalar
        steps = b.op("Range", [b.const(0, "zero", np.int64), T, b.const(1, "one", np.int64)], hint)   # (T,)
        steps = b.op("Unsqueeze", [steps, b.const([1], "axis", np.int64)], hint)          # (T, 1)
        last = b.op("Sub", [b.op("Cast", [lens], hint, to=7), b.const(1, "one", np.int64)], hint)  # int64 (B,)
        last = b.op("Max", [last, b.const(0, "zero", np.int64)], hint)
        index = b.op("Min", [steps, b.op("Unsqueeze", [last, b.const([0], "axis", np.int64)], hint)], hint)  # (T, B)
        index = b.op("Expand", [b.op("Unsqueeze", [index, b.const([2], "axis", np.int64)], hint), shape], hint)
        return b.op("GatherElements", [y_tm, index], hint, axis=0)                        # (T, B, H)

    # -- float64 recurrence: a Scan over time ----------------------------------------------------------
    def _split(self, b: _Builder, z: str, parts: int, hint: str) -> list[str]:
        """``z (B, parts*H)`` cut into ``parts`` equal blocks ``(B, H)`` (opset 18 wants their number said)."""
        attrs = {"num_outputs": parts} if self.opset >= 18 else {}
        return b.op("Split", [z], hint, n_out=parts, axis=1, **attrs) if parts > 1 else [z]

    def _act(self, b: _Builder, x: str, name: str, hint: str) -> str:
        return b.op(_RECURRENT_ACT[name], [x], hint)

    def scan_direction(self, cell: Recurrent, x_tm: str, mask_tm: str | None, reverse: bool) -> tuple[str, list[str]]:
        """One direction of ``cell`` over ``x_tm (T, B, D)`` as a ``Scan``, with the outputs of ONNX's own
        operator for that direction: ``Y (T, B, H)`` in time order (zeros at padded steps) and the final
        states ``(B, H)`` (``h``, and ``c`` for an LSTM), each taken at the last real step.

        onnxruntime runs ``RNN`` / ``LSTM`` / ``GRU`` in float32 only, so a float64 model writes the
        recurrence out: the input projection ``x W + b`` for all steps is one MatMul before the loop, and
        the body does one step in Keras' equations (gate order i, f, c, o and z, r, h, Keras' layout).
        With a mask ``m_t (B, 1)`` a padded step keeps the state, ``h_t = m_t h' + (1 - m_t) h_{t-1}``,
        and outputs zero, as ONNX's ``sequence_lens`` does.
        """
        b, helper, hint = self.b, self.b.helper, cell.name
        H = cell.units
        W, U = cell.params["kernel"], cell.params["recurrent_kernel"]                     # (D, G*H), (H, G*H)
        G = W.shape[1] // H
        lstm, gru = isinstance(cell, LSTM), isinstance(cell, GRU)
        bias = cell.params.get("bias") if cell.use_bias else None
        input_bias = recurrent_bias = None
        if bias is not None:
            input_bias, recurrent_bias = (bias[0], bias[1]) if gru and cell.reset_after else (bias, None)
        xw = b.op("MatMul", [x_tm, b.const(W, f"{hint}_kernel")], hint)                  # (T, B, G*H)
        if input_bias is not None:
            xw = b.op("Add", [xw, b.const(input_bias, f"{hint}_bias")], hint)
        U_name = b.const(U, f"{hint}_recurrent_kernel")                                   # read from the body
        rb_name = b.const(recurrent_bias, f"{hint}_recurrent_bias") if recurrent_bias is not None else None
        # the zero initial state (B, H), its batch size read from the input
        batch = b.op("Gather", [b.op("Shape", [x_tm], hint), b.const([1], "batch_axis", np.int64)], hint, axis=0)
        state_shape = b.op("Concat", [batch, b.const([H], "units", np.int64)], hint, axis=0)
        zero = helper.make_tensor("zero", helper.np_dtype_to_tensor_dtype(b.float_dtype), [1], [0.0])
        h0 = b.op("ConstantOfShape", [state_shape], hint, value=zero)                     # (B, H)

        body = b.sub()
        elem = helper.np_dtype_to_tensor_dtype(b.float_dtype)
        h_prev, c_prev, xw_t, m_t = (body.name(f"{hint}_{n}") for n in ("h_prev", "c_prev", "xw_t", "m_t"))
        hu = body.op("MatMul", [h_prev, U_name], hint)                                    # (B, G*H)
        if lstm:                                                                          # Keras: i, f, c, o
            zi, zf, zc, zo = self._split(body, body.op("Add", [xw_t, hu], hint), 4, hint)
            ra, act = cell.recurrent_activation.name, cell.activation.name
            c_new = body.op("Add", [body.op("Mul", [self._act(body, zf, ra, hint), c_prev], hint),
                                    body.op("Mul", [self._act(body, zi, ra, hint), self._act(body, zc, act, hint)],
                                            hint)], hint)
            h_new = body.op("Mul", [self._act(body, zo, ra, hint), self._act(body, c_new, act, hint)], hint)
        elif gru:                                                                         # Keras: z, r, h
            ra, act = cell.recurrent_activation.name, cell.activation.name
            xz, xr, xh = self._split(body, xw_t, 3, hint)
            if cell.reset_after:      # hh = act(x W_h + b_h + r * (h U_h + b'_h))
                if rb_name is not None:
                    hu = body.op("Add", [hu, rb_name], hint)
                uz, ur, uh = self._split(body, hu, 3, hint)
                z = self._act(body, body.op("Add", [xz, uz], hint), ra, hint)
                r = self._act(body, body.op("Add", [xr, ur], hint), ra, hint)
                hh = self._act(body, body.op("Add", [xh, body.op("Mul", [r, uh], hint)], hint), act, hint)
            else:                     # hh = act(x W_h + b_h + (r * h) U_h)
                uz, ur, _ = self._split(body, hu, 3, hint)
                z = self._act(body, body.op("Add", [xz, uz], hint), ra, hint)
                r = self._act(body, body.op("Add", [xr, ur], hint), ra, hint)
                U_h = b.const(U[:, 2 * H:], f"{hint}_recurrent_kernel_h")                 # (H, H)
                rh = body.op("MatMul", [body.op("Mul", [r, h_prev], hint), U_h], hint)
                hh = self._act(body, body.op("Add", [xh, rh], hint), act, hint)
            # h = z * h_prev + (1 - z) * hh = hh + z * (h_prev - hh)
            h_new = body.op("Add", [hh, body.op("Mul", [z, body.op("Sub", [h_prev, hh], hint)], hint)], hint)
            c_new = None
        else:                                                                             # h = act(x W + h U + b)
            h_new = self._act(body, body.op("Add", [xw_t, hu], hint), cell.activation.name, hint)
            c_new = None
        states = [(h_prev, h_new)] + ([(c_prev, c_new)] if lstm else [])
        y_t = h_new
        if mask_tm is not None:       # a padded step keeps the state and outputs zeros
            kept = []
            for prev, new in states:
                kept.append((prev, body.op("Add", [prev, body.op("Mul", [m_t, body.op("Sub", [new, prev], hint)],
                                                                   hint)], hint)))
            states = kept
            y_t = body.op("Mul", [m_t, h_new], hint)
        outs = [body.name(f"{hint}_state_out") for _ in states] + [body.name(f"{hint}_y_t")]
        for (_, new), out in zip(states, outs):
            body.nodes.append(helper.make_node("Identity", [new], [out], name=body.name("Identity")))
        body.nodes.append(helper.make_node("Identity", [y_t], [outs[-1]], name=body.name("Identity")))

        def info(name: str, width: int):                                                   # (B, width)
            return helper.make_tensor_value_info(name, elem, ["batch", width])
        body_inputs = [info(prev, H) for prev, _ in states] + [info(xw_t, G * H)]
        scan_inputs = [xw] + ([mask_tm] if mask_tm is not None else [])
        if mask_tm is not None:
            body_inputs.append(info(m_t, 1))
        graph = helper.make_graph(body.nodes, b.name(f"{hint}_step"), body_inputs,
                                  [info(o, H) for o in outs], body.initializers)
        n = len(states)
        results = b.op("Scan", [h0] * n + scan_inputs, hint, n_out=n + 1, body=graph, num_scan_inputs=len(scan_inputs),
                       scan_input_directions=[int(reverse)] * len(scan_inputs), scan_output_directions=[int(reverse)])
        return results[-1], results[:-1]

    def recurrent_scan(self, cells: list, x: str, lens: str | None, directions: list[bool]) -> list[str]:
        """ONNX's recurrent operator's outputs, ``Y (T, dirs, B, H)`` and ``Y_h`` [, ``Y_c``] ``(dirs, B, H)``,
        made from one ``Scan`` per direction (float64)."""
        b, hint = self.b, cells[0].name
        x_tm = b.op("Transpose", [x], hint, perm=[1, 0, 2])                               # (T, B, D)
        mask_tm = None
        if lens is not None:          # m[t, b] = t < len[b], as (T, B, 1) floats
            T = b.op("Gather", [b.op("Shape", [x_tm], hint), b.const([0], "time_axis", np.int64)], hint, axis=0)
            steps = b.op("Range", [b.const(0, "zero", np.int64), b.op("Squeeze", [T], hint),
                                   b.const(1, "one", np.int64)], hint)                    # (T,)
            steps = b.op("Unsqueeze", [steps, b.const([1], "axis", np.int64)], hint)      # (T, 1)
            real = b.op("Less", [steps, b.op("Cast", [lens], hint, to=7)], hint)           # (T, B)
            mask_tm = b.op("Unsqueeze", [b.op("Cast", [real], hint, to=self.b.helper.np_dtype_to_tensor_dtype(
                b.float_dtype)), b.const([2], "axis", np.int64)], hint)                    # (T, B, 1)
        ys, finals = [], []
        for cell, reverse in zip(cells, directions):
            y, states = self.scan_direction(cell, x_tm, mask_tm, reverse)
            ys.append(b.op("Unsqueeze", [y, b.const([1], "axis", np.int64)], hint))       # (T, 1, B, H)
            finals.append([b.op("Unsqueeze", [s, b.const([0], "axis", np.int64)], hint) for s in states])
        y = ys[0] if len(ys) == 1 else b.op("Concat", ys, hint, axis=1)                   # (T, dirs, B, H)
        states = [f[0] if len(f) == 1 else b.op("Concat", list(f), hint, axis=0) for f in zip(*finals)]
        return [y, *states]

    # -- layers -----------------------------------------------------------------------------------------
    def recurrent(self, layer: Any, x: str, lens: str | None) -> list[str]:
        """The layer's outputs (Keras' list: output, then states) as ONNX value names."""
        b = self.b
        bidirectional = isinstance(layer, Bidirectional)
        cells = [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
        first = cells[0]
        hint = layer.name
        if b.float_dtype == np.float64:
            outs = self.recurrent_scan(cells, x, lens, [False, True] if bidirectional else [first.go_backwards])
            return self.recurrent_outputs(layer, first, outs[0], outs[1:], lens)
        weights = [_onnx_weights(c) for c in cells]
        W = b.const(np.stack([w[0] for w in weights]), f"{hint}_W")                       # (dirs, G*H, D)
        R = b.const(np.stack([w[1] for w in weights]), f"{hint}_R")                       # (dirs, G*H, H)
        B = b.const(np.stack([w[2] for w in weights]), f"{hint}_B")                       # (dirs, 2*G*H)
        x_tm = b.op("Transpose", [x], hint, perm=[1, 0, 2])                               # (T, B, D)
        direction = "bidirectional" if bidirectional else ("reverse" if first.go_backwards else "forward")
        acts = []
        for c in cells:
            if isinstance(c, LSTM):
                acts += [c.recurrent_activation.name, c.activation.name, c.activation.name]
            elif isinstance(c, GRU):
                acts += [c.recurrent_activation.name, c.activation.name]
            else:
                acts += [c.activation.name]
        attrs = dict(hidden_size=first.units, direction=direction, activations=[_RECURRENT_ACT[a] for a in acts])
        op_type = {SimpleRNN: "RNN", LSTM: "LSTM", GRU: "GRU"}[type(first)]
        if op_type == "GRU":
            attrs["linear_before_reset"] = weights[0][3]
        n_out = 3 if op_type == "LSTM" else 2
        outs = b.op(op_type, [x_tm, W, R, B] + ([lens] if lens else []), hint, n_out=n_out, **attrs)
        return self.recurrent_outputs(layer, first, outs[0], outs[1:], lens)

    def recurrent_outputs(self, layer: Any, first: Recurrent, y: str, states: list[str], lens: str | None) -> list[str]:
        """Keras' outputs from ONNX's ``Y (T, dirs, B, H)`` and final states ``(dirs, B, H)``."""
        b, hint = self.b, layer.name
        if isinstance(layer, Bidirectional):
            return self.bidirectional_outputs(layer, y, states, lens)
        seq = b.op("Squeeze", [y, b.const([1], "axis", np.int64)], hint)                 # (T, B, H)
        finals = [b.op("Squeeze", [s, b.const([0], "axis", np.int64)], hint) for s in states]   # (B, H) each
        if first.return_sequences:
            if first.go_backwards:
                seq = self.flip_time(seq, hint)        # Keras: reading order; padded steps come first, as zeros
            elif lens is not None and not first.zero_output_for_mask:
                seq = self.carry_last(seq, lens, hint)
            out = self.to_batch_major(seq, hint)
        else:
            out = finals[0]
        return [out, *finals] if first.return_state else [out]

    def bidirectional_outputs(self, layer: Bidirectional, y: str, states: list[str], lens: str | None) -> list[str]:
        b, hint = self.b, layer.name
        if layer.return_sequences:
            parts = [b.op("Transpose", [y], hint, perm=[2, 0, 1, 3])]                      # (B, T, 2, H)
            concat_shape = b.const([0, 0, -1], "shape", np.int64)
            pick = 2
        else:
            parts = [b.op("Transpose", [states[0]], hint, perm=[1, 0, 2])]                 # (B, 2, H)
            concat_shape = b.const([0, -1], "shape", np.int64)
            pick = 1
        if layer.merge_mode == "concat":
            out = b.op("Reshape", [parts[0], concat_shape], hint)                          # (B, [T,] 2H)
        else:
            f, r = (b.op("Gather", [parts[0], b.const(k, "direction", np.int64)], hint, axis=pick) for k in (0, 1))
            out = b.op(_BIDIRECTIONAL_MERGE[layer.merge_mode], [f, r], hint)
            if layer.merge_mode == "ave":
                out = b.op("Mul", [out, b.const(0.5, "half")], hint)
        if not layer.return_state:
            return [out]
        finals = []
        for direction in (0, 1):
            for s in states:
                g = b.op("Gather", [s, b.const(direction, "direction", np.int64)], hint, axis=0)   # (B, H)
                finals.append(g)
        return [out, *finals]

    def layer_problems(self, node: Any) -> list[str]:
        layer = node.layer
        problems = []
        if node.kwargs:
            problems.append(f"called with {', '.join(sorted(node.kwargs))}= (only plain calls are exported)")
        if isinstance(layer, Bidirectional):
            f, r = layer.forward_layer, layer.backward_layer
            problems += _recurrent_problems(f)
            if layer.merge_mode is None:
                problems.append("merge_mode=None")
            same = ("units", "activation", "recurrent_activation", "reset_after")
            if f.go_backwards or type(f) is not type(r) or any(
                    getattr(getattr(f, k, None), "name", getattr(f, k, None))
                    != getattr(getattr(r, k, None), "name", getattr(r, k, None)) for k in same):
                problems.append("a backward_layer unlike the forward layer (ONNX runs both with one setting)")
        elif isinstance(layer, Recurrent):
            problems += _recurrent_problems(layer)
        elif isinstance(layer, TimeDistributed) and not isinstance(layer.layer, (Dense, Activation, Dropout)):
            problems.append(f"wraps {type(layer.layer).__name__} (TimeDistributed is exported around Dense, "
                            "Activation and Dropout)")
        elif isinstance(layer, (Dense, Activation, TimeDistributed)):
            act = getattr(layer, "activation", None)
            if act is not None and getattr(act, "name", None) not in _ELEMENTWISE:
                problems.append(f"activation={getattr(act, 'name', act)!r}")
        elif isinstance(layer, tuple(_ELEMENTWISE_MERGE)) or isinstance(layer, Concatenate):
            shapes = {tuple(t.shape[1:]) for t in node.arg_tensors}
            if not isinstance(layer, Concatenate) and len(shapes) != 1:
                problems.append(f"inputs of different shapes {sorted(shapes)} (broadcasting is not exported)")
        elif not isinstance(layer, (Embedding, Dropout, InputLayer)):
            problems.append(f"{type(layer).__name__} has no ONNX export")
        return problems

    def node(self, node: Any) -> None:
        layer, b = node.layer, self.b
        if isinstance(layer, TimeDistributed):       # Dense, Activation and Dropout act on the last axis anyway
            layer = layer.layer
        ins = [self.values[t.id] for t in node.arg_tensors]
        in_lens = [self.lens.get(t.id) for t in node.arg_tensors]
        lens = in_lens[0] if in_lens else None
        if isinstance(layer, (Recurrent, Bidirectional)):
            outs = self.recurrent(layer, ins[0], lens)
            out_lens = [lens if layer.return_sequences else None] + [None] * (len(outs) - 1)
        elif isinstance(layer, Embedding):
            table = b.const(layer.params["embeddings"], f"{layer.name}_embeddings")          # (V, E)
            outs = [b.op("Gather", [table, ins[0]], layer.name, axis=0)]                        # (B, T, E)
            out_lens = [None]
            if layer.mask_zero:
                real = b.op("Not", [b.op("Equal", [ins[0], b.const(0, "zero", np.int64)], layer.name)], layer.name)
                real = b.op("Cast", [real], layer.name, to=6)                                  # int32 (B, T)
                out_lens = [b.op("ReduceSum", [real, b.const([1], "axis", np.int64)], layer.name, keepdims=0)]
        elif isinstance(layer, Dense):
            y = b.op("MatMul", [ins[0], b.const(layer.params["kernel"], f"{layer.name}_kernel")], layer.name)
            if layer.use_bias:
                y = b.op("Add", [y, b.const(layer.params["bias"], f"{layer.name}_bias")], layer.name)
            outs, out_lens = [self.activation(y, layer.activation.name, layer.name)], [lens]
        elif isinstance(layer, Activation):
            outs, out_lens = [self.activation(ins[0], layer.activation.name, layer.name)], [lens]
        elif isinstance(layer, Dropout):
            outs, out_lens = [ins[0]], [lens]
        else:                                                  # merges
            known = {v for v in in_lens if v is not None}
            if len(known) > 1 or (known and None in in_lens):
                raise _Unsupported(f"layer '{layer.name}' ({type(layer).__name__}): inputs with different masks")
            if known and isinstance(layer, (Multiply, Maximum, Minimum)):
                raise _Unsupported(f"layer '{layer.name}' ({type(layer).__name__}): masked inputs (Keras replaces "
                                   "their padded steps, which ONNX does not)")
            if isinstance(layer, Concatenate):
                if known and layer.axis % len(node.arg_tensors[0].shape) != len(node.arg_tensors[0].shape) - 1:
                    raise _Unsupported(f"layer '{layer.name}' (Concatenate): masked inputs joined on axis "
                                       f"{layer.axis}")
                outs = [b.op("Concat", ins, layer.name, axis=layer.axis)]
            else:
                outs = [b.op(_ELEMENTWISE_MERGE[type(layer)], ins, layer.name)]
            out_lens = [known.pop() if known else None]
        for t, v, m in zip(node.outputs, outs, out_lens):
            self.values[t.id] = v
            self.lens[t.id] = m


def _inputs_of(model: Any, helper, onnx, b: _Builder) -> tuple[list, dict]:
    """The graph inputs, ``(batch, time, ...)``, and the ONNX value each model input is read from.

    An input of numbers has the model's float type (float32, or float64 for a float64 model). An input
    that an ``Embedding`` reads is declared with the ``Input``'s own integer type (``Input(dtype="int32")``
    takes int32 arrays in ONNX as in rnnkit) and cast to int64 in the graph where it is another integer
    type; a float ``Input`` that feeds an Embedding is declared int64, as indices are.
    """
    graph = model.graph
    reads_ids = {t.id for node in graph.nodes if isinstance(node.layer, Embedding) for t in node.arg_tensors}
    reads_floats = {t.id for node in graph.nodes if not isinstance(node.layer, Embedding) for t in node.arg_tensors}
    float_elem = helper.np_dtype_to_tensor_dtype(b.float_dtype)
    infos, values = [], {}
    for name, t in zip(model.input_names, graph.inputs):
        if t.id in reads_ids and t.id in reads_floats:
            raise ValueError(f"Input '{name}' is read both as Embedding indices and as numbers; ONNX gives an input "
                             "one type.")
        dtype = np.dtype(t.dtype)
        value = name
        if t.id not in reads_ids:
            elem = float_elem
        elif dtype.kind in "iu":
            elem = helper.np_dtype_to_tensor_dtype(dtype)
            if dtype != np.int64:       # Gather takes int32 too, but the mask's comparison wants one type
                value = b.op("Cast", [name], f"{name}_as_int64", to=onnx.TensorProto.INT64)
        else:
            elem = onnx.TensorProto.INT64
        # the time axis (after the batch axis of a sequence or of indices) is dynamic even where the model fixed it
        sequence = len(t.shape) >= 3 or t.id in reads_ids
        dims = ["batch", *["time" if i == 0 and sequence else (f"dim_{i + 1}" if d is None else d)
                           for i, d in enumerate(t.shape[1:])]]
        infos.append(helper.make_tensor_value_info(name, elem, dims))
        values[t.id] = value
    return infos, values


def to_onnx(model: Any, path: str | os.PathLike, opset: int | None = None) -> Path:
    """Write ``model`` (a built ``Sequential`` or functional ``Model``) to the ONNX file ``path``.

    Args:
        model: the model; its inputs become graph inputs of shape ``(batch, time, features)`` (float32, or
            float64 for a float64 model) or ``(batch, time)`` (indices an ``Embedding`` reads: the ``Input``'s
            integer type, int64 for a float ``Input``), batch and time dynamic.
        path: the file to write; written atomically (a temporary file renamed over it).
        opset: the ONNX opset (default 17; at least 14).

    Returns:
        The path written, as a ``pathlib.Path``.

    Raises:
        ValueError: a layer or option that ONNX cannot express (every such layer is listed), or a bad opset.
        TypeError: ``model`` is not an rnnkit model, or ``path`` / ``opset`` has the wrong type.
        ImportError: the ``onnx`` package is missing (``pip install 'rnnkit[onnx]'``).
    """
    from rnnkit.models.model import Model

    if not isinstance(model, Model):
        raise TypeError(f"to_onnx expects an rnnkit Sequential or Model, got {type(model).__name__}.")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}: {path!r}.")
    onnx, helper, numpy_helper = _require_onnx()
    latest = onnx.defs.onnx_opset_version()
    if opset is None:
        opset = min(DEFAULT_OPSET, latest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= latest:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {latest}, got {opset!r}.")
    if model._graph is None:
        raise ValueError(f"Model '{model.name}' is not built; give it an input shape (or call it) before exporting.")
    exporter = _Exporter(model, helper, numpy_helper, int(opset))
    graph = model.graph
    # every layer that cannot be written, named at once, before anything is built or written
    problems = []
    for node in graph.nodes:
        if isinstance(node.layer, Model):
            problems.append(f"layer '{node.layer.name}' (a nested model; export its layers in one model)")
            continue
        for p in exporter.layer_problems(node):
            problems.append(f"layer '{node.layer.name}' ({type(node.layer).__name__}): {p}")
    if problems:
        raise ValueError("Cannot export to ONNX:\n  " + "\n  ".join(problems))
    inputs, exporter.values = _inputs_of(model, helper, onnx, exporter.b)
    try:
        for node in graph.nodes:
            if not node.is_input:
                exporter.node(node)
    except _Unsupported as err:
        raise ValueError(f"Cannot export to ONNX:\n  {err}") from None
    outputs = []
    for name, t in zip(model.output_names, graph.outputs):
        value = exporter.values[t.id]
        exporter.b.nodes.append(helper.make_node("Identity", [value], [name], name=f"output_{name}"))
        # only the feature axis is fixed: batch and time (and any axis between) follow the input
        rest = t.shape[1:]
        dims = ["batch", *[f"{name}_dim_{i + 1}" for i in range(len(rest) - 1)], *rest[-1:]]
        outputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(exporter.b.float_dtype),
                                                     dims))
    onnx_graph = helper.make_graph(exporter.b.nodes, model.name, inputs, outputs, exporter.b.initializers)
    proto = helper.make_model(onnx_graph, producer_name="rnnkit", opset_imports=[helper.make_opsetid("", int(opset))])
    onnx.checker.check_model(proto, full_check=True)
    from rnnkit.saving import write_atomically

    target = Path(path)
    data = proto.SerializeToString()
    write_atomically(lambda f: f.write(data), target)      # the model files' crash-safe write
    return target
