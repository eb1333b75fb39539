"""``Conv1D``: a 1-D convolution over time, ``y_t = act(sum_k x_{t s + k d - l} W_k + b)``, with Keras' arguments.

``s`` is ``strides``, ``d`` is ``dilation_rate``, ``k = 0 .. K-1`` runs over the kernel's taps
(``kernel_size = K``), ``l`` is the number of zeros the padding puts in front of the sequence and
``W_k (C, F)`` is one tap of the kernel ``(K, C, F)`` (Keras' layout). The helpers for the padding
and the output length are shared with the 1-D pooling layers (``rnnkit.layers.pooling1d``).

Padding, as Keras 3 does it:

* ``"valid"``: no padding, ``T_out = floor((T - d (K - 1) - 1) / s) + 1``; a sequence shorter than
  the kernel's span ``d (K - 1) + 1`` is an error.
* ``"same"``: ``T_out = ceil(T / s)``; the zeros needed, ``max(0, (T_out - 1) s + d (K - 1) + 1 - T)``,
  are split with the extra one at the end (TensorFlow's convention, which Keras keeps on every backend).
* ``"causal"``: ``d (K - 1)`` zeros in front, none after, so ``y_t`` sees no input after step ``t``.

As in Keras 3, no mask passes through a convolution: its output has no mask.

Sane bounds, which Keras does not have but a model file read from anywhere needs: ``kernel_size``,
``strides``, ``dilation_rate`` and the receptive field ``d (K - 1) + 1`` are at most ``2**31 - 1``, and the
zeros that ``"same"`` or ``"causal"`` padding adds to a sequence of ``T`` steps may number at most
``max(T, MAX_PADDING_STEPS)``: more would be a kernel far longer than its input, whose taps beyond it read
only zeros, at the cost of a padded copy of that size (a dilation of ``2**30`` on 4 steps would pad each
sequence with a billion zeros). It is checked when the layer is built for a known length and again on
every call, before anything is allocated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit import activations, initializers
from rnnkit.layers import penalties
from rnnkit.layers.base import Layer, check_positive_int, is_shape_list, sum_rows
from rnnkit.layers.reshaping import check_data_format

PADDINGS = ("valid", "same", "causal")
#: the largest kernel size, stride, dilation, pool size and receptive field (the int32 limit)
MAX_WINDOW = 2**31 - 1
#: the most zeros "same" or "causal" padding may add to a sequence shorter than this (longer ones: its length)
MAX_PADDING_STEPS = 2**16


def standardize_int_tuple(name: str, value: Any) -> tuple[int]:
    """``3``, ``(3,)`` or ``[3]`` -> ``(3,)``: Keras' 1-D arguments may be an int or a tuple of one."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be a positive integer or a tuple of one, got {value!r}.")
        value = value[0]
    value = check_positive_int(name, value)
    if value > MAX_WINDOW:
        raise ValueError(f"{name} must be at most {MAX_WINDOW} (2**31 - 1), got {value}.")
    return (value,)


def standardize_padding(value: Any, allowed: tuple[str, ...] = PADDINGS) -> str:
    """The padding name in lower case (Keras accepts ``"SAME"``), checked against ``allowed``."""
    if not isinstance(value, str):
        raise TypeError(f"padding must be one of {', '.join(map(repr, allowed))}, got {type(value).__name__}: "
                        f"{value!r}.")
    if value.lower() not in allowed:
        raise ValueError(f"padding must be one of {', '.join(map(repr, allowed))}, got {value!r}.")
    return value.lower()


