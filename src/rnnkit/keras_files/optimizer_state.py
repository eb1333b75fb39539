"""An optimizer's state in Keras 3's layout (``optimizer/vars/0, 1, ...`` of ``model.weights.h5``) and back.

Keras 3 lists ``iterations``, ``learning_rate``, then its slot variables in blocks: one block per
``add_optimizer_variables`` call in the optimizer's ``build``, and within a block, for each trainable
variable in order, one slot per name (``keras/src/optimizers/*.py``):

* Adam: (momentum, velocity) interleaved, then velocity_hat if ``amsgrad``;
* SGD: momentum, only when ``momentum > 0``;
* RMSprop: velocity; then momentum if ``momentum > 0``; then average gradient if ``centered``;
* Adagrad: accumulator.

rnnkit keeps the same quantities with the same update rules, named by ``_init_slots``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def slot_blocks(optimizer: Any) -> list[tuple[str, ...]]:
    """The blocks of rnnkit slot names in Keras' order, for this optimizer's settings."""
    name = optimizer.name
    if name == "adam":
        return [("m", "v")] + ([("v_hat",)] if optimizer.amsgrad else [])
    if name == "sgd":
        return [("momentum",)] if optimizer.momentum else []
    if name == "rmsprop":
        return ([("velocity",)] + ([("momentum",)] if optimizer.momentum else [])
                + ([("average_grad",)] if optimizer.centered else []))
    if name == "adagrad":
        return [("accumulator",)]
    raise ValueError(f"no Keras layout for optimizer {name!r}")


def keras_variables(optimizer: Any, params: Sequence[np.ndarray], dtype: str) -> list[np.ndarray]:
    """``[iterations, learning_rate, slots...]`` as Keras 3 stores them (fresh slots when never used)."""
    slots = optimizer._slots if optimizer._slots else [optimizer._init_slots(p) for p in params]
    out = [np.asarray(optimizer.iterations, dtype=np.int64), np.asarray(optimizer.learning_rate, dtype=np.float32)]
    for block in slot_blocks(optimizer):
        for s in slots:
            out.extend(np.asarray(s[key], dtype=dtype) for key in block)
    return out


def rnnkit_state(optimizer: Any, params: Sequence[np.ndarray], values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """``optimizer.set_state``'s input from Keras' variables; ValueError when they do not fit."""
    blocks = slot_blocks(optimizer)
    expected = 2 + sum(len(b) for b in blocks) * len(params)
    if len(values) != expected:
        raise ValueError(f"the optimizer has {len(values)} variables in the file; {optimizer.name} with these "
                         f"settings needs {expected} for {len(params)} trainable weights")
    step = np.asarray(values[0])
    if step.size != 1 or step.dtype.kind not in "iuf" or not np.isfinite(step).all() or float(step.reshape(-1)[0]) < 0:
        raise ValueError("the optimizer's step count is not one number >= 0")
    state = {"iterations": np.array([int(step.reshape(-1)[0])], dtype=np.int64)}
    k = 2
    for block in blocks:
        for i in range(len(params)):
            for key in block:
                state[f"{i}/{key}"] = np.asarray(values[k])
                k += 1
    return state
