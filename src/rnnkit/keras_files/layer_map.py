"""Keras layer configs to rnnkit layer configs and back: a fixed table, never an import of a named module.

rnnkit's layers carry Keras' class names, argument names and defaults, so most of a Keras config
passes through as it is. What differs is translated here:

* initializers, regularizers and constraints: Keras writes ``{"module", "class_name": "GlorotUniform",
  "config", "registered_name"}``, rnnkit ``{"class_name": "glorot_uniform", "config"}``;
* the dtype policy (``{"class_name": "DTypePolicy", "config": {"name": "float32"}}`` or ``"float32"``)
  becomes the model's float type;
* arguments that rnnkit lacks are dropped only when they hold the value that changes nothing
  (``HARMLESS``); any other value, and any class outside ``LAYER_CLASSES``, is a *problem*: the
  reader collects every problem of a file and reports them all in one ``ModelFileError``.

The ``module`` and ``registered_name`` a Keras config names are matched against the class name in
the fixed tables below and otherwise ignored: nothing a file names is ever imported or called.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from rnnkit import activations

#: Keras arguments rnnkit has no counterpart for, with the values that make them do nothing
HARMLESS: dict[str, tuple] = {
    "trainable": (True, False), "dtype": (), "sparse": (False,), "ragged": (False,), "optional": (False,),
    "quantization_config": (None,), "lora_rank": (None,), "lora_alpha": (None,),
    "renorm": (False,), "renorm_clipping": (None,), "renorm_momentum": (0.99,), "synchronized": (False,),
    "beta_regularizer": (None,), "gamma_regularizer": (None,), "beta_constraint": (None,),
    "gamma_constraint": (None,), "moving_mean_constraint": (None,), "moving_variance_constraint": (None,),
    "rms_scaling": (False,), "activity_regularizer": (None,), "seed": (None,), "time_major": (False,),
    "input_length": (), "batch_input_shape": (), "input_dtype": (), "causal": (False,),
    "embeddings_constraint": (None,), "autocast": (True, False), "build_config": (),
}
#: Keras layer classes whose nested layers sit under these config keys
NESTED_KEYS = ("layer", "backward_layer", "cell")
#: Keras class name -> rnnkit class name for the few that differ (a Keras 2 alias)
CLASS_ALIASES = {"Model": "Functional"}

_CAMEL = re.compile(r"(.)([A-Z][a-z]+)")
_CAMEL2 = re.compile(r"([a-z])([A-Z])")


def snake_case(name: str) -> str:
    """``GlorotUniform`` -> ``glorot_uniform``, ``Conv1D`` -> ``conv1d`` (Keras' ``naming.to_snake_case``)."""
    return _CAMEL2.sub(r"\1_\2", _CAMEL.sub(r"\1_\2", re.sub(r"\W+", "", name))).lower()


def camel_case(name: str) -> str:
    """``glorot_uniform`` -> ``GlorotUniform`` (rnnkit's registry names to Keras' class names)."""
    return {"l1_l2": "L1L2", "l1": "L1", "l2": "L2"}.get(name, "".join(p[:1].upper() + p[1:] for p in name.split("_")))


def accepted_arguments(cls: type) -> set[str]:
    """The keyword arguments ``cls(...)`` takes, following ``**kwargs`` up the base classes."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names.update(n for n, p in params.items() if n != "self" and p.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    return names


def dtype_name(value: Any) -> str | None:
    """The float type a Keras ``dtype`` entry names (a string or a ``DTypePolicy`` config), or None."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        name = value["config"].get("name")
        return name if isinstance(name, str) else None
    return None


class Translator:
    """Turns a Keras model config into rnnkit's, collecting every problem instead of stopping at the first.

    ``problems`` lists ``"'name' (Class): reason"`` strings; ``dtypes`` the float types the layers ask for.
    """

    def __init__(self):
        self.problems: list[str] = []
        self.dtypes: set[str] = set()
        self.mask_ops: set[str] = set()      # Keras op nodes that only recompute a mask rnnkit propagates itself

    def problem(self, name: Any, class_name: Any, reason: str) -> None:
        self.problems.append(f"{str(name)[:80]!r} ({str(class_name)[:80]}): {reason}")

    # -- values ------------------------------------------------------------------------------
    def _object(self, value: Any, kind: str, where: tuple) -> Any:
        """An initializer, regularizer or constraint in rnnkit's ``{"class_name", "config"}`` form."""
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
            self.problem(*where, f"its {kind} {str(value)[:60]} is not a name or a {{'class_name', 'config'}}")
            return None
        config = value.get("config", {})
        if not isinstance(config, dict):
            self.problem(*where, f"its {kind} {value['class_name'][:40]!r} has a config that is not an object")
            return None
        # Keras 3 initializers name the axes of fan computations; None (the default) is rnnkit's behaviour
        config = {k: v for k, v in config.items() if not (k in ("input_axes", "output_axes") and v is None)}
        name = value["class_name"]
        if kind == "initializer":
            name = snake_case(name)
        return {"class_name": name, "config": config}

    def _activation(self, value: Any, where: tuple) -> Any:
        if isinstance(value, str) and value in activations.names():
            return value
        self.problem(*where, f"activation {str(value)[:60]!r} is not one of rnnkit's {activations.names()}")
        return "linear"

    # -- layers ------------------------------------------------------------------------------
    def layer(self, entry: Any) -> dict:
        """rnnkit's ``{"class_name", "config"[, "trainable"]}`` for one Keras layer entry."""
        from rnnkit.layers import LAYER_CLASSES

        if not isinstance(entry, dict) or not isinstance(entry.get("config", {}), dict):
            self.problem("?", "?", "a layer entry is not {'class_name', 'config'}")
            return {"class_name": "Dropout", "config": {"rate": 0.0}}
        class_name = entry.get("class_name")
        if isinstance(class_name, str):
            class_name = CLASS_ALIASES.get(class_name, class_name)
        config = entry.get("config", {})
        name = config.get("name", entry.get("name", "?"))
        if class_name in ("Sequential", "Functional"):
            out = {"class_name": class_name, "config": self.model(entry)}
            if config.get("trainable") is False:
                out["trainable"] = False
            return out
        if not isinstance(class_name, str) or class_name not in LAYER_CLASSES:
            self.problem(name, class_name, "rnnkit has no such layer")
            return {"class_name": "Dropout", "config": {"rate": 0.0, "name": str(name)}}
        cls = LAYER_CLASSES[class_name]
        where = (name, class_name)
        if class_name == "InputLayer":
            return {"class_name": "InputLayer", "config": self._input_config(config, where)}
        dtype = dtype_name(config.get("dtype"))
        if dtype is not None:
            self.dtypes.add(dtype)
        accepted = accepted_arguments(cls)
        out: dict[str, Any] = {}
        for key, value in config.items():
            if key in NESTED_KEYS and isinstance(value, dict):
                out[key] = self.layer(value)
            elif key == "cells" and isinstance(value, list):
                out[key] = [self.layer(v) for v in value]
            elif key.endswith("_initializer"):
                out[key] = self._object(value, "initializer", where)
            elif key.endswith("_regularizer") and key in accepted:
                out[key] = self._object(value, "regularizer", where)
            elif key.endswith("_constraint") and key in accepted:
                out[key] = self._object(value, "constraint", where)
            elif key in ("activation", "recurrent_activation"):
                out[key] = self._activation(value, where)
            elif key in accepted and key not in ("trainable", "dtype", "input_shape"):
                out[key] = value
            elif key in HARMLESS and (not HARMLESS[key] or value in HARMLESS[key]):
                continue
            elif key not in accepted:
                self.problem(name, class_name, f"argument {key}={str(value)[:60]} is not supported by rnnkit")
        result = {"class_name": class_name, "config": out}
        if config.get("trainable") is False:
            result["trainable"] = False
        return result

    def _input_config(self, config: dict, where: tuple) -> dict:
        shape = config.get("batch_shape", config.get("batch_input_shape"))
        if not isinstance(shape, list) or not shape:
            self.problem(*where, "its batch_shape is not a list with the batch axis first")
            shape = [None, 1]
        for key, value in config.items():
            if key not in ("batch_shape", "batch_input_shape", "dtype", "name") and not (
                    key in HARMLESS and (not HARMLESS[key] or value in HARMLESS[key])):
                self.problem(*where, f"argument {key}={str(value)[:60]} is not supported by rnnkit")
        out = {"name": config.get("name"), "shape": shape[1:], "batch_size": shape[0]}
        dtype = dtype_name(config.get("dtype"))
        if dtype is not None:
            out["dtype"] = dtype
        return out

    # -- models ------------------------------------------------------------------------------
    def model(self, entry: dict) -> dict:
        """rnnkit's model config (Sequential or functional) for a Keras model entry."""
        config = entry.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            self.problem(entry.get("class_name"), "model", "its config has no list of layers")
            return {"name": "model", "layers": []}
        if CLASS_ALIASES.get(entry.get("class_name"), entry.get("class_name")) == "Sequential":
            return self._sequential(config)
        return self._functional(config)

    def _sequential(self, config: dict) -> dict:
        layers = list(config["layers"])
        out: dict[str, Any] = {"name": str(config.get("name", "sequential")), "layers": []}
        first = layers[0] if layers and isinstance(layers[0], dict) else {}
        first_config = first.get("config") if isinstance(first.get("config"), dict) else {}
        if first.get("class_name") == "InputLayer":
            layers = layers[1:]
            converted = self._input_config(first_config, (first_config.get("name"), "InputLayer"))
            out["input_shape"], out["batch_size"] = converted["shape"], converted["batch_size"]
            if converted.get("dtype") is not None and not str(converted["dtype"]).startswith("float"):
                out["input_dtype"] = converted["dtype"]          # integer indices (Embedding inputs)
        elif isinstance(first_config.get("batch_input_shape"), list) and first_config["batch_input_shape"]:
            out["input_shape"] = first_config["batch_input_shape"][1:]          # Keras 2 put it on the first layer
            out["batch_size"] = first_config["batch_input_shape"][0]
        elif isinstance(config.get("build_input_shape"), list) and config["build_input_shape"]:
            out["input_shape"] = config["build_input_shape"][1:]
        out["layers"] = [self.layer(e) for e in layers]
        return out

    def _tensor(self, value: Any) -> Any:
        """Keras' tensor references (Keras 3 ``__keras_tensor__`` dicts) as rnnkit's ``{"tensor": [...]}``."""
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            history = value.get("config", {}).get("keras_history") if isinstance(value.get("config"), dict) else None
            return {"tensor": history}
        if isinstance(value, list):
            return [self._tensor(v) for v in value]
        if isinstance(value, dict):
            return {"dict": {str(k): self._tensor(v) for k, v in value.items()}}
        return value

    def _node(self, node: Any, where: tuple) -> dict | None:
        """One call of a layer: Keras 3 ``{"args", "kwargs"}`` or Keras 2 ``[[name, node, tensor, kwargs], ...]``."""
        if isinstance(node, dict):
            args = node.get("args", [])
            kwargs = node.get("kwargs", {})
            if not isinstance(args, list) or len(args) != 1 or not isinstance(kwargs, dict):
                self.problem(*where, "a call with other than one positional argument is not supported")
                return None
            arg = self._tensor(args[0])
        elif isinstance(node, list) and node and all(isinstance(r, list) and len(r) >= 3 for r in node):
            refs = [{"tensor": list(r[:3])} for r in node]
            arg = refs[0] if len(refs) == 1 else refs
            kwargs = node[0][3] if len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
        else:
            self.problem(*where, f"a call {str(node)[:60]} is neither Keras 3 nor Keras 2 form")
            return None
        # None is what Keras writes for "no mask, no training flag": rnnkit propagates masks itself, and so
        # a mask computed by one of the recognised mask ops (see _mask_ops) is left out too
        kwargs = {str(k): self._tensor(v) for k, v in kwargs.items()
                  if v is not None and k != "training" and not (k == "mask" and self._from_mask_ops(v))}
        return {"args": arg, "kwargs": kwargs, "training": None}

    def _endpoints(self, value: Any) -> Any:
        """``input_layers``/``output_layers``: ``[name, 0, 0]`` or a list of them (one alone is unwrapped)."""
        if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
            return {"tensor": value}
        if isinstance(value, list) and value:
            refs = [self._endpoints(v) for v in value]
            return refs[0] if len(refs) == 1 else refs
        self.problem("?", "Functional", f"its inputs or outputs {str(value)[:60]} are not [layer, node, tensor]")
        return []

    def _from_mask_ops(self, value: Any) -> bool:
        """Whether ``value`` (a tensor reference or a list of them, None allowed) comes from mask ops only."""
        refs = value if isinstance(value, list) else [value]
        histories = [r.get("config", {}).get("keras_history") if isinstance(r, dict) and
                     isinstance(r.get("config"), dict) else None for r in refs if r is not None]
        return bool(histories) and all(isinstance(h, list) and h and h[0] in self.mask_ops for h in histories)

    def _mask_ops(self, entries: list) -> set[str]:
        """Names of the op nodes Keras 3 writes into a functional config to carry the masks it propagates.

        Keras records the mask of ``Embedding(mask_zero=True)`` as an op ``NotEqual(x, 0)`` and that of
        ``Masking(mask_value=c)`` as ``Any(NotEqual(x, c), axis=-1)``, on the layer's own input, and
        passes it as ``mask=`` to the layers downstream: rnnkit computes and propagates those masks
        itself, so the ops are left out. Only these exact patterns are recognised; any other op stays
        (and is reported as unsupported).
        """
        def single_call(entry: dict) -> tuple[list, dict] | None:
            nodes = entry.get("inbound_nodes")
            if not isinstance(nodes, list) or len(nodes) != 1 or not isinstance(nodes[0], dict):
                return None
            args, kwargs = nodes[0].get("args"), nodes[0].get("kwargs", {})
            return (args, kwargs) if isinstance(args, list) and kwargs in ({}, None) else None

        def source(arg: Any) -> tuple | None:
            if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__" and \
                    isinstance(arg.get("config"), dict) and isinstance(arg["config"].get("keras_history"), list):
                return tuple(map(str, arg["config"]["keras_history"]))
            return None

        masked_inputs: dict[tuple, list] = {}       # tensor -> the mask values its Embedding / Masking readers use
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
                continue
            call = single_call(entry)
            if call is None or len(call[0]) != 1 or source(call[0][0]) is None:
                continue
            cfg = entry["config"]
            if entry.get("class_name") == "Embedding" and cfg.get("mask_zero") is True:
                masked_inputs.setdefault(source(call[0][0]), []).append(("embedding", 0))
            elif entry.get("class_name") == "Masking":
                masked_inputs.setdefault(source(call[0][0]), []).append(("masking", cfg.get("mask_value", 0.0)))
        not_equal: dict[str, tuple] = {}
        for entry in entries:
            if isinstance(entry, dict) and entry.get("class_name") == "NotEqual" and isinstance(entry.get("name"), str):
                call = single_call(entry)
                if call is not None and len(call[0]) == 2 and source(call[0][0]) is not None and \
                        isinstance(call[0][1], (int, float)) and not isinstance(call[0][1], bool):
                    not_equal[entry["name"]] = (source(call[0][0]), call[0][1])
        found = set()
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("class_name") != "Any":
                continue
            cfg, call = entry.get("config"), single_call(entry)
            if not isinstance(cfg, dict) or cfg.get("axis") != -1 or cfg.get("keepdims") is not False or \
                    call is None or len(call[0]) != 1 or source(call[0][0]) is None:
                continue
            inner = source(call[0][0])[0]
            if inner in not_equal:
                tensor, value = not_equal[inner]
                if ("masking", value) in masked_inputs.get(tensor, []):
                    found.update((inner, entry["name"]))
        for name, (tensor, value) in not_equal.items():
            if ("embedding", value) in masked_inputs.get(tensor, []):
                found.add(name)
        return found

    def _functional(self, config: dict) -> dict:
        layers = []
        outer, self.mask_ops = self.mask_ops, self._mask_ops(config["layers"])    # a nested model has its own
        for entry in config["layers"]:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"] in self.mask_ops:
                continue
            converted = self.layer(entry)
            entry = entry if isinstance(entry, dict) else {}
            name = entry.get("name", converted["config"].get("name"))
            converted["name"] = name
            if converted["class_name"] not in ("Sequential", "Functional"):
                converted["config"]["name"] = name
            nodes = entry.get("inbound_nodes", [])
            calls = [self._node(n, (name, entry.get("class_name"))) for n in (nodes if isinstance(nodes, list) else [])]
            converted["inbound_nodes"] = [c for c in calls if c is not None]
            layers.append(converted)
        self.mask_ops = outer
        return {"name": str(config.get("name", "functional")), "layers": layers,
                "input_layers": self._endpoints(config.get("input_layers")),
                "output_layers": self._endpoints(config.get("output_layers"))}
