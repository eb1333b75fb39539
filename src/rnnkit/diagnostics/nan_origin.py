"""Where a NaN or an infinity came from: the first layer, time step and quantity that stopped being finite.

The search runs the batch forward layer by layer and scans what every layer computed in
the order it computed it (for a recurrent layer: step by step, the pre-activations, the
gates, the cell state, then the output ``h_t``). If the forward pass and the loss are finite,
it runs backward with ``record_state_grads`` and scans the gradients in the order BPTT
produced them: from the loss back, and within a recurrent layer from the last step read to
the first.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.diagnostics import cells
from rnnkit.diagnostics.snapshot import StepSnapshot
from rnnkit.errors import NonFiniteError
from rnnkit.layers.dense import Dense
from rnnkit.layers.recurrent import Recurrent


@dataclass
class NonFiniteReport:
    """The first non-finite value found.

    Attributes:
        quantity: ``"pre-activation"``, ``"gate f"`` (LSTM i, f, c, o; GRU z, r, h), ``"cell state"``,
            ``"output"``, ``"loss"``, ``"gradient of the loss"``, ``"gradient dL/dh_t"``,
            ``"gradient of weight 'kernel'"`` or ``"gradient with respect to the input"``.
        value: ``"nan"``, ``"inf"`` or ``"-inf"``: the first bad value seen.
        layer: the layer's name (``"<name>/forward"`` for a direction of a Bidirectional), or None for the loss.
        layer_class: e.g. ``"SimpleRNN"``.
        step: the time step (0-based, input order) for a recurrent layer, else None.
        timesteps: T of that layer.
        loss, grad_norm: the loss and the global gradient norm of the failed training step, when known.
        context: where in training it happened, e.g. ``"epoch 2/5, batch 7/16"``.
        reproduced: False when running the batch again gave finite values (then the rest is unknown).
    """

    quantity: str
    value: str = "nan"
    layer: str | None = None
    layer_class: str | None = None
    step: int | None = None
    timesteps: int | None = None
    loss: float | None = None
    grad_norm: float | None = None
    context: str | None = None
    reproduced: bool = True
    detail: str | None = None

    def origin(self) -> str:
        """``"layer 'simple_rnn' (SimpleRNN), time step 37 of 100: the pre-activation became inf"``."""
        if not self.reproduced:
            return ("running the batch again gave finite values everywhere, so the origin is unknown "
                    "(dropout draws new masks each time unless the step is repeated exactly)")
        if self.detail is not None:
            return self.detail
        if self.layer is None:
            return f"the {self.quantity} became {self.value}"
        where = f"layer '{self.layer}' ({self.layer_class})"
        if self.step is not None:
            where += f", time step t={self.step} (T={self.timesteps})"
        return f"{where}: the {self.quantity} became {self.value}"

    def __str__(self) -> str:
        return f"First non-finite value: {self.origin()}."


def find_nonfinite_origin(model: Any, x: Any, y: Any, training: bool = False) -> NonFiniteReport | None:
    """Run ``model`` on ``(x, y)`` and report the first non-finite value, or None if all is finite.

    ``training=True`` runs the layers as a training step does (dropout on). Weights, optimizer,
    carried states and dropout generators are left as they were.
    """
    model._require_compiled("find_nonfinite_origin")
    xs = model._prepare_inputs(x)
    ys = model._prepare_targets(y, len(xs[0]))
    snapshot = StepSnapshot(model)
    try:
        return locate(model, xs, ys, training)
    finally:
        snapshot.restore()


def locate(model: Any, xs: list, ys: list, training: bool) -> NonFiniteReport | None:
    """The search on prepared arrays, one per model input and output (``fit`` calls it on the failed batch)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        found = _scan_forward(model, xs, training)
        if found is not None:
            return found
        run = model._run
        value, _, grads, fused = model._losses(run, ys)
        if not math.isfinite(value):
            return NonFiniteReport(quantity="loss", value=_value_name(np.array([value])))
        for g in [*grads, *fused.values()]:
            if g is not None and not np.isfinite(g).all():
                return NonFiniteReport(quantity="gradient of the loss", value=_value_name(g))
        units = list(cells.recurrent_units(model))
        try:
            for _, layer in units:
                layer.record_state_grads = True
            return _scan_backward(model, run, grads, fused)
        finally:
            for _, layer in units:
                layer.record_state_grads = False
                layer.state_grads = None


