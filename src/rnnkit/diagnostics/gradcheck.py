"""``check_gradients``: compare a model's backward pass with central finite differences in float64.

This is the check rnnkit's own tests run on every layer, offered for your models (and your
own layers): each weight element is moved by ``+eps`` and ``-eps`` and the loss difference
``(L(w + eps) - L(w - eps)) / 2 eps`` is compared with the analytic gradient. The check runs on
a float64 copy of the model, so the model itself is not touched.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from rnnkit.diagnostics.cells import sublayers
from rnnkit.layers.base import Layer


def check_gradients(model: Any, x: Any, y: Any, eps: float = 1e-6, max_elements: int | None = None,
                    seed: int | None = 0) -> dict[str, float]:
    """Max relative error between analytic and finite-difference gradients, per weight.

    Args:
        model: a compiled, built ``Sequential``.
        x, y: a (small) batch, as ``fit`` takes it.
        eps: the step of the central differences (the error of the difference is O(eps^2)).
        max_elements: check at most this many randomly chosen elements of each weight (None: all).
        seed: chooses those elements.

    Returns ``{"<layer>/<weight>": error}`` with ``error = max|a - n| / max(max|a|, max|n|)``, the
    differences taken over the checked elements (a and n the analytic and numeric gradients, max|a|
    over the whole weight); in float64 a correct backward pass gives about 1e-7 or less. The loss is
    the one ``fit`` minimises, in inference mode (dropout off).
    """
    if not (isinstance(eps, (int, float)) and 0 < eps < 1):
        raise ValueError(f"eps must be a small positive number such as 1e-6, got {eps!r}.")
    if max_elements is not None and (isinstance(max_elements, bool) or int(max_elements) < 1):
        raise ValueError(f"max_elements must be a positive integer or None, got {max_elements!r}.")
    model._require_compiled("check_gradients")
    clone = _float64_copy(model)
    xs = clone._prepare_inputs(x)
    ys = clone._prepare_targets(y, len(xs[0]))
    carried = [(sub, sub.states) for layer in clone.leaf_layers() for sub in sublayers(layer)
               if getattr(sub, "stateful", False)]

    def loss() -> float:
        for layer, states in carried:   # a stateful layer starts every evaluation from the same state
            layer.states = states
        run = clone.graph.run(xs, training=False)
        return float(clone._losses(run, ys)[0])

    for layer, states in carried:
        layer.states = states
    clone._loss_and_backward(xs, ys, training=False)
    rng = np.random.default_rng(seed)
    errors = {}
    for layer in clone.leaf_layers():
        for name in layer.trainable_weight_names:
            w, a = layer.params[name], layer.grads[name].copy()
            flat = np.arange(w.size)
            if max_elements is not None and w.size > max_elements:
                flat = np.sort(rng.choice(w.size, size=int(max_elements), replace=False))
            num = np.empty(len(flat))
            for j, i in enumerate(flat):
                idx = np.unravel_index(i, w.shape)
                old = w[idx]
                w[idx] = old + eps
                up = loss()
                w[idx] = old - eps
                down = loss()
                w[idx] = old
                num[j] = (up - down) / (2 * eps)
            ana = a.reshape(-1)[flat]
            # the scale is the whole analytic gradient's, so checking a sample of small entries stays fair
            scale = max(np.abs(a).max(initial=0.0), np.abs(num).max(initial=0.0), 1e-12)
            errors[f"{layer.name}/{name}"] = float(np.abs(ana - num).max(initial=0.0) / scale)
    return errors


def _float64_copy(model: Any):
    """The same model, weights and losses, in float64: a deep copy whose weights are converted.

    Copying (rather than rebuilding from configs) also works for a user's own layers and cells. A
    layer may hold its weights under other names too (``self.kernel = self.add_weight(...)``): every
    reference to a converted array, in any layer or cell of the copy, is pointed at the new one.
    """
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet; give it an input shape or fit it first.")
    clone = copy.deepcopy(model)
    converted: dict[int, np.ndarray] = {}
    for layer in clone.leaf_layers():
        for value in layer.params.values():
            converted.setdefault(id(value), value.astype(np.float64))
    seen: set[int] = set()

    def repoint(obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for name, value in vars(obj).items():
            if isinstance(value, np.ndarray) and id(value) in converted:
                setattr(obj, name, converted[id(value)])
            elif isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(v, np.ndarray) and id(v) in converted:
                        value[k] = converted[id(v)]
                    elif isinstance(v, Layer):
                        repoint(v)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    if isinstance(v, Layer):
                        repoint(v)
            elif isinstance(value, Layer):
                repoint(value)

    for layer in clone.leaf_layers():
        repoint(layer)
        layer.grads = {k: np.zeros(layer.params[k].shape) for k in layer.grads}
        for sub in sublayers(layer):
            if getattr(sub, "stateful", False) and sub.states is not None:
                sub.states = [s.astype(np.float64) for s in sub.states]
    args = model._compile_args
    clone.compile(optimizer="sgd", loss=args["loss"], loss_weights=args["loss_weights"])
    return clone
