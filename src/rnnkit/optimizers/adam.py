"""Adam with Keras' update rule and defaults.

Keras puts epsilon *outside* the bias correction of the second moment::

    m   = m + (g - m) * (1 - beta_1)
    v   = v + (g**2 - v) * (1 - beta_2)
    a_t = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
    p   = p - a_t * m / (sqrt(v) + epsilon)

PyTorch's ``torch.optim.Adam`` computes ``lr / (1 - beta_1**t) * m / (sqrt(v / (1 - beta_2**t)) + eps)``,
which is the same update when its ``eps`` equals ``epsilon / sqrt(1 - beta_2**t)`` at step t.
"""

from __future__ import annotations

import math

import numpy as np

from rnnkit.optimizers.base import Optimizer, check_bool, check_range


class Adam(Optimizer):
    name = "adam"

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **clipping):
        super().__init__(learning_rate, **clipping)
        # beta = 1 would divide by 1 - beta**t = 0; epsilon > 0 keeps m / sqrt(v) finite where v is 0
        self.beta_1 = check_range("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = check_range("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = check_range("epsilon", epsilon, 0.0, low_open=True)
        self.amsgrad = check_bool("amsgrad", amsgrad)

    def _init_slots(self, param):
        slots = {"m": np.zeros_like(param), "v": np.zeros_like(param)}
        if self.amsgrad:
            slots["v_hat"] = np.zeros_like(param)
        return slots

    def _delta(self, grad, slots):
        t = self.iterations
        alpha = self.learning_rate * math.sqrt(1.0 - self.beta_2 ** t) / (1.0 - self.beta_1 ** t)
        m, v = slots["m"], slots["v"]
        m += (grad - m) * (1.0 - self.beta_1)
        v += (grad * grad - v) * (1.0 - self.beta_2)
        if self.amsgrad:
            np.maximum(slots["v_hat"], v, out=slots["v_hat"])
            v = slots["v_hat"]
        denom = np.sqrt(v)
        denom += self.epsilon
        return (alpha * m) / denom

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}
