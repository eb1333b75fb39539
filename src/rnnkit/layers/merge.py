"""Merge layers: a list of inputs in, one array out (Keras' ``keras.layers`` merging layers).

``Concatenate`` joins its inputs along one axis; ``Add``, ``Subtract``, ``Multiply``,
``Average``, ``Maximum`` and ``Minimum`` combine them element by element; ``Dot`` takes the
dot product of two inputs sample by sample. ``forward([x1, x2, ...])`` returns one array and
``backward(dy)`` a list with one gradient per input.

Axes count the batch axis, as in Keras: on inputs ``(B, T, D)``, ``axis=1`` is the time axis
and ``axis=-1`` (or 2) the feature axis; the batch axis itself cannot be chosen.

Element-wise merges broadcast as Keras does: an input of lower rank first gets size-1 axes
inserted after the batch axis (``(B, D)`` meets ``(B, T, D)`` as ``(B, 1, D)``), then axes of
size 1 stretch to the others' sizes.

Masks follow Keras 3. An element-wise merge's output mask is the OR of its inputs' (B, T)
masks, or None unless every input has one. ``Multiply``, ``Maximum`` and ``Minimum`` also read
the masks in ``forward`` (``mask=[m1, m2, ...]``, None for an input without one): a masked
entry is left out of the product (taken as 1) or of the max/min, and where every input is
masked ``Multiply`` gives 0 and ``Maximum``/``Minimum`` the first input's value.
``Concatenate`` joins the masks along its axis (see ``Concatenate.compute_mask``); ``Dot``
drops them.
"""

from __future__ import annotations

from functools import reduce
from typing import Any, Callable, Sequence

import numpy as np

from rnnkit.layers.base import Layer

#: the smallest norm ``Dot(normalize=True)`` divides by (Keras' ``backend.epsilon()``)
NORM_EPSILON = 1e-7


def _batched(shape: Sequence) -> tuple:
    return (None, *shape)


