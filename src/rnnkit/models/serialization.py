"""A model's architecture as plain JSON, and back: no code is ever executed from a file.

A layer is ``{"class_name", "config"}`` (plus ``"trainable": false`` when frozen), rebuilt
with ``LAYER_CLASSES[class_name](**config)``, so only rnnkit's own classes can appear. A
functional model lists its layers in ``model.layers`` order, each with the calls it makes in
the graph (``inbound_nodes``); a tensor is written ``{"tensor": [layer name, call index,
output index]}``, where the call index counts that layer's calls in this graph. A model used
as a layer of another is written whole inside it. ``Sequential`` keeps its own, shorter form:
the list of its layers, its input shape, and its ``Input``'s batch size and dtype where they were
given (``input_dtype`` only when it is not the float default, e.g. ``"int32"`` indices).
"""

from __future__ import annotations

import inspect
from typing import Any

from rnnkit.symbolic import SymbolicTensor

#: the keys a functional model's config has (a Sequential config has none of the last three)
FUNCTIONAL_KEYS = ("name", "layers", "input_layers", "output_layers")


def serialize_layer(layer: Any) -> dict:
    entry = {"class_name": _class_name(layer), "config": layer.get_config()}
    if not layer.trainable:
        entry["trainable"] = False
    return entry


def _class_name(layer: Any) -> str:
    from rnnkit.models.model import Model
    from rnnkit.models.sequential import Sequential

    if isinstance(layer, Sequential):
        return "Sequential"
    if isinstance(layer, Model):
        return "Functional"
    return type(layer).__name__


def deserialize_layer(entry: Any) -> Any:
    """A layer (or a model) from ``{"class_name", "config"}``; unknown names are a ValueError."""
    from rnnkit.layers import LAYER_CLASSES

    if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
        raise ValueError(f"expected a layer description {{'class_name', 'config'}}, got {type(entry).__name__}")
    name = entry.get("class_name")
    config = dict(entry.get("config", {}))
    if not all(isinstance(k, str) for k in config):
        raise ValueError("layer config keys must be strings")
    if name == "Sequential":
        layer = sequential_from_config(config)
    elif name in ("Functional", "Model"):
        layer = functional_from_config(config)
    elif isinstance(name, str) and name in LAYER_CLASSES:
        try:
            layer = LAYER_CLASSES[name](**config)
        except (TypeError, ValueError) as exc:
            # a constructor's own argument check, reported with the layer it was about
            raise ValueError(f"layer {config.get('name', '?')!r} ({name}) cannot be made from its config: "
                             f"{exc}") from None
    else:
        raise ValueError(f"unknown layer class {name!r}")
    if entry.get("trainable") is False:
        layer.trainable = False
    return layer


def _check_fields(config: dict, what: str, required: dict[str, type], optional: dict[str, type]) -> None:
    """Refuse a config missing a required field or holding one of the wrong JSON type (None allowed if optional)."""
    for key in required:
        if key not in config:
            raise ValueError(f"the {what} description has no {key!r}")
    for key, kind in {**required, **optional}.items():
        value = config.get(key)
        if value is None and key in optional:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"the {what} description's {key!r} must be a JSON {kind.__name__}, got "
                             f"{type(value).__name__}")


def _weight_hint(layer: Any, initializer: Any) -> str:
    """``, weight 'recurrent_kernel'``: the weight of ``layer`` (or of a layer it wraps) that ``initializer``
    makes, found by identity among the layers' ``*_initializer`` attributes; empty when it is none of them."""
    from rnnkit.layers.base import Layer

    owners = [("", layer)] + [(f"{k}.", v) for k, v in vars(layer).items() if isinstance(v, Layer)]
    for prefix, owner in owners:
        for key, value in vars(owner).items():
            if initializer is not None and value is initializer and key.endswith("_initializer"):
                # Keras' names: kernel_initializer -> kernel, recurrent_initializer -> recurrent_kernel
                weight = key[:-len("_initializer")]
                return f", weight '{prefix}{'recurrent_kernel' if weight == 'recurrent' else weight}'"
    return ""


