"""Write an rnnkit model as a Keras 3 ``.keras`` file that ``keras.saving.load_model`` reads.

The zip holds ``config.json`` (the architecture in Keras 3's serialised form, with the compile
settings), ``metadata.json`` and ``model.weights.h5`` (the variables at the object paths Keras
walks, see ``weight_layout``). Members are stored with fixed timestamps and the HDF5 file is
written without object times, so one model gives the same bytes each time; the file is written
through ``rnnkit.saving.write_atomically`` (all or nothing).
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import numpy as np

from rnnkit import __version__
from rnnkit.keras_files import archive, hdf5_checks, weight_layout
from rnnkit.keras_files.compile_map import keras_compile_config
from rnnkit.keras_files.layer_map import NESTED_KEYS, camel_case
from rnnkit.keras_files.optimizer_state import keras_variables

#: Keras layers that take ``seed``; rnnkit writes ``seed`` for more of them
_SEEDED = {"Dropout", "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "Attention",
           "AdditiveAttention"}
_MODULES = {"initializer": "keras.initializers", "regularizer": "keras.regularizers", "constraint": "keras.constraints"}


def _policy(dtype: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": dtype}, "registered_name": None}


def _keras_object(kind: str, value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    config = dict(value.get("config", {}))
    class_name = camel_case(str(value["class_name"]))
    if kind == "initializer" and class_name in ("Zeros", "Ones"):
        config.pop("seed", None)                   # Keras' constant initializers take no seed
    return {"module": _MODULES[kind], "class_name": class_name, "config": config, "registered_name": None}


def _layer(entry: dict, dtype: str, obj: Any = None) -> dict:
    """Keras' serialised form of one rnnkit layer entry ``{"class_name", "config"}`` (``obj``: the layer itself)."""
    class_name = entry["class_name"]
    if class_name in ("Sequential", "Functional"):
        return _model_entry(class_name, entry["config"], dtype, obj)
    if class_name == "InputLayer":
        rc = entry["config"]
        return {"module": "keras.layers", "class_name": "InputLayer",
                "config": {"batch_shape": [rc.get("batch_size"), *rc["shape"]], "dtype": rc.get("dtype", dtype),
                           "sparse": False, "ragged": False, "name": rc.get("name")}, "registered_name": None}
    config: dict[str, Any] = {}
    for key, value in entry["config"].items():
        kind = key.rsplit("_", 1)[-1]
        if key in NESTED_KEYS and isinstance(value, dict):
            config[key] = _layer(value, dtype)
        elif key == "cells" and isinstance(value, list):
            config[key] = [_layer(v, dtype) for v in value]
        elif kind in _MODULES and key.endswith(f"_{kind}"):
            config[key] = _keras_object(kind, value)
        elif key == "input_shape" or (key == "name" and value is None):
            continue
        elif key == "seed" and class_name not in _SEEDED:
            continue
        else:
            config[key] = value
    config["trainable"] = entry.get("trainable", True)
    config["dtype"] = _policy(dtype)
    return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}


def _model_entry(class_name: str, config: dict, dtype: str, model: Any) -> dict:
    if class_name == "Sequential":
        shape = config.get("input_shape")
        layers = []
        if shape is not None:
            layers.append({"module": "keras.layers", "class_name": "InputLayer",
                           "config": {"batch_shape": [config.get("batch_size"), *shape],
                                      "dtype": config.get("input_dtype") or dtype,
                                      "sparse": False, "ragged": False, "name": f"{config['name']}_input"},
                           "registered_name": None})
        by_name = {layer.name: layer for layer in model.layers} if model is not None else {}
        layers += [_layer(e, dtype, by_name.get(e["config"].get("name"))) for e in config["layers"]
                   if e["class_name"] != "InputLayer"]
        return {"module": "keras", "class_name": "Sequential",
                "config": {"name": config["name"], "trainable": True, "dtype": _policy(dtype), "layers": layers},
                "registered_name": None,
                "build_config": {"input_shape": None if shape is None else [None, *shape]}}
    layers = []
    shapes = _shapes(model)
    by_name = {layer.name: layer for layer in model.layers}
    for e in config["layers"]:
        keras_entry = _layer(e, dtype, by_name.get(e["name"]))
        keras_entry["name"] = e["name"]
        keras_entry["inbound_nodes"] = [_node(call, shapes) for call in e.get("inbound_nodes", [])]
        layers.append(keras_entry)
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": config["name"], "trainable": True, "layers": layers,
                       "input_layers": _endpoints(config["input_layers"]),
                       "output_layers": _endpoints(config["output_layers"])},
            "registered_name": "Functional", "build_config": {"input_shape": None}}


def _endpoints(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"tensor"}:
        return list(value["tensor"])
    if isinstance(value, list):
        return [_endpoints(v) for v in value]
    raise ValueError("a model whose inputs or outputs are a dict cannot be written as a Keras file")


