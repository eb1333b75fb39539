"""``Model``: a graph of layers from inputs to outputs, and the one training engine every model uses.

``Model(inputs, outputs)`` takes the symbolic tensors of ``rnnkit.Input`` and of layer calls
(one tensor, a list, or a dict keyed by name) and finds the graph between them
(``functional.Graph``). ``compile`` / ``fit`` / ``evaluate`` / ``predict`` work on any such
graph, with any number of inputs and outputs; ``Sequential`` is a ``Model`` whose graph is a
chain. A ``Model`` is itself a layer, so it can be called on tensors inside another model.

A training step is: forward through the graph, the loss of every output (from the logits of
a softmax or sigmoid layer where the loss is the matching cross-entropy, which never takes the
log of zero), backward through the graph, regularization, the optimizer update on every
trainable weight at once, then the weight constraints.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from rnnkit import backend, optimizers
from rnnkit.callbacks import Callback, History
from rnnkit.diagnostics.nan_origin import NonFiniteGuard, NonFiniteReport, remedies
from rnnkit.diagnostics.snapshot import StepSnapshot
from rnnkit.diagnostics.telemetry import GradientNorms, clipping_on, pre_clip_norm
from rnnkit.errors import NonFiniteError, NotCompiledError
from rnnkit.layers.base import Layer, check_positive_int
from rnnkit.models import compile_utils, data
from rnnkit.models.functional import Graph, Run
from rnnkit.optimizers.base import all_finite
from rnnkit.progress import Progbar
from rnnkit.symbolic import SymbolicTensor, any_symbolic

#: compile arguments Keras takes that change nothing here
_IGNORED_COMPILE_ARGS = ("run_eagerly", "jit_compile", "steps_per_execution", "auto_scale_loss")


def _structure(tensors: Any, what: str) -> tuple[list[SymbolicTensor], list[str] | None, bool]:
    """``(flat list, dict keys or None, single)`` for the ``inputs`` or ``outputs`` given to ``Model``."""
    if isinstance(tensors, dict):
        keys = list(tensors)
        if not all(isinstance(k, str) for k in keys):
            raise TypeError(f"Model {what} given as a dict need string keys, got {keys}.")
        flat = [tensors[k] for k in keys]
    elif isinstance(tensors, (list, tuple)):
        keys, flat = None, list(tensors)
    else:
        keys, flat = None, [tensors]
    for t in flat:
        if not isinstance(t, SymbolicTensor):
            raise TypeError(
                f"Model {what} must be symbolic tensors (from rnnkit.Input(...) or from calling layers on them), "
                f"got {type(t).__name__}" + (f" of shape {np.shape(t)}" if hasattr(t, "shape") else "") + "."
            )
    if not flat:
        raise ValueError(f"Model needs at least one tensor in {what}.")
    return flat, keys, not isinstance(tensors, (dict, list, tuple))


class Model(Layer):
    """A model defined by its inputs and outputs: ``Model(inputs, outputs, name=None)``.

    Args:
        inputs: what ``rnnkit.Input`` returned: one tensor, a list, or a dict keyed by name.
        outputs: tensors computed from the inputs by calling layers: one, a list, or a dict.
        name: the model's name (default ``"functional"``).
        seed: makes the shuffling in ``fit`` reproducible.
    """

    supports_masking = True
    consumes_mask = True
    call_state = ("_run",)

    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None, seed: int | None = None,
                 trainable: bool = True):
        super().__init__(name=name, seed=seed, trainable=trainable)
        self.name = name or self.default_name()
        self.optimizer: optimizers.Optimizer | None = None
        self._compile_args: dict | None = None
        self._heads: list[compile_utils.Head] | None = None
        self.stop_training = False
        self.history: History | None = None
        self._run: Run | None = None
        self._graph: Graph | None = None
        self._fused: dict | None = None
        self._resume_from: tuple[int, int] | None = None
        self._shuffle_rng = np.random.default_rng(backend.next_seed() if seed is None else [self.seed, 2**31 - 1])
        if inputs is None and outputs is None and type(self) is not Model:
            return                                       # a subclass (Sequential) sets its graph itself
        if inputs is None or outputs is None:
            raise ValueError("Model needs inputs and outputs: Model(inputs=Input(...), outputs=layer(...)(...)).")
        self._set_graph(inputs, outputs)

    @classmethod
    def default_name(cls) -> str:
        return "functional"

    # -- the graph ----------------------------------------------------------------------
    def _set_graph(self, inputs: Any, outputs: Any) -> None:
        self.inputs, self._input_keys, self._single_input = _structure(inputs, "inputs")
        self.outputs, self._output_keys, self._single_output = _structure(outputs, "outputs")
        graph = Graph(self.inputs, self.outputs)
        _name_layers(graph.layers, self.name)
        self._graph = graph
        self._fused = None
        self._heads = None
        self._snapshot_targets = None         # diagnostics.snapshot keeps what a training step may change here
        self.input_names = self._input_keys or _unique([t.node.layer.name if t.node.is_input else t.name
                                                        for t in self.inputs])
        self.output_names = self._output_keys or _unique([t.node.layer.name for t in self.outputs])
        self.built = True
        self.input_shape = [tuple(t.shape[1:]) for t in self.inputs]
        self.output_shape = [tuple(t.shape[1:]) for t in self.outputs]

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            raise ValueError(f"Model '{self.name}' has no graph yet; give it an input shape first.")
        return self._graph

    @property
    def layers(self) -> list[Layer]:
        """Every layer of the model once, Keras' order (input layers included)."""
        return list(self.graph.layers)

    def leaf_layers(self) -> list[Layer]:
        """The layers that hold weights directly (nested models opened), each once, in weight order."""
        return self.graph.leaf_layers() if self._graph is not None else []

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or by position in ``layers``."""
        if (name is None) == (index is None):
            raise ValueError("get_layer needs exactly one of name= or index=.")
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"Model '{self.name}' has {len(layers)} layers; index {index} is out of range.")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer named {name!r} in model '{self.name}'; its layers are "
                         f"{[layer.name for layer in layers]}.")

    @property
    def input(self):
        return self.inputs[0] if self._single_input else (
            dict(zip(self._input_keys, self.inputs)) if self._input_keys else list(self.inputs))

    @property
    def output(self):
        return self.outputs[0] if self._single_output else (
            dict(zip(self._output_keys, self.outputs)) if self._output_keys else list(self.outputs))

    @property
    def dtype(self) -> np.dtype:
        for layer in self.leaf_layers():
            for p in layer.params.values():
                if p.dtype.kind == "f":
                    return p.dtype
        return backend.float_dtype()

    # -- weights ----------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        """The live weight arrays (not copies), in ``get_weights`` order."""
        return [p for layer in self.leaf_layers() for p in layer.params.values()]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """The live arrays the optimizer updates, in order (``loss_and_gradients`` follows it)."""
        return [layer.params[k] for layer in self.leaf_layers() for k in layer.trainable_weight_names]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set all weights (Keras layout, ``get_weights`` order); everything is checked first."""
        if not self.built:
            raise ValueError(f"Model '{self.name}' is not built yet; give it an input shape first.")
        weights = list(weights)
        leaves = self.leaf_layers()
        total = sum(len(layer.params) for layer in leaves)
        if len(weights) != total:
            per_layer = "; ".join(
                f"{layer.name}: " + (", ".join(f"{k} {v.shape}" for k, v in layer.params.items()) or "none")
                for layer in leaves if layer.params)
            raise ValueError(f"Model '{self.name}' expects {total} weight arrays ({per_layer}), got {len(weights)}.")
        checked, i = [], 0
        for layer in leaves:
            n = len(layer.params)
            checked.append(layer.check_weights(weights[i:i + n]))
            i += n
        for layer, arrays in zip(leaves, checked):
            for name, arr in zip(layer.weight_names, arrays):
                layer.params[name][...] = arr

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.leaf_layers())

    # -- compile ----------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, loss_weights: Any = None,
                metrics: Any = None, **kwargs: Any) -> None:
        """Choose the optimizer, the loss of each output, their weights and metrics (names or objects).

        ``loss``, ``loss_weights`` and ``metrics`` are given once for every output, as a list in
        output order, or as a dict keyed by output name, as in Keras.
        """
        unknown = [k for k in kwargs if k not in _IGNORED_COMPILE_ARGS]
        if unknown:
            raise TypeError(f"compile got unexpected argument(s) {unknown}; it takes optimizer, loss, loss_weights "
                            f"and metrics (and ignores {', '.join(_IGNORED_COMPILE_ARGS)}).")
        names, shapes = self._head_names_and_shapes()
        heads = compile_utils.make_heads(names, shapes, loss, loss_weights, metrics)   # checks everything first
        opt = optimizers.get(optimizer)
        self.optimizer = opt
        self._compile_args = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics}
        self._heads = heads if self._graph is not None else None

    def _head_names_and_shapes(self) -> tuple[list[str], list[tuple]]:
        return list(self.output_names), [tuple(t.shape[1:]) for t in self.outputs]

    @property
    def heads(self) -> list[compile_utils.Head]:
        """The outputs as training sees them: name, loss, weight, metrics."""
        if self._heads is None:
            self._require_compiled("training or evaluating")
            args = self._compile_args
            names, shapes = self._head_names_and_shapes()
            self._heads = compile_utils.make_heads(names, shapes, args["loss"], args["loss_weights"], args["metrics"])
        return self._heads

    @property
    def compiled(self) -> bool:
        return self.optimizer is not None and self._compile_args is not None

    @property
    def loss(self):
        """The loss of a one-output model (a list, one per output, for several)."""
        if not self.compiled:
            return None
        losses = [h.loss for h in self.heads]
        return losses[0] if len(losses) == 1 else losses

    @property
    def metrics_names_requested(self) -> list:
        """The metrics ``compile`` was given for a one-output model, as given (names or objects)."""
        return self.heads[0].metric_requests if len(self.heads) == 1 else [h.metric_requests for h in self.heads]

    @property
    def metrics_names(self) -> list[str]:
        loss_names, metric_names = compile_utils.log_names(self.heads)
        return ["loss", *loss_names, *[n for names in metric_names for n in names]]

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise NotCompiledError(
                f"You must call compile() before using the model: model '{self.name}' must be compiled before "
                f"{what}; call model.compile(optimizer='adam', loss='categorical_crossentropy') first."
            )

    # -- data ---------------------------------------------------------------------------
    def _prepare_inputs(self, x: Any, what: str = "x") -> list[np.ndarray]:
        return data.prepare_inputs(self, x, what)

    def _prepare_targets(self, y: Any, n: int, what: str = "y") -> list[np.ndarray | None]:
        return data.prepare_targets(self, y, n, what)

    def check_input_values(self, arrays: list[np.ndarray]) -> None:
        """Checks on the values the first layers read (e.g. Embedding indices), before any update."""
        index = {t.id: a for t, a in zip(self.inputs, arrays)}
        for node in self.graph.nodes:
            check = getattr(node.layer, "check_indices", None)
            if check is not None and node.arg_tensors and node.arg_tensors[0].id in index:
                check(index[node.arg_tensors[0].id])

    # -- the core computation -------------------------------------------------------
    def _forward(self, xs: Any, training: bool, inspect: Callable[[Layer, Any], bool] | None = None) -> Any:
        """Run the graph on prepared inputs; returns the output array (or the list of them).

        ``inspect(layer, output)`` is called after each layer call; returning True stops there.
        """
        run = self.graph.run(xs if isinstance(xs, list) else [xs], training, inspect=inspect)
        self._run = run
        outs = [run.values.get(t.id) for t in self.outputs]
        return outs[0] if len(outs) == 1 else outs

    def _outputs(self, run: Run) -> list[np.ndarray]:
        return [run.values[t.id] for t in self.outputs]

    def _loss_masks(self, run: Run) -> list[np.ndarray | None]:
        """The mask of each output that has a time axis (padded steps leave the loss and metrics)."""
        out = []
        for t in self.outputs:
            m = run.masks.get(t.id)
            out.append(m if (m is not None and run.values[t.id].ndim >= 3) else None)
        return out

    def _fused_nodes(self) -> dict[int, int]:
        """Output position -> node position for outputs whose loss is computed from their layer's logits.

        That needs a layer ending in the loss's activation (softmax or sigmoid), called once in the
        graph, whose output goes nowhere else and has no activity regularizer.
        """
        if self._fused is not None:
            return self._fused
        graph = self.graph
        position = {id(node): i for i, node in enumerate(graph.nodes)}
        calls: dict[int, int] = {}
        readers: dict[int, int] = {}
        for node in graph.nodes:
            calls[id(node.layer)] = calls.get(id(node.layer), 0) + 1
            for t in node.tensor_inputs:
                readers[t.id] = readers.get(t.id, 0) + 1
        fused = {}
        for k, (t, head) in enumerate(zip(self.outputs, self.heads)):
            node, layer, loss = t.node, t.node.layer, head.loss
            act = getattr(layer, "activation", None)
            if (loss is None or getattr(loss, "from_logits", False) or loss.fuses_with is None or act is None
                    or act.name != loss.fuses_with or not hasattr(layer, "backward_from_logits")
                    or id(node) not in position or calls[id(layer)] != 1 or readers.get(t.id, 0)
                    or len(node.outputs) != 1 or layer.activity_regularizer is not None
                    or sum(o is t for o in self.outputs) != 1):
                continue
            fused[k] = position[id(node)]
        self._fused = fused
        return fused

    def _losses(self, run: Run, ys: list) -> tuple[float, list[float], list, dict[int, np.ndarray]]:
        """``(total loss, [loss of each output with one], [dL/d output], {node: dL/dlogits})`` of a forward run."""
        outs, masks = self._outputs(run), self._loss_masks(run)
        fused_nodes = self._fused_nodes()
        total = float(run.penalty) + self._regularization_penalty()
        head_losses, grads, fused = [], [None] * len(outs), {}
        for k, (head, y, out, mask) in enumerate(zip(self.heads, ys, outs, masks)):
            if head.loss is None or y is None:
                continue
            if k in fused_nodes:
                logits = self.outputs[k].node.layer.logits
                value, g = head.loss.value_and_grad_from_logits(y, logits, mask)
            elif getattr(head.loss, "from_logits", False):
                value, g = head.loss.value_and_grad_from_logits(y, out, mask)
            else:
                value, g = head.loss.value_and_grad(y, out, mask)
            if head.weight != 1.0:
                g = g * np.asarray(head.weight, dtype=g.dtype)
            if k in fused_nodes:
                fused[fused_nodes[k]] = g
            else:
                grads[k] = g
            total += head.weight * value
            head_losses.append(value)
        return total, head_losses, grads, fused

    def _regularization_penalty(self) -> float:
        total = 0.0
        for layer in self.graph.regularized:
            for name, reg in layer.regularizers.items():
                total += float(reg(layer.params[name]))
        return total

    def _add_regularization_gradients(self) -> None:
        for layer in self.graph.regularized:
            trainable = layer.trainable_weight_names
            for name, reg in layer.regularizers.items():
                if name in trainable:
                    layer.grads[name] = layer.grads[name] + reg.gradient(layer.params[name])

    def _apply_constraints(self) -> None:
        for layer in self.graph.constrained:
            for name, constraint in layer.constraints.items():
                w = layer.params[name]
                w[...] = constraint(w)

    def _loss_and_backward(self, xs: list, ys: list, training: bool) -> tuple[float, list[float], Run]:
        """Forward, losses and backward through the graph; returns ``(total loss, output losses, run)``."""
        run = self.graph.run(xs, training)
        self._run = run
        total, head_losses, grads, fused = self._losses(run, ys)
        self.graph.backward(run, grads, fused)
        self._add_regularization_gradients()
        return total, head_losses, run

    def _gradients(self) -> list[np.ndarray]:
        return [layer.grads[k] for layer in self.leaf_layers() for k in layer.trainable_weight_names]

    def _train_step(self, xs: list, ys: list, guard: NonFiniteGuard, where: tuple | None = None):
        """One update; returns ``(loss, output losses, run, gradient norm before clipping, whether clipped)``.

        A non-finite loss or gradient is caught *before* the update, while the weights and the
        optimizer state are still the last finite ones, and handed to ``guard`` (``where``:
        ``(epoch, epochs, step, steps)`` for its report).
        """
        snapshot = StepSnapshot(self)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # reported by the guard instead
            total, head_losses, run = self._loss_and_backward(xs, ys, training=True)
            weights, grads = [], []
            for layer in self.leaf_layers():
                for k in layer.trainable_weight_names:
                    weights.append(layer.params[k])
                    grads.append(layer.grads[k])
            norm, clipped = self._apply_update(weights, grads, total, guard, snapshot, where, lambda: (xs, ys))
        return total, head_losses, run, norm, clipped

    def _apply_update(self, weights: list[np.ndarray], grads: list[np.ndarray], total: float, guard: NonFiniteGuard,
                      snapshot: StepSnapshot, where: tuple | None,
                      batch: Callable[[], tuple[list, list]]) -> tuple[float, bool]:
        """Check and apply one update from ``grads``; returns ``(gradient norm before clipping, whether clipped)``.

        ``batch()`` gives the step's ``(xs, ys)``, which the guard runs again to name the origin of a
        non-finite loss or gradient.
        """
        norm, clipped, safe = pre_clip_norm(grads, self.optimizer)
        if not (safe and math.isfinite(total)):
            guard(*batch(), total, norm, snapshot, where)
        if grads:
            # with terminate_on_nan the update itself is checked too (a huge learning rate can overflow
            # finite gradients), so a copy of what it changes is kept to undo it
            before = (self.optimizer.backup(), [w.copy() for w in weights]) if guard.terminate else None
            self.optimizer.apply(weights, grads)
            self._apply_constraints()
            if before is not None:
                self._check_update(weights, before, total, norm, guard, where)
        return norm, clipped

    def _check_update(self, weights: list[np.ndarray], before: tuple, loss: float, norm: float,
                      guard: NonFiniteGuard, where: tuple | None) -> None:
        """Undo the step and raise ``NonFiniteError`` if a weight or an optimizer slot is not finite after it."""
        if all_finite(weights) and self.optimizer.nonfinite_slot() is None:
            return
        bad = next((i for i, w in enumerate(weights) if not np.isfinite(w).all()), None)
        slot = self.optimizer.nonfinite_slot() if bad is None else None
        names = [(layer, k) for layer in self.leaf_layers() for k in layer.trainable_weight_names]
        layer, name = names[bad if bad is not None else slot[0]]
        value = _value_name(weights[bad] if bad is not None else slot[2])     # before the arrays are restored
        optimizer_state, saved = before
        for w, old in zip(weights, saved):
            w[...] = old
        self.optimizer.restore(optimizer_state)
        what = (f"weight '{name}' of layer '{layer.name}' holds {value}" if bad is not None else
                f"the optimizer's slot '{slot[1]}' for weight '{name}' of layer '{layer.name}' holds {value}")
        context = None
        if where is not None:
            epoch, epochs, step, steps = where
            context = f"epoch {epoch + 1}/{epochs}, batch {step + 1}/{steps}"
        report = NonFiniteReport(quantity=f"weight '{name}' after the update" if bad is not None else
                                 f"optimizer slot '{slot[1]}' after the update", value=value,
                                 layer=layer.name, layer_class=type(layer).__name__, loss=float(loss),
                                 grad_norm=float(norm), context=context,
                                 detail=f"after the optimizer's update, {what}")
        lines = [f"Training stopped{f' at {context}' if context else ''}: the loss ({loss:.6g}) and the gradient "
                 f"norm ({norm:.6g}) are finite, but after the optimizer's update {what}.",
                 "This step's update was undone: the weights and the optimizer state are as they were before it.",
                 "Usual remedies:"]
        tips = remedies(self)
        lines.extend(f"  - {tip}{'.' if i == len(tips) - 1 else ';'}" for i, tip in enumerate(tips))
        lines.append(f"Pass {guard.caller}(..., terminate_on_nan=False) to keep training anyway.")
        raise NonFiniteError("\n".join(lines), report)

    def _unbuild(self) -> None:
        """Forget the build a refused ``fit`` made; a functional model is built when made, so nothing here."""

    def _check_trainable(self) -> None:
        if not self._gradients():
            warnings.warn(f"Model '{self.name}' has no trainable weights: training computes the loss but changes "
                          "nothing.", UserWarning, stacklevel=3)

    def loss_and_gradients(self, x: Any, y: Any, training: bool = False) -> tuple[float, list[np.ndarray]]:
        """The loss on ``(x, y)`` and its gradient for every trainable weight, aligned with
        ``trainable_weights`` (the same as ``get_weights()`` when no weight is frozen)."""
        self._require_compiled("loss_and_gradients")
        xs = self._prepare_inputs(x)
        ys = self._prepare_targets(y, len(xs[0]))
        total, _, _ = self._loss_and_backward(xs, ys, training=training)
        return total, [g.copy() for g in self._gradients()]

    def reset_states(self) -> None:
        """Forget the state carried by every stateful recurrent layer."""
        for layer in self.leaf_layers():
            if getattr(layer, "stateful", False):
                layer.reset_states()

    # -- fit / evaluate / predict -------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: Sequence[Callback] | None = None,
            validation_split: float = 0.0, validation_data: tuple | None = None,
            shuffle: bool = True, initial_epoch: int = 0, terminate_on_nan: bool = True,
            distributed: Any = False, steps_per_update: int = 1) -> History:
        """Train for ``epochs`` epochs; returns a ``History`` (per-epoch ``loss``, metrics, ``val_*``).

        ``x`` and ``y`` are arrays, or lists / dicts of arrays for several inputs or outputs. The
        per-epoch loss is the sample-weighted mean of the batch losses, each computed before that
        batch's update, as Keras reports it. ``History`` also records the global gradient norm
        before clipping: ``grad_norm`` (mean over the epoch's steps) and ``grad_norm_max``,
        ``clip_fraction`` (the fraction of steps the optimizer clipped) when clipping is on, and
        every step's norm in ``history.grad_norms``.

        ``terminate_on_nan`` (an rnnkit extension): when the loss or a gradient is NaN or
        infinite, stop with ``rnnkit.NonFiniteError``, which names the first layer, time step and
        quantity that stopped being finite (also as ``error.report``) and suggests remedies; the
        failed step's update is not applied, so the weights and the optimizer state are the last
        finite ones. With False, training goes on as in Keras, the origin is reported once as a
        ``RuntimeWarning`` and ``History`` counts ``nonfinite_steps`` per epoch.

        ``distributed`` (rnnkit): ``True`` or a ``rnnkit.distributed.DataParallel`` trains on every
        process of an MPI job (``mpiexec -n 4 python train.py``) as one: each global batch of
        ``batch_size`` samples is split between the ranks and one ``Allreduce`` per step sums their
        gradients, weighted by their sample counts, so the result equals one process training on the
        same batches. Rank 0 prints progress and runs the callbacks that write files.

        ``steps_per_update`` (rnnkit): accumulate the gradients of that many consecutive batches and
        update once, with the gradient of their union (weighted by real sample counts): the same update
        as one batch ``steps_per_update`` times larger, in the memory of one batch. A step of the
        progress bar and of the callbacks is then one update.
        """
        self._require_compiled("fit")
        from rnnkit import distributed as distributed_module
        from rnnkit.models import data_parallel

        options = distributed_module.data_parallel(distributed)
        steps_per_update = check_positive_int("steps_per_update", steps_per_update)
        collective = distributed_module.Collective() if options is not None else None
        batch_size = 32 if batch_size is None else check_positive_int("batch_size", batch_size)
        epochs = check_positive_int("epochs", epochs)
        verbose = _check_verbose(verbose)
        if not isinstance(initial_epoch, (int, np.integer)) or not 0 <= initial_epoch < epochs:
            raise ValueError(f"initial_epoch must be an integer in [0, epochs={epochs}), got {initial_epoch!r}.")
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) \
                or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be a number in [0, 1), got {validation_split!r}.")
        if isinstance(callbacks, Callback):      # one callback, as Keras accepts it
            callbacks = [callbacks]
        elif callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be a list of rnnkit Callback instances, got {type(callbacks).__name__}.")
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be rnnkit Callback instances, got {type(cb).__name__}.")
        built_before = self.built
        error, digest = None, b""
        try:   # a fit refused for its data leaves an unbuilt Sequential unbuilt (x alone would build it)
            xs = self._prepare_inputs(x)
            ys = self._prepare_targets(y, len(xs[0]))
            val = None
            if validation_data is not None:
                if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                    raise ValueError("validation_data must be a tuple (x_val, y_val).")
                xv = self._prepare_inputs(validation_data[0], "validation_data x")
                val = (xv, self._prepare_targets(validation_data[1], len(xv[0]), "validation_data y"))
            elif validation_split > 0:
                n_all = len(xs[0])
                split_at = int(math.floor(n_all * (1.0 - validation_split)))
                if split_at == 0 or split_at == n_all:
                    raise ValueError(
                        f"validation_split={validation_split} of {n_all} samples leaves "
                        f"{split_at} for training and {n_all - split_at} for validation; both need at least one."
                    )
                head, tail = slice(0, split_at), slice(split_at, None)
                val = (data.take(xs, tail), data.take(ys, tail))
                xs, ys = data.take(xs, head), data.take(ys, head)
            stateful = [layer.name for layer in self.leaf_layers() if getattr(layer, "stateful", False)]
            for part, size in (("training", len(xs[0])), ("validation", 0 if val is None else len(val[0][0]))):
                if stateful and size % batch_size:
                    raise ValueError(
                        f"Stateful layer(s) {stateful} need every batch to have the same size, but the {size} "
                        f"{part} samples do not split into batches of {batch_size}; choose a batch_size that "
                        f"divides {size}."
                    )
            if stateful and collective is not None:
                raise ValueError(
                    f"Stateful layer(s) {stateful} carry each sample's state to the same row of the next batch, "
                    "which data-parallel training cannot keep (the rows are split between the ranks); train a "
                    "stateful model on one process, or make it stateless for distributed=True.")
            if collective is not None and options.batch_size == "global" and batch_size < collective.size:
                raise ValueError(
                    f"batch_size={batch_size} is the global batch, split between the {collective.size} ranks, so "
                    f"{collective.size - batch_size} of them would never get a sample; use batch_size >= "
                    f"{collective.size}, or DataParallel(batch_size='per_rank') to give each rank {batch_size}.")
            if collective is not None:
                digest = data_parallel.fingerprint(self, {
                    "batch_size": batch_size, "epochs": epochs, "shuffle": bool(shuffle), "initial_epoch":
                    int(initial_epoch), "steps_per_update": steps_per_update, "options": repr(options),
                    "validation": None if val is None else len(val[0][0]),
                    "terminate_on_nan": bool(terminate_on_nan)}, [*xs, *ys])
        except Exception as exc:
            if not built_before:
                self._unbuild()
            if collective is None:
                raise
            error = exc
        if collective is not None:      # every rank raises if one refused its arguments or was given others
            collective.agree(error, digest)
            data_parallel.broadcast_training_state(self, collective)
            if collective.rank != 0:
                verbose = 0
                callbacks = [cb for cb in callbacks if not getattr(cb, "primary_only", False)]
        self._distributed_rank = 0 if collective is None else collective.rank
        self._check_trainable()
        n = len(xs[0])
        steps = math.ceil(n / batch_size)
        pieces, rate = None, None
        if collective is not None or steps_per_update > 1:
            ranks = 1 if collective is None else collective.size
            micro = batch_size * ranks if options is not None and options.batch_size == "per_rank" else batch_size
            pieces = data_parallel.PieceUpdates(self, collective, micro, steps_per_update, n, ys,
                                                compile_utils.Totals(self.heads, ys))
            steps = pieces.steps
            rate = data_parallel.learning_rate_schedule(self.optimizer.learning_rate, ranks, options, steps) \
                if options is not None else None
        history = History()
        all_callbacks = [*callbacks, history]    # last, as in Keras: it records what callbacks add to logs
        params = {"epochs": epochs, "steps": steps, "verbose": verbose, "batch_size": batch_size}
        for cb in all_callbacks:
            cb.set_model(self)
            cb.set_params(params)
        self.stop_training = False
        self.history = history
        guard = NonFiniteGuard(self, terminate=terminate_on_nan, caller="fit")
        self._resume_from = None     # (epoch, step): set by BackupAndRestore's on_train_begin from its checkpoint
        for cb in all_callbacks:
            cb.on_train_begin()
        if collective is not None:
            data_parallel.separate_dropout_streams(self, collective.rank)
        first_step = 0
        if self._resume_from is not None:
            initial_epoch, first_step = self._resume_from
        for epoch in range(initial_epoch, epochs):
            for cb in all_callbacks:
                cb.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            order = self._shuffle_rng.permutation(n) if shuffle else None
            bar = Progbar(steps, verbose)
            totals = compile_utils.Totals(self.heads, ys)
            norms = GradientNorms(clipping_on(self.optimizer))
            nonfinite_before = guard.count
            for step in range(first_step if epoch == initial_epoch else 0, steps):
                if pieces is None:
                    lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
                    index = slice(lo, hi) if order is None else order[lo:hi]
                    xb, yb = data.take(xs, index), data.take(ys, index)
                for cb in all_callbacks:
                    cb.on_train_batch_begin(step)
                if pieces is None:
                    total, head_losses, run, norm, clipped = self._train_step(xb, yb, guard,
                                                                              where=(epoch, epochs, step, steps))
                    totals.add(total, head_losses, yb, self._outputs(run), self._loss_masks(run))
                else:
                    if rate is not None:
                        self.optimizer.learning_rate = rate(epoch, step)
                    total, head_losses, norm, clipped = pieces.update(xs, ys, order, step, totals, guard,
                                                                      where=(epoch, epochs, step, steps))
                norms.add(norm, clipped)
                history.grad_norms.append(norm)
                logs = {**totals.logs(), **norms.logs()}
                bar.update(step + 1, logs)
                for cb in all_callbacks:
                    cb.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            epoch_logs = {**totals.logs(), **norms.logs()}
            if not terminate_on_nan:
                epoch_logs["nonfinite_steps"] = guard.count - nonfinite_before
            if val is not None:
                val_logs = self._evaluate_arrays(val[0], val[1], batch_size) if collective is None else \
                    pieces.evaluate(val[0], val[1], compile_utils.Totals(self.heads, val[1]))
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            bar.close(epoch_logs)
            for cb in all_callbacks:
                cb.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        for cb in all_callbacks:
            cb.on_train_end()
        return history

    def _evaluate_arrays(self, xs: list, ys: list, batch_size: int, bar: Progbar | None = None) -> dict[str, float]:
        totals = compile_utils.Totals(self.heads, ys)
        n = len(xs[0])
        for step, lo in enumerate(range(0, n, batch_size)):
            index = slice(lo, lo + batch_size)
            xb, yb = data.take(xs, index), data.take(ys, index)
            run = self.graph.run(xb, False, cache=False)
            self._run = run
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                total, head_losses, _, _ = self._losses(run, yb)
            totals.add(total, head_losses, yb, self._outputs(run), self._loss_masks(run))
            if bar is not None:
                bar.update(step + 1, totals.logs())
        logs = totals.logs()
        if bar is not None:
            bar.close(logs)
        return logs

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None, verbose: int | str = "auto",
                 return_dict: bool = False):
        """Loss (and metrics) on ``(x, y)``: a float, a list ``[loss, *output losses, *metrics]``, or a dict."""
        self._require_compiled("evaluate")
        batch_size = 32 if batch_size is None else check_positive_int("batch_size", batch_size)
        verbose = _check_verbose(verbose)
        xs = self._prepare_inputs(x)
        ys = self._prepare_targets(y, len(xs[0]))
        bar = Progbar(math.ceil(len(xs[0]) / batch_size), verbose) if verbose else None
        logs = self._evaluate_arrays(xs, ys, batch_size, bar)
        return _format_result(logs, return_dict)

    def predict(self, x: Any, batch_size: int | None = None, verbose: int | str = "auto"):
        """Outputs for ``x``, computed in batches in inference mode (dropout off).

        One array for a one-output model; a list (or a dict, if the outputs were given as one) for
        several. ``verbose="auto"`` shows a progress bar, as Keras does; pass ``verbose=0`` to hide it.
        """
        batch_size = 32 if batch_size is None else check_positive_int("batch_size", batch_size)
        verbose = _check_verbose(verbose)
        xs = self._prepare_inputs(x)
        n = len(xs[0])
        steps = math.ceil(n / batch_size)
        bar = Progbar(steps, verbose) if verbose else None
        parts: list[list[np.ndarray]] = [[] for _ in self.outputs]
        for step, lo in enumerate(range(0, n, batch_size)):
            run = self.graph.run(data.take(xs, slice(lo, lo + batch_size)), False, cache=False)
            self._run = run
            for k, out in enumerate(self._outputs(run)):
                parts[k].append(np.array(out))
            if bar is not None:
                bar.update(step + 1, {})
        if bar is not None:
            bar.close({})
        outs = [p[0] if len(p) == 1 else np.concatenate(p, axis=0) for p in parts]
        return self._structure_outputs(outs)

    def _structure_outputs(self, outs: list) -> Any:
        if self._single_output:
            return outs[0]
        if self._output_keys:
            return dict(zip(self._output_keys, outs))
        return outs

    def __call__(self, inputs: Any, training: bool | None = None, **kwargs: Any):
        """On symbolic tensors: use this model as a layer of another model. On arrays: its outputs."""
        if any_symbolic(inputs, kwargs):
            return super().__call__(inputs, training=training, **kwargs)
        if kwargs.get("mask") is not None:
            raise ValueError("Masks are passed to a model's inputs only when it is used as a layer of another model.")
        xs = self._prepare_inputs(inputs)
        run = self.graph.run(xs, bool(training), cache=False)
        self._run = run
        return self._structure_outputs(self._outputs(run))

    def train_on_batch(self, x: Any, y: Any, return_dict: bool = False, terminate_on_nan: bool = True):
        """One update on one batch; returns this batch's loss (and metrics), as Keras.

        A NaN or infinite loss or gradient raises ``rnnkit.NonFiniteError`` without updating,
        as in ``fit``; ``terminate_on_nan=False`` applies the update anyway, with a warning.
        """
        self._require_compiled("train_on_batch")
        built_before = self.built
        try:   # as in fit: refused data leaves an unbuilt model unbuilt
            xs = self._prepare_inputs(x)
            ys = self._prepare_targets(y, len(xs[0]))
        except Exception:
            if not built_before:
                self._unbuild()
            raise
        totals = compile_utils.Totals(self.heads, ys)
        guard = NonFiniteGuard(self, terminate=terminate_on_nan, caller="train_on_batch")
        total, head_losses, run, _, _ = self._train_step(xs, ys, guard)
        totals.add(total, head_losses, ys, self._outputs(run), self._loss_masks(run))
        return _format_result(totals.logs(), return_dict)

    def test_on_batch(self, x: Any, y: Any, return_dict: bool = False):
        self._require_compiled("test_on_batch")
        xs = self._prepare_inputs(x)
        ys = self._prepare_targets(y, len(xs[0]))
        return _format_result(self._evaluate_arrays(xs, ys, len(xs[0])), return_dict)

    def predict_on_batch(self, x: Any):
        run = self.graph.run(self._prepare_inputs(x), False, cache=False)
        self._run = run
        return self._structure_outputs([np.array(o) for o in self._outputs(run)])

    # -- a model as a layer of another model ------------------------------------------
    def accepts_input_shape(self, input_shape) -> bool:
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        if len(shapes) != len(self.inputs):
            return False
        return all(data.matches(tuple(s), tuple(t.shape[1:])) or len(s) == len(t.shape) - 1 and all(
            a is None or b is None or a == b for a, b in zip(s, t.shape[1:])) for s, t in zip(shapes, self.inputs))

    def check_input_shape(self, input_shape) -> None:
        if not self.accepts_input_shape(input_shape):
            raise ValueError(f"Model '{self.name}' takes inputs of shape {[t.shape for t in self.inputs]}, "
                             f"got {input_shape if isinstance(input_shape, list) else (None, *input_shape)}.")

    def output_shape_for_call(self, input_shape, **kwargs):
        shapes = [tuple(t.shape[1:]) for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def forward(self, inputs, training=False, mask=None):
        xs = inputs if isinstance(inputs, list) else [inputs]
        masks = mask if isinstance(mask, list) else (None if mask is None else [mask])
        self._run = self.graph.run(xs, training, masks=masks, cache=self.keep_cache)
        outs = self._outputs(self._run)
        return outs[0] if len(outs) == 1 else outs

    def compute_mask(self, inputs, mask):
        masks = [self._run.masks.get(t.id) for t in self.outputs]
        return masks[0] if len(masks) == 1 else masks

    def backward(self, dy):
        dys = dy if isinstance(dy, list) else [dy]
        grads = self.graph.backward(self._run, dys, inputs_need_grad=self.need_input_grad)
        return grads[0] if len(grads) == 1 else grads

    # -- inspection and saving ----------------------------------------------------------
    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print a Keras-like table of layers, output shapes and parameter counts."""
        from rnnkit.summary import summary_lines

        for line in summary_lines(self):
            (print_fn or print)(line)

    def get_config(self) -> dict:
        from rnnkit.models.serialization import functional_config

        return functional_config(self)

    def save(self, path) -> None:
        """Write architecture, weights and compile settings to one safetensors file, atomically."""
        from rnnkit.saving import save_model

        save_model(self, path)

    def save_weights(self, path) -> None:
        """Write only the weights, atomically, to one safetensors file (read back with ``load_weights``)."""
        from rnnkit.saving import save_weights

        save_weights(self, path)

    def load_weights(self, path) -> None:
        """Set the weights from a file written by ``save_weights`` (or ``save``) of a model of the same shape."""
        from rnnkit.saving import load_weights

        load_weights(self, path)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} layers={[layer.name for layer in self.layers]}>"


def _unique(names: list[str]) -> list[str]:
    out, seen = [], {}
    for name in names:
        if name in seen:
            seen[name] += 1
            out.append(f"{name}_{seen[name]}")
        else:
            seen[name] = 0
            out.append(name)
    return out


def _name_layers(layers: list[Layer], model_name: str) -> None:
    """Give unnamed layers Keras-style names unique in the model, and refuse two layers with one name."""
    taken = {layer.name for layer in layers if layer.name is not None}
    for layer in layers:
        if layer.name is None:
            base = layer.default_name()
            name, i = base, 0
            while name in taken:
                i += 1
                name = f"{base}_{i}"
            layer.name = name
            taken.add(name)
    seen: dict[str, int] = {}
    for layer in layers:
        seen[layer.name] = seen.get(layer.name, 0) + 1
    dupes = [name for name, count in seen.items() if count > 1]
    if dupes:
        raise ValueError(f"The name {dupes[0]!r} is used by {seen[dupes[0]]} different layers in model "
                         f"'{model_name}'; layer names must be unique.")


def _value_name(values: np.ndarray) -> str:
    """``"nan"``, ``"inf"`` or ``"-inf"``: the first non-finite value of ``values``."""
    v = float(values[~np.isfinite(values)].flat[0])
    return "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")


def _check_verbose(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool):
        return int(verbose)
    if verbose not in (0, 1, 2):
        raise ValueError(
            f"verbose must be 0 (silent), 1 (progress bar), 2 (one line per epoch) or 'auto', got {verbose!r}."
        )
    return int(verbose)


def _format_result(logs: dict[str, float], return_dict: bool):
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


__all__ = ["Model"]
