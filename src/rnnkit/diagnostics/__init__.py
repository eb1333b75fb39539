"""See backpropagation through time: gradient flow, finite-difference checks, and where a NaN came from.

* ``gradient_flow(model, x, y)``: how much gradient reaches every time step of every recurrent
  layer, why (spectral radius, Jacobian norms, gate saturation), a plain verdict and a plot;
* ``check_gradients(model, x, y)``: the float64 central finite-difference check of the backward pass;
* ``find_nonfinite_origin(model, x, y)``: the first layer, step and quantity that is NaN or infinite
  (``fit`` runs it by itself when training goes non-finite);
* ``adding_problem(n, steps)``: a task with a long-range dependency, used by ``rnnkit diagnose``.
"""

from __future__ import annotations

from rnnkit.diagnostics.adding_problem import adding_problem
from rnnkit.diagnostics.gradcheck import check_gradients
from rnnkit.diagnostics.gradient_flow import GradientFlow, LayerFlow, gradient_flow
from rnnkit.diagnostics.nan_origin import NonFiniteReport, find_nonfinite_origin
from rnnkit.diagnostics.plot import plot_comparison

__all__ = ["gradient_flow", "GradientFlow", "LayerFlow", "check_gradients", "find_nonfinite_origin",
           "NonFiniteReport", "adding_problem", "plot_comparison"]
