"""Weight initializers with Keras' names, formulas and defaults.

An initializer is called as ``init(shape, dtype, rng)``; the layer that builds the weight
passes its own ``numpy.random.Generator``. An initializer given ``seed=`` uses that seed
instead, so ``GlorotUniform(seed=1)`` always draws the same matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.registry import resolve

_budget: list[allocation_budget] = []   # the budgets in force, innermost last


class allocation_budget:
    """``with allocation_budget(n):`` every initializer call inside may create at most ``n`` values in all.

    ``load_model`` uses it so that a hostile architecture in a file cannot make building the
    model allocate more weights than the file itself holds. ``left`` is what remains; ``refused_by``
    the initializer whose weight did not fit (None while none was refused), which lets the loader
    name the layer's weight (the error itself passes through layer calls that keep only its message).
    """

    def __init__(self, n: int):
        self.n = self.left = int(n)
        self.refused_by: Initializer | None = None

    def __enter__(self):
        _budget.append(self)
        return self

    def __exit__(self, *exc):
        _budget.pop()
        return False


def refused_initializer() -> Initializer | None:
    """The initializer whose weight the innermost ``allocation_budget`` refused last (None if none, or no budget)."""
    return _budget[-1].refused_by if _budget else None


class AllocationBudgetError(ValueError):
    """A weight larger than what is left of the ``allocation_budget``.

    The initializer does not know which layer it builds for: whoever builds the layers (the model
    loader) catches this error and names the layer. It is a ``ValueError`` so that callers that
    know only the argument errors still catch it, and it is made from its message alone, as the
    symbolic layer call re-raises errors.
    """


_placeholders: list[bool] = []   # non-empty while weights are about to be overwritten from a file


class placeholder_weights:
    """``with placeholder_weights():`` every initializer call inside returns zeros of the right shape and dtype.

    ``load_model`` builds the model inside it because every weight is then set from the file:
    drawing them first would be wasted work (an ``LSTM(768)``'s orthogonal recurrent kernel is a
    QR decomposition of a 3072 x 768 matrix). The allocation budget is still spent, and layers
    built outside the block are initialized as usual.
    """

    def __enter__(self):
        _placeholders.append(True)
        return self

    def __exit__(self, *exc):
        _placeholders.pop()
        return False


def _spend(shape: tuple, initializer: Initializer) -> None:
    if _budget:
        budget = _budget[-1]
        n = int(np.prod(shape, dtype=object))
        if n > budget.left:
            budget.refused_by = initializer
            raise AllocationBudgetError(
                f"the architecture needs a weight of shape {tuple(int(d) for d in shape)} ({n} values) but only "
                f"{budget.left} more are stored in the file: weights are missing or the layer sizes in its "
                "metadata were altered")
        budget.left -= n


def _fans(shape: tuple[int, ...]) -> tuple[float, float]:
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = float(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    name = "initializer"

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def __call__(self, shape, dtype, rng: np.random.Generator) -> np.ndarray:
        _spend(shape, self)
        if _placeholders:       # np.zeros is a lazily zeroed allocation: nothing is computed or written
            return np.zeros(tuple(int(s) for s in shape), dtype=dtype)
        if self.seed is not None:
            rng = np.random.default_rng(self.seed)
        # np.array, not np.ascontiguousarray, which turns a 0-d (scalar) weight into shape (1,)
        return np.array(self.sample(tuple(int(s) for s in shape), rng), dtype=dtype, order="C")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError  # pragma: no cover

    def get_config(self) -> dict:
        return {"seed": self.seed}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config()})"


class Zeros(Initializer):
    name = "zeros"

    def sample(self, shape, rng):
        return np.zeros(shape)


class Ones(Initializer):
    name = "ones"

    def sample(self, shape, rng):
        return np.ones(shape)


class RandomNormal(Initializer):
    name = "random_normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, size=shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    name = "random_uniform"

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, size=shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(Initializer):
    """Keras' family behind Glorot, He and LeCun: variance ``scale / n``.

    ``n`` is fan_in, fan_out or their mean (``mode``); ``distribution`` is
    ``"uniform"`` or ``"truncated_normal"`` (cut at two standard deviations).
    """

    name = "variance_scaling"
    scale, mode, distribution = 1.0, "fan_in", "truncated_normal"

    def sample(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            limit = np.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, size=shape)
        # 0.8796... is the std of a unit normal truncated to [-2, 2].
        stddev = np.sqrt(variance) / 0.87962566103423978
        out = rng.normal(0.0, 1.0, size=shape)
        bad = np.abs(out) > 2.0
        while bad.any():
            out[bad] = rng.normal(0.0, 1.0, size=int(bad.sum()))
            bad = np.abs(out) > 2.0
        return out * stddev


class GlorotUniform(VarianceScaling):
    name, scale, mode, distribution = "glorot_uniform", 1.0, "fan_avg", "uniform"


class GlorotNormal(VarianceScaling):
    name, scale, mode, distribution = "glorot_normal", 1.0, "fan_avg", "truncated_normal"


class HeUniform(VarianceScaling):
    name, scale, mode, distribution = "he_uniform", 2.0, "fan_in", "uniform"


class HeNormal(VarianceScaling):
    name, scale, mode, distribution = "he_normal", 2.0, "fan_in", "truncated_normal"


class LecunUniform(VarianceScaling):
    name, scale, mode, distribution = "lecun_uniform", 1.0, "fan_in", "uniform"


class LecunNormal(VarianceScaling):
    name, scale, mode, distribution = "lecun_normal", 1.0, "fan_in", "truncated_normal"


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal draw, as Keras."""

    name = "orthogonal"

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        super().__init__(seed)
        self.gain = gain

    def sample(self, shape, rng):
        if len(shape) < 2:
            raise ValueError(f"The orthogonal initializer needs a shape of rank >= 2, got {shape}.")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


_TABLE = {
    cls.name: cls
    for cls in (Zeros, Ones, RandomNormal, RandomUniform, GlorotUniform, GlorotNormal,
                HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal)
}


_TABLE.update({"uniform": RandomUniform, "normal": RandomNormal})   # Keras' short names


def get(identifier: Any) -> Initializer:
    """Return an initializer for a name (``"glorot_uniform"``), a saved config or an instance."""
    if isinstance(identifier, dict):
        return deserialize(identifier)
    return resolve("initializer", identifier, _TABLE, Initializer)


def serialize(init: Initializer) -> dict:
    return {"class_name": init.name, "config": init.get_config()}


def deserialize(config: Any) -> Initializer:
    if isinstance(config, dict):
        name = config.get("class_name")
        cls = _TABLE.get(str(name).lower()) if name is not None else None
        if cls is None:
            raise ValueError(f"Unknown initializer {name!r}. Valid names are: {', '.join(sorted(_TABLE))}.")
        return cls(**config.get("config", {}))
    return get(config)
