"""The optimizer base class: gradient clipping, step counting and per-parameter state.

Optimizers take the list of parameter arrays and the list of their gradients, keep
their state by position in that list, and update the parameters in place.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _check_positive(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}: {value!r}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")


def global_norm(grads: Sequence[np.ndarray]) -> float:
    """The L2 norm of all gradients taken together."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads))


class Optimizer:
    """Base class. Subclasses define ``_init_slots`` and ``_update``.

    Args:
        learning_rate: step size.
        clipnorm: clip each gradient to this L2 norm (Keras ``clipnorm``).
        clipvalue: clip each gradient element to ``[-clipvalue, clipvalue]``.
        global_clipnorm: scale all gradients together so that their joint norm is at most this.
    """

    name = "optimizer"

    def __init__(self, learning_rate: float, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None):
        _check_positive("learning_rate", learning_rate)
        for arg, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                           ("global_clipnorm", global_clipnorm)):
            _check_positive(arg, value, allow_none=True)
        given = [n for n, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                ("global_clipnorm", global_clipnorm)) if v is not None]
        if len(given) > 1:
            raise ValueError(
                f"Only one of clipnorm, clipvalue and global_clipnorm can be set; got {', '.join(given)}."
            )
        self.learning_rate = float(learning_rate)
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.iterations = 0
        self._slots: list[dict[str, np.ndarray]] | None = None
        self._flat_slots: dict[str, np.ndarray] | None = None

    # -- clipping ---------------------------------------------------------------
    def clip_gradients(self, grads: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Return the gradients after this optimizer's clipping (the inputs are not changed)."""
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = math.sqrt(float(np.vdot(g, g)))
                out.append(g * (self.clipnorm / norm) if norm > self.clipnorm else g)
            return out
        if self.global_clipnorm is not None:
            norm = global_norm(grads)
            if norm > self.global_clipnorm:
                scale = self.global_clipnorm / norm
                return [g * scale for g in grads]
            return list(grads)
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return list(grads)

    # -- the step ---------------------------------------------------------------
    def apply(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Clip ``grads`` and update every array in ``params`` in place.

        When all parameters share a dtype, the update runs once over all of them: the slots
        of every parameter are views into one flat array per slot, the clipped gradients are
        concatenated, and the optimizer's arithmetic is a handful of calls however many
        weight arrays the model has (small models are dominated by that per-call overhead).
        """
        if len(params) != len(grads):
            raise ValueError(f"Got {len(params)} parameters but {len(grads)} gradients.")
        if self._slots is None:
            self._slots = [self._init_slots(p) for p in params]
        elif len(self._slots) != len(params):
            raise ValueError(
                f"This optimizer was used with {len(self._slots)} parameters and is now given "
                f"{len(params)}; use a new optimizer for a different model."
            )
        grads = self.clip_gradients(grads)
        self.iterations += 1
        dtype = params[0].dtype
        if len(params) == 1 or any(p.dtype != dtype for p in params):
            for p, g, slots in zip(params, grads, self._slots):
                p -= self._delta(g.astype(p.dtype, copy=False), slots)
            return
        if self._flat_slots is None:
            self._flat_slots = self._flatten_slots(params)
        flat_grad = np.concatenate([np.ravel(g) for g in grads]).astype(dtype, copy=False)
        delta = self._delta(flat_grad, self._flat_slots)     # (sum of sizes,)
        offset = 0
        for p in params:
            p -= delta[offset:offset + p.size].reshape(p.shape)
            offset += p.size

    def _flatten_slots(self, params: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """One flat array per slot name; each parameter's slot becomes a view into it."""
        flat = {key: np.concatenate([np.ravel(s[key]) for s in self._slots]).astype(params[0].dtype)
                for key in self._slots[0]}
        offset = 0
        for p, slots in zip(params, self._slots):
            for key in slots:
                slots[key] = flat[key][offset:offset + p.size].reshape(p.shape)
            offset += p.size
        return flat

    def _init_slots(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def _delta(self, grad: np.ndarray, slots: dict[str, np.ndarray]) -> np.ndarray:
        """Update ``slots`` in place for this step and return what to subtract from the parameter."""
        raise NotImplementedError  # pragma: no cover

    # -- state and config -------------------------------------------------------
    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    def get_state(self) -> dict[str, np.ndarray]:
        """The optimizer's state as named arrays (for saving): slots by position and the step."""
        state = {"iterations": np.array([self.iterations], dtype=np.int64)}
        for i, slots in enumerate(self._slots or []):
            for key, value in slots.items():
                state[f"{i}/{key}"] = value
        return state

    def set_state(self, state: dict[str, np.ndarray], params: Sequence[np.ndarray]) -> None:
        """Restore what ``get_state`` returned, for the given parameters."""
        slots = [self._init_slots(p) for p in params]
        for i, s in enumerate(slots):
            for key, value in s.items():
                saved = state.get(f"{i}/{key}")
                if saved is None or saved.shape != value.shape:
                    raise ValueError(f"Optimizer state for parameter {i} ({key}) is missing or has the wrong shape.")
                value[...] = saved
        self._slots = slots
        self._flat_slots = None
        self.iterations = int(np.asarray(state["iterations"]).reshape(-1)[0])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"
