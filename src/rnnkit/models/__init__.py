"""Models: ``Model(inputs, outputs)`` (any graph of layers), ``Sequential`` (a chain), and ``load_model``.

One training engine (``model.Model``) serves both; ``functional.Graph`` runs the graph forward
and backward; ``serialization`` writes and reads a model's architecture as JSON.
"""

from __future__ import annotations

from rnnkit.models.cloning import clone_model
from rnnkit.models.model import Model
from rnnkit.models.sequential import Sequential


def load_model(path, compile: bool = True):
    """Load a model written by ``model.save``; predictions are identical to the saved model's."""
    from rnnkit.saving import load_model as _load

    return _load(path, compile=compile)


__all__ = ["Model", "Sequential", "load_model", "clone_model"]