# -- forward ------------------------------------------------------------------------

def _scan_forward(model: Any, xs: list, training: bool) -> NonFiniteReport | None:
    """The model's forward pass, scanning each layer call's results as it goes."""
    found: list[NonFiniteReport] = []

    def inspect(layer: Any, out: Any) -> bool:
        report = _scan_layer(layer, out)
        if report is not None:
            found.append(report)
        return report is not None

    model._forward(xs, training, inspect=inspect)
    return found[0] if found else None


def _scan_layer(layer: Any, out: Any) -> NonFiniteReport | None:
    for key, unit in cells.units_of(layer):
        found = _scan_recurrent(key, unit)
        if found is not None:
            return found
    inner = getattr(layer, "layer", layer)           # TimeDistributed's layer
    if isinstance(inner, Dense) and inner._cache is not None and not np.isfinite(inner.logits).all():
        return NonFiniteReport(quantity="pre-activation", value=_value_name(inner.logits),
                               layer=layer.name, layer_class=type(layer).__name__)
    for o in (out if isinstance(out, list) else [out]):
        if not np.isfinite(o).all():
            return NonFiniteReport(quantity="output", value=_value_name(o), layer=layer.name,
                                   layer_class=type(layer).__name__)
    return None


def _scan_recurrent(key: str, layer: Recurrent) -> NonFiniteReport | None:
    """The earliest step (in reading order), and at that step the earliest quantity, that is not finite."""
    best = None
    for order, (quantity, values) in enumerate(cells.forward_quantities(layer)):
        T = values.shape[0]
        bad = ~np.isfinite(values.reshape(T, -1)).all(axis=1)                  # (T,) per step read
        if bad.any():
            k = int(np.argmax(bad))
            if best is None or (k, order) < best[:2]:
                best = (k, order, quantity, values[k])
    if best is None:
        return None
    k, _, quantity, values = best
    T = layer._cache[0].shape[0]
    return NonFiniteReport(quantity=quantity, value=_value_name(values), layer=key,
                           layer_class=type(layer).__name__, step=T - 1 - k if layer.go_backwards else k,
                           timesteps=T)


# -- backward -----------------------------------------------------------------------

def _scan_backward(model: Any, run: Any, grads: list, fused: dict) -> NonFiniteReport | None:
    """The model's backward pass, scanning each layer call's gradients in the order BPTT makes them."""
    found: list[NonFiniteReport] = []

    def inspect(layer: Any, dx: Any) -> bool:
        report = _scan_gradients(layer, dx)
        if report is not None:
            found.append(report)
        return report is not None

    model.graph.backward(run, grads, fused, inspect=inspect)
    return found[0] if found else None


def _scan_gradients(layer: Any, dx: Any) -> NonFiniteReport | None:
    for key, unit in cells.units_of(layer):
        sg = unit.state_grads                                                   # (T, B, H), input time order
        T = sg.shape[0]
        bad = ~np.isfinite(sg.reshape(T, -1)).all(axis=1)
        if bad.any():
            # BPTT meets the steps in reverse reading order: the last step read comes first
            t = int(np.flatnonzero(bad)[0] if unit.go_backwards else np.flatnonzero(bad)[-1])
            return NonFiniteReport(quantity="gradient dL/dh_t", value=_value_name(sg[t]), layer=key,
                                   layer_class=type(unit).__name__, step=t, timesteps=T)
    for name, g in layer.grads.items():
        if not np.isfinite(g).all():
            return NonFiniteReport(quantity=f"gradient of weight '{name}'", value=_value_name(g),
                                   layer=layer.name, layer_class=type(layer).__name__)
    for d in (dx if isinstance(dx, list) else [dx]):
        if d is not None and not np.isfinite(d).all():
            return NonFiniteReport(quantity="gradient with respect to the input", value=_value_name(d),
                                   layer=layer.name, layer_class=type(layer).__name__)
    return None


def _oversized_gradient(model: Any) -> NonFiniteReport:
    """All finite, but some gradient element is too large to square in its float type."""
    top = max(((float(np.abs(g).max(initial=0.0)), layer, name, g.dtype)
               for layer in model.leaf_layers() for name, g in layer.grads.items()), key=lambda t: t[0])
    size, layer, name, dtype = top
    return NonFiniteReport(
        quantity=f"gradient of weight '{name}'", value="inf", layer=layer.name, layer_class=type(layer).__name__,
        detail=(f"layer '{layer.name}' ({type(layer).__name__}): the gradient of weight '{name}' reaches "
                f"{size:.3g}, whose square overflows {dtype} (the optimizer would turn the weights into NaN)"))


