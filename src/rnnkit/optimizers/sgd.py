"""Stochastic gradient descent with optional (Nesterov) momentum, Keras' update rule."""

from __future__ import annotations

import numpy as np

from rnnkit.optimizers.base import Optimizer, check_bool, check_range


class SGD(Optimizer):
    """``m = momentum * m - lr * g``; ``p += m`` (or ``p += momentum * m - lr * g`` with Nesterov).

    Without momentum this is ``p -= lr * g``.
    """

    name = "sgd"

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 **clipping):
        super().__init__(learning_rate, **clipping)
        self.momentum = check_range("momentum", momentum, 0.0, 1.0)   # 1 would never forget a step
        self.nesterov = check_bool("nesterov", nesterov)

    def _init_slots(self, param):
        return {"momentum": np.zeros_like(param)} if self.momentum else {}

    def _delta(self, grad, slots):
        lr = self.learning_rate
        if not self.momentum:
            return lr * grad
        m = slots["momentum"]
        m *= self.momentum
        m -= lr * grad                                  # m = momentum * m - lr * g
        if self.nesterov:
            return lr * grad - self.momentum * m        # p += momentum * m - lr * g
        return -m                                       # p += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
