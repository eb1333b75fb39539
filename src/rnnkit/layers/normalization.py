"""``LayerNormalization`` and ``BatchNormalization`` with Keras 3's arguments, weights and semantics.

Both compute, with statistics ``mu`` and ``var`` taken over some axes of ``x``::

    x_hat = (x - mu) * r,   r = 1 / sqrt(var + epsilon)
    y     = gamma * x_hat + beta

LayerNormalization takes the statistics of each example over ``axis`` (the features);
BatchNormalization takes them over every axis *but* ``axis`` (the batch and the time steps)
during training, and uses its moving averages of them in inference.

Backward through the statistics. Let the moments be weighted means over the reduced axes,
``mu = sum(w x) / n`` and ``var = sum(w (x - mu)^2) / n``, with ``w`` 1 or a 0/1 mask and
``n = sum(w)`` (plus Keras' 1e-7 when masked). With ``g = dL/dx_hat = dy * gamma``::

    dL/dx = r * (g - w / n * (sum(g) + x_hat * sum(g x_hat) - r * sum(g x_hat) * shift / n))

where ``shift = sum(w (x - mu)) = mu (n - sum(w))`` is zero unless ``n`` carries Keras' 1e-7.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import initializers
from rnnkit.layers.base import Layer, is_shape_list

#: Keras' ``backend.epsilon()``, added to the count of unmasked values so a fully masked batch gives 0, not NaN
MASKED_COUNT_EPSILON = 1e-7


def _check_axis_int(axis: Any, what: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{what} must be an integer axis, got {type(axis).__name__}: {axis!r}.")
    return int(axis)


def _check_epsilon(epsilon: Any) -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating, np.integer)) \
            or not np.isfinite(epsilon) or epsilon <= 0:
        raise ValueError(f"epsilon must be a positive number (it keeps 1/sqrt(var + epsilon) finite), "
                         f"got {epsilon!r}.")
    return float(epsilon)


def _resolve_axes(layer: Layer, axes: list[int], input_shape: tuple) -> tuple[int, ...]:
    """``axes`` (of the batched input, negatives allowed) as sorted positive axes; errors name the layer and shape."""
    rank = len(input_shape) + 1
    shape = (None, *input_shape)
    where = f"Layer '{layer.name}' ({type(layer).__name__})"
    resolved = []
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"{where}: axis {a} is out of range for inputs of shape {shape} (rank {rank}); "
                             f"use an axis in 1..{rank - 1} or -1..-{rank - 1}.")
        a = a % rank
        if a == 0:
            raise ValueError(f"{where}: axis {layer.axis!r} is the batch axis of inputs of shape {shape}; "
                             "normalise a feature axis instead (e.g. axis=-1).")
        if shape[a] is None:
            raise ValueError(f"{where} needs the size of the normalised axis {a} to be known, "
                             f"got inputs of shape {shape}.")
        resolved.append(a)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"{where}: axis {layer.axis!r} names the same axis twice for inputs of shape {shape}.")
    return tuple(sorted(resolved))


def _broadcast_shape(ndim: int, axes: tuple[int, ...], sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape that lines weights of shape ``sizes`` up with ``axes`` of an ``ndim``-rank input."""
    shape = [1] * ndim
    for a, s in zip(axes, sizes):
        shape[a] = s
    return tuple(shape)


def _backward_through_moments(g: np.ndarray, x_hat: np.ndarray, r: np.ndarray, axes: tuple[int, ...],
                              n: Any, w: Any = 1.0, shift: Any = 0.0) -> np.ndarray:
    """dL/dx for ``x_hat = (x - mu) * r`` with ``mu``, ``var`` the weighted moments over ``axes`` (module docstring)."""
    s0 = g.sum(axis=axes, keepdims=True)                   # sum(g), reduced axes kept as 1
    s1 = (g * x_hat).sum(axis=axes, keepdims=True)         # sum(g x_hat)
    return r * (g - w / n * (s0 + x_hat * s1 - r * s1 * shift / n))