def _build_step(layer: Any, build: Any, *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)``, with an allocation-budget refusal reported with the name of the layer it builds."""
    from rnnkit.initializers import AllocationBudgetError, refused_initializer

    try:
        return build(*args, **kwargs)
    except AllocationBudgetError as exc:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}){_weight_hint(layer, refused_initializer())}"
                         f": {exc}") from None


# -- Sequential ---------------------------------------------------------------------------------

def sequential_from_config(config: dict) -> Any:
    from rnnkit.layers.input_layer import InputLayer
    from rnnkit.models.sequential import Sequential

    _check_fields(config, "Sequential model", {"name": str, "layers": list},
                  {"input_shape": list, "seed": int, "batch_size": int, "input_dtype": str})
    model = Sequential(name=config["name"], seed=config.get("seed"))
    has_input = config.get("batch_size") is not None or config.get("input_dtype") is not None
    if has_input and config.get("input_shape") is None:
        raise ValueError("the Sequential model description has a batch_size or input_dtype but no input_shape")
    if has_input:
        # the Input(...) the model was made with: its batch size and (integer) dtype are part of the model
        model.add(InputLayer(shape=config["input_shape"], batch_size=config.get("batch_size"),
                             dtype=config.get("input_dtype")))
    elif config.get("input_shape") is not None:
        # with the input shape known first, each add builds its layer: a refusal names that layer
        model.add(InputLayer(shape=config["input_shape"]))
    for entry in config["layers"]:
        layer = deserialize_layer(entry)
        _build_step(layer, model.add, layer)
    if config.get("input_shape") is not None:
        model.build((None, *config["input_shape"]))
    return model


# -- functional models --------------------------------------------------------------------------

def _call_indices(model: Any) -> dict[int, tuple[str, int]]:
    """node id -> (layer name, index of that call among the layer's calls in this graph)."""
    graph = model.graph
    out: dict[int, tuple[str, int]] = {}
    counts: dict[int, int] = {}
    nodes = [layer._inbound_nodes[0] for layer in graph.layers if type(layer).__name__ == "InputLayer"]
    for node in nodes + list(graph.nodes):
        if id(node) in out:
            continue
        i = counts.get(id(node.layer), 0)
        counts[id(node.layer)] = i + 1
        out[id(node)] = (node.layer.name, i)
    return out


def _encode(value: Any, index: dict[int, tuple[str, int]], where: str) -> Any:
    if isinstance(value, SymbolicTensor):
        if id(value.node) not in index:
            raise ValueError(f"{where} reads tensor '{value.name}', which comes from outside the model; a model "
                             "can be saved only when its inputs are Input(...) tensors.")
        name, i = index[id(value.node)]
        return {"tensor": [name, i, value.index]}
    if isinstance(value, (list, tuple)):
        return [_encode(v, index, where) for v in value]
    if isinstance(value, dict):
        return {"dict": {str(k): _encode(v, index, where) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{where} was called with an argument of type {type(value).__name__}, which cannot be saved.")


def _decode(value: Any, tensors: dict[tuple, SymbolicTensor]) -> Any:
    if isinstance(value, dict) and set(value) == {"tensor"}:
        ref = value["tensor"]
        if not (isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str)
                and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ref[1:])):
            raise ValueError(f"invalid tensor reference {str(ref)[:80]}: expected [layer name, call index, "
                             "output index]")
        key = (ref[0], ref[1], ref[2])
        if key not in tensors:
            raise KeyError(key)
        return tensors[key]
    if isinstance(value, dict) and set(value) == {"dict"} and isinstance(value["dict"], dict):
        return {k: _decode(v, tensors) for k, v in value["dict"].items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        raise ValueError(f"invalid value in a call's arguments: {value!r}")
    return value


def functional_config(model: Any) -> dict:
    index = _call_indices(model)
    graph = model.graph
    layers = []
    for layer in graph.layers:
        entry = serialize_layer(layer)
        entry["name"] = layer.name
        calls = []
        for node in graph.nodes:
            if node.layer is layer:
                where = f"Layer '{layer.name}'"
                calls.append({"args": _encode(node.args, index, where),
                              "kwargs": {k: _encode(v, index, where) for k, v in node.kwargs.items()},
                              "training": node.training})
        entry["inbound_nodes"] = calls
        layers.append(entry)

    def structure(flat: list, keys: list | None, single: bool) -> Any:
        encoded = [_encode(t, index, f"Model '{model.name}'") for t in flat]
        if single:
            return encoded[0]
        if keys:
            return {"dict": dict(zip(keys, encoded))}
        return encoded

    return {"name": model.name, "layers": layers,
            "input_layers": structure(model.inputs, model._input_keys, model._single_input),
            "output_layers": structure(model.outputs, model._output_keys, model._single_output)}


def _check_call_kwargs(layer: Any, kwargs: dict) -> None:
    """Refuse keyword arguments that the layer's ``forward`` does not take (a file may name any)."""
    params = inspect.signature(layer.forward).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    names = [n for n, p in params.items() if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                        inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(kwargs) - set(names[1:]) | ({"training"} & set(kwargs)))   # names[0]: the input
    if unknown:
        raise ValueError(f"layer '{layer.name}' ({type(layer).__name__}) is called with argument(s) {unknown}, "
                         f"which it does not take")
    for name in ("mask", "initial_state"):
        value = kwargs.get(name)
        parts = value if isinstance(value, list) else [value]
        if value is not None and not (parts and all(p is None or isinstance(p, SymbolicTensor) for p in parts)):
            # a value from the file would reach the layer as a constant (a mask of True) at every call
            raise ValueError(f"layer '{layer.name}' ({type(layer).__name__}) is called with {name}="
                             f"{str(value)[:60]}; expected tensors of the model")


def functional_from_config(config: dict) -> Any:
    from rnnkit.models.model import Model

    _check_fields(config, "functional model", {"name": str, "layers": list, "input_layers": object,
                                               "output_layers": object}, {})
    created: list[tuple[Any, list]] = []
    tensors: dict[tuple, SymbolicTensor] = {}
    for entry in config["layers"]:
        if not isinstance(entry, dict):
            raise ValueError("a layer entry is not a JSON object")
        layer = deserialize_layer(entry)
        layer.name = str(entry.get("name", layer.name))
        if type(layer).__name__ == "InputLayer":
            tensors[(layer.name, 0, 0)] = layer.output_tensor
        calls = entry.get("inbound_nodes", [])
        if not isinstance(calls, list):
            raise ValueError(f"inbound_nodes of layer '{layer.name}' is not a list")
        created.append((layer, list(enumerate(calls))))
    pending = [(layer, i, call) for layer, calls in created for i, call in calls]
    done_calls: dict[int, int] = {}
    while pending:
        left = []
        for layer, i, call in pending:
            if done_calls.get(id(layer), 0) != i:          # a layer's calls are made in their order
                left.append((layer, i, call))
                continue
            try:
                args = _decode(call["args"], tensors)
                kwargs = {str(k): _decode(v, tensors) for k, v in dict(call.get("kwargs", {})).items()}
            except KeyError:
                left.append((layer, i, call))
                continue
            if not (isinstance(args, SymbolicTensor) or (isinstance(args, list) and args
                                                         and all(isinstance(a, SymbolicTensor) for a in args))):
                # anything else would run the layer on values from the file instead of recording a call
                raise ValueError(f"a call of layer '{layer.name}' takes {str(call['args'])[:80]}; expected a "
                                 "tensor or a list of tensors of the model")
            _check_call_kwargs(layer, kwargs)
            training = call.get("training")
            out = _build_step(layer, layer, args, training=training if isinstance(training, bool) else None, **kwargs)
            for k, t in enumerate(out if isinstance(out, list) else [out]):
                tensors[(layer.name, i, k)] = t
            done_calls[id(layer)] = i + 1
        if len(left) == len(pending):
            names = sorted({layer.name for layer, _, _ in left})
            raise ValueError(f"the calls of layer(s) {names} read tensors that no layer of the model makes")
        pending = left
    inputs = _decode(config["input_layers"], tensors)
    outputs = _decode(config["output_layers"], tensors)
    return Model(inputs, outputs, name=str(config["name"]))


def model_from_config(config: dict) -> Any:
    """A ``Sequential`` or functional model from ``model.get_config()``."""
    if not isinstance(config, dict):
        raise ValueError("the model description is not a JSON object")
    if "input_layers" in config:
        return functional_from_config(config)
    return sequential_from_config(config)
