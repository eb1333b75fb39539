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
        stateful, random = _targets(model)
        self._states = [(sub, sub.states) for sub in stateful]
        self._rngs = [(sub._rng, sub._rng.bit_generator.state) for sub in random]

    def restore(self) -> None:
        for layer, states in self._states:
            layer.states = states
        for rng, state in self._rngs:
            rng.bit_generator.state = state


def _targets(model: Any) -> tuple[list, list]:
    """The stateful layers and those that draw dropout masks, found once per model graph (a step
    takes a snapshot, so the search is kept on the model until its graph changes)."""
    found = getattr(model, "_snapshot_targets", None)
    if found is None:
        subs = [sub for layer in model.leaf_layers() for sub in (layer, *_wrapped(layer))]
        found = ([sub for sub in subs if getattr(sub, "stateful", False)], [sub for sub in subs if _draws_masks(sub)])
        if getattr(model, "_graph", None) is not None:
            model._snapshot_targets = found
    return found


def _wrapped(layer: Any) -> tuple:
    """The layers inside a wrapper (Bidirectional's two directions, TimeDistributed's layer, an RNN's
    cell and the cells of a stack), whose carried states or dropout generators a step may change."""
    if hasattr(layer, "forward_layer"):
        return (layer.forward_layer, layer.backward_layer)
    inner = getattr(layer, "layer", None) or getattr(layer, "cell", None)
    if inner is None:
        return ()
    return (inner, *_wrapped(inner), *getattr(inner, "cells", ()))