def padding_amounts(length: int, span: int, strides: int, padding: str) -> tuple[int, int]:
    """``(zeros in front, zeros after)`` for a sequence of ``length`` steps and a window of ``span`` steps.

    ``span`` is ``dilation_rate * (kernel_size - 1) + 1`` for a convolution, ``pool_size`` for pooling.
    """
    if padding == "causal":
        return span - 1, 0
    if padding == "same":
        out = -(-length // strides)                                   # ceil(T / s)
        total = max(0, (out - 1) * strides + span - length)
        return total // 2, total - total // 2                         # the odd zero goes at the end
    return 0, 0


def check_padding(where: str, length: int, span: int, strides: int, padding: str, what: str) -> None:
    """Refuse a window of ``span`` steps whose padding would add more than ``max(length, MAX_PADDING_STEPS)``
    zeros to a sequence of ``length`` steps (``what`` names the window's arguments in the message)."""
    left, right = padding_amounts(length, span, strides, padding)
    if left + right > max(length, MAX_PADDING_STEPS):
        raise ValueError(
            f"{where} with padding='{padding}' and {what} reads {span} steps per output step: on sequences of "
            f"{length} steps its padding would add {left + right} zeros, more than the sequence itself and more "
            f"than {MAX_PADDING_STEPS}; almost all of every window would read zeros. Use a smaller "
            "window (or longer sequences)."
        )


def output_length(length: int | None, span: int, strides: int, padding: str) -> int | None:
    """The number of output steps (None for a variable length); below 1 where the input is too short."""
    if length is None:
        return None
    if padding == "valid":
        return (length - span) // strides + 1
    return (length - 1) // strides + 1


class Conv1D(Layer):
    """1-D convolution with Keras' arguments and defaults.

    Shapes (``channels_last``): ``x (B, T, C)``, ``kernel (K, C / groups, F)``, ``bias (F,)``,
    ``y (B, T_out, F)``; with ``data_format="channels_first"`` they are ``x (B, C, T)`` and
    ``y (B, F, T_out)``. ``T`` may be None (any length) when the model is built.

    With ``groups = G`` the channels are split in G blocks: output block ``g`` (``F / G`` filters)
    sees only input block ``g`` (``C / G`` channels), Keras' and PyTorch's grouped convolution.

    Forward is one (batched over groups) matmul of the im2col matrix, every window of the padded
    input laid out as a row ``(B T_out, K C)``, by the kernel ``(K C, F)``; backward gives
    ``dW = cols^T dz`` as one matmul and ``dx`` by adding each tap's share of ``dcols = dz W^T``
    back to the steps that tap read (a loop over the K taps, not over time).
    """

    input_rank = 3

    def __init__(self, filters: int, kernel_size: int | tuple[int], strides: int | tuple[int] = 1,
                 padding: str = "valid", data_format: str | None = "channels_last",
                 dilation_rate: int | tuple[int] = 1, groups: int = 1, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 name: str | None = None, input_shape: Any = None, seed: int | None = None):
        super().__init__(name=name, input_shape=input_shape, seed=seed)
        self.filters = check_positive_int("filters", filters)
        self.kernel_size = standardize_int_tuple("kernel_size", kernel_size)
        self.strides = standardize_int_tuple("strides", strides)
        self.padding = standardize_padding(padding)
        self.data_format = check_data_format(data_format)
        self.dilation_rate = standardize_int_tuple("dilation_rate", dilation_rate)
        self.groups = check_positive_int("groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"filters must be divisible by groups, got filters={self.filters} and "
                             f"groups={self.groups}.")
        if self.span > MAX_WINDOW:
            raise ValueError(f"the receptive field dilation_rate * (kernel_size - 1) + 1 must be at most {MAX_WINDOW} "
                             f"(2**31 - 1), got {self.span} (kernel_size={self.kernel_size[0]}, "
                             f"dilation_rate={self.dilation_rate[0]}).")
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(f"strides > 1 cannot be combined with dilation_rate > 1 (as in Keras), got "
                             f"strides={self.strides[0]} and dilation_rate={self.dilation_rate[0]}.")
        if not isinstance(use_bias, (bool, np.bool_)):
            raise TypeError(f"use_bias must be True or False, got {use_bias!r}.")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        weights = {"kernel": (kernel_regularizer, kernel_constraint)}
        if self.use_bias:
            weights["bias"] = (bias_regularizer, bias_constraint)
        penalties.attach(self, weights, activity_regularizer)
        self._cache: tuple | None = None

    # -- shapes -----------------------------------------------------------------
    @property
    def span(self) -> int:
        """How many input steps one output step sees: ``d (K - 1) + 1``."""
        return self.dilation_rate[0] * (self.kernel_size[0] - 1) + 1

    @property
    def _where(self) -> str:
        """How error messages name this layer: ``Layer 'conv1d' (Conv1D)``."""
        return f"Layer '{self.name or self.default_name()}' ({type(self).__name__})"

    def _steps_and_channels(self, input_shape) -> tuple[int | None, int | None]:
        return tuple(input_shape) if self.data_format == "channels_last" else tuple(input_shape)[::-1]

    def _too_short(self, steps: int) -> ValueError:
        return ValueError(
            f"{self._where} with padding='valid', kernel_size={self.kernel_size[0]} and "
            f"dilation_rate={self.dilation_rate[0]} needs sequences of at least {self.span} steps, got {steps}; "
            "use padding='same' or 'causal', or longer sequences."
        )

    def check_input_shape(self, input_shape):
        super().check_input_shape(input_shape)
        steps, channels = self._steps_and_channels(input_shape)
        if channels is None:
            raise ValueError(f"{self._where} needs the channel axis to be known, got input shape "
                             f"{(None, *input_shape)} with data_format='{self.data_format}'.")
        if channels % self.groups:
            raise ValueError(f"{self._where}: the input channels ({channels}) must be divisible by "
                             f"groups={self.groups}.")
        if steps is not None and output_length(steps, self.span, self.strides[0], self.padding) < 1:
            raise self._too_short(steps)
        if steps is not None:
            self._check_padding(steps)

    def _check_padding(self, steps: int) -> None:
        check_padding(self._where, steps, self.span, self.strides[0], self.padding,
                      f"kernel_size={self.kernel_size[0]}, dilation_rate={self.dilation_rate[0]}")

    def make_params(self, input_shape, dtype, rng):
        _, channels = self._steps_and_channels(input_shape)
        shape = (self.kernel_size[0], channels // self.groups, self.filters)      # (K, C / G, F)
        params = {"kernel": self.kernel_initializer(shape, dtype, rng)}
        if self.use_bias:
            params["bias"] = self.bias_initializer((self.filters,), dtype, rng)
        return params

    def compute_output_shape(self, input_shape):
        steps, _ = self._steps_and_channels(input_shape)
        out = output_length(steps, self.span, self.strides[0], self.padding)
        return (out, self.filters) if self.data_format == "channels_last" else (self.filters, out)

    def accepts_input_shape(self, input_shape):
        """A shared call may change the time length but not the channels (the axis depends on data_format)."""
        if is_shape_list(input_shape) or len(input_shape) != 2 or self.input_shape is None:
            return False
        old, new = self._steps_and_channels(self.input_shape)[1], self._steps_and_channels(input_shape)[1]
        return new is None or old == new

    # -- computing --------------------------------------------------------------
    def _grouped_kernel(self) -> np.ndarray:
        """The kernel as one ``(K C/G, F/G)`` matrix per group: ``(G, K C/G, F/G)`` (a view when G = 1)."""
        K, Cg, F = self.params["kernel"].shape
        G = self.groups
        return self.params["kernel"].reshape(K, Cg, G, F // G).transpose(2, 0, 1, 3).reshape(G, K * Cg, F // G)

    def forward(self, x, training=False):
        if x.ndim != 3:
            raise ValueError(f"{self._where} expects inputs of rank 3, got shape {x.shape}.")
        x = x if self.data_format == "channels_last" else x.transpose(0, 2, 1)    # (B, T, C)
        B, T, C = x.shape
        K, Cg, F = self.params["kernel"].shape
        G, s, d = self.groups, self.strides[0], self.dilation_rate[0]
        if C != Cg * G:
            raise ValueError(f"{self._where} was built for {Cg * G} input channels, got {C} "
                             f"(input shape {x.shape} in channels_last order).")
        T_out = output_length(T, self.span, s, self.padding)
        if T_out < 1:
            raise self._too_short(T)
        self._check_padding(T)              # a length unknown when built: checked before np.pad allocates
        left, right = padding_amounts(T, self.span, s, self.padding)
        xp = np.pad(x, ((0, 0), (left, right), (0, 0))) if left or right else x        # (B, Tp, C)
        # every window of span steps, then every s-th window and every d-th step in it: a strided view
        windows = np.lib.stride_tricks.sliding_window_view(xp, self.span, axis=1)[:, ::s, :, ::d]   # (B, T_out, C, K)
        cols = windows.reshape(B, T_out, G, Cg, K).transpose(2, 0, 1, 4, 3).reshape(G, B * T_out, K * Cg)
        z = np.matmul(cols, self._grouped_kernel())                                # (G, B T_out, F/G)
        z = z.transpose(1, 0, 2).reshape(B, T_out, F)                              # (B, T_out, F)
        if self.use_bias:
            z += self.params["bias"]
        if self.data_format == "channels_first":
            z = np.ascontiguousarray(z.transpose(0, 2, 1))                         # (B, F, T_out)
        # the activation acts on the output as laid out, as Keras' (softmax: over its last axis)
        y = self.activation(z)
        # the logits are kept even for predict and evaluate (a fused softmax loss reads them); the im2col
        # matrix, K times the input, only when a backward will follow
        self._cache = (cols if self.keep_cache else None, z, y, (B, T, left, right))
        return y

    @property
    def logits(self) -> np.ndarray:
        """The pre-activation output (before ``activation``) of the last forward call."""
        return self._cache[1]

    def backward(self, dy):
        return self.backward_from_logits(self.activation.backward(dy, self._cache[2]))

    def backward_from_logits(self, dz: np.ndarray) -> np.ndarray | None:
        """Backward from ``dL/dz``, ``z`` the output before the activation (laid out as the output)."""
        cols, _, _, (B, T, left, right) = self._cache
        if cols is None:
            raise RuntimeError(f"{self._where} ran forward without keeping what backward needs "
                               "(keep_cache was False); run it again with keep_cache=True.")
        K, Cg, F = self.params["kernel"].shape
        G, s, d = self.groups, self.strides[0], self.dilation_rate[0]
        if self.data_format == "channels_first":
            dz = dz.transpose(0, 2, 1)                                             # (B, T_out, F)
        T_out = dz.shape[1]
        dz2 = dz.reshape(B * T_out, F)                                             # (N, F)
        dzg = dz2.reshape(B * T_out, G, F // G).transpose(1, 0, 2)                 # (G, N, F/G)
        dW = np.matmul(cols.transpose(0, 2, 1), dzg)                               # (G, K C/G, F/G)
        self.grads["kernel"] = dW.reshape(G, K, Cg, F // G).transpose(1, 2, 0, 3).reshape(K, Cg, F)
        if self.use_bias:
            self.grads["bias"] = sum_rows(dz2)                                     # (F,)
        if not self.need_input_grad:
            return None
        dcols = np.matmul(dzg, self._grouped_kernel().transpose(0, 2, 1))          # (G, N, K C/G)
        dcols = dcols.reshape(G, B, T_out, K, Cg).transpose(1, 2, 3, 0, 4).reshape(B, T_out, K, G * Cg)
        dxp = np.zeros((B, left + T + right, G * Cg), dtype=dz.dtype)              # (B, Tp, C)
        for k in range(K):              # tap k of output step t read padded step t s + k d
            start = k * d
            dxp[:, start:start + (T_out - 1) * s + 1:s, :] += dcols[:, :, k, :]    # (B, T_out, C)
        dx = dxp[:, left:left + T, :]                                              # (B, T, C): drop the padding
        return dx if self.data_format == "channels_last" else dx.transpose(0, 2, 1)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **penalties.config(self, {"kernel": "kernel", "bias": "bias"})}
