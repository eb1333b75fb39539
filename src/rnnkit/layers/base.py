"""The layer base class.

A layer stores its settings in ``__init__``, makes its weights in ``build(input_shape)``,
computes ``forward(x)`` and, from the gradient of the loss with respect to its output,
``backward(dy)``: the gradient with respect to its input, filling ``grads`` (same keys as
``params``) on the way. Shapes passed to ``build`` and ``compute_output_shape`` leave out
the batch axis, as Keras' ``input_shape=`` argument does.

The contract every layer keeps, so that one engine can run any graph of them:

* **Several inputs** (merge and attention layers) come as a list: ``forward([a, b])``,
  ``build([shape_a, shape_b])``, ``compute_output_shape([shape_a, shape_b])``, and
  ``backward(dy)`` returns a list with one gradient per input (``None`` where an input needs
  none, e.g. integer indices). **Several outputs** (``return_state``, attention scores) are a
  list too, and ``backward`` then takes a list of gradients, one per output.
* **One call, one backward.** ``forward`` keeps what ``backward`` needs in the attributes named
  by ``call_state``; ``backward`` reverses the most recent ``forward`` and *sets* ``grads`` to
  the gradient of that call. A layer called several times (a shared layer, a cell at every
  step) is driven by the caller: it saves ``get_call_state()`` after each forward, restores it
  with ``set_call_state`` before the matching backward, and sums the ``grads`` of the calls.
* **Masks.** ``compute_mask(inputs, mask)`` gives the mask of the output from the input and
  its mask (a list of masks for a list of inputs), used when ``supports_masking`` is True; a
  layer whose ``forward`` takes ``mask=`` says so with ``consumes_mask = True``.
* **Weights** live in ``params`` in Keras' ``get_weights`` order; names listed in
  ``non_trainable_weights`` (moving statistics) are saved and set but never given to the
  optimizer and have no entry in ``grads``. ``regularizers`` and ``constraints`` map weight
  names to the penalties added to the loss and the projections applied after each update.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from rnnkit import backend

Shape = tuple  # a shape without the batch axis; entries are int or None (any length)


def _snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)          # Keras': GlobalMaxPooling1D -> global_max_pooling1d
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive integer, got {type(value).__name__}: {value!r}.")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def sum_rows(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=0)`` for a 2-D array, as one matmul with a ones vector (two to four times faster)."""
    return np.ones(a.shape[0], dtype=a.dtype) @ a


