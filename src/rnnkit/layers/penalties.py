"""Keras' ``*_regularizer`` / ``*_constraint`` / ``activity_regularizer`` arguments of a layer.

A layer's constructor hands them here; they end up where the training engine reads them
(``layer.regularizers`` and ``layer.constraints``, keyed by the weight's name in ``params``,
and ``layer.activity_regularizer``), and ``config`` gives them back for ``get_config``, only
those that are set so that the configs of layers without them stay as they were.
"""

from __future__ import annotations

from typing import Any

from rnnkit import constraints, regularizers


def attach(layer: Any, weights: dict[str, tuple[Any, Any]], activity_regularizer: Any) -> None:
    """Resolve ``{weight name: (regularizer, constraint)}`` (names, configs or objects) onto ``layer``.

    Leave out the weights the layer will not have (``bias`` with ``use_bias=False``).
    """
    for weight, (regularizer, constraint) in weights.items():
        regularizer, constraint = regularizers.get(regularizer), constraints.get(constraint)
        if regularizer is not None:
            layer.regularizers[weight] = regularizer
        if constraint is not None:
            layer.constraints[weight] = constraint
    layer.activity_regularizer = regularizers.get(activity_regularizer)


def config(layer: Any, arguments: dict[str, str]) -> dict:
    """``{"kernel_regularizer": {...}, ...}`` for the penalties that are set.

    ``arguments`` maps a weight name to its argument prefix (``"recurrent_kernel": "recurrent"``).
    """
    out: dict[str, Any] = {}
    for weight, prefix in arguments.items():
        if weight in layer.regularizers:
            out[f"{prefix}_regularizer"] = regularizers.serialize(layer.regularizers[weight])
    if layer.activity_regularizer is not None:
        out["activity_regularizer"] = regularizers.serialize(layer.activity_regularizer)
    for weight, prefix in arguments.items():
        if weight in layer.constraints:
            out[f"{prefix}_constraint"] = constraints.serialize(layer.constraints[weight])
    return out
