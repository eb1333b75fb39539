"""Small PNG plots of gradient flow, drawn with matplotlib (the optional extra ``rnnkit[plot]``).

Figures are made with matplotlib's object API (``Figure`` + the Agg canvas), not ``pyplot``,
so plotting never changes the user's backend or opens a window.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from rnnkit.diagnostics.gradient_flow import OPEN_GATE

if TYPE_CHECKING:  # pragma: no cover
    from rnnkit.diagnostics.gradient_flow import GradientFlow

SIZE = (6.0, 3.5)   # inches
DPI = 100


def _figure(columns: int, width_ratios: tuple = (1,)):
    """A figure with ``columns`` axes side by side; a clear error when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "Plotting needs matplotlib, which rnnkit installs as an optional extra: "
            "pip install 'rnnkit[plot]' (or pip install matplotlib)."
        ) from None
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, columns, squeeze=False, gridspec_kw={"width_ratios": list(width_ratios)})[0]
    return fig, axes


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"Plots are written as PNG; give a path ending in .png, got {str(path)!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _positive(values: np.ndarray) -> np.ndarray:
    """Zeros and non-finite values become NaN, which a log axis leaves out instead of failing."""
    values = np.asarray(values, dtype=np.float64).copy()
    values[~(np.isfinite(values) & (values > 0))] = np.nan
    return values


def plot_flow(flow: GradientFlow, path: str | Path, title: str | None = None) -> Path:
    """Per-step ``||dL/dh_t||`` on a log scale; with LSTM or GRU layers, a second panel of gate statistics."""
    gated = {k: f for k, f in flow.layers.items() if f.keep_gate is not None}
    fig, axes = _figure(2 if gated else 1, (2, 1) if gated else (1,))
    ax = axes[0]
    for key, f in flow.layers.items():
        ax.plot(np.arange(len(f.norms)), _positive(f.norms), label=f"{key}: {f.verdict}")
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel("||dL/dh_t|| (batch mean)")
    ax.set_title(title or "Gradient reaching each step", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    if gated:
        ax = axes[1]
        bins = np.linspace(0.0, 1.0, 21)
        for key, f in gated.items():
            ax.hist(f.keep_gate_per_unit, bins=bins, alpha=0.6, label=key)
        ax.axvline(OPEN_GATE, color="black", linestyle="--", linewidth=0.8)
        names = {"f": "forget gate f", "z": "update gate z"}
        keeps = sorted({names[f.keep_gate] for f in gated.values()})
        ax.set_xlabel(f"mean {' / '.join(keeps)} of a unit", fontsize=8)
        ax.set_ylabel("units")
        ax.set_title("Memory: units near 1", fontsize=10)
        text = "\n\n".join("saturated\n" + "\n".join(f"{g} {100 * v:.0f}%" for g, v in f.gate_saturation.items())
                           for f in gated.values())
        ax.text(0.04, 0.96, text, transform=ax.transAxes, fontsize=7, va="top")
        if len(gated) > 1:
            ax.legend(fontsize=7, loc="center left")
    return _save(fig, path)


def plot_comparison(flows: Mapping[str, GradientFlow], path: str | Path,
                    before: Mapping[str, GradientFlow] | None = None, title: str | None = None) -> Path:
    """Several models on one log scale, each curve ``||dL/dh_t||`` relative to the step where the loss enters.

    With ``before`` (flows of the same models at initialisation) a left panel shows those and the
    right one ``flows``.
    """
    panels = ([("at initialisation", before)] if before else []) + [(title or "after training", flows)]
    fig, axes = _figure(len(panels), (1,) * len(panels))
    for ax, (name, group) in zip(axes, panels):
        for label, flow in group.items():
            for key, f in flow.layers.items():
                relative = _positive(f.norms) / f.norms[f.last] if f.norms[f.last] > 0 else _positive(f.norms)
                curve = label if len(flow.layers) == 1 else f"{label} {key}"
                ax.plot(np.arange(len(f.norms)), relative, label=curve)
        ax.set_yscale("log")
        ax.set_xlabel("time step t")
        ax.set_title(name, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("||dL/dh_t|| / ||dL/dh_T||")
    axes[-1].legend(fontsize=7)
    return _save(fig, path)