class _Normalization(Layer):
    """What both layers share: settings, weights ``gamma`` and ``beta``, the affine step and its gradients."""

    supports_masking = True

    def __init__(self, axis: Any, epsilon: float, center: bool, scale: bool, beta_initializer: Any,
                 gamma_initializer: Any, name: str | None, input_shape: Any, seed: int | None):
        super().__init__(name=name, input_shape=input_shape, seed=seed)
        self.axis = axis
        self.epsilon = _check_epsilon(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self._axes: tuple[int, ...] = ()          # the normalised axes of the batched input, set in build
        self._x_hat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None

    @property
    def _axis_list(self) -> list[int]:
        return list(self.axis) if isinstance(self.axis, list) else [self.axis]

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        _resolve_axes(self, self._axis_list, input_shape)

    def make_params(self, input_shape, dtype, rng):
        self._axes = _resolve_axes(self, self._axis_list, input_shape)
        shape = tuple(input_shape[a - 1] for a in self._axes)
        params = {}
        if self.scale:
            params["gamma"] = self.gamma_initializer(shape, dtype, rng)
        if self.center:
            params["beta"] = self.beta_initializer(shape, dtype, rng)
        return params

    def accepts_input_shape(self, input_shape):
        if is_shape_list(input_shape) or len(input_shape) != len(self.input_shape):
            return False
        return all(input_shape[a - 1] in (None, self.input_shape[a - 1]) for a in self._axes)

    def _affine(self, x_hat: np.ndarray) -> np.ndarray:
        """``gamma * x_hat + beta`` with the weights lined up with the normalised axes."""
        shape = _broadcast_shape(x_hat.ndim, self._axes, tuple(x_hat.shape[a] for a in self._axes))
        y = x_hat * self.params["gamma"].reshape(shape) if self.scale else x_hat.copy()
        if self.center:
            y += self.params["beta"].reshape(shape)
        return y

    def _affine_backward(self, dy: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
        """Set the gradients of ``gamma`` and ``beta``; return ``g = dL/dx_hat``."""
        others = tuple(a for a in range(dy.ndim) if a not in self._axes)
        wshape = tuple(dy.shape[a] for a in self._axes)
        if self.center:
            self.grads["beta"] = dy.sum(axis=others).reshape(wshape)
        if not self.scale:
            return dy
        self.grads["gamma"] = (dy * x_hat).sum(axis=others).reshape(wshape)
        return dy * self.params["gamma"].reshape(_broadcast_shape(dy.ndim, self._axes, wshape))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer)}


class LayerNormalization(_Normalization):
    """Normalise each example over ``axis`` (an int or a list of ints), as Keras 3.

    Shapes: ``x (B, ..., D)``; ``gamma`` and ``beta`` have the sizes of the normalised axes
    (``(D,)`` for ``axis=-1``, ``(T, D)`` for ``axis=[1, 2]``); ``y`` as ``x``. The mask, if
    any, passes through unchanged.
    """

    call_state = ("_x_hat", "_inv_std")

    def __init__(self, axis: int | list[int] = -1, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 name: str | None = None, input_shape: Any = None, seed: int | None = None):
        if isinstance(axis, (list, tuple)):
            if not axis:
                raise ValueError("LayerNormalization axis must name at least one axis, got an empty list.")
            axis = [_check_axis_int(a, "Each entry of LayerNormalization's axis") for a in axis]
        else:
            axis = _check_axis_int(axis, "LayerNormalization axis (an int or a list of ints)")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                         name, input_shape, seed)

    def forward(self, x, training=False):
        axes = self._axes
        mu = x.mean(axis=axes, keepdims=True)                  # (B, 1, ..) per example
        d = x - mu                                             # (B, ..., D)
        var = (d * d).mean(axis=axes, keepdims=True)           # biased, as Keras
        self._inv_std = 1.0 / np.sqrt(var + self.epsilon)      # (B, 1, ..)
        self._x_hat = d * self._inv_std                        # (B, ..., D)
        return self._affine(self._x_hat)

    def backward(self, dy):
        g = self._affine_backward(dy, self._x_hat)
        if not self.need_input_grad:
            return None
        n = int(np.prod([dy.shape[a] for a in self._axes]))
        return _backward_through_moments(g, self._x_hat, self._inv_std, self._axes, n)