class numpy_products:
    """The large products of a layer's backward pass done by NumPy; ``rnnkit.kernels`` has the same two
    functions done on the compiled core's threads, and a layer is handed one or the other."""

    @staticmethod
    def matmul(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
        """``op(a) @ op(b)``, ``op`` transposing where asked."""
        return (a.T if trans_a else a) @ (b.T if trans_b else b)

    column_sums = staticmethod(sum_rows)


def is_shape_list(shape: Any) -> bool:
    """Whether ``shape`` is a list of shapes (the inputs of a merge or attention layer), not one shape."""
    return isinstance(shape, list) and len(shape) > 0 and all(isinstance(s, (tuple, list)) for s in shape)


def normalize_shape(shape: Any, what: str = "input_shape") -> Shape:
    """Turn ``(3, 17)``, ``[3, 17]`` or ``17`` into a tuple of positive ints (or None)."""
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{what} must be a tuple of positive integers, got {shape!r}.") from None
    for d in dims:
        if d is None:
            continue
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d <= 0:
            raise ValueError(
                f"{what} must hold positive integers (or None for a variable length), got {shape!r}. "
                "Leave out the batch axis: input_shape=(timesteps, features)."
            )
    return tuple(None if d is None else int(d) for d in dims)


class Layer:
    """Base class of every rnnkit layer."""

    #: input rank (batch axis included) the layer accepts; None means any rank >= 2
    input_rank: int | None = None
    #: whether a (B, T) timestep mask passes through this layer unchanged (Keras' supports_masking)
    supports_masking = False
    #: whether ``forward`` takes the mask as ``mask=`` (recurrent layers and wrappers of them)
    consumes_mask = False
    #: the attributes ``forward`` sets and ``backward`` reads: what one call leaves behind
    call_state: tuple[str, ...] = ("_cache",)
    #: weights the optimizer leaves alone (e.g. BatchNormalization's moving statistics)
    non_trainable_weights: tuple[str, ...] = ()
    #: "float": inputs are cast to the layer's float type; "int": left as they are (indices)
    input_kind = "float"
    #: False while a model runs a forward pass that no backward will follow (predict, evaluate): a
    #: layer may then skip keeping what backward needs (a recurrent layer keeps only its state)
    keep_cache = True

    def __init__(self, name: str | None = None, input_shape: Any = None, seed: int | None = None,
                 trainable: bool = True):
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty string, got {name!r}.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}: {seed!r}.")
        self.name = name
        self.seed = None if seed is None else int(seed)
        self.input_shape_arg: Shape | None = None if input_shape is None else normalize_shape(input_shape)
        self.built = False
        self.trainable = bool(trainable)
        self.input_shape: Shape | list[Shape] | None = None
        self.output_shape: Shape | list[Shape] | None = None
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        #: weight name -> regularizer (its penalty is added to the loss) and -> constraint (applied after updates)
        self.regularizers: dict[str, Any] = {}
        self.constraints: dict[str, Any] = {}
        #: a penalty on the layer's output, added to the loss (Keras' activity_regularizer)
        self.activity_regularizer: Any = None
        self.fallback_seed: Any = None  # set by a model that was given ``seed=``
        #: False where nothing needs dL/dx (a model's first layer), so backward skips computing it
        self.need_input_grad = True
        #: the symbolic calls of this layer, in order (``rnnkit.symbolic.Node``)
        self._inbound_nodes: list = []

    # -- naming -----------------------------------------------------------------
    @classmethod
    def default_name(cls) -> str:
        return _snake_case(cls.__name__)

    @property
    def has_explicit_name(self) -> bool:
        return self.name is not None

    # -- randomness -------------------------------------------------------------
    def make_rng(self) -> np.random.Generator:
        """The generator behind this layer's initial weights (and dropout masks)."""
        if self.seed is not None:
            return np.random.default_rng(self.seed)
        if self.fallback_seed is None:                 # rnnkit.utils.set_random_seed, if it was called
            self.fallback_seed = backend.next_seed()
        return np.random.default_rng(self.fallback_seed)

    # -- building ---------------------------------------------------------------
    def check_input_shape(self, input_shape: Shape) -> None:
        """Raise a clear error if this layer cannot take inputs of ``input_shape``."""
        if is_shape_list(input_shape):
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) takes one input, got a list of "
                f"{len(input_shape)}: {[(None, *s) for s in input_shape]}."
            )
        if self.input_rank is not None and len(input_shape) + 1 != self.input_rank:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects inputs of rank {self.input_rank} "
                f"(batch axis included), got shape {(None, *input_shape)}."
            )
        if self.input_rank is None and len(input_shape) < 1:
            raise ValueError(f"Layer '{self.name}' ({type(self).__name__}) needs inputs of rank >= 2.")

    def build(self, input_shape: Shape | list[Shape]) -> None:
        if is_shape_list(input_shape):
            input_shape = [normalize_shape(s) for s in input_shape]
        else:
            input_shape = normalize_shape(input_shape)
        self.check_input_shape(input_shape)
        dtype = backend.float_dtype()
        self.params = self.make_params(input_shape, dtype, self.make_rng())
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items() if k not in self.non_trainable_weights}
        self.input_shape = input_shape
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def make_params(self, input_shape: Shape, dtype: np.dtype, rng: np.random.Generator) -> dict:
        return {}

    def add_weight(self, shape: Any, initializer: Any = "glorot_uniform", name: str | None = None,
                   trainable: bool = True, regularizer: Any = None, constraint: Any = None) -> np.ndarray:
        """Create a weight in ``build`` (Keras' way of writing a custom layer) and return the live array.

        The array is updated in place by the optimizer and by ``set_weights``, so a layer may keep it
        as an attribute (``self.kernel = self.add_weight(...)``) and use it in ``forward``.
        """
        from rnnkit import constraints, initializers, regularizers

        name = name or f"weight_{len(self.params)}"
        if name in self.params:
            raise ValueError(f"Layer '{self.name}' already has a weight named {name!r}.")
        shape = tuple(check_positive_int("shape", d) for d in (shape if isinstance(shape, (tuple, list)) else [shape]))
        value = initializers.get(initializer)(shape, backend.float_dtype(), self.make_rng())
        self.params[name] = value
        if trainable:
            self.grads[name] = np.zeros_like(value)
        elif name not in self.non_trainable_weights:
            self.non_trainable_weights = (*self.non_trainable_weights, name)
        if regularizer is not None:
            self.regularizers[name] = regularizers.get(regularizer)
        if constraint is not None:
            self.constraints[name] = constraints.get(constraint)
        return value

    def accepts_input_shape(self, input_shape: Shape | list[Shape]) -> bool:
        """Whether this built layer can be called again on inputs of ``input_shape`` (a shared layer).

        The rank must be the same and, for a layer with weights, the size of the last axis (the
        features the weights were made for) where both are known; time lengths may differ.
        """
        built = self.input_shape
        if is_shape_list(input_shape) != isinstance(built, list):
            return False
        pairs = list(zip(built, input_shape)) if isinstance(built, list) else [(built, input_shape)]
        if isinstance(built, list) and len(built) != len(input_shape):
            return False
        for old, new in pairs:
            if len(old) != len(new):
                return False
            if self.input_kind == "int":       # indices (Embedding): any length on every axis
                continue
            if self.params and old and old[-1] is not None and new[-1] is not None and old[-1] != new[-1]:
                return False
        return True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def output_shape_for_call(self, input_shape: Shape | list[Shape], **kwargs: Any) -> Shape | list[Shape]:
        """The output shape(s) of a call with these keyword arguments (e.g. ``return_attention_scores``).

        Layers whose outputs depend on call arguments override this; the others have ``compute_output_shape``.
        """
        return self.compute_output_shape(input_shape)

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        """The (B, T) mask of this layer's output, given its input and the input's mask."""
        return mask if self.supports_masking else None

    # -- computing --------------------------------------------------------------
    def __call__(self, inputs: Any, training: bool | None = None, **kwargs: Any):
        """Call on symbolic tensors (``rnnkit.Input``): record the call in a graph and return symbolic
        outputs. Call on arrays: build on first use, then ``forward``; ``kwargs`` are the layer's own
        (recurrent layers: ``initial_state=``, ``mask=``)."""
        from rnnkit import symbolic

        if symbolic.any_symbolic(inputs, kwargs):
            return symbolic.call_layer(self, inputs, training, kwargs)
        inputs = self.as_input_arrays(inputs)
        if not self.built:
            self.build([a.shape[1:] for a in inputs] if isinstance(inputs, list) else inputs.shape[1:])
        return self.forward(inputs, training=bool(training), **kwargs)

    def as_input_arrays(self, inputs: Any) -> np.ndarray | list[np.ndarray]:
        """The arrays ``forward`` gets: a list stays a list; floats are cast to the layer's type."""
        if isinstance(inputs, (list, tuple)):
            return [self._as_array(a) for a in inputs]
        return self._as_array(inputs)

    def _as_array(self, a: Any) -> np.ndarray:
        arr = np.asarray(a)
        if self.input_kind == "int" and arr.dtype.kind in "iub":
            return arr
        return arr.astype(self.dtype if self.built else backend.float_dtype(), copy=False)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def backward_call(self, output_grads: list[np.ndarray]) -> tuple[Any, dict[str, Any]]:
        """Backward as the model engine calls it: one gradient per output (zeros where none arrived).

        Returns the gradient of the input(s) and, for tensors given as keyword arguments (a recurrent
        layer's ``initial_state``), ``{argument name: gradient(s)}``.
        """
        return self.backward(output_grads[0] if len(output_grads) == 1 else output_grads), {}

    # -- one call's state -------------------------------------------------------
    def get_call_state(self) -> Any:
        """What the last ``forward`` left for ``backward`` (see ``call_state``); cheap: no copies."""
        return tuple(getattr(self, name, None) for name in self.call_state)

    def set_call_state(self, state: Any) -> None:
        """Make ``backward`` reverse the call whose ``get_call_state()`` this was."""
        for name, value in zip(self.call_state, state):
            setattr(self, name, value)

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep what ``backward`` needs from this call (read back with ``saved_tensors``)."""
        self._cache = arrays

    @property
    def saved_tensors(self) -> tuple:
        return self._cache

    @property
    def dtype(self) -> np.dtype:
        for p in self.params.values():
            return p.dtype
        return backend.float_dtype()

    # -- the graph --------------------------------------------------------------
    def _only_node(self, what: str):
        if not self._inbound_nodes:
            raise ValueError(f"Layer '{self.name}' has never been called on a symbolic tensor, so it has no {what}.")
        if len(self._inbound_nodes) > 1:
            raise ValueError(
                f"Layer '{self.name}' has been called {len(self._inbound_nodes)} times, so its {what} is ambiguous; "
                f"use get_{what}_at(node_index)."
            )
        return self._inbound_nodes[0]

    @property
    def input(self):
        """The symbolic input(s) of this layer's only call (``Model(layer.input, ...)``)."""
        return self._only_node("input").input_structure

    @property
    def output(self):
        """The symbolic output(s) of this layer's only call (e.g. ``[out, h, c]`` with ``return_state``)."""
        return self._only_node("output").output_structure

    def get_input_at(self, node_index: int):
        return self._inbound_nodes[node_index].input_structure

    def get_output_at(self, node_index: int):
        return self._inbound_nodes[node_index].output_structure

    # -- weights ----------------------------------------------------------------
    @property
    def weight_names(self) -> list[str]:
        return list(self.params)

    @property
    def trainable_weight_names(self) -> list[str]:
        """Names of the weights the optimizer updates (none when ``trainable`` is False)."""
        if not self.trainable:
            return []
        return [k for k in self.params if k not in self.non_trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras' order."""
        return [p.copy() for p in self.params.values()]

    def check_weights(self, weights: Sequence[Any]) -> list[np.ndarray]:
        """Return ``weights`` as arrays after checking count, dtype and shapes (Keras layout)."""
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet, so it has no weights to set; "
                "give the model an input shape (Input(shape=...) or input_shape=) first."
            )
        weights = list(weights)
        names = self.weight_names
        expected = ", ".join(f"{n} {self.params[n].shape}" for n in names) or "none"
        if len(weights) != len(names):
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects {len(names)} weight arrays "
                f"({expected}), got {len(weights)}."
            )
        arrays = []
        for n, w in zip(names, weights):
            arr = np.asarray(w)
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"Weight '{n}' of layer '{self.name}' must be numeric, got dtype {arr.dtype}.")
            if arr.shape != self.params[n].shape:
                raise ValueError(
                    f"Layer '{self.name}' ({type(self).__name__}) weight '{n}' expects shape "
                    f"{self.params[n].shape}, got {arr.shape}. Expected weights: {expected}."
                )
            if not np.isfinite(arr).all():
                raise ValueError(f"Weight '{n}' of layer '{self.name}' contains NaN or infinite values.")
            dtype = self.params[n].dtype
            if dtype.kind == "f" and arr.dtype != dtype:
                with np.errstate(over="ignore", invalid="ignore"):
                    finite = np.isfinite(arr.astype(dtype))       # 1e39 is inf in float32
                if not finite.all():
                    first = tuple(int(i) for i in np.argwhere(~finite)[0])
                    raise ValueError(
                        f"Weight '{n}' of layer '{self.name}' holds {arr[first].item()!r} at index {first}, which is "
                        f"not finite in {dtype} (the layer's dtype, largest finite value {np.finfo(dtype).max:.4g}); "
                        "nothing was changed.")
            arrays.append(arr)
        return arrays

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Replace the weights (Keras layout); every shape is checked before any is written."""
        arrays = self.check_weights(weights)
        for n, arr in zip(self.weight_names, arrays):
            self.params[n][...] = arr

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    # -- serialisation ----------------------------------------------------------
    def get_config(self) -> dict:
        config: dict[str, Any] = {"name": self.name}
        if self.seed is not None:
            config["seed"] = self.seed
        return config

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"
