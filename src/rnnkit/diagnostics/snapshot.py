"""``StepSnapshot``: what a training step changes besides the weights and the optimizer.

That is the state carried by ``stateful`` recurrent layers and the generators that draw
dropout masks. Taking it costs a few attribute reads (nothing is copied: a forward call
replaces ``layer.states`` with new arrays instead of writing into them), so ``fit`` takes
one before every step; restoring it lets a failed step be run again exactly, or undone.
"""

from __future__ import annotations

from typing import Any


def _draws_masks(layer: Any) -> bool:
    if getattr(layer, "_rng", None) is None:
        return False
    return bool(getattr(layer, "rate", 0.0) or getattr(layer, "dropout", 0.0)
                or getattr(layer, "recurrent_dropout", 0.0))


class StepSnapshot:
    """Carried states and dropout-generator states of ``model``, taken now, restorable later."""

    __slots__ = ("_states", "_rngs")

    def __init__(self, model: Any):
        self._states: list[tuple[Any, Any]] = []
        self._rngs: list[tuple[Any, dict]] = []
        for layer in model.leaf_layers():
            for sub in (layer, *_wrapped(layer)):
                if getattr(sub, "stateful", False):
                    self._states.append((sub, sub.states))
                if _draws_masks(sub):
                    self._rngs.append((sub._rng, sub._rng.bit_generator.state))

    def restore(self) -> None:
        for layer, states in self._states:
            layer.states = states
        for rng, state in self._rngs:
            rng.bit_generator.state = state


def _wrapped(layer: Any) -> tuple:
    """The layers inside a wrapper (Bidirectional's two directions, TimeDistributed's layer)."""
    if hasattr(layer, "forward_layer"):
        return (layer.forward_layer, layer.backward_layer)
    inner = getattr(layer, "layer", None)
    return () if inner is None else (inner,)
