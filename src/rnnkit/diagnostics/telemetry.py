"""Training telemetry: the global gradient norm before clipping, and whether clipping acted.

``fit`` calls ``pre_clip_norm`` once per step: one dot product per gradient array, the same
work the optimizer's ``global_clipnorm`` does, so it costs little next to BPTT. A NaN or an
infinity anywhere in the gradients makes a sum of squares non-finite, which is also how
``fit`` notices them.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

#: the keys rnnkit adds to Keras' per-epoch logs (and History)
TELEMETRY_KEYS = ("grad_norm", "grad_norm_max", "clip_fraction", "nonfinite_steps")


def pre_clip_norm(grads: Sequence[np.ndarray], optimizer: Any) -> tuple[float, bool, bool]:
    """``(||g||_2 over all gradients, whether the optimizer's clipping will change them, whether they are safe)``.

    Clipping: ``clipnorm``, some array's own norm is above it; ``global_clipnorm``, the global norm
    is; ``clipvalue``, some element lies outside ``[-clipvalue, clipvalue]``.

    Safe means every array's sum of squares is finite in the array's own dtype: no NaN, no
    infinity, and no element so large that the optimizer squaring it (Adam, RMSprop, Adagrad)
    would overflow and turn the weights into NaN. The norm itself is computed without overflow.
    """
    squares = [np.vdot(g, g) for g in grads]      # one dot per array, in the array's own dtype
    try:
        total = math.fsum(squares)
    except OverflowError:                         # float64 squares that only overflow when added
        total = math.inf
    safe = math.isfinite(total)
    norm = math.sqrt(total)
    if not safe and all(np.isfinite(g).all() for g in grads):
        norm = _norm_without_overflow(grads)      # finite but huge (e.g. float32 above 1.8e19)
    clipped = False
    if optimizer.clipnorm is not None:
        clipped = any(math.sqrt(s) > optimizer.clipnorm for s in squares)
    elif optimizer.global_clipnorm is not None:
        clipped = norm > optimizer.global_clipnorm
    elif optimizer.clipvalue is not None:
        clipped = any(g.size and max(float(g.max()), -float(g.min())) > optimizer.clipvalue for g in grads)
    return norm, clipped, safe


def _norm_without_overflow(grads: Sequence[np.ndarray]) -> float:
    scale = max(float(np.abs(g).max(initial=0.0)) for g in grads)
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    return scale * math.sqrt(sum(float(np.sum((g.astype(np.float64) / scale) ** 2)) for g in grads))


def clipping_on(optimizer: Any) -> bool:
    return any(getattr(optimizer, k, None) is not None for k in ("clipnorm", "global_clipnorm", "clipvalue"))


class GradientNorms:
    """The per-step norms of one epoch, reduced to the values ``History`` records (O(1) per step).

    ``logs()`` gives ``grad_norm`` (mean over the steps), ``grad_norm_max`` and, when the optimizer
    clips, ``clip_fraction`` (the fraction of steps where clipping changed the gradient). A NaN
    step makes the mean and the max NaN, as it should be recorded.
    """

    def __init__(self, clipping: bool):
        self.clipping = clipping
        self.steps = 0
        self.total = 0.0
        self.largest = 0.0
        self.clipped = 0

    def add(self, norm: float, clipped: bool) -> None:
        self.steps += 1
        self.total += norm
        if math.isnan(norm) or math.isnan(self.largest):
            self.largest = math.nan
        elif norm > self.largest:
            self.largest = norm
        self.clipped += bool(clipped)

    def logs(self) -> dict[str, float]:
        if not self.steps:
            return {}
        logs = {"grad_norm": self.total / self.steps, "grad_norm_max": self.largest}
        if self.clipping:
            logs["clip_fraction"] = self.clipped / self.steps
        return logs