def _value_name(values: np.ndarray) -> str:
    values = np.asarray(values)
    bad = values[~np.isfinite(values)]
    if bad.size == 0:
        return "finite"
    v = float(bad.flat[0])
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


# -- what training does about it ------------------------------------------------------------

def remedies(model: Any) -> list[str]:
    """The usual remedies, fitted to the model: clipping, a lower learning rate, tanh instead of relu."""
    opt = model.optimizer
    tips = []
    clip = [(k, getattr(opt, k)) for k in ("clipnorm", "global_clipnorm", "clipvalue") if getattr(opt, k, None)]
    if clip:
        tips.append(f"clip harder: a smaller {clip[0][0]} (now {clip[0][1]:g})")
    else:
        tips.append(f"clip gradients: e.g. optimizer={type(opt).__name__}(global_clipnorm=1.0) or clipnorm=1.0")
    tips.append(f"lower the learning rate (now {opt.learning_rate:g})")
    unbounded = [(key, layer.activation.name) for key, layer in cells.recurrent_units(model)
                 if layer.activation.name in ("relu", "linear")]
    if unbounded:
        tips.append("use activation='tanh' (bounded) instead of "
                    + ", ".join(f"'{name}' in layer '{key}'" for key, name in unbounded))
    return tips


class NonFiniteGuard:
    """What ``fit`` and ``train_on_batch`` do when a step's loss or gradient is not finite.

    The check happens before the optimizer update, so at that point the weights and the
    optimizer state are still the last finite ones. With ``terminate=True`` the update is not
    applied and ``NonFiniteError`` is raised, naming the origin; otherwise training goes on
    (the update is applied, as Keras does), the first origin is reported as a ``RuntimeWarning``
    and kept in ``report``, and ``count`` counts the non-finite steps.
    """

    def __init__(self, model: Any, terminate: bool = True, caller: str = "fit"):
        self.model, self.terminate, self.caller = model, bool(terminate), caller
        self.report: NonFiniteReport | None = None
        self.count = 0

    def __call__(self, x: np.ndarray, y: np.ndarray, loss: float, grad_norm: float,
                 snapshot: StepSnapshot, where: tuple | None = None) -> None:
        """Handle one non-finite step; ``where`` is ``(epoch, epochs, step, steps)`` (0-based epoch and step)."""
        self.count += 1
        if not self.terminate and self.report is not None:
            return
        snapshot.restore()                      # run the failed step again, exactly: same states, same masks
        report = locate(self.model, x, y, training=True)
        if report is None and math.isfinite(loss) and math.isfinite(grad_norm):
            report = _oversized_gradient(self.model)
        if report is None:
            report = NonFiniteReport(quantity="loss" if not math.isfinite(loss) else "gradient",
                                     reproduced=False)
        report.loss, report.grad_norm = float(loss), float(grad_norm)
        if where is not None:
            epoch, epochs, step, steps = where
            report.context = f"epoch {epoch + 1}/{epochs}, batch {step + 1}/{steps}"
        if self.terminate:
            snapshot.restore()
            raise NonFiniteError(self.message(report), report)
        self.report = report
        warnings.warn(self.message(report), RuntimeWarning, stacklevel=4)

    def message(self, report: NonFiniteReport) -> str:
        where = f" at {report.context}" if report.context else ""
        head = (f"{'Training stopped' if self.terminate else 'Non-finite values'}{where}: "
                f"the loss is {report.loss:.6g} and the gradient norm {report.grad_norm:.6g}.")
        lines = [head, str(report)]
        if self.terminate:
            lines.append("This step's update was not applied: the weights and the optimizer state are as they were "
                         "before it.")
        else:
            lines.append("Training goes on as asked (terminate_on_nan=False); the weights will not be finite.")
        lines.append("Usual remedies:")
        tips = remedies(self.model)
        lines.extend(f"  - {tip}{'.' if i == len(tips) - 1 else ';'}" for i, tip in enumerate(tips))
        if self.terminate:
            lines.append(f"Pass {self.caller}(..., terminate_on_nan=False) to keep training anyway.")
        return "\n".join(lines)
