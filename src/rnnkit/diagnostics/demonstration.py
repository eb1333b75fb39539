"""``rnnkit diagnose``: watch the gradient vanish in a SimpleRNN and the gates of LSTM and GRU keep it.

SimpleRNN, LSTM and GRU (Keras defaults) are trained briefly on the adding problem, whose
answer depends on a step far in the past; before and after training, ``gradient_flow``
measures how much gradient reaches every step, and the plots are written as PNG files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rnnkit.diagnostics.adding_problem import adding_problem
from rnnkit.diagnostics.gradient_flow import GradientFlow, gradient_flow


@dataclass
class DiagnoseConfig:
    steps: int = 100            # T, the sequence length
    seed: int = 0
    out_dir: str = "."
    units: int = 32
    samples: int = 1024         # training sequences
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 0.01
    cells: tuple = ("SimpleRNN", "LSTM", "GRU")


@dataclass
class CellResult:
    before: GradientFlow
    after: GradientFlow
    loss: float
    seconds: float
    plot: Path | None = None


@dataclass
class DiagnoseResult:
    cells: dict[str, CellResult] = field(default_factory=dict)
    comparison: Path | None = None


def run_diagnose(cfg: DiagnoseConfig, out: Callable[[str], object] = print, plots: bool = True) -> DiagnoseResult:
    """Train each cell briefly on the adding problem and report its gradient flow before and after."""
    from rnnkit import layers, optimizers
    from rnnkit.models import Sequential

    for cell in cfg.cells:
        if cell not in ("SimpleRNN", "LSTM", "GRU"):
            raise ValueError(f"Unknown cell {cell!r}; choose from SimpleRNN, LSTM, GRU.")
    out_dir = Path(cfg.out_dir)
    x, y = adding_problem(cfg.samples, cfg.steps, seed=cfg.seed)
    x_eval, y_eval = adding_problem(64, cfg.steps, seed=cfg.seed + 1)
    out(f"The adding problem, T={cfg.steps}: the target is the sum of two marked values, one in each half "
        f"of the sequence, so the loss on the last step depends on step t < {cfg.steps // 2}. "
        "Predicting the mean scores a loss (MSE) of about 0.167.")
    result = DiagnoseResult()
    for cell in cfg.cells:
        model = Sequential([layers.Input(shape=(cfg.steps, 2)), getattr(layers, cell)(cfg.units),
                            layers.Dense(1)], seed=cfg.seed)
        model.compile(optimizer=optimizers.Adam(cfg.learning_rate, global_clipnorm=1.0), loss="mse")
        before = gradient_flow(model, x_eval, y_eval)
        start = time.perf_counter()
        history = model.fit(x, y, epochs=cfg.epochs, batch_size=cfg.batch_size, verbose=0)
        seconds = time.perf_counter() - start
        after = gradient_flow(model, x_eval, y_eval)
        steps = len(history.grad_norms)
        res = CellResult(before=before, after=after, loss=after.loss, seconds=seconds)
        out("")
        out(f"{cell}({cfg.units}), trained {cfg.epochs} epochs ({steps} steps of Adam) in {seconds:.1f} s; "
            f"loss {before.loss:.3f} -> {after.loss:.3f}")
        out(f"  at initialisation: {_headline(before)}")
        details = next(iter(after.layers.values())).describe().splitlines()
        out(f"  after training:    {_headline(after)}")
        out("\n".join(f"    {line.strip()}" for line in details[1:]))
        if plots:
            res.plot = after.plot(out_dir / f"{model.layers[0].name}.png",
                                  title=f"{cell} on the adding problem, after training")
            out(f"  wrote {res.plot}")
        result.cells[cell] = res
    if plots and result.cells:
        from rnnkit.diagnostics.plot import plot_comparison

        result.comparison = plot_comparison({c: r.after for c, r in result.cells.items()},
                                            out_dir / "gradient_flow.png",
                                            before={c: r.before for c, r in result.cells.items()})
        out(f"\nwrote {result.comparison} (all cells, at initialisation and after training)")
    return result


def _headline(flow: GradientFlow) -> str:
    """The first line of the only layer's verdict, without the layer name."""
    line = next(iter(flow.layers.values())).describe().splitlines()[0]
    return line.split(": ", 1)[1]
