"""The optimizer base class: gradient clipping, step counting and per-parameter state.

Optimizers take the list of parameter arrays and the list of their gradients, keep
their state by position in that list, and update the parameters in place.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np


def _check_positive(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}: {value!r}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")


def check_range(name: str, value: Any, low: float, high: float | None = None, high_open: bool = True,
                low_open: bool = False) -> float:
    """``value`` as a float, refused unless it is a finite number in the range (the message names the range).

    ``high=None`` means no upper bound: ``[low, inf)`` (or ``(low, inf)`` with ``low_open``). Bools,
    strings and arrays are a TypeError; NaN, infinities and numbers outside the range a ValueError.
    """
    if high is None:
        wanted = f"a finite number {'>' if low_open else '>='} {low:g}"
    else:
        wanted = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be {wanted}, got {type(value).__name__}: {value!r}.")
    x = float(value)
    below = x <= low if low_open else x < low
    above = high is not None and (x >= high if high_open else x > high)
    if not math.isfinite(x) or below or above:
        raise ValueError(f"{name} must be {wanted}, got {value!r}.")
    return x


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (NumPy's included); anything else is a TypeError naming the argument."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}: {value!r}.")
    return bool(value)


def all_finite(arrays: Iterable[np.ndarray]) -> bool:
    """Whether no array holds a NaN or an infinity: one dot product per array first (a NaN or an infinity
    makes its sum of squares so), then the exact test only where a sum is not finite (it may just overflow)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(math.isfinite(float(np.vdot(a, a))) or np.isfinite(a).all() for a in arrays)


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
        learning_rate = check_range("learning_rate", learning_rate, 0.0)   # 0 is allowed, as in Keras: a frozen run
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

    # -- undoing a step ---------------------------------------------------------
    def backup(self) -> tuple:
        """A copy of the step count and every slot, which ``restore`` puts back (``fit`` undoes a step
        whose update made a weight non-finite). One copy per flat slot array once ``apply`` has run."""
        if self._slots is None:
            return self.iterations, None, None
        if self._flat_slots is not None:
            return self.iterations, {k: v.copy() for k, v in self._flat_slots.items()}, None
        return self.iterations, None, [{k: v.copy() for k, v in s.items()} for s in self._slots]

    def restore(self, backup: tuple) -> None:
        """Put back what ``backup`` copied, in place (the per-parameter slots stay views of the flat ones)."""
        iterations, flat, per_param = backup
        self.iterations = iterations
        if flat is None and per_param is None:       # taken before the first step: no slots yet
            self._slots, self._flat_slots = None, None
        elif flat is not None:
            for k, v in flat.items():
                self._flat_slots[k][...] = v
        else:
            for slots, saved in zip(self._slots, per_param):
                for k, v in saved.items():
                    slots[k][...] = v

    def nonfinite_slot(self) -> tuple[int, str, np.ndarray] | None:
        """``(parameter position, slot name, the live slot array)`` of the first slot holding a NaN or an
        infinity, or None."""
        if self._slots is None:
            return None
        arrays = self._flat_slots.values() if self._flat_slots is not None else \
            [v for slots in self._slots for v in slots.values()]
        if all_finite(arrays):
            return None
        for i, slots in enumerate(self._slots):
            for k, v in slots.items():
                if not np.isfinite(v).all():
                    return i, k, v
        return None

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
        """Restore what ``get_state`` returned, for the given parameters.

        Everything is checked before anything changes: the step count is one integer >= 0, and every
        slot has its parameter's shape and is finite in its dtype (a slot of 1e39 in a float32 model
        would be inf, and the first step would turn the weights into NaN).
        """
        step = np.asarray(state.get("iterations"))
        if step.dtype.kind not in "iu" or step.size != 1 or int(step.reshape(-1)[0]) < 0:
            raise ValueError(f"Optimizer state needs 'iterations', one integer >= 0, got {state.get('iterations')!r}.")
        slots = [self._init_slots(p) for p in params]
        for i, s in enumerate(slots):
            for key, value in s.items():
                saved = state.get(f"{i}/{key}")
                if not isinstance(saved, np.ndarray) or saved.shape != value.shape:
                    raise ValueError(f"Optimizer state for parameter {i} ({key}) is missing or has the wrong shape: "
                                     f"expected {value.shape}, got "
                                     f"{saved.shape if isinstance(saved, np.ndarray) else type(saved).__name__}.")
                if saved.dtype.kind not in "biuf":
                    raise ValueError(f"Optimizer state for parameter {i} ({key}) must be numeric, got dtype "
                                     f"{saved.dtype}.")
                with np.errstate(over="ignore", invalid="ignore"):
                    value[...] = saved
                if not np.isfinite(value).all():
                    raise ValueError(f"Optimizer state for parameter {i} ({key}) holds values that are not finite "
                                     f"in {value.dtype}.")
        self._slots = slots
        self._flat_slots = None
        self.iterations = int(step.reshape(-1)[0])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if v is not None)
        return f"{type(self).__name__}({args})"
