"""Symbolic tensors: what ``rnnkit.Input`` returns, and what calling a layer on one gives back.

A symbolic tensor has a shape (batch axis first, ``None`` where any size goes), a dtype and a
name, but no values. Calling a layer on symbolic tensors builds the layer, checks the shapes
and records the call as a ``Node``: the layer, the tensors it was called on (its first
argument and tensor-valued keyword arguments such as ``initial_state=``), the other keyword
arguments, and the symbolic outputs. ``rnnkit.Model(inputs, outputs)`` then walks back from
the outputs along these nodes to find the graph it runs (``rnnkit.models.functional``).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

_ids = itertools.count()


class SymbolicTensor:
    """A placeholder for an array in a model being defined.

    Attributes:
        shape: the full shape, batch axis first, ``None`` for a size not fixed yet.
        dtype: a NumPy dtype.
        name: a readable name, unique in this session.
        node: the ``Node`` (layer call) that produces it; ``index``: which of that call's outputs it is.
    """

    __slots__ = ("shape", "dtype", "name", "node", "index", "id")

    def __init__(self, shape: tuple, dtype: Any, node: Node | None = None, index: int = 0, name: str | None = None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.id = next(_ids)
        self.name = name or f"symbolic_tensor_{self.id}"

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def layer(self):
        """The layer whose call produced this tensor (an ``InputLayer`` for ``Input``)."""
        return None if self.node is None else self.node.layer

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __hash__(self) -> int:
        return self.id

    def __eq__(self, other: object) -> bool:
        return self is other

    def __iter__(self):
        raise TypeError(
            f"{self!r} is one tensor and cannot be unpacked. A recurrent layer returns its states too only "
            "with return_state=True (out, h, c = LSTM(n, return_state=True)(x))."
        )

    def __array__(self, *args: Any, **kwargs: Any):
        raise TypeError(
            f"{self!r} is symbolic: it has a shape but no values yet. Build a model with "
            "rnnkit.Model(inputs, outputs) and call model.predict(x) to compute it."
        )

    def __bool__(self) -> bool:
        raise TypeError(f"{self!r} is symbolic and has no truth value.")


class Node:
    """One call of a layer on symbolic tensors.

    ``args`` is the first argument as given (a tensor, or a list or dict of tensors),
    ``kwargs`` the keyword arguments as given (some may hold tensors: ``initial_state``,
    ``mask``), ``training`` the ``training=`` of the call (None: the model's).
    ``tensor_inputs`` lists every tensor the call reads, first those of ``args``, then
    those of ``kwargs`` in key order, as Keras orders a node's inputs.
    """

    __slots__ = ("layer", "args", "kwargs", "training", "outputs", "output_structure", "arg_tensors",
                 "kwarg_tensors", "tensor_inputs")

    def __init__(self, layer: Any, args: Any, kwargs: dict, training: bool | None, outputs: list[SymbolicTensor],
                 output_structure: Any):
        self.layer = layer
        self.args = args
        self.kwargs = kwargs
        self.training = training
        self.outputs = outputs
        self.output_structure = output_structure
        self.arg_tensors = flatten(args)
        self.kwarg_tensors = {k: flatten(kwargs[k]) for k in sorted(kwargs) if flatten(kwargs[k])}
        self.tensor_inputs = self.arg_tensors + [t for ts in self.kwarg_tensors.values() for t in ts]

    @property
    def is_input(self) -> bool:
        return not self.tensor_inputs

    @property
    def input_structure(self) -> Any:
        return self.args

    @property
    def n_tensor_arguments(self) -> int:
        """How many arguments hold tensors (the first one, plus keyword ones): Keras passes the
        input's mask to ``mask=`` by itself only when this is one."""
        return (1 if self.arg_tensors else 0) + len(self.kwarg_tensors)

    def __repr__(self) -> str:
        return f"<Node {self.layer.name} inputs={[t.name for t in self.tensor_inputs]}>"


def flatten(structure: Any) -> list[SymbolicTensor]:
    """The symbolic tensors in a tensor, list, tuple or dict (dict values in key order)."""
    if isinstance(structure, SymbolicTensor):
        return [structure]
    if isinstance(structure, (list, tuple)):
        return [t for item in structure for t in flatten(item)]
    if isinstance(structure, dict):
        return [t for key in sorted(structure) for t in flatten(structure[key])]
    return []


def substitute(structure: Any, values: dict[int, Any]) -> Any:
    """``structure`` with each symbolic tensor replaced by ``values[tensor.id]``."""
    if isinstance(structure, SymbolicTensor):
        return values[structure.id]
    if isinstance(structure, (list, tuple)):
        return [substitute(item, values) for item in structure]
    if isinstance(structure, dict):
        return {key: substitute(item, values) for key, item in structure.items()}
    return structure


def any_symbolic(*structures: Any) -> bool:
    return any(flatten(s) for s in structures)


def _contains_arrays(structure: Any) -> bool:
    if isinstance(structure, SymbolicTensor):
        return False
    if isinstance(structure, (list, tuple)):
        return any(_contains_arrays(s) for s in structure)
    if isinstance(structure, dict):
        return any(_contains_arrays(s) for s in structure.values())
    return isinstance(structure, np.ndarray) or (hasattr(structure, "__array__") and not isinstance(structure, str))


def _batchless(t: SymbolicTensor) -> tuple:
    return tuple(t.shape[1:])


def _with_batch(shape: tuple, batch: int | None) -> tuple:
    return (batch, *shape)


def call_layer(layer: Any, inputs: Any, training: bool | None, kwargs: dict) -> Any:
    """Record ``layer(inputs, training=training, **kwargs)`` on symbolic tensors; return symbolic outputs."""
    if isinstance(inputs, dict):
        raise TypeError(f"Layer '{layer.name or layer.default_name()}' takes a tensor or a list of tensors, "
                        "got a dict.")
    if isinstance(inputs, tuple):
        inputs = list(inputs)
    arg_tensors = flatten(inputs)
    what = f"Layer '{layer.name or layer.default_name()}' ({type(layer).__name__})"
    if not arg_tensors:
        raise TypeError(f"{what} was called with symbolic tensors in its keyword arguments but its input is not one; "
                        "call it on the output of Input(...) or of another layer.")
    if isinstance(inputs, list) and len(arg_tensors) != len(inputs):
        raise TypeError(f"{what} was called on a list mixing symbolic tensors and arrays; build the model from "
                        "Input(...) tensors only and pass arrays to fit/predict.")
    for key, value in kwargs.items():
        if flatten(value) and _contains_arrays(value):
            raise TypeError(f"{what}: argument {key}= mixes symbolic tensors and arrays.")
    if isinstance(inputs, list):
        shapes = [_batchless(t) for t in inputs]
        batch = inputs[0].shape[0]
    else:
        shapes = _batchless(inputs)
        batch = inputs.shape[0]
    static = {k: v for k, v in kwargs.items() if not flatten(v)}
    try:
        _check_call_shapes(layer, shapes, inputs)
        if not layer.built:
            layer.build(shapes)
        out_shapes = layer.output_shape_for_call(shapes, **{k: v for k, v in static.items() if k != "mask"})
        _check_kwarg_tensors(layer, kwargs, inputs)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if layer.name is None:
            message = message.replace("Layer 'None'", f"Layer '{layer.default_name()}'")
        raise type(exc)(message) from None
    multi = isinstance(out_shapes, list)
    out_list = out_shapes if multi else [out_shapes]
    node = Node(layer, inputs, dict(kwargs), training, [], None)
    dtype = _output_dtype(layer)
    outputs = [SymbolicTensor(_with_batch(tuple(s), batch), dtype, node=node, index=i) for i, s in enumerate(out_list)]
    node.outputs = outputs
    node.output_structure = outputs if multi else outputs[0]
    layer._inbound_nodes.append(node)
    return node.output_structure


def _output_dtype(layer: Any) -> np.dtype:
    from rnnkit import backend

    for p in layer.params.values():
        if p.dtype.kind == "f":
            return p.dtype
    return backend.float_dtype()


def _check_call_shapes(layer: Any, shapes: Any, inputs: Any) -> None:
    """The rank checks of the layer itself, then, for a built layer, that its weights fit these inputs."""
    from rnnkit.layers.base import normalize_shape

    normalized = [normalize_shape(s) for s in shapes] if isinstance(shapes, list) else normalize_shape(shapes)
    what = f"Layer '{layer.name or layer.default_name()}' ({type(layer).__name__})"
    given = [t.shape for t in inputs] if isinstance(inputs, list) else inputs.shape
    if layer.built:
        built = layer.input_shape
        if not layer.accepts_input_shape(normalized):
            expected = [(None, *s) for s in built] if isinstance(built, list) else (None, *built)
            raise ValueError(f"{what} was built for inputs of shape {expected} and cannot be called on "
                             f"shape {given}.")
    layer.check_input_shape(normalized)


def _check_kwarg_tensors(layer: Any, kwargs: dict, inputs: Any) -> None:
    states = kwargs.get("initial_state")
    if states is None or not flatten(states):
        return
    states = flatten(states)
    n = getattr(layer, "n_states", None)
    what = f"Layer '{layer.name or layer.default_name()}' ({type(layer).__name__})"
    units = getattr(layer, "units", None)
    if n is not None and len(states) != n:
        raise ValueError(f"{what} takes {n} initial state tensor(s), got {len(states)}.")
    for s in states:
        if units is not None and (s.ndim != 2 or s.shape[1] not in (None, units)):
            raise ValueError(f"{what} needs initial states of shape (None, {units}), got {s.shape}.")
