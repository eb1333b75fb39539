"""Adagrad with Keras' update rule and defaults: ``acc += g**2; p -= lr * g / sqrt(acc + epsilon)``."""

from __future__ import annotations

import numpy as np

from rnnkit.optimizers.base import Optimizer, check_range


class Adagrad(Optimizer):
    name = "adagrad"

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **clipping):
        super().__init__(learning_rate, **clipping)
        # epsilon > 0: with a zero accumulator (initial 0, a weight whose gradient is 0) the step would be 0/0
        self.initial_accumulator_value = check_range("initial_accumulator_value", initial_accumulator_value, 0.0)
        self.epsilon = check_range("epsilon", epsilon, 0.0, low_open=True)

    def _init_slots(self, param):
        return {"accumulator": np.full_like(param, self.initial_accumulator_value)}

    def _delta(self, grad, slots):
        acc = slots["accumulator"]
        acc += grad * grad
        return self.learning_rate * grad / np.sqrt(acc + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