def _node(call: dict, shapes: dict) -> dict:
    """One call of a layer in Keras 3's form: ``{"args": [input], "kwargs": {...}}`` with Keras tensors."""
    def tensor(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"tensor"}:
            name, i, k = value["tensor"]
            shape, dtype = shapes[(name, i, k)]
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": shape, "dtype": dtype, "keras_history": [name, i, k]}}
        if isinstance(value, list):
            return [tensor(v) for v in value]
        if isinstance(value, dict) and set(value) == {"dict"}:
            return {k: tensor(v) for k, v in value["dict"].items()}
        return value

    kwargs = {k: tensor(v) for k, v in call.get("kwargs", {}).items()}
    if isinstance(call.get("training"), bool):
        kwargs["training"] = call["training"]
    return {"args": [tensor(call["args"])], "kwargs": kwargs}


def _shapes(model: Any) -> dict:
    """``(layer name, call index, output index) -> ([None, *shape], dtype)`` for every tensor of ``model``'s graph.

    Keras 3 writes each tensor a call reads with its shape and dtype; the indices are those of
    ``rnnkit.models.serialization`` (a layer's calls counted within this graph), as Keras counts them.
    """
    from rnnkit.models.serialization import _call_indices

    index = _call_indices(model)
    graph = model.graph
    nodes = [layer._inbound_nodes[0] for layer in graph.layers if type(layer).__name__ == "InputLayer"]
    out = {}
    for node in nodes + list(graph.nodes):
        if id(node) not in index:
            continue
        name, i = index[id(node)]
        outputs = node.outputs if isinstance(node.outputs, (list, tuple)) else [node.outputs]
        for k, t in enumerate(outputs):
            out[(name, i, k)] = ([None, *t.shape], str(t.dtype))
    return out


def keras_config(model: Any) -> dict:
    """The ``config.json`` of ``model`` as a ``.keras`` file (architecture and compile settings)."""
    from rnnkit.models.sequential import Sequential

    dtype = str(model.dtype)
    class_name = "Sequential" if isinstance(model, Sequential) else "Functional"
    entry = _model_entry(class_name, model.get_config(), dtype, model)
    entry["compile_config"] = keras_compile_config(model)
    return entry


def _write_groups(h5: Any, entry: dict, path: str, layer: Any) -> None:
    """Write ``layer``'s weights under the object path ``path`` as Keras lays them out."""
    from rnnkit.models import Model

    h5.require_group(f"{path}/vars").attrs["name"] = layer.name
    if isinstance(layer, Model):
        sub = {lay.name: lay for lay in layer.layers}
        for child, child_path in weight_layout.top_level_paths(entry["config"], f"{path}/layers"):
            name = weight_layout.entry_name(child)
            if name in sub:
                _write_groups(h5, child, child_path, sub[name])
        return
    weights = layer.get_weights()
    groups = weight_layout.layer_groups(entry, path)
    counts = _group_counts(layer)
    if len(counts) != len(groups) or sum(counts) != len(weights):
        raise ValueError(f"layer '{layer.name}' ({type(layer).__name__}) has a weight layout this writer does not "
                         "know how to give Keras")
    start = 0
    for group, count in zip(groups, counts):
        vars_group = h5.require_group(group)
        for i, w in enumerate(weights[start:start + count]):
            vars_group.create_dataset(str(i), data=np.asarray(w), track_times=False)
        start += count


def _group_counts(layer: Any) -> list[int]:
    """How many of ``layer``'s weights go to each of its Keras ``vars`` groups (``weight_layout.layer_groups``)."""
    if hasattr(layer, "forward_layer") and hasattr(layer, "backward_layer"):
        return _group_counts(layer.forward_layer) + _group_counts(layer.backward_layer)
    cell = getattr(layer, "cell", None)
    if type(cell).__name__ == "StackedRNNCells":
        return [len(c.params) for c in cell.cells]
    if type(layer).__name__ == "TimeDistributed":
        return _group_counts(layer.layer)
    return [len(layer.params)]


def weights_file(model: Any, config: dict) -> bytes:
    """The bytes of ``model.weights.h5`` for ``model`` and its Keras ``config``."""
    h5py = hdf5_checks.import_h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as h5:
        h5.require_group("vars").attrs["name"] = model.name
        by_name = {layer.name: layer for layer in model.layers}
        entries = config["config"]["layers"]
        if config["class_name"] == "Sequential":
            entries = [e for e in entries if e["class_name"] != "InputLayer"]
        for entry, path in weight_layout.top_level_paths({"layers": entries}):
            layer = by_name.get(weight_layout.entry_name(entry))
            if layer is not None:
                _write_groups(h5, entry, path, layer)
        if model.compiled:
            group = h5.require_group("optimizer/vars")
            group.attrs["name"] = model.optimizer.name
            for i, value in enumerate(keras_variables(model.optimizer, model.trainable_weights, str(model.dtype))):
                group.create_dataset(str(i), data=value, track_times=False)
    return buffer.getvalue()


def save_keras_model(model: Any, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` as a Keras 3 ``.keras`` file, atomically."""
    from rnnkit.saving import write_atomically

    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet; give it an input shape or fit it before saving.")
    hdf5_checks.import_h5py()
    config = keras_config(model)
    members = [(archive.METADATA, json.dumps({"keras_version": "3", "saved_by": f"rnnkit {__version__}"}).encode()),
               (archive.CONFIG, json.dumps(config).encode()),
               (archive.WEIGHTS, weights_file(model, config))]
    write_atomically(archive.zip_writer(members), path)
