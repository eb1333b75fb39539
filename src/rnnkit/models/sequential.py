"""``Sequential``: a ``Model`` whose graph is a chain of layers, added one by one as in Keras."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rnnkit.checks import as_numeric_array
from rnnkit.layers.base import Layer, normalize_shape
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.input_layer import InputLayer
from rnnkit.models.model import Model
from rnnkit.symbolic import SymbolicTensor


class Sequential(Model):
    """A linear stack of layers.

    Args:
        layers: layers to add, in order (an ``Input`` first, or ``input_shape=`` on the first).
        name: the model's name (default ``"sequential"``).
        seed: makes everything random in the model reproducible: layers without their own
            ``seed=`` draw their initial weights from it, and ``fit`` shuffles with it.
    """

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None,
                 seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}: {seed!r}.")
        super().__init__(name=name, seed=seed)
        self._layers: list[Layer] = []
        self._newly_built: list[Layer] = []     # the layers the last _connect built (what _unbuild undoes)
        self._input_layer: InputLayer | None = None
        self.input_shape: tuple | None = None   # without the batch axis
        for layer in layers or []:
            self.add(layer)

    @classmethod
    def default_name(cls) -> str:
        return "sequential"

    # -- building ---------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers added, in order (the input is not one of them, as in Keras' Sequential)."""
        return list(self._layers)

    def leaf_layers(self) -> list[Layer]:
        if self._graph is not None:
            return self._graph.leaf_layers()
        return [leaf for layer in self._layers for leaf in (layer.leaf_layers() if isinstance(layer, Model)
                                                              else [layer])]

    def add(self, layer: Layer) -> None:
        """Append a layer; it is built at once when the model's input shape is known."""
        if isinstance(layer, SymbolicTensor):
            if not layer.node.is_input:
                raise TypeError("Sequential.add takes layers or an Input(...); got a tensor computed by layer "
                                f"'{layer.node.layer.name}'. Build a rnnkit.Model(inputs, outputs) for that.")
            layer = layer.node.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects an rnnkit layer, got {type(layer).__name__}: {layer!r}.")
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError("An Input must be the first thing added to a Sequential model.")
            self._input_layer = layer
            self.input_shape = layer.input_shape_arg
            return
        if any(layer is other for other in self._layers):
            raise ValueError(f"Layer '{layer.name}' is already in model '{self.name}'.")
        if getattr(layer, "return_state", False) or getattr(layer, "merge_mode", "concat") is None:
            what = "return_state=True" if getattr(layer, "return_state", False) else "merge_mode=None"
            raise ValueError(
                f"Layer '{layer.name}' has {what} and so returns several arrays, which a "
                "Sequential model cannot pass on; call the layer directly to get them, or build a "
                "rnnkit.Model(inputs, outputs)."
            )
        if isinstance(layer, Embedding) and self._layers:
            raise ValueError(f"Embedding layer '{layer.name}' takes integer indices and must be the first layer.")
        taken = {other.name for other in self._layers}
        if layer.name is None:
            base, i, name = layer.default_name(), 0, layer.default_name()
            while name in taken:
                i += 1
                name = f"{base}_{i}"
            new_name = name
        elif layer.name in taken:
            raise ValueError(f"Model '{self.name}' already has a layer named '{layer.name}'; names must be unique.")
        else:
            new_name = layer.name
        input_shape = self.input_shape
        if not self._layers and input_shape is None and layer.input_shape_arg is not None:
            input_shape = layer.input_shape_arg
        old = (layer.name, layer.fallback_seed)
        layer.name = new_name
        if self.seed is not None and layer.seed is None:
            layer.fallback_seed = [self.seed, len(self._layers)]
        if input_shape is not None:
            try:
                self._connect(self._layers + [layer], input_shape)
            except Exception:
                layer.name, layer.fallback_seed = old   # leave model and layer as they were
                raise
        self.input_shape = input_shape
        self._layers.append(layer)

    def _connect(self, layers: list[Layer], input_shape: tuple) -> None:
        """Call the layers one after the other on a symbolic input of ``input_shape`` and make that the graph.

        Layers built here are put back as they were if any call fails.
        """
        if self._graph is not None and len(layers) == len(self._layers) + 1 \
                and tuple(self._graph.inputs[0].shape[1:]) == tuple(input_shape):
            start, x = len(self._layers), self._graph.outputs[0]     # extend the chain already built
            inp = self._graph.inputs[0]
        else:
            inp = self._make_input(input_shape)
            start, x = 0, inp
        newly_built = [layer for layer in layers[start:] if not layer.built]
        called = []
        try:
            for layer in layers[start:]:
                x = layer(x)
                called.append(layer)
                if isinstance(x, list):
                    raise ValueError(f"Layer '{layer.name}' returns several arrays, which a Sequential model "
                                     "cannot pass on.")
        except Exception:
            for layer in called:
                layer._inbound_nodes.pop()
            for layer in newly_built:   # leave the model as it was: these layers unbuilt
                layer.built, layer.params, layer.grads = False, {}, {}
                layer.input_shape = layer.output_shape = None
            raise
        self._newly_built = newly_built
        self._set_graph(inp, x)

    def _unbuild(self) -> None:
        """Back to before the input shape was known, as ``_connect`` leaves things when a call fails:
        the layers it built unbuilt, no graph (``fit`` refused for its data after ``x`` built the model)."""
        if self._graph is None:
            return
        nodes = {id(node) for node in self._graph.nodes}
        for layer in self._layers:
            layer._inbound_nodes = [node for node in layer._inbound_nodes if id(node) not in nodes]
        for layer in self._newly_built:
            layer.built, layer.params, layer.grads = False, {}, {}
            layer.input_shape = layer.output_shape = None
        self._newly_built = []
        self._graph, self._fused, self._heads, self._snapshot_targets = None, None, None, None
        self.input_shape = None
        for attr in ("inputs", "outputs", "_input_keys", "_single_input", "_output_keys", "_single_output",
                     "input_names", "output_names"):
            self.__dict__.pop(attr, None)

    def _make_input(self, input_shape: tuple) -> SymbolicTensor:
        layer = self._input_layer
        if layer is not None and tuple(layer.input_shape_arg) == tuple(input_shape):
            return layer.output_tensor
        if layer is None:
            return InputLayer(shape=input_shape).output_tensor
        # a new shape keeps the Input's batch size and dtype (int32 indices stay integers)
        return InputLayer(shape=input_shape, batch_size=layer.batch_size, dtype=layer.input_dtype,
                          name=layer.name).output_tensor

    def _set_graph(self, inputs: Any, outputs: Any) -> None:
        input_shape = self.input_shape
        super()._set_graph(inputs, outputs)
        self.input_shape = tuple(self.inputs[0].shape[1:]) if input_shape is None else input_shape

    def build(self, input_shape: Any = None) -> None:
        """Build every layer for inputs of ``input_shape`` *including* the batch axis, as Keras."""
        shape = normalize_shape(tuple(input_shape)[1:]) if input_shape is not None else None
        if shape is None:
            raise ValueError("build needs an input shape such as (None, timesteps, features).")
        if self._graph is not None and tuple(self._graph.inputs[0].shape[1:]) == shape:
            return
        if self._graph is not None:
            raise ValueError(f"Model '{self.name}' was built for inputs {self._graph.inputs[0].shape} and cannot "
                             f"take {(None, *shape)}.")
        self._require_layers()
        self._connect(list(self._layers), shape)
        self.input_shape = shape

    @property
    def built(self) -> bool:
        return bool(self._layers) and all(layer.built for layer in self._layers)

    @built.setter
    def built(self, value: bool) -> None:
        pass   # derived from the layers

    def _require_layers(self) -> None:
        if not self._layers:
            raise ValueError(f"Model '{self.name}' has no layers; add some with model.add(...).")

    def _ensure_built(self, x: np.ndarray) -> None:
        self._require_layers()
        if self._graph is None:
            shape = self.input_shape
            if shape is None:
                if x.ndim < 2:
                    raise ValueError(f"Model inputs need a batch axis and features, got shape {x.shape}.")
                shape = tuple(x.shape[1:])
            self.build((None, *shape))

    def _prepare_inputs(self, x: Any, what: str = "x") -> list[np.ndarray]:
        self._require_layers()
        if self._graph is None:
            if isinstance(x, (list, tuple)) and len(x) == 1 and hasattr(x[0], "shape"):
                x = x[0]
            self._ensure_built(as_numeric_array(x, what))
        return super()._prepare_inputs(x, what)

    def _head_names_and_shapes(self) -> tuple[list[str], list[tuple]]:
        if self._graph is None:
            return ["output"], [()]      # before the input shape is known: enough to check compile's arguments
        return super()._head_names_and_shapes()

    @property
    def heads(self):
        if self._graph is None:
            raise ValueError(f"Model '{self.name}' is not built yet; give it an input shape first.")
        return super().heads

    @property
    def dtype(self) -> np.dtype:
        for layer in self.leaf_layers():
            if layer.params:
                return layer.dtype
        from rnnkit import backend

        return backend.float_dtype()

    @property
    def output_shape(self) -> tuple:
        if self._graph is not None:
            return tuple(self._graph.outputs[0].shape)
        return (None, *self._layers[-1].output_shape)

    @output_shape.setter
    def output_shape(self, value) -> None:
        pass   # derived from the graph

    def get_config(self) -> dict:
        config = {"name": self.name, "seed": self.seed,
                  "input_shape": None if self.input_shape is None else list(self.input_shape),
                  "layers": [_serialize(layer) for layer in self._layers]}
        if self._input_layer is not None and self._input_layer.batch_size is not None:
            config["batch_size"] = self._input_layer.batch_size
        if self._input_layer is not None and self._input_layer.input_dtype.kind != "f":
            # integer indices stay integers on reload; a float input takes the model's float type, so
            # it is not written (and the files of float models keep their bytes)
            config["input_dtype"] = str(self._input_layer.input_dtype)
        return config

    def __repr__(self) -> str:
        return f"<Sequential name={self.name!r} layers={[layer.name for layer in self._layers]}>"


def _serialize(layer: Layer) -> dict:
    from rnnkit.models.serialization import serialize_layer

    return serialize_layer(layer)
