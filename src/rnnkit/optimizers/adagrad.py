"""Adagrad with Keras' update rule and defaults: ``acc += g**2; p -= lr * g / sqrt(acc + epsilon)``."""

from __future__ import annotations

import numpy as np

from rnnkit.optimizers.base import Optimizer


class Adagrad(Optimizer):
    name = "adagrad"

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **clipping):
        super().__init__(learning_rate, **clipping)
        if initial_accumulator_value < 0:
            raise ValueError(f"initial_accumulator_value must be >= 0, got {initial_accumulator_value!r}.")
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def _init_slots(self, param):
        return {"accumulator": np.full_like(param, self.initial_accumulator_value)}

    def _delta(self, grad, slots):
        acc = slots["accumulator"]
        acc += grad * grad
        return self.learning_rate * grad / np.sqrt(acc + self.epsilon)
    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