class BatchNormalization(_Normalization):
    """Normalise each feature on ``axis`` over the batch (and time), as Keras 3.

    Shapes: ``x (B, ..., D)`` with ``D`` the size of ``axis``; ``gamma``, ``beta``,
    ``moving_mean`` and ``moving_variance`` are ``(D,)``; ``y`` as ``x``.

    Training (``training=True`` and ``trainable``): the batch mean and *biased* variance over
    every axis but ``axis`` normalise ``x``, and the moving statistics become
    ``moving = moving * momentum + batch * (1 - momentum)``. With a mask (shape ``x.shape[:-1]``,
    e.g. (B, T)) the statistics are over unmasked positions only, divided by their count plus
    1e-7 as Keras does; every position is still normalised. Inference: the moving statistics
    are used and the mask is ignored. A non-trainable layer always runs as in inference (Keras 3).
    """

    consumes_mask = True
    call_state = ("_x_hat", "_inv_std", "_stats")
    non_trainable_weights = ("moving_mean", "moving_variance")

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 moving_mean_initializer: Any = "zeros", moving_variance_initializer: Any = "ones",
                 name: str | None = None, input_shape: Any = None, seed: int | None = None):
        axis = _check_axis_int(axis, "BatchNormalization axis")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating, np.integer)) \
                or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"BatchNormalization momentum must be a number in [0, 1] (the weight of the old "
                             f"moving statistics, e.g. 0.99), got {momentum!r}.")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                         name, input_shape, seed)
        self.momentum = float(momentum)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        #: (w, n, shift) of the batch statistics of the last call; None when it used the moving ones
        self._stats: tuple | None = None

    def make_params(self, input_shape, dtype, rng):
        params = super().make_params(input_shape, dtype, rng)
        shape = (input_shape[self._axes[0] - 1],)
        params["moving_mean"] = self.moving_mean_initializer(shape, dtype, rng)
        params["moving_variance"] = self.moving_variance_initializer(shape, dtype, rng)
        return params

    def _check_mask(self, x: np.ndarray, mask: Any) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.shape != x.shape[:-1]:
            raise ValueError(f"Layer '{self.name}' (BatchNormalization) takes a mask of shape {x.shape[:-1]} "
                             f"(the input's shape without its last axis) for inputs of shape {x.shape}, "
                             f"got a mask of shape {mask.shape}.")
        return mask.astype(bool)[..., None]                    # (B, T, 1)

    def forward(self, x, training=False, mask=None):
        axis = self._axes[0]
        reduce = tuple(a for a in range(x.ndim) if a != axis)  # every axis but the features
        keep = None if mask is None else self._check_mask(x, mask)
        stat_shape = _broadcast_shape(x.ndim, self._axes, (x.shape[axis],))   # (1, .., D, .., 1)
        if training and self.trainable:
            if keep is None:
                w, n = 1.0, x.size // x.shape[axis]
                mu = x.mean(axis=reduce, keepdims=True)                         # (1, .., D)
                d = x - mu                                                      # (B, ..., D)
                var = (d * d).mean(axis=reduce, keepdims=True)                  # biased, as Keras
                shift = 0.0
            else:
                w = keep.astype(x.dtype)                                        # (B, T, 1)
                count = np.broadcast_to(w, x.shape).sum(axis=reduce, keepdims=True)
                n = count + MASKED_COUNT_EPSILON
                mu = np.where(keep, x, 0.0).sum(axis=reduce, keepdims=True) / n  # (1, .., D)
                d = x - mu                                                      # (B, ..., D)
                var = np.where(keep, d * d, 0.0).sum(axis=reduce, keepdims=True) / n
                shift = mu * (n - count)                                        # sum(w (x - mu))
            self._stats = (w, n, shift)
            m = self.momentum
            self.params["moving_mean"][...] = self.params["moving_mean"] * m + mu.reshape(-1) * (1.0 - m)
            self.params["moving_variance"][...] = self.params["moving_variance"] * m + var.reshape(-1) * (1.0 - m)
        else:
            self._stats = None
            mu = self.params["moving_mean"].reshape(stat_shape)
            var = self.params["moving_variance"].reshape(stat_shape)
            d = x - mu
        self._inv_std = 1.0 / np.sqrt(var + self.epsilon)       # (1, .., D)
        self._x_hat = d * self._inv_std                         # (B, ..., D)
        return self._affine(self._x_hat)

    def backward(self, dy):
        g = self._affine_backward(dy, self._x_hat)
        if not self.need_input_grad:
            return None
        if self._stats is None:                                 # moving statistics: constants
            return g * self._inv_std
        w, n, shift = self._stats
        reduce = tuple(a for a in range(dy.ndim) if a != self._axes[0])
        return _backward_through_moments(g, self._x_hat, self._inv_std, reduce, n, w, shift)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum,
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer)}
