"""Optimizers with Keras' names, update rules and defaults."""

from __future__ import annotations

from typing import Any

from rnnkit.optimizers.adagrad import Adagrad
from rnnkit.optimizers.adam import Adam
from rnnkit.optimizers.base import Optimizer, global_norm
from rnnkit.optimizers.rmsprop import RMSprop
from rnnkit.optimizers.sgd import SGD
from rnnkit.registry import resolve

_TABLE = {cls.name: cls for cls in (SGD, Adam, RMSprop, Adagrad)}


def get(identifier: Any) -> Optimizer:
    """Return an optimizer for a name (``"adam"``, with Keras defaults) or an instance."""
    return resolve("optimizer", identifier, _TABLE, Optimizer)


def serialize(optimizer: Optimizer) -> dict:
    return {"class_name": optimizer.name, "config": optimizer.get_config()}


def deserialize(config: dict) -> Optimizer:
    name = str(config.get("class_name", "")).lower()
    if name not in _TABLE:
        raise ValueError(f"Unknown optimizer {name!r}. Valid optimizer names are: {', '.join(sorted(_TABLE))}.")
    return _TABLE[name](**config.get("config", {}))


__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "get", "serialize", "deserialize",
           "global_norm"]
