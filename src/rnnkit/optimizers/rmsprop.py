"""RMSprop with Keras' update rule and defaults.

``v = rho * v + (1 - rho) * g**2``; with ``centered`` also ``a = rho * a + (1 - rho) * g`` and
the denominator ``v - a**2``; the increment ``lr * g / sqrt(denominator + epsilon)`` is
subtracted directly or accumulated into a momentum term.
"""

from __future__ import annotations

import numpy as np

from rnnkit.optimizers.base import Optimizer, check_bool, check_range


class RMSprop(Optimizer):
    name = "rmsprop"

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **clipping):
        super().__init__(learning_rate, **clipping)
        # rho = 1 never updates the average; momentum = 1 never forgets; epsilon > 0 keeps g / sqrt(v) finite
        self.rho = check_range("rho", rho, 0.0, 1.0)
        self.momentum = check_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = check_range("epsilon", epsilon, 0.0, low_open=True)
        self.centered = check_bool("centered", centered)

    def _init_slots(self, param):
        slots = {"velocity": np.zeros_like(param)}
        if self.momentum:
            slots["momentum"] = np.zeros_like(param)
        if self.centered:
            slots["average_grad"] = np.zeros_like(param)
        return slots

    def _delta(self, grad, slots):
        v = slots["velocity"]
        v *= self.rho
        v += (1.0 - self.rho) * grad * grad
        if self.centered:
            a = slots["average_grad"]
            a *= self.rho
            a += (1.0 - self.rho) * grad
            denominator = v - a * a + self.epsilon
        else:
            denominator = v + self.epsilon
        increment = self.learning_rate * grad / np.sqrt(denominator)
        if not self.momentum:
            return increment
        m = slots["momentum"]
        m *= self.momentum
        m += increment
        return m

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
