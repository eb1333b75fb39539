"""The graph of a model: which layer calls to run, in which order, and how gradients flow back.

``Graph(inputs, outputs)`` walks back from the output tensors along the recorded layer calls
(``rnnkit.symbolic.Node``) to the inputs, as Keras does: a depth-first search gives an order
in which every call comes after the calls it reads from, and ``layers`` lists each layer
once, the farthest from the outputs first (Keras' order, which is also the order of
``get_weights``).

``run`` computes every call in that order, passing masks along by Keras' rules, and keeps a
``Run``: the value and mask of every tensor and what each call left for its backward.
``backward`` goes through the calls in reverse: the gradient of a tensor read by several
calls is the sum of what each sends back, a layer called several times gets the sum of its
calls' weight gradients, and a call whose outputs get no gradient is skipped.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Callable

import numpy as np

from rnnkit.layers.base import Layer
from rnnkit.symbolic import Node, SymbolicTensor, substitute


class Run:
    """What one forward pass through a graph left behind."""

    __slots__ = ("values", "masks", "states", "penalty")

    def __init__(self):
        self.values: dict[int, Any] = {}      # tensor id -> array
        self.masks: dict[int, Any] = {}       # tensor id -> (B, T) mask or None
        self.states: list[Any] = []           # per node, in run order: its layer's call state
        self.penalty = 0.0                    # activity regularization added to the loss


class Graph:
    """The layer calls between ``inputs`` and ``outputs`` (lists of symbolic tensors)."""

    def __init__(self, inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]):
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.nodes, self.layers = self._build()
        self._leaves: list[Layer] | None = None
        self._node_leaves = [leaves_of(node.layer) for node in self.nodes]
        self._needs: tuple | None = None          # (key, differentiable tensor ids), see differentiable()
        # one tensor in, one out, no keyword arguments: most calls, run without the general bookkeeping
        self._simple = [isinstance(n.args, SymbolicTensor) and not n.kwargs and len(n.outputs) == 1
                        for n in self.nodes]
        calls: dict[int, int] = {}
        for leaves in self._node_leaves:
            for leaf in leaves:
                calls[id(leaf)] = calls.get(id(leaf), 0) + 1
        #: layers called more than once: their gradient is the sum over their calls
        self._shared = {key for key, count in calls.items() if count > 1}

    # -- structure --------------------------------------------------------------------
    def _build(self) -> tuple[list[Node], list[Layer]]:
        input_ids = {t.id for t in self.inputs}
        finished: set[int] = set()
        in_progress: set[int] = set()
        order: list[Node] = []                 # every node after the nodes it reads from
        first_seen: dict[int, int] = {}        # layer id -> pre-order index of its first visit
        layer_of: dict[int, Layer] = {}

        def visit(tensor: SymbolicTensor) -> None:
            node = tensor.node
            if id(node) in finished:
                return
            if not node.is_input and tensor.id in input_ids:   # an intermediate tensor given as an input
                finished.add(id(node))
                return
            if id(node) in in_progress:
                raise ValueError(f"The graph has a cycle through layer '{node.layer.name}'.")
            first_seen.setdefault(id(node.layer), len(first_seen))
            layer_of[id(node.layer)] = node.layer
            in_progress.add(id(node))
            for t in node.tensor_inputs:
                visit(t)
            in_progress.discard(id(node))
            finished.add(id(node))
            order.append(node)

        for t in self.outputs:
            visit(t)
        for t in self.inputs:                                # inputs the outputs do not need still count
            if t.node.is_input and id(t.node.layer) not in layer_of:
                first_seen.setdefault(id(t.node.layer), len(first_seen))
                layer_of[id(t.node.layer)] = t.node.layer
                order.insert(0, t.node)
        self._check_computable(order, input_ids)
        # depth: how many calls lie between a node and the outputs (Keras' ordering of layers)
        depth: dict[int, int] = {}
        layer_depth: dict[int, int] = {}
        in_graph = {id(n) for n in order}
        for node in reversed(order):
            d = max(depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = depth[id(node)] = d
            for t in node.tensor_inputs:
                if id(t.node) in in_graph:
                    depth[id(t.node)] = max(depth.get(id(t.node), 0), d + 1)
        layers = sorted(layer_of.values(), key=lambda layer: (-layer_depth.get(id(layer), 0), first_seen[id(layer)]))
        nodes = [n for n in order if not (n.is_input and n.outputs[0].id in input_ids)]
        return nodes, layers

    def _check_computable(self, order: list[Node], input_ids: set[int]) -> None:
        computable = set(input_ids)
        given = ", ".join(t.name for t in self.inputs) or "none"
        for node in order:
            if node.is_input and node.outputs[0].id not in input_ids:
                t = node.outputs[0]
                raise ValueError(
                    f"The model needs input '{t.name}' (shape {t.shape}) but it is not among the model's inputs "
                    f"[{given}]; add it to Model(inputs=...)."
                )
            for t in node.tensor_inputs:
                if t.id not in computable:
                    raise ValueError(
                        f"Graph disconnected: tensor '{t.name}' (shape {t.shape}), read by layer "
                        f"'{node.layer.name}', cannot be computed from the model's inputs [{given}]."
                    )
            computable.update(t.id for t in node.outputs)

    @cached_property
    def regularized(self) -> list[Layer]:
        """The leaf layers with weight penalties (set when they were built, before the graph was)."""
        return [layer for layer in self.leaf_layers() if layer.regularizers]

    @cached_property
    def constrained(self) -> list[Layer]:
        """The leaf layers with weight constraints."""
        return [layer for layer in self.leaf_layers() if layer.constraints]

    def leaf_layers(self) -> list[Layer]:
        """Every layer that owns weights directly (nested models are opened), each once, in layer order."""
        if self._leaves is None:
            out: list[Layer] = []
            seen: set[int] = set()
            for layer in self.layers:
                for leaf in leaves_of(layer):
                    if id(leaf) not in seen:
                        seen.add(id(leaf))
                        out.append(leaf)
            self._leaves = out
        return self._leaves

    # -- forward ------------------------------------------------------------------------
    def run(self, arrays: list[np.ndarray], training: bool, masks: list | None = None,
            inspect: Callable[[Layer, Any], bool] | None = None, cache: bool = True) -> Run:
        """Compute every call; ``inspect(layer, output)`` after each may stop the run by returning True.

        ``cache=False`` when no backward will follow (predict, evaluate): layers may then keep less.
        """
        run = Run()
        values, out_masks = run.values, run.masks
        for i, (t, a) in enumerate(zip(self.inputs, arrays)):
            values[t.id] = a
            out_masks[t.id] = None if masks is None else masks[i]
        for node, simple in zip(self.nodes, self._simple):
            layer = node.layer
            training_here = training if node.training is None else node.training
            if not cache:
                layer.keep_cache = False
            if simple:
                x = values[node.args.id]
                m = out_masks[node.args.id]
                if m is not None and layer.consumes_mask:
                    out = layer.forward(x, training=training_here, mask=m)
                else:
                    out = layer.forward(x, training=training_here)
                layer.keep_cache = True
                values[node.outputs[0].id] = out
                out_masks[node.outputs[0].id] = layer.compute_mask(x, m)
                run.states.append(layer.get_call_state())
                if layer.activity_regularizer is not None:
                    run.penalty += layer.activity_regularizer(out) / len(out)
                if inspect is not None and inspect(layer, out):
                    break
                continue
            args = substitute(node.args, values)
            kwargs = {k: substitute(v, values) for k, v in node.kwargs.items()} if node.kwargs else {}
            arg_masks = substitute(node.args, out_masks)
            if isinstance(arg_masks, list) and all(m is None for m in arg_masks):
                arg_masks = None
            if layer.consumes_mask and kwargs.get("mask") is None and node.n_tensor_arguments == 1 \
                    and arg_masks is not None:
                kwargs["mask"] = arg_masks                     # Keras passes the input's mask by itself
            previous_mask = kwargs["mask"] if kwargs.get("mask") is not None else arg_masks
            out = layer.forward(args, training=training_here, **kwargs)
            layer.keep_cache = True
            mask = layer.compute_mask(args, previous_mask)
            outs = out if len(node.outputs) > 1 else [out]
            if len(node.outputs) > 1 and not isinstance(mask, list):
                mask = [mask] + [None] * (len(node.outputs) - 1)
            masks_out = mask if len(node.outputs) > 1 else [mask]
            for t, v, m in zip(node.outputs, outs, masks_out):
                values[t.id] = v
                out_masks[t.id] = m
            run.states.append(layer.get_call_state())
            if layer.activity_regularizer is not None:
                run.penalty += sum(layer.activity_regularizer(v) / len(v) for v in outs)
            if inspect is not None and inspect(layer, out):
                break
        return run

    # -- backward -------------------------------------------------------------------------
    def differentiable(self, inputs_need_grad: bool = False) -> set[int]:
        """Ids of the tensors whose gradient is needed: those that depend on a trainable weight
        (or on the graph's inputs, when the caller wants their gradient)."""
        key = (inputs_need_grad, tuple(leaf.trainable for leaf in self.leaf_layers()))
        if self._needs is not None and self._needs[0] == key:
            return self._needs[1]
        needs: set[int] = {t.id for t in self.inputs} if inputs_need_grad else set()
        for node, leaves in zip(self.nodes, self._node_leaves):
            reads = node.arg_tensors + [t for k, ts in node.kwarg_tensors.items() if k != "mask" for t in ts]
            if any(t.id in needs for t in reads) or any(leaf.trainable_weight_names for leaf in leaves):
                needs.update(t.id for t in node.outputs)
        self._needs = (key, needs)
        return needs

    def backward(self, run: Run, output_grads: list, fused: dict[int, np.ndarray] | None = None,
                 inputs_need_grad: bool = False, inspect: Callable[[Layer, Any], bool] | None = None) -> list:
        """Gradients of the inputs (None where not needed) from those of the outputs.

        ``fused`` maps a node's position to ``dL/dlogits`` for an output whose loss is computed
        from the logits of its last layer (softmax + cross-entropy): that node runs
        ``backward_from_logits`` instead. Every weight's gradient is left in its layer's ``grads``.
        """
        grads: dict[int, np.ndarray] = {}
        for t, g in zip(self.outputs, output_grads):
            if g is not None:
                _add(grads, t.id, g)
        needs = self.differentiable(inputs_need_grad)
        summed: dict[int, dict] = {}       # for shared layers: the sum of their calls' gradients so far
        visited: set[int] = set()
        for i in reversed(range(len(self.nodes))):
            node = self.nodes[i]
            layer = node.layer
            dz = None if fused is None else fused.get(i)
            dys = [grads.pop(t.id, None) for t in node.outputs]
            if layer.activity_regularizer is not None:
                dys = [_plus(d, layer.activity_regularizer.gradient(run.values[t.id]) / len(run.values[t.id]))
                       for d, t in zip(dys, node.outputs)]
            if dz is None and all(d is None for d in dys):
                continue
            if not any(t.id in needs for t in node.outputs):
                continue
            layer.set_call_state(run.states[i])
            layer.need_input_grad = any(t.id in needs for t in node.arg_tensors)
            if dz is not None:
                dx, kwarg_grads = layer.backward_from_logits(dz), {}
            else:
                dys = [np.zeros_like(run.values[t.id]) if d is None else d for d, t in zip(dys, node.outputs)]
                dx, kwarg_grads = layer.backward_call(dys)
            for leaf in self._node_leaves[i]:
                key = id(leaf)
                visited.add(key)
                if key in self._shared:
                    acc = summed.get(key)
                    if acc is None:
                        summed[key] = dict(leaf.grads)
                    else:
                        for k, g in leaf.grads.items():
                            acc[k] = acc[k] + g
            if isinstance(node.args, SymbolicTensor):
                if dx is not None and node.args.id in needs:
                    _add(grads, node.args.id, dx)
            else:
                _send_back(node.args, dx, grads, needs)
            for k in node.kwarg_tensors:
                if k != "mask":
                    _send_back(node.kwargs[k], kwarg_grads.get(k), grads, needs)
            if inspect is not None and inspect(layer, dx):
                break
        for leaf in self.leaf_layers():
            key = id(leaf)
            if key in summed:
                leaf.grads = summed[key]
            elif key not in visited and leaf.grads:        # no gradient reached it this time
                leaf.grads = {k: np.zeros_like(leaf.params[k]) for k in leaf.grads}
        return [grads.get(t.id) for t in self.inputs]


def leaves_of(layer: Layer) -> list[Layer]:
    """The layers that hold ``layer``'s weights: itself, or for a nested model its own leaves."""
    graph = getattr(layer, "graph", None)
    if isinstance(graph, Graph):
        return graph.leaf_layers()
    return [layer]


def _add(grads: dict[int, np.ndarray], key: int, g: np.ndarray) -> None:
    old = grads.get(key)
    grads[key] = g if old is None else old + g


def _plus(a: np.ndarray | None, b: np.ndarray) -> np.ndarray:
    return b if a is None else a + b


def _send_back(structure: Any, grad: Any, grads: dict[int, np.ndarray], needs: set[int]) -> None:
    """Add ``grad`` (shaped like ``structure``) to the gradients of the tensors in ``structure``."""
    if grad is None:
        return
    if isinstance(structure, SymbolicTensor):
        if isinstance(grad, (list, tuple)):          # one state given as a tensor, its gradient as a list of one
            (grad,) = grad
        if structure.id in needs and grad is not None:
            _add(grads, structure.id, grad)
        return
    if isinstance(structure, (list, tuple)):
        if not isinstance(grad, (list, tuple)):
            grad = [grad]
        for s, g in zip(structure, grad):
            _send_back(s, g, grads, needs)


__all__ = ["Graph", "Run", "leaves_of"]
