"""Convert recurrent stacks between rnnkit (Keras layout) and PyTorch (``torch.nn.RNN/LSTM/GRU``).

PyTorch is only needed when one of these functions is called: ``torch`` is imported
inside them, so importing rnnkit (or this module) never imports torch.

* ``from_torch(module)`` turns a ``torch.nn.RNN`` (``nonlinearity`` tanh or relu), ``LSTM``
  or ``GRU`` (any ``num_layers``, ``bidirectional``, ``bias``, ``batch_first``) into a list
  of built rnnkit layers holding its weights; ``rnnkit.Sequential(from_torch(module))``
  computes what the module computes.
* ``to_torch(model_or_layers)`` does the reverse for a ``Sequential`` or a list of recurrent
  layers that form a stack of one cell type; it returns a module with ``batch_first=True``.

Layouts (``D`` input features, ``H`` units; torch names are per layer ``k`` with the
suffix ``_reverse`` for the backward direction, e.g. ``weight_ih_l1_reverse``)::

    rnnkit / Keras                          PyTorch
    kernel            (D, G*H)              weight_ih_l{k}  (G*H, D)   transposed
    recurrent_kernel  (H, G*H)              weight_hh_l{k}  (G*H, H)   transposed
    bias              (G*H,)                bias_ih_l{k} + bias_hh_l{k}        (SimpleRNN, LSTM)
    bias              (2, 3H)               [bias_ih_l{k}, bias_hh_l{k}]       (GRU, reset_after=True)

``G`` is the number of gate blocks: 1 for ``SimpleRNN``/``nn.RNN``, 4 for LSTM, 3 for GRU.

* **SimpleRNN**: ``h_t = act(x_t W + h_{t-1} U + b)``; torch has two biases that are only
  ever added together, so their sum is the Keras bias. ``to_torch`` writes the whole bias
  into ``bias_ih`` and sets ``bias_hh`` to zero (any split would compute the same).
* **LSTM**: gate blocks in the order i, f, c, o in Keras and i, f, g, o in torch: the same
  order (Keras' ``c`` is torch's ``g``), so the blocks are copied as they are; the bias is
  the sum of torch's two, as for SimpleRNN.
* **GRU**: Keras orders the blocks z (update), r (reset), h (candidate); torch orders them
  r, z, n. The first two blocks are swapped in every weight and bias. rnnkit's
  ``GRU(reset_after=True)`` (the default) is torch's GRU, ``n = tanh(x W_n + b_in + r * (h U_n
  + b_hn))``, and both biases are kept apart: rnnkit's ``bias[0]`` is torch's ``bias_ih``
  and ``bias[1]`` is ``bias_hh`` (each reordered). ``GRU(reset_after=False)`` applies the
  reset gate before the recurrent matmul; torch has no such cell, so ``to_torch`` refuses it.
* **Bidirectional**: ``Bidirectional(layer, merge_mode="concat")`` is torch's
  ``bidirectional=True``: both concatenate the forward output and then the backward one at
  each step, the backward direction's outputs being in time order, and its final state is
  the one after reading the first step. rnnkit orders the weights of a Bidirectional as
  the forward layer's, then the backward layer's; torch's ``h_n`` is ordered layer 0
  forward, layer 0 backward, layer 1 forward, ...

rnnkit layers always take batch-first inputs ``(B, T, D)``; a torch module with
``batch_first=False`` takes ``(T, B, D)``, so transpose its inputs before feeding the
converted layers.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rnnkit import backend
from rnnkit.layers.base import Layer
from rnnkit.layers.gru import GRU
from rnnkit.layers.input_layer import InputLayer
from rnnkit.layers.lstm import LSTM
from rnnkit.layers.recurrent import Recurrent
from rnnkit.layers.simple_rnn import SimpleRNN
from rnnkit.layers.wrappers import Bidirectional
from rnnkit.symbolic import SymbolicTensor

__all__ = ["from_torch", "to_torch"]

#: torch's ``mode`` of an RNN module -> (rnnkit class, number of gate blocks, activation)
_TORCH_MODES = {
    "RNN_TANH": (SimpleRNN, 1, "tanh"),
    "RNN_RELU": (SimpleRNN, 1, "relu"),
    "LSTM": (LSTM, 4, "tanh"),
    "GRU": (GRU, 3, "tanh"),
}
_GATES = {SimpleRNN: 1, LSTM: 4, GRU: 3}
_TORCH_CLASS_NAMES = {SimpleRNN: "RNN", LSTM: "LSTM", GRU: "GRU"}


def _gru_swap(a: np.ndarray, axis: int) -> np.ndarray:
    """Swap the first two of the three gate blocks along ``axis``: z, r, h <-> r, z, n (self-inverse)."""
    z, r, h = np.split(a, 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


def _numpy(t) -> np.ndarray:
    """A float64 or float32 NumPy copy of a torch tensor (float64 stays float64, others become float32)."""
    import torch

    t = t.detach().cpu()
    if t.dtype != torch.float64:
        t = t.to(torch.float32)
    return t.numpy().copy()


# -- torch -> rnnkit -----------------------------------------------------------------------

def from_torch(module: Any, return_sequences: bool = True, timesteps: int | None = None) -> list[Layer]:
    """Convert a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` into equivalent, built rnnkit layers.

    Every torch layer becomes one rnnkit ``SimpleRNN``/``LSTM``/``GRU`` (``activation`` from
    ``nonlinearity`` for ``nn.RNN``), wrapped in ``Bidirectional(..., merge_mode="concat")``
    when the module is bidirectional, holding the module's weights (see the module
    docstring for the layouts). ``rnnkit.Sequential(from_torch(module))`` then computes the
    module's output sequence. The returned layers are already built for inputs of shape
    ``(B, T, D)``; the first carries ``input_shape=(timesteps, D)``.

    Args:
        module: a ``torch.nn.RNN`` (``nonlinearity`` ``"tanh"`` or ``"relu"``), ``torch.nn.LSTM``
            or ``torch.nn.GRU``, with any ``num_layers``, ``bidirectional``, ``bias`` and
            ``batch_first``.
        return_sequences: the ``return_sequences`` of the *last* layer. True (the default)
            gives the whole output sequence ``(B, T, H * directions)``, as torch's ``output``;
            False gives only the last step's output (for a bidirectional module, the forward
            state after the last step and the backward state after the first, which is
            ``torch.cat([h_n[-2], h_n[-1]], -1)``). Every other layer returns sequences,
            since each torch layer feeds the whole sequence to the next.
        timesteps: the number of steps ``T`` the layers are built for; None (the default)
            accepts sequences of any length, as the torch module does. Give it to fix the
            model's input shape (e.g. for ``fit`` on per-step targets).

    Returns:
        A list of ``num_layers`` built rnnkit layers. Their weights are float64 when the
        module's are, float32 otherwise (NumPy has no bfloat16).

    Notes:
        * rnnkit layers are always batch-first: they take ``(B, T, D)`` whatever the module's
          ``batch_first``; with ``batch_first=False`` transpose the module's ``(T, B, D)``
          inputs.
        * ``bias=False`` becomes ``use_bias=False``. For ``nn.RNN`` and ``nn.LSTM`` the two
          torch biases are summed into the single Keras bias.
        * torch's ``dropout`` (applied between layers in training only) is not carried over:
          the rnnkit layers get no dropout. Inference is the same; training with dropout is not.
        * ``proj_size > 0`` (LSTM with projections) has no rnnkit equivalent and is refused.

    Raises:
        TypeError: ``module`` is not a ``torch.nn.RNN``, ``LSTM`` or ``GRU``.
        ValueError: an option rnnkit cannot express (``proj_size > 0``, an unknown mode).
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is installed where this is tested
        raise ImportError("from_torch needs PyTorch: pip install torch.") from exc

    if not isinstance(module, torch.nn.RNNBase):
        hint = ""
        if isinstance(module, (torch.nn.RNNCell, torch.nn.LSTMCell, torch.nn.GRUCell)):
            hint = (" Cells (RNNCell, LSTMCell, GRUCell) compute a single step; wrap their weights in an "
                    "nn.RNN/LSTM/GRU with num_layers=1 first.")
        raise TypeError(
            f"from_torch converts torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU modules, got "
            f"{type(module).__module__}.{type(module).__qualname__}.{hint}"
        )
    mode = getattr(module, "mode", None)
    if mode not in _TORCH_MODES:
        raise ValueError(f"from_torch cannot convert a torch RNN module of mode {mode!r}; expected one of "
                         f"{', '.join(_TORCH_MODES)}.")
    if getattr(module, "proj_size", 0):
        raise ValueError(
            f"from_torch cannot convert an LSTM with proj_size={module.proj_size} (a projected hidden "
            "state); rnnkit's LSTM has no projection. Use proj_size=0."
        )
    if not isinstance(return_sequences, (bool, np.bool_)):
        raise TypeError(f"return_sequences must be True or False, got {return_sequences!r}.")
    if timesteps is not None and (isinstance(timesteps, bool) or not isinstance(timesteps, (int, np.integer))
                                  or timesteps <= 0):
        raise ValueError(f"timesteps must be a positive integer or None, got {timesteps!r}.")
    T = None if timesteps is None else int(timesteps)
    cls, gates, activation = _TORCH_MODES[mode]
    H, L = int(module.hidden_size), int(module.num_layers)
    dirs = 2 if module.bidirectional else 1
    use_bias = bool(module.bias)
    dtype = "float64" if module.weight_ih_l0.dtype == torch.float64 else "float32"

    def torch_weights(k: int, suffix: str) -> list[np.ndarray]:
        """Layer ``k``'s weights of one direction, in rnnkit's layout and order."""
        w_ih = _numpy(getattr(module, f"weight_ih_l{k}{suffix}"))      # (G*H, D)
        w_hh = _numpy(getattr(module, f"weight_hh_l{k}{suffix}"))      # (G*H, H)
        if cls is GRU:
            w_ih, w_hh = _gru_swap(w_ih, 0), _gru_swap(w_hh, 0)
        weights = [w_ih.T, w_hh.T]
        if use_bias:
            b_ih = _numpy(getattr(module, f"bias_ih_l{k}{suffix}"))
            b_hh = _numpy(getattr(module, f"bias_hh_l{k}{suffix}"))
            if cls is GRU:
                weights.append(np.stack([_gru_swap(b_ih, 0), _gru_swap(b_hh, 0)]))   # (2, 3H)
            else:
                weights.append(b_ih + b_hh)                                          # (G*H,)
        return weights

    layers: list[Layer] = []
    d_in = int(module.input_size)
    with backend.floatx_scope(dtype):
        for k in range(L):
            rs = True if k < L - 1 else bool(return_sequences)
            kwargs: dict[str, Any] = {"return_sequences": rs, "use_bias": use_bias}
            if cls is GRU:
                kwargs["reset_after"] = True
            if cls is SimpleRNN:
                kwargs["activation"] = activation
            input_shape = (T, d_in) if k == 0 else None
            if dirs == 2:
                layer: Layer = Bidirectional(cls(H, **kwargs), merge_mode="concat", input_shape=input_shape)
            else:
                layer = cls(H, input_shape=input_shape, **kwargs)
            layer.build((T, d_in))
            if dirs == 2:
                layer.forward_layer.set_weights(torch_weights(k, ""))
                layer.backward_layer.set_weights(torch_weights(k, "_reverse"))
            else:
                layer.set_weights(torch_weights(k, ""))
            layers.append(layer)
            d_in = H * dirs
    return layers


# -- rnnkit -> torch -----------------------------------------------------------------------

def _describe(layer: Layer) -> str:
    return f"'{layer.name}' ({type(layer).__name__})"


def _check_cell(layer: Recurrent, where: str) -> None:
    """Refuse what torch's cells cannot compute."""
    cls = type(layer)
    if cls not in _GATES:
        raise TypeError(f"to_torch converts SimpleRNN, LSTM and GRU layers, got {where} of type {cls.__name__}.")
    act = layer.activation.name
    if cls is SimpleRNN:
        if act not in ("tanh", "relu"):
            raise ValueError(f"torch.nn.RNN supports the activations tanh and relu only; {where} uses {act!r}.")
    else:
        if act != "tanh":
            raise ValueError(f"torch.nn.{cls.__name__} always uses tanh as its activation; {where} uses {act!r}.")
        ract = layer.recurrent_activation.name
        if ract != "sigmoid":
            raise ValueError(f"torch.nn.{cls.__name__} always uses sigmoid as its recurrent activation; "
                             f"{where} uses {ract!r}.")
    if cls is GRU and not layer.reset_after:
        raise ValueError(
            f"{where} is a GRU with reset_after=False (reset gate applied before the recurrent matmul); "
            "torch.nn.GRU computes the reset_after=True form only and cannot express it. Use "
            "GRU(..., reset_after=True)."
        )
    if not layer.built:
        raise ValueError(f"{where} is not built yet, so it has no weights to convert; build the model first "
                         "(give it an input shape).")


def _keras_to_torch(cls: type, weights: Sequence[np.ndarray], use_bias: bool) -> list[np.ndarray]:
    """rnnkit weights of one layer/direction -> [weight_ih, weight_hh, (bias_ih, bias_hh)] in torch layout."""
    kernel, recurrent = np.asarray(weights[0]), np.asarray(weights[1])
    w_ih, w_hh = kernel.T, recurrent.T
    if cls is GRU:
        w_ih, w_hh = _gru_swap(w_ih, 0), _gru_swap(w_hh, 0)
    out = [w_ih, w_hh]
    if use_bias:
        bias = np.asarray(weights[2])
        if cls is GRU:
            out += [_gru_swap(bias[0], 0), _gru_swap(bias[1], 0)]
        else:
            out += [bias, np.zeros_like(bias)]
    return out


def to_torch(model_or_layers: Any):
    """Convert a stack of rnnkit recurrent layers into one ``torch.nn.RNN``, ``LSTM`` or ``GRU``.

    Args:
        model_or_layers: a ``Sequential``, a list of layers, or a single layer. Every layer
            must be a built ``SimpleRNN``, ``LSTM`` or ``GRU``, or a
            ``Bidirectional(..., merge_mode="concat")`` of one; all of the same cell type,
            ``units``, activation, ``use_bias`` and directionality, each feeding the next
            (every layer but the last with ``return_sequences=True``). ``Input`` layers in a
            list are skipped; any other layer (``Dense``, ``Dropout``, ...) is refused, so to
            convert the recurrent part of a larger model pass ``model.layers[:n]``.

    Returns:
        A ``torch.nn.RNN`` (``nonlinearity`` tanh or relu), ``LSTM`` or ``GRU`` with
        ``batch_first=True``, ``num_layers`` the number of layers, ``bidirectional`` as the
        layers, ``bias`` as ``use_bias``, in the dtype of the weights, holding copies of them.
        For SimpleRNN and LSTM the Keras bias goes into ``bias_ih`` and ``bias_hh`` is zero.
        torch returns the whole sequence and ``h_n`` (and ``c_n``) whatever the last layer's
        ``return_sequences``; its ``output[:, -1]`` is rnnkit's last output for a
        unidirectional stack.

    Notes:
        Training-time settings are not carried over: the module gets ``dropout=0`` (rnnkit's
        ``dropout``/``recurrent_dropout`` are per-sequence masks torch's modules do not have),
        and ``stateful`` carry and masking are properties of how the layers are called.

    Raises:
        TypeError: something other than recurrent layers, or a cell type torch lacks.
        ValueError: what torch cannot express: mixed cell types, units, activations,
            ``use_bias`` or directionality; ``GRU(reset_after=False)``; ``go_backwards`` on a
            layer that is not the backward half of a Bidirectional; a merge_mode other than
            ``"concat"``; a layer not returning sequences into the next; unbuilt layers.
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is installed where this is tested
        raise ImportError("to_torch needs PyTorch: pip install torch.") from exc
    from rnnkit.models import Sequential

    if isinstance(model_or_layers, Sequential):
        layers = list(model_or_layers.layers)
    elif isinstance(model_or_layers, Layer):
        layers = [model_or_layers]
    elif isinstance(model_or_layers, (list, tuple)):
        layers = [layer for layer in model_or_layers
                  if not isinstance(layer, (InputLayer, SymbolicTensor))]   # an Input(...) is skipped
    else:
        raise TypeError(f"to_torch expects a Sequential, a list of rnnkit layers or a layer, got "
                        f"{type(model_or_layers).__name__}.")
    if not layers:
        raise ValueError("to_torch needs at least one recurrent layer, got none.")

    # each layer as (direction layers [forward] or [forward, backward], description)
    stack: list[list[Recurrent]] = []
    for i, layer in enumerate(layers):
        where = f"layer {i} {_describe(layer)}"
        if isinstance(layer, Bidirectional):
            if layer.merge_mode != "concat":
                raise ValueError(f"torch's bidirectional modules concatenate the two directions; {where} has "
                                 f"merge_mode={layer.merge_mode!r}. Use merge_mode='concat'.")
            fwd, bwd = layer.forward_layer, layer.backward_layer
            _check_cell(fwd, f"the forward layer of {where}")
            _check_cell(bwd, f"the backward layer of {where}")
            if fwd.go_backwards or not bwd.go_backwards:
                raise ValueError(f"{where} wraps a layer with go_backwards=True; torch's forward direction reads "
                                 "the sequence first to last. Wrap a layer with go_backwards=False.")
            if type(fwd) is not type(bwd):
                raise ValueError(f"{where} has a {type(fwd).__name__} forward and a {type(bwd).__name__} backward "
                                 "layer; a torch module uses one cell type in both directions.")
            stack.append([fwd, bwd])
        elif isinstance(layer, Recurrent):
            _check_cell(layer, where)
            if layer.go_backwards:
                raise ValueError(
                    f"{where} has go_backwards=True; torch's unidirectional modules read the sequence first to "
                    "last and have no such option. Reverse the inputs instead (x.flip(1)), or use Bidirectional."
                )
            stack.append([layer])
        else:
            raise TypeError(
                f"to_torch converts a stack of recurrent layers (SimpleRNN, LSTM, GRU or Bidirectional of one); "
                f"{where} is not one. To convert the recurrent part of a model, pass model.layers[:n]."
            )

    first = stack[0][0]
    cls, units, use_bias, act, dirs = type(first), first.units, first.use_bias, first.activation.name, len(stack[0])
    for i, (layer, cells) in enumerate(zip(layers, stack)):
        where = f"layer {i} {_describe(layer)}"
        if len(cells) != dirs:
            raise ValueError(f"a torch module is bidirectional in every layer or none; layer 0 is "
                             f"{'bi' if dirs == 2 else 'uni'}directional but {where} is not.")
        for cell in cells:
            if type(cell) is not cls:
                raise ValueError(f"a torch module stacks one cell type; layer 0 is {cls.__name__} but {where} "
                                 f"holds a {type(cell).__name__}.")
            if cell.units != units:
                raise ValueError(f"a torch module has the same hidden size in every layer; layer 0 has "
                                 f"units={units} but {where} has units={cell.units}.")
            if cell.activation.name != act:
                raise ValueError(f"a torch module uses one nonlinearity in every layer; layer 0 uses {act!r} but "
                                 f"{where} uses {cell.activation.name!r}.")
            if cell.use_bias != use_bias:
                raise ValueError(f"a torch module has biases in every layer or none; layer 0 has "
                                 f"use_bias={use_bias} but {where} has use_bias={cell.use_bias}.")
        if i < len(stack) - 1 and not cells[0].return_sequences:
            raise ValueError(f"{where} has return_sequences=False but feeds layer {i + 1}; in a torch module every "
                             "layer passes its whole output sequence to the next.")
        d_in = cells[0].input_shape[-1]
        expected = first.input_shape[-1] if i == 0 else units * dirs
        if d_in != expected or any(c.input_shape[-1] != d_in for c in cells):
            raise ValueError(f"{where} was built for {d_in} input features but the layer before it outputs "
                             f"{expected}; the layers do not form a stack.")

    dtype = np.result_type(*[p.dtype for cells in stack for c in cells for p in c.params.values()])
    torch_dtype = {np.dtype("float64"): torch.float64, np.dtype("float32"): torch.float32,
                   np.dtype("float16"): torch.float16}.get(np.dtype(dtype))
    if torch_dtype is None:  # pragma: no cover - rnnkit builds float16/32/64 only
        raise TypeError(f"to_torch cannot convert weights of dtype {dtype}.")
    kwargs: dict[str, Any] = {"num_layers": len(stack), "bias": use_bias, "batch_first": True,
                              "bidirectional": dirs == 2, "dtype": torch_dtype}
    if cls is SimpleRNN:
        module = torch.nn.RNN(first.input_shape[-1], units, nonlinearity=act, **kwargs)
    elif cls is LSTM:
        module = torch.nn.LSTM(first.input_shape[-1], units, **kwargs)
    else:
        module = torch.nn.GRU(first.input_shape[-1], units, **kwargs)

    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    with torch.no_grad():
        for k, cells in enumerate(stack):
            for cell, suffix in zip(cells, ("", "_reverse")):
                arrays = _keras_to_torch(cls, [cell.params[n] for n in cell.weight_names], use_bias)
                for name, arr in zip(names, arrays):
                    param = getattr(module, f"{name}_l{k}{suffix}")
                    param.copy_(torch.from_numpy(np.ascontiguousarray(arr)).to(torch_dtype))
    return module