def _expand(x: np.ndarray, ndim: int) -> np.ndarray:
    """``(B, *S) -> (B, 1, ..., 1, *S)`` with ``ndim`` axes: Keras' way of lining up ranks."""
    return x.reshape(x.shape[:1] + (1,) * (ndim - x.ndim) + x.shape[1:])


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` (the output's shape) back to an input of ``shape`` that was expanded and broadcast."""
    expanded = shape[:1] + (1,) * (g.ndim - len(shape)) + shape[1:]
    axes = tuple(i for i, (e, n) in enumerate(zip(expanded, g.shape)) if e == 1 and n != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


class Merge(Layer):
    """Base of the merge layers: checks the list of inputs and their masks.

    Subclasses give ``compute_output_shape`` (which raises on shapes that do not fit together),
    ``forward`` and ``backward``.
    """

    supports_masking = True
    #: exactly this many inputs (Subtract, Dot); None: one or more
    n_inputs: int | None = None

    def __init__(self, name: str | None = None):
        super().__init__(name=name)

    @property
    def what(self) -> str:
        return f"Layer '{self.name or self.default_name()}' ({type(self).__name__})"

    def check_input_shape(self, input_shape):
        if not isinstance(input_shape, list) or not all(isinstance(s, (tuple, list)) for s in input_shape):
            raise ValueError(f"{self.what} takes a list of inputs ({type(self).__name__}()([x1, x2])), "
                             f"got a single input of shape {_batched(input_shape)}.")
        shapes = [_batched(s) for s in input_shape]
        if self.n_inputs is not None and len(input_shape) != self.n_inputs:
            raise ValueError(f"{self.what} takes exactly {self.n_inputs} inputs, got {len(input_shape)}: {shapes}.")
        if not input_shape:
            raise ValueError(f"{self.what} takes a list of at least one input, got an empty list.")
        for s in input_shape:
            if len(s) < 1:
                raise ValueError(f"{self.what} needs inputs of rank >= 2 (batch axis included), got shapes {shapes}.")
        self.compute_output_shape([tuple(s) for s in input_shape])

    def input_masks(self, inputs: list, mask: Any) -> list | None:
        """``mask`` as a list with one (B, T) mask or None per input; None if there are none."""
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)) or len(mask) != len(inputs):
            n = len(mask) if isinstance(mask, (list, tuple)) else "a single array"
            raise ValueError(f"{self.what} takes one mask (or None) per input: a list of {len(inputs)}, got {n}.")
        return None if all(m is None for m in mask) else [None if m is None else np.asarray(m, bool) for m in mask]


class _ElementwiseMerge(Merge):
    """Base of the element-wise merges: Keras' broadcasting and mask rules."""

    call_state = ("_shapes",)

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        for i, a in enumerate(shapes):          # pair by pair, so that an error names two inputs' shapes
            for b in shapes[i + 1:]:
                self._broadcast(a, b)
        return reduce(self._broadcast, shapes)

    def _broadcast(self, a: tuple, b: tuple) -> tuple:
        """The shape of ``a op b`` (batch-less shapes, aligned on the right as in Keras)."""
        long, short = (a, b) if len(a) >= len(b) else (b, a)
        out = list(long[:len(long) - len(short)])
        for i, j in zip(long[len(long) - len(short):], short):
            if i is None or j is None:
                out.append(None)
            elif i == 1 or j == 1 or i == j:
                out.append(max(i, j))
            else:
                raise ValueError(
                    f"{self.what} cannot combine inputs of shapes {_batched(a)} and {_batched(b)}: sizes must be "
                    "equal or 1 on every axis (an input of lower rank gets size-1 axes after the batch axis)."
                )
        return tuple(out)

    def expanded(self, inputs: list, mask: Any = None) -> tuple[list, list]:
        """The inputs at one rank (Keras' expansion), and their masks as ``(B, ..., 1)`` arrays or None.

        Remembers the input shapes for ``backward``.
        """
        self._shapes = [x.shape for x in inputs]
        ndim = max(x.ndim for x in inputs)
        xs = [_expand(x, ndim) for x in inputs]
        masks = self.input_masks(inputs, mask) or [None] * len(inputs)
        return xs, [None if m is None else _expand(m[..., None], ndim) for m in masks]

    def compute_mask(self, inputs, mask):
        masks = self.input_masks(inputs, mask)
        if masks is None or any(m is None for m in masks):
            return None
        ndim = max(m.ndim for m in masks)
        return reduce(np.logical_or, [_expand(m, ndim) for m in masks])      # (B, T)

    def input_grads(self, grads: list) -> list:
        """Each input's gradient from its part of the output's, summed over the broadcast axes."""
        return [_unbroadcast(g, shape) for g, shape in zip(grads, self._shapes)]


class Add(_ElementwiseMerge):
    """``y = x1 + x2 + ...``; the inputs broadcast against each other."""

    def forward(self, inputs, training=False):
        xs, _ = self.expanded(inputs)
        return reduce(np.add, xs)

    def backward(self, dy):
        return self.input_grads([dy] * len(self._shapes))


class Subtract(_ElementwiseMerge):
    """``y = x1 - x2``, exactly two inputs."""

    n_inputs = 2

    def forward(self, inputs, training=False):
        (x1, x2), _ = self.expanded(inputs)
        return x1 - x2

    def backward(self, dy):
        return self.input_grads([dy, -dy])


class Average(_ElementwiseMerge):
    """``y = (x1 + ... + xn) / n``."""

    def forward(self, inputs, training=False):
        xs, _ = self.expanded(inputs)
        return reduce(np.add, xs) / len(xs)

    def backward(self, dy):
        return self.input_grads([dy / len(self._shapes)] * len(self._shapes))


class Multiply(_ElementwiseMerge):
    """``y = x1 * x2 * ...``; a masked entry counts as 1, and where every input is masked ``y = 0``."""

    consumes_mask = True
    call_state = ("_shapes", "_factors", "_masks", "_keep")

    def forward(self, inputs, training=False, mask=None):
        xs, masks = self.expanded(inputs, mask)
        one = np.ones((), dtype=xs[0].dtype)
        self._factors = [x if m is None else np.where(m, x, one) for x, m in zip(xs, masks)]
        self._masks = masks
        y = reduce(np.multiply, self._factors)
        self._keep = None
        if all(m is not None for m in masks):          # Keras zeroes the entries no input covers
            self._keep = reduce(np.logical_or, masks)
            y = y * self._keep
        return y

    def backward(self, dy):
        if self._keep is not None:
            dy = dy * self._keep
        grads = []
        for i, m in enumerate(self._masks):
            others = [f for j, f in enumerate(self._factors) if j != i]
            g = dy * reduce(np.multiply, others) if others else dy
            grads.append(g if m is None else g * m)     # a masked entry was replaced by the constant 1
        return self.input_grads(grads)


class _Extremum(_ElementwiseMerge):
    """Maximum or minimum over the inputs, following Keras' masked fold.

    Going through the inputs in order, a masked entry of the next input takes the running
    result's value, and a masked entry of the running result takes the next input's value,
    before the two are compared. ``backward`` sends each entry's gradient to the input its
    value came from (on a tie, the earlier input).
    """

    consumes_mask = True
    call_state = ("_shapes", "_source")
    #: ``takes(x, y)``: whether the new value ``x`` replaces the running result ``y``
    takes: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def forward(self, inputs, training=False, mask=None):
        xs, masks = self.expanded(inputs, mask)
        y, y_mask = xs[0], masks[0]
        source = np.zeros((), dtype=np.intp)            # which input each entry of y came from
        for i, (x, m) in enumerate(zip(xs[1:], masks[1:]), start=1):
            x_source = np.intp(i)
            if m is not None:
                x, x_source = np.where(m, x, y), np.where(m, x_source, source)
            if y_mask is not None:
                y, source = np.where(y_mask, y, x), np.where(y_mask, source, x_source)
            y_mask = y_mask | m if (y_mask is not None and m is not None) else None
            take = self.takes(x, y)
            y, source = np.where(take, x, y), np.where(take, x_source, source)
        self._source = source
        return y

    def backward(self, dy):
        zero = np.zeros((), dtype=dy.dtype)
        return self.input_grads([np.where(self._source == i, dy, zero) for i in range(len(self._shapes))])


class Maximum(_Extremum):
    """``y = max(x1, x2, ...)`` element by element."""

    takes = np.greater


class Minimum(_Extremum):
    """``y = min(x1, x2, ...)`` element by element."""

    takes = np.less


class Concatenate(Merge):
    """Join the inputs along ``axis`` (batch axis counted, as Keras): ``(B, T, D1), (B, T, D2) -> (B, T, D1+D2)``.

    All other axes must have the same sizes.
    """

    call_state = ("_sizes",)

    def __init__(self, axis: int = -1, name: str | None = None):
        super().__init__(name=name)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Concatenate axis must be an integer, got {type(axis).__name__}: {axis!r}.")
        if axis == 0:
            raise ValueError("Concatenate axis=0 is the batch axis; use axis=-1 (features) or axis=1 (time).")
        self.axis = int(axis)
        self._sizes: list[int] | None = None

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        rank = len(shapes[0])
        for s in shapes[1:]:
            if len(s) != rank:
                raise ValueError(f"{self.what} cannot concatenate inputs of shapes {_batched(shapes[0])} and "
                                 f"{_batched(s)}: they must have the same rank.")
        if not -rank <= self.axis <= rank:
            raise ValueError(f"{self.what} cannot concatenate inputs of shape {_batched(shapes[0])} on axis "
                             f"{self.axis}: it has axes 1..{rank} (or -{rank}..-1).")
        axis = self.axis - 1 if self.axis > 0 else self.axis + rank      # in the batch-less shape
        out = []
        for k in range(rank):
            sizes = [s[k] for s in shapes]
            if k == axis:
                out.append(None if None in sizes else sum(sizes))
                continue
            known = [s for s in shapes if s[k] is not None]
            other = next((s for s in known if s[k] != known[0][k]), None)
            if other is not None:
                raise ValueError(f"{self.what} cannot concatenate inputs of shapes {_batched(known[0])} and "
                                 f"{_batched(other)} on axis {self.axis}: all other axes must match.")
            out.append(known[0][k] if known else None)
        return tuple(out)

    def forward(self, inputs, training=False):
        self._sizes = [x.shape[self.axis] for x in inputs]
        return np.concatenate(inputs, axis=self.axis)

    def backward(self, dy):
        return np.split(dy, np.cumsum(self._sizes)[:-1], axis=self.axis)

    def compute_mask(self, inputs, mask):
        """Keras' rule: each input's mask spread over its features (all True where an input has
        none), these concatenated along ``axis``, then any over the last axis.

        So on the feature axis the output mask is the OR of the inputs' (B, T) masks, and on the
        time axis the masks are joined in time.
        """
        masks = self.input_masks(inputs, mask)
        if masks is None:
            return None
        full = []
        for x, m in zip(inputs, masks):
            if m is None:
                m = np.ones(x.shape, dtype=bool)
            elif m.ndim < x.ndim:
                m = np.broadcast_to(m[..., None], x.shape)
            full.append(m)
        return np.concatenate(full, axis=self.axis).any(axis=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def _l2_normalize(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``x / max(||x||, eps)`` along ``axis`` (as ``keras.ops.normalize``); returns it and the divisor."""
    norm = np.maximum(np.sqrt((x * x).sum(axis=axis, keepdims=True)), NORM_EPSILON)
    return x / norm, norm


def _l2_normalize_backward(g: np.ndarray, x_hat: np.ndarray, norm: np.ndarray, axis: int) -> np.ndarray:
    """dL/dx from dL/dx_hat for ``x_hat = x / n``: ``(g - x_hat <x_hat, g>) / n``, or ``g / eps`` where
    the norm was clamped to eps (then ``n`` is a constant)."""
    proj = (x_hat * g).sum(axis=axis, keepdims=True)
    return (g - np.where(norm > NORM_EPSILON, x_hat * proj, 0.0)) / norm


class Dot(Merge):
    """Dot product of two inputs along one axis of each, sample by sample (Keras' ``batch_dot``).

    ``axes`` counts the batch axis: an int uses the same axis of both inputs, a pair
    ``(a1, a2)`` axis ``a1`` of ``x1`` and ``a2`` of ``x2``; their sizes must be equal (K).
    The output has ``x1``'s other axes, then ``x2``'s:

        x1 (B, *R1, K) with K at a1,  x2 (B, *R2, K) with K at a2  ->  y (B, *R1, *R2)
        y[b, i, j] = sum_k x1[b, i, k] x2[b, k, j]

    e.g. ``axes=2`` on ``(B, T, D), (B, S, D)`` gives ``(B, T, S)``; two ``(B, D)`` inputs give
    ``(B, 1)``. ``normalize=True`` divides each input by its L2 norm along its dot axis first,
    so the output is a cosine similarity.
    """

    n_inputs = 2
    call_state = ("_cache",)

    def __init__(self, axes: int | Sequence[int], normalize: bool = False, name: str | None = None):
        super().__init__(name=name)
        is_int = lambda a: isinstance(a, (int, np.integer)) and not isinstance(a, bool)
        if is_int(axes):
            self.axes: int | tuple[int, int] = int(axes)
        elif isinstance(axes, (tuple, list)) and len(axes) == 2 and all(is_int(a) for a in axes):
            self.axes = (int(axes[0]), int(axes[1]))
        else:
            raise TypeError(f"Dot axes must be an integer or a pair of integers, got {axes!r}.")
        if 0 in self.pair:
            raise ValueError(f"Dot axes={axes!r} includes axis 0, the batch axis; the dot product is taken per "
                             "sample, along axes 1 and up (or -1 and down).")
        self.normalize = bool(normalize)
        self._cache: tuple | None = None

    @property
    def pair(self) -> tuple[int, int]:
        """``axes`` as a pair: the dot axis of ``x1`` and of ``x2``."""
        return (self.axes, self.axes) if isinstance(self.axes, int) else self.axes

    def resolved_axes(self, rank1: int, rank2: int, shapes: Any = None) -> tuple[int, int]:
        """The two dot axes as non-negative indices into inputs of these ranks (batch axis included)."""
        out = []
        for a, rank in zip(self.pair, (rank1, rank2)):
            if not -rank < a < rank:
                given = f"shapes {shapes[0]} and {shapes[1]}" if shapes else f"ranks {rank1} and {rank2}"
                raise ValueError(f"{self.what} cannot take axes={self.axes} of inputs of {given}: "
                                 f"an input of rank {rank} has axes 1..{rank - 1} (or -{rank - 1}..-1).")
            out.append(a % rank)
        return out[0], out[1]

    def compute_output_shape(self, input_shape):
        s1, s2 = (tuple(s) for s in input_shape)
        shapes = (_batched(s1), _batched(s2))
        a1, a2 = self.resolved_axes(len(s1) + 1, len(s2) + 1, shapes)
        k1, k2 = s1[a1 - 1], s2[a2 - 1]
        if k1 is not None and k2 is not None and k1 != k2:
            raise ValueError(f"{self.what} cannot take the dot product of inputs of shapes {shapes[0]} and "
                             f"{shapes[1]} along axes ({a1}, {a2}): their sizes {k1} and {k2} differ.")
        out = s1[:a1 - 1] + s1[a1:] + s2[:a2 - 1] + s2[a2:]
        return out or (1,)

    def forward(self, inputs, training=False):
        x1, x2 = inputs
        a1, a2 = self.resolved_axes(x1.ndim, x2.ndim)
        norms = None
        if self.normalize:
            (x1, n1), (x2, n2) = _l2_normalize(x1, a1), _l2_normalize(x2, a2)
            norms = (n1, n2)
        lhs = np.moveaxis(x1, a1, -1)                   # (B, *R1, K)
        rhs = np.moveaxis(x2, a2, 1)                    # (B, K, *R2)
        b, k = lhs.shape[0], lhs.shape[-1]
        l3, r3 = lhs.reshape(b, -1, k), rhs.reshape(b, k, -1)
        y = l3 @ r3                                     # (B, M, N), M = prod(R1), N = prod(R2)
        self._cache = (l3, r3, lhs.shape, rhs.shape, (a1, a2), norms)
        y = y.reshape(b, *lhs.shape[1:-1], *rhs.shape[2:])   # (B, *R1, *R2)
        return y.reshape(b, 1) if y.ndim == 1 else y

    def backward(self, dy):
        l3, r3, lhs_shape, rhs_shape, (a1, a2), norms = self._cache
        dz = dy.reshape(l3.shape[0], l3.shape[1], r3.shape[2])          # (B, M, N)
        d1 = np.moveaxis((dz @ r3.transpose(0, 2, 1)).reshape(lhs_shape), -1, a1)   # (B, M, K) -> x1's layout
        d2 = np.moveaxis((l3.transpose(0, 2, 1) @ dz).reshape(rhs_shape), 1, a2)    # (B, K, N) -> x2's layout
        if norms is not None:
            x1_hat = np.moveaxis(l3.reshape(lhs_shape), -1, a1)
            x2_hat = np.moveaxis(r3.reshape(rhs_shape), 1, a2)
            d1 = _l2_normalize_backward(d1, x1_hat, norms[0], a1)
            d2 = _l2_normalize_backward(d2, x2_hat, norms[1], a2)
        return [d1, d2]

    def compute_mask(self, inputs, mask):
        return None

    def get_config(self):
        axes = self.axes if isinstance(self.axes, int) else list(self.axes)
        return {**super().get_config(), "axes": axes, "normalize": self.normalize}
