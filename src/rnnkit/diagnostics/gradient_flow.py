"""``gradient_flow(model, x, y)``: how much gradient BPTT carries back to every time step.

Training a recurrent network is hard because the gradient that reaches early steps is a
product of one Jacobian per step, ``dh_t/dh_{t-1} = diag(act'(a_t)) U^T`` for a SimpleRNN,
and such a product shrinks (vanishes) or grows (explodes) exponentially with the distance.
rnnkit's hand-written BPTT computes ``dL/dh_t`` at every step anyway; this module collects it,
with the quantities that explain it: the spectral radius of ``U``, the Jacobian norms
``||dh_T/dh_t||``, and, for LSTM and GRU, how saturated the gates are and how far open the gate
that keeps the state (forget gate f, update gate z) is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.diagnostics import cells
from rnnkit.diagnostics.jacobian import state_jacobian_norms
from rnnkit.layers.recurrent import Recurrent

#: below this ratio of the gradient at the first step read to the one at the last, the verdict is "vanishing"
VANISHING_RATIO = 1e-3
#: above this ratio, "exploding"
EXPLODING_RATIO = 1e3
#: a unit whose mean keep gate (LSTM f, GRU z) is at least this holds its state for many steps
OPEN_GATE = 0.95


@dataclass
class LayerFlow:
    """The gradient flow through one recurrent layer (one direction of a Bidirectional).

    ``norms`` and ``jacobian_norms`` are ``(T,)`` arrays in input time order; ``direction`` is
    ``"forward"`` or ``"backward"`` (the order the layer reads the steps). For LSTM and GRU,
    ``keep_gate`` names the gate that keeps the state when close to 1 (``"f"``, ``"z"``) and
    ``keep_gate_per_unit`` ``(H,)`` holds its mean per unit: units near 1 are the memory.
    """

    key: str
    cell: str
    direction: str
    return_sequences: bool
    norms: np.ndarray
    jacobian_norms: np.ndarray
    spectral_radius: dict[str, float]
    gate_saturation: dict[str, float] = field(default_factory=dict)
    gate_means: dict[str, float] = field(default_factory=dict)
    keep_gate: str | None = None
    keep_gate_per_unit: np.ndarray | None = None

    @property
    def open_units(self) -> int | None:
        """How many units hold their keep gate (LSTM f, GRU z) at ``OPEN_GATE`` or above on average."""
        if self.keep_gate_per_unit is None:
            return None
        return int(np.sum(self.keep_gate_per_unit >= OPEN_GATE))

    @property
    def first(self) -> int:
        """Index of the first step read (0, or T - 1 for a layer reading backwards)."""
        return 0 if self.direction == "forward" else len(self.norms) - 1

    @property
    def last(self) -> int:
        """Index of the last step read: where the gradient enters when the loss is on the final state."""
        return len(self.norms) - 1 - self.first

    @property
    def ratio(self) -> float:
        """How much of the gradient survives from the last step read back to the first.

        ``norms[first] / norms[last]`` when only the final state reaches the loss; with
        ``return_sequences`` every step adds its own term, so the Jacobian ``||dh_T/dh_first||`` is used.
        """
        if self.return_sequences:
            return float(self.jacobian_norms[self.first])
        top = float(self.norms[self.last])
        bottom = float(self.norms[self.first])
        if top == 0.0:
            return float("nan")
        return bottom / top

    @property
    def verdict(self) -> str:
        """``"vanishing"``, ``"exploding"``, ``"healthy"`` or ``"no gradient"``."""
        if not np.all(np.isfinite(self.norms)):
            return "exploding"
        ratio = self.ratio
        if math.isnan(ratio):
            return "no gradient"
        if ratio < VANISHING_RATIO:
            return "vanishing"
        if ratio > EXPLODING_RATIO:
            return "exploding"
        return "healthy"

    def describe(self) -> str:
        """One paragraph: the verdict with its numbers, then what explains it."""
        T = len(self.norms)
        first, last = self.first, self.last
        verdict = self.verdict
        if verdict == "exploding" and not np.all(np.isfinite(self.norms)):
            bad = np.flatnonzero(~np.isfinite(self.norms))
            start = int(bad[-1] if first == 0 else bad[0])      # where BPTT first met a non-finite value
            lines = [f"{self.key} ({self.cell}): exploding: the gradient is not finite from t={start} back"]
        elif verdict == "no gradient":
            lines = [f"{self.key} ({self.cell}): no gradient reaches this layer (dL/dh is zero at t={last})"]
        else:
            ratio = self.ratio
            if self.return_sequences:
                what = f"||dh_{last}/dh_{first}|| = {ratio:.1e} (every step has its own loss term)"
            else:
                what = f"the gradient at t={first} is {ratio:.1e} of that at t={last}"
            if T > 1 and ratio > 0:
                what += f", x{ratio ** (1.0 / (T - 1)):.3f} per step"
            lines = [f"{self.key} ({self.cell}): {verdict}: {what}"]
        radius = "spectral radius of U: " + ", ".join(f"{k} {v:.2f}" for k, v in self.spectral_radius.items())
        if not self.return_sequences:
            radius = f"||dh_{last}/dh_{first}|| = {self.jacobian_norms[first]:.1e}; {radius}"
        lines.append(f"    {radius}")
        if self.keep_gate is not None:
            name = {"f": "forget", "z": "update"}[self.keep_gate]
            sat = ", ".join(f"{k} {100 * v:.0f}%" for k, v in self.gate_saturation.items())
            lines.append(f"    mean {name} gate {self.keep_gate} = {self.gate_means[self.keep_gate]:.2f}, "
                         f"{self.open_units} of {len(self.keep_gate_per_unit)} units keep it above {OPEN_GATE}; "
                         f"saturated: {sat}")
        return "\n".join(lines)


@dataclass
class GradientFlow:
    """What ``gradient_flow`` measured, per recurrent layer, keyed by the layer's name.

    A ``Bidirectional`` layer has two keys, ``"<name>/forward"`` and ``"<name>/backward"``.

    Attributes:
        loss: the loss on the batch.
        layers: one ``LayerFlow`` per key.
        norms: ``{key: (T,)}`` batch mean of ``||dL/dh_t||_2``, the *total* derivative BPTT carries
            back to step t (the direct term from step t's output plus all that flows back from later steps).
        jacobian_norms: ``{key: (T,)}`` batch mean of the spectral norm ``||dh_T/dh_t||_2``.
        spectral_radius: ``{key: {block: max |eigenvalue|}}`` of the recurrent kernel ``U``, per gate block
            for LSTM (i, f, c, o) and GRU (z, r, h).
        gate_saturation: ``{key: {gate: fraction}}`` of gate activations whose derivative is below 10 % of
            its peak (LSTM and GRU only).
        gate_means: ``{key: {gate: mean}}``; the mean forget gate of an LSTM is ``gate_means[key]["f"]``,
            the mean update gate of a GRU ``gate_means[key]["z"]``.
    """

    loss: float
    layers: dict[str, LayerFlow]

    @property
    def norms(self) -> dict[str, np.ndarray]:
        return {k: f.norms for k, f in self.layers.items()}

    @property
    def jacobian_norms(self) -> dict[str, np.ndarray]:
        return {k: f.jacobian_norms for k, f in self.layers.items()}

    @property
    def spectral_radius(self) -> dict[str, dict[str, float]]:
        return {k: f.spectral_radius for k, f in self.layers.items()}

    @property
    def gate_saturation(self) -> dict[str, dict[str, float]]:
        return {k: f.gate_saturation for k, f in self.layers.items() if f.keep_gate is not None}

    @property
    def gate_means(self) -> dict[str, dict[str, float]]:
        return {k: f.gate_means for k, f in self.layers.items() if f.keep_gate is not None}

    @property
    def verdicts(self) -> dict[str, str]:
        return {k: f.verdict for k, f in self.layers.items()}

    def summary(self) -> str:
        """A short plain-language verdict per layer ("vanishing", "exploding", "healthy"), with the numbers."""
        T = len(next(iter(self.layers.values())).norms) if self.layers else 0
        head = f"Gradient flow over T={T} steps (loss {self.loss:.4g}):"
        return "\n".join([head, *(f.describe() for f in self.layers.values())])

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """Write a PNG of the per-step norms on a log scale (and the gate statistics); needs matplotlib."""
        from rnnkit.diagnostics.plot import plot_flow

        return plot_flow(self, path, title=title)

    def __repr__(self) -> str:
        return f"<GradientFlow {self.verdicts}>"


def gradient_flow(model: Any, x: Any, y: Any, jacobian_samples: int | None = 16) -> GradientFlow:
    """Measure how the gradient of the loss on ``(x, y)`` flows back through every recurrent layer.

    Args:
        model: a compiled ``Sequential`` with at least one SimpleRNN, LSTM, GRU or Bidirectional layer.
        x: inputs ``(B, T, D)`` (or indices for an Embedding model), y: the targets ``fit`` would take.
        jacobian_samples: how many of the sequences the Jacobian norms average over (each costs H
            backward passes of the layer); None for all.

    The model runs in inference mode (no dropout); its weights, optimizer and carried states are
    left as they were. Returns a ``GradientFlow``; see its ``summary()`` and ``plot(path)``.
    """
    model._require_compiled("gradient_flow")
    xs = model._prepare_inputs(x)
    ys = model._prepare_targets(y, len(xs[0]))
    units = list(cells.recurrent_units(model))
    if not units:
        raise ValueError(
            f"Model '{model.name}' has no recurrent layer (SimpleRNN, LSTM, GRU or Bidirectional); "
            f"its layers are {[layer.name for layer in model.layers]}."
        )
    if jacobian_samples is not None and (isinstance(jacobian_samples, bool) or int(jacobian_samples) < 1):
        raise ValueError(f"jacobian_samples must be a positive integer or None, got {jacobian_samples!r}.")
    carried = [(layer, layer.states) for _, layer in units if layer.stateful]
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for _, layer in units:
                layer.record_state_grads = True
            loss, _, _ = model._loss_and_backward(xs, ys, training=False)
            flows = {key: _layer_flow(key, layer, jacobian_samples) for key, layer in units}
    finally:
        for _, layer in units:
            layer.record_state_grads = False
            layer.state_grads = None
        for layer, states in carried:
            layer.states = states
    return GradientFlow(loss=float(loss), layers=flows)


def _layer_flow(key: str, layer: Recurrent, jacobian_samples: int | None) -> LayerFlow:
    norms = np.linalg.norm(layer.state_grads.astype(np.float64), axis=-1).mean(axis=1)   # (T, B, H) -> (T,)
    radius = {name: float(np.max(np.abs(np.linalg.eigvals(block.astype(np.float64)))))
              for name, block in cells.recurrent_blocks(layer).items()}
    flow = LayerFlow(key=key, cell=type(layer).__name__, direction="backward" if layer.go_backwards else "forward",
                     return_sequences=layer.return_sequences, norms=norms, jacobian_norms=np.empty(0),
                     spectral_radius=radius)
    gates = cells.gate_values(layer)
    if gates is not None:
        H = layer.units
        real = None if layer._mask_tm is None else layer._mask_tm[:, :, 0]               # (T, B) real steps
        for k, (name, act) in enumerate(zip(cells.gate_names(layer), cells.gate_activations(layer))):
            block = gates[:, :, k * H:(k + 1) * H]                                       # (T, B, H)
            values = block if real is None else block[real]
            flow.gate_saturation[name] = cells.saturation(act, values)
            flow.gate_means[name] = float(values.mean()) if values.size else float("nan")
        keep = cells.keep_gate(layer)
        k = cells.gate_names(layer).index(keep)
        block = gates[:, :, k * H:(k + 1) * H]
        flow.keep_gate = keep
        flow.keep_gate_per_unit = (block if real is None else block[real]).reshape(-1, H).mean(axis=0)  # (H,)
    flow.jacobian_norms = state_jacobian_norms(layer, jacobian_samples)                    # last: reuses the cache
    return flow
