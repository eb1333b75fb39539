"""``clone_model``: the same architecture with new layers (new weights), as Keras' ``clone_model``.

Each layer is rebuilt from its config (``type(layer)(**layer.get_config())``, so a user's own
layer class works too) and the graph is replayed call by call on new ``Input`` tensors. The
clone's weights are freshly initialised; copy them with ``clone.set_weights(model.get_weights())``.
"""

from __future__ import annotations

from typing import Any

from rnnkit.symbolic import SymbolicTensor


def clone_layer(layer: Any) -> Any:
    from rnnkit.models.model import Model

    if isinstance(layer, Model):
        new = clone_model(layer)
    else:
        new = type(layer)(**layer.get_config())
    new.trainable = layer.trainable
    return new


def clone_model(model: Any) -> Any:
    """A model with the same layers, calls and names but new weights (built in the current float type)."""
    from rnnkit.layers.input_layer import Input
    from rnnkit.models.model import Model
    from rnnkit.models.sequential import Sequential

    if isinstance(model, Sequential):
        clone = Sequential(name=model.name, seed=model.seed)
        source = model._input_layer
        if source is not None and (source.batch_size is not None or source.input_dtype.kind != "f"):
            # a fixed batch size and integer indices are part of the architecture; a float input takes
            # the current float type like every clone
            clone.add(Input(shape=source.input_shape_arg, batch_size=source.batch_size,
                            dtype=None if source.input_dtype.kind == "f" else source.input_dtype))
        for layer in model.layers:
            clone.add(clone_layer(layer))
        if model.input_shape is not None:
            clone.build((None, *model.input_shape))
        return clone
    graph = model.graph
    tensors: dict[int, SymbolicTensor] = {}
    for t in model.inputs:
        layer = t.node.layer
        dtype = None if t.dtype.kind == "f" else t.dtype
        tensors[t.id] = Input(shape=t.shape[1:], batch_size=t.shape[0], dtype=dtype, name=layer.name)
    clones: dict[int, Any] = {}
    for node in graph.nodes:
        layer = node.layer
        if id(layer) not in clones:
            clones[id(layer)] = clone_layer(layer)
        new = clones[id(layer)]
        args = _map(node.args, tensors)
        kwargs = {k: _map(v, tensors) for k, v in node.kwargs.items()}
        out = new(args, training=node.training, **kwargs)
        for t, o in zip(node.outputs, out if isinstance(out, list) else [out]):
            tensors[t.id] = o

    def structure(flat: list, keys: list | None, single: bool) -> Any:
        mapped = [tensors[t.id] for t in flat]
        return mapped[0] if single else (dict(zip(keys, mapped)) if keys else mapped)

    return Model(structure(model.inputs, model._input_keys, model._single_input),
                 structure(model.outputs, model._output_keys, model._single_output), name=model.name, seed=model.seed)


def _map(structure: Any, tensors: dict[int, SymbolicTensor]) -> Any:
    if isinstance(structure, SymbolicTensor):
        return tensors[structure.id]
    if isinstance(structure, (list, tuple)):
        return [_map(s, tensors) for s in structure]
    if isinstance(structure, dict):
        return {k: _map(v, tensors) for k, v in structure.items()}
    return structure
