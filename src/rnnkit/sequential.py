"""``Sequential``: a stack of layers trained with ``compile`` / ``fit``, as in Keras."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from rnnkit import backend, optimizers
from rnnkit import losses as losses_module
from rnnkit import metrics as metrics_module
from rnnkit.callbacks import Callback, History
from rnnkit.checks import as_numeric_array, check_input_shape
from rnnkit.diagnostics.nan_origin import NonFiniteGuard
from rnnkit.diagnostics.snapshot import StepSnapshot
from rnnkit.diagnostics.telemetry import GradientNorms, clipping_on, pre_clip_norm
from rnnkit.errors import NotCompiledError
from rnnkit.layers.base import Layer, check_positive_int, normalize_shape
from rnnkit.layers.embedding import Embedding
from rnnkit.layers.input_layer import InputLayer
from rnnkit.progress import Progbar


class Sequential:
    """A linear stack of layers.

    Args:
        layers: layers to add, in order (an ``Input`` first, or ``input_shape=`` on the first).
        name: the model's name (default ``"sequential"``).
        seed: makes everything random in the model reproducible: layers without their own
            ``seed=`` draw their initial weights from it, and ``fit`` shuffles with it.
    """

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None,
                 seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}: {seed!r}.")
        self.name = name or "sequential"
        self.seed = None if seed is None else int(seed)
        self.layers: list[Layer] = []
        self.input_shape: tuple | None = None   # without the batch axis
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses_module.Loss | None = None
        self.metrics_names_requested: list[Any] = []
        self._metrics: list[metrics_module.Metric] | None = None
        self.stop_training = False
        self.history: History | None = None
        self._output_mask: np.ndarray | None = None
        self._shuffle_rng = np.random.default_rng(None if seed is None else [self.seed, 2**31 - 1])
        for layer in layers or []:
            self.add(layer)

    # -- building ---------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer; it is built at once when the model's input shape is known."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects an rnnkit layer, got {type(layer).__name__}: {layer!r}.")
        if isinstance(layer, InputLayer):
            if self.layers or self.input_shape is not None:
                raise ValueError("An Input must be the first thing added to a Sequential model.")
            self.input_shape = layer.input_shape_arg
            return
        if any(layer is other for other in self.layers):
            raise ValueError(f"Layer '{layer.name}' is already in model '{self.name}'.")
        if getattr(layer, "return_state", False) or getattr(layer, "merge_mode", "concat") is None:
            what = "return_state=True" if getattr(layer, "return_state", False) else "merge_mode=None"
            raise ValueError(
                f"Layer '{layer.name}' has {what} and so returns several arrays, which a "
                "Sequential model cannot pass on; call the layer directly to get them."
            )
        if isinstance(layer, Embedding) and self.layers:
            raise ValueError(f"Embedding layer '{layer.name}' takes integer indices and must be the first layer.")
        taken = {other.name for other in self.layers}
        if layer.name is None:
            base, i, name = layer.default_name(), 0, layer.default_name()
            while name in taken:
                i += 1
                name = f"{base}_{i}"
            new_name = name
        elif layer.name in taken:
            raise ValueError(f"Model '{self.name}' already has a layer named '{layer.name}'; names must be unique.")
        else:
            new_name = layer.name
        input_shape = self.input_shape
        if not self.layers and input_shape is None and layer.input_shape_arg is not None:
            input_shape = layer.input_shape_arg
        old = (layer.name, layer.fallback_seed)
        layer.name = new_name
        if self.seed is not None and layer.seed is None:
            layer.fallback_seed = [self.seed, len(self.layers)]
        if input_shape is not None:
            try:
                self._build_layer(layer, self._shape_before(len(self.layers), input_shape))
            except Exception:
                layer.name, layer.fallback_seed = old   # leave model and layer as they were
                raise
        self.input_shape = input_shape
        layer.need_input_grad = bool(self.layers)   # no one needs dL/dx of the first layer
        self.layers.append(layer)

    def _shape_before(self, index: int, input_shape: tuple) -> tuple:
        return input_shape if index == 0 else self.layers[index - 1].output_shape

    @staticmethod
    def _build_layer(layer: Layer, shape: tuple) -> None:
        if layer.built:
            if tuple(layer.input_shape) != tuple(shape):
                raise ValueError(
                    f"Layer '{layer.name}' was built for inputs {(None, *layer.input_shape)} and cannot "
                    f"take {(None, *shape)} here."
                )
            return
        layer.build(shape)

    def build(self, input_shape: Any) -> None:
        """Build every layer for inputs of ``input_shape`` *including* the batch axis, as Keras."""
        shape = normalize_shape(tuple(input_shape)[1:]) if input_shape is not None else None
        if shape is None:
            raise ValueError("build needs an input shape such as (None, timesteps, features).")
        newly_built = []
        try:
            for i, layer in enumerate(self.layers):
                if not layer.built:
                    newly_built.append(layer)
                self._build_layer(layer, self._shape_before(i, shape))
        except Exception:
            for layer in newly_built:   # leave the model as it was: unbuilt, no input shape
                layer.built, layer.params, layer.grads = False, {}, {}
                layer.input_shape = layer.output_shape = None
            raise
        self.input_shape = shape

    @property
    def built(self) -> bool:
        return bool(self.layers) and all(layer.built for layer in self.layers)

    def _require_layers(self) -> None:
        if not self.layers:
            raise ValueError(f"Model '{self.name}' has no layers; add some with model.add(...).")

    def _ensure_built(self, x: np.ndarray) -> None:
        self._require_layers()
        if not self.built:
            shape = self.input_shape
            if shape is None:
                if x.ndim < 2:
                    raise ValueError(f"Model inputs need a batch axis and features, got shape {x.shape}.")
                shape = tuple(x.shape[1:])
            self.build((None, *shape))

    @property
    def output_shape(self) -> tuple:
        return (None, *self.layers[-1].output_shape)

    @property
    def dtype(self) -> np.dtype:
        for layer in self.layers:
            if layer.params:
                return layer.dtype
        return backend.float_dtype()

    # -- weights ----------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        """The live weight arrays (not copies), in ``get_weights`` order."""
        return [p for layer in self.layers for p in layer.params.values()]

    def get_weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set all weights (Keras layout, ``get_weights`` order); everything is checked first."""
        if not self.built:
            raise ValueError(f"Model '{self.name}' is not built yet; give it an input shape first.")
        weights = list(weights)
        total = sum(len(layer.params) for layer in self.layers)
        if len(weights) != total:
            per_layer = "; ".join(
                f"{layer.name}: " + (", ".join(f"{k} {v.shape}" for k, v in layer.params.items()) or "none")
                for layer in self.layers)
            raise ValueError(f"Model '{self.name}' expects {total} weight arrays ({per_layer}), got {len(weights)}.")
        checked, i = [], 0
        for layer in self.layers:
            n = len(layer.params)
            checked.append(layer.check_weights(weights[i:i + n]))
            i += n
        for layer, arrays in zip(self.layers, checked):
            for name, arr in zip(layer.weight_names, arrays):
                layer.params[name][...] = arr

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    # -- compile ----------------------------------------------------------------
    def compile(self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Sequence[Any] | None = None) -> None:
        """Choose the optimizer, loss and metrics (names or objects, as in Keras)."""
        if loss is None:
            raise ValueError(
                "compile needs a loss, e.g. loss='categorical_crossentropy'. "
                f"Valid loss names are: {', '.join(sorted(losses_module._TABLE))}."
            )
        if isinstance(metrics, (str, metrics_module.Metric)):
            metrics = [metrics]
        metrics = list(metrics or [])
        for m in metrics:
            metrics_module.check_name(m)
        opt = optimizers.get(optimizer)
        loss_obj = losses_module.get(loss)
        self.optimizer, self.loss, self.metrics_names_requested = opt, loss_obj, metrics
        self._metrics = None

    @property
    def compiled(self) -> bool:
        return self.optimizer is not None and self.loss is not None

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise NotCompiledError(
                f"Model '{self.name}' must be compiled before {what}: call "
                "model.compile(optimizer='adam', loss='categorical_crossentropy') first."
            )

    # -- data checks --------------------------------------------------------------
    def _prepare_x(self, x: Any, what: str = "x") -> np.ndarray:
        self._require_layers()
        arr = as_numeric_array(x, what, dtype=self.dtype)
        self._ensure_built(arr)
        check_input_shape(arr, self.input_shape, self.name)
        if isinstance(self.layers[0], Embedding):
            self.layers[0].check_indices(arr)   # every batch, before the first update
        return arr

    def _prepare_y(self, y: Any, n: int, what: str = "y") -> np.ndarray:
        out_shape = self.layers[-1].output_shape
        loss = self.loss
        if loss is not None and loss.sparse:
            arr = as_numeric_array(y, what)
            if not (_matches(arr.shape[1:], out_shape[:-1]) or _matches(arr.shape[1:], (*out_shape[:-1], 1))):
                raise ValueError(
                    f"{loss.name} expects integer class labels of shape {(None, *out_shape[:-1])}, "
                    f"got {what} of shape {arr.shape}."
                )
            k = out_shape[-1]
            if (arr != np.round(arr)).any() or arr.min() < 0 or arr.max() >= k:
                raise ValueError(
                    f"{what} must hold integer class labels in [0, {k}) for {loss.name}, "
                    f"got values from {arr.min()} to {arr.max()}."
                )
            arr = arr.astype(np.int64)
        else:
            arr = as_numeric_array(y, what, dtype=self.dtype)
            if not _matches(arr.shape[1:], out_shape):
                if arr.ndim == 1 and tuple(out_shape) == (1,):
                    arr = arr[:, None]
                else:
                    hint = ""
                    labels_shape = arr.shape[1:]
                    as_indices = _matches(labels_shape, out_shape[:-1]) or _matches(labels_shape, (*out_shape[:-1], 1))
                    if isinstance(loss, losses_module.CategoricalCrossentropy) and as_indices:
                        hint = (f" For class indices, one-hot encode them with rnnkit.one_hot(y, {out_shape[-1]}) "
                                "or use loss='sparse_categorical_crossentropy'.")
                    raise ValueError(
                        f"Model '{self.name}' outputs {(None, *out_shape)} but {what} has shape {arr.shape}.{hint}"
                    )
        if arr.shape[0] != n:
            raise ValueError(f"x and {what} must have the same number of samples, got {n} and {arr.shape[0]}.")
        return arr

    def _metric_objects(self, y: np.ndarray) -> list[metrics_module.Metric]:
        if self._metrics is None:
            out_shape = (None, *self.layers[-1].output_shape)
            self._metrics = [metrics_module.get(m, self.loss, y.shape, out_shape)
                             for m in self.metrics_names_requested]
        return self._metrics

    # -- the core computation -------------------------------------------------------
    def _forward(self, x: np.ndarray, training: bool,
                 inspect: Callable[[Layer, Any], bool] | None = None) -> np.ndarray:
        """Run every layer, passing the (B, T) timestep mask of padded steps along.

        The mask of the output (or None) is left in ``self._output_mask`` for the loss.
        ``inspect(layer, output)`` is called after each layer; returning True stops there (the
        diagnostics use it to find the first layer whose results are not finite).
        """
        mask = None
        for layer in self.layers:
            if mask is not None and layer.consumes_mask:
                y = layer.forward(x, training=training, mask=mask)
            else:
                y = layer.forward(x, training=training)
            mask = layer.compute_mask(x, mask)
            x = y
            if inspect is not None and inspect(layer, x):
                break
        self._output_mask = mask if (mask is not None and x.ndim >= 3) else None
        return x

    def reset_states(self) -> None:
        """Forget the state carried by every stateful recurrent layer."""
        for layer in self.layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()

    def _fused_loss(self) -> bool:
        """Whether the loss can be computed from the last layer's logits (softmax/sigmoid + CE)."""
        last = self.layers[-1]
        act = getattr(last, "activation", None)
        return (self.loss.fuses_with is not None and act is not None
                and act.name == self.loss.fuses_with and hasattr(last, "backward_from_logits"))

    def _loss_and_backward(self, x: np.ndarray, y: np.ndarray, training: bool) -> tuple[float, np.ndarray]:
        """Forward, loss, and backward through every layer; returns ``(loss, predictions)``."""
        out = self._forward(x, training)
        last = self.layers[-1]
        value, grad = self._loss_value(y, out)
        g = last.backward_from_logits(grad) if self._fused_loss() else last.backward(grad)
        for layer in reversed(self.layers[:-1]):
            if g is None:   # an Embedding: no gradient flows into integer indices
                break
            g = layer.backward(g)
        return value, out

    def _loss_value(self, y: np.ndarray, out: np.ndarray):
        """``(loss, gradient)`` of the last forward pass, from the logits where the loss is fused."""
        if self._fused_loss():
            return self.loss.value_and_grad_from_logits(y, self.layers[-1].logits, self._output_mask)
        return self.loss.value_and_grad(y, out, self._output_mask)

    def _gradients(self) -> list[np.ndarray]:
        return [layer.grads[k] for layer in self.layers for k in layer.params]

    def _train_step(self, x: np.ndarray, y: np.ndarray, guard: NonFiniteGuard,
                    where: tuple | None = None) -> tuple[float, np.ndarray, float, bool]:
        """One update; returns ``(loss, predictions, gradient norm before clipping, whether clipping acted)``.

        A non-finite loss or gradient is caught *before* the update, while the weights and the
        optimizer state are still the last finite ones, and handed to ``guard`` (``where``:
        ``(epoch, epochs, step, steps)`` for its report).
        """
        snapshot = StepSnapshot(self)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):   # reported by the guard instead
            value, out = self._loss_and_backward(x, y, training=True)
            grads = self._gradients()
            norm, clipped, safe = pre_clip_norm(grads, self.optimizer)
            if not (safe and math.isfinite(value)):
                guard(x, y, value, norm, snapshot, where)
            self.optimizer.apply(self.weights, grads)
        return value, out, norm, clipped

    def loss_and_gradients(self, x: Any, y: Any, training: bool = False) -> tuple[float, list[np.ndarray]]:
        """The loss on ``(x, y)`` and its gradient for every weight, aligned with ``get_weights()``."""
        self._require_compiled("loss_and_gradients")
        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        value, _ = self._loss_and_backward(x, y, training=training)
        return value, [g.copy() for g in self._gradients()]

    # -- fit / evaluate / predict -------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = 1, callbacks: Sequence[Callback] | None = None,
            validation_split: float = 0.0, validation_data: tuple | None = None,
            shuffle: bool = True, initial_epoch: int = 0, terminate_on_nan: bool = True) -> History:
        """Train for ``epochs`` epochs; returns a ``History`` (per-epoch ``loss``, metrics, ``val_*``).

        The per-epoch loss is the sample-weighted mean of the batch losses, each computed
        before that batch's update, as Keras reports it. ``History`` also records the global
        gradient norm before clipping: ``grad_norm`` (mean over the epoch's steps) and
        ``grad_norm_max``, ``clip_fraction`` (the fraction of steps the optimizer clipped) when
        clipping is on, and every step's norm in ``history.grad_norms``.

        ``terminate_on_nan`` (an rnnkit extension): when the loss or a gradient is NaN or
        infinite, stop with ``rnnkit.NonFiniteError``, which names the first layer, time step and
        quantity that stopped being finite (also as ``error.report``) and suggests remedies; the
        failed step's update is not applied, so the weights and the optimizer state are the last
        finite ones. With False, training goes on as in Keras, the origin is reported once as a
        ``RuntimeWarning`` and ``History`` counts ``nonfinite_steps`` per epoch.
        """
        self._require_compiled("fit")
        batch_size = 32 if batch_size is None else check_positive_int("batch_size", batch_size)
        epochs = check_positive_int("epochs", epochs)
        verbose = _check_verbose(verbose)
        if not isinstance(initial_epoch, (int, np.integer)) or not 0 <= initial_epoch < epochs:
            raise ValueError(f"initial_epoch must be an integer in [0, epochs={epochs}), got {initial_epoch!r}.")
        if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) \
                or not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be a number in [0, 1), got {validation_split!r}.")
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be rnnkit Callback instances, got {type(cb).__name__}.")
        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val).")
            xv = self._prepare_x(validation_data[0], "validation_data x")
            val = (xv, self._prepare_y(validation_data[1], len(xv), "validation_data y"))
        elif validation_split > 0:
            split_at = int(math.floor(len(x) * (1.0 - validation_split)))
            if split_at == 0 or split_at == len(x):
                raise ValueError(
                    f"validation_split={validation_split} of {len(x)} samples leaves "
                    f"{split_at} for training and {len(x) - split_at} for validation; both need at least one."
                )
            x, y, val = x[:split_at], y[:split_at], (x[split_at:], y[split_at:])
        stateful = [layer.name for layer in self.layers if getattr(layer, "stateful", False)]
        for part, size in (("training", len(x)), ("validation", 0 if val is None else len(val[0]))):
            if stateful and size % batch_size:
                raise ValueError(
                    f"Stateful layer(s) {stateful} need every batch to have the same size, but the {size} "
                    f"{part} samples do not split into batches of {batch_size}; choose a batch_size that "
                    f"divides {size}."
                )
        metric_objs = self._metric_objects(y)

        n = len(x)
        steps = math.ceil(n / batch_size)
        history = History()
        all_callbacks = [history, *callbacks]
        params = {"epochs": epochs, "steps": steps, "verbose": verbose, "batch_size": batch_size}
        for cb in all_callbacks:
            cb.set_model(self)
            cb.set_params(params)
        self.stop_training = False
        self.history = history
        guard = NonFiniteGuard(self, terminate=terminate_on_nan, caller="fit")
        for cb in all_callbacks:
            cb.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for cb in all_callbacks:
                cb.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            order = self._shuffle_rng.permutation(n) if shuffle else None
            bar = Progbar(steps, verbose)
            totals = _Totals(metric_objs)
            norms = GradientNorms(clipping_on(self.optimizer))
            nonfinite_before = guard.count
            for step in range(steps):
                lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
                if order is None:
                    xb, yb = x[lo:hi], y[lo:hi]
                else:
                    idx = order[lo:hi]
                    xb, yb = x[idx], y[idx]
                for cb in all_callbacks:
                    cb.on_train_batch_begin(step)
                value, out, norm, clipped = self._train_step(xb, yb, guard, where=(epoch, epochs, step, steps))
                totals.add(value, yb, out, self._output_mask)
                norms.add(norm, clipped)
                history.grad_norms.append(norm)
                logs = {**totals.logs(), **norms.logs()}
                bar.update(step + 1, logs)
                for cb in all_callbacks:
                    cb.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            epoch_logs = {**totals.logs(), **norms.logs()}
            if not terminate_on_nan:
                epoch_logs["nonfinite_steps"] = guard.count - nonfinite_before
            if val is not None:
                val_logs = self._evaluate_arrays(val[0], val[1], batch_size)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            bar.close(epoch_logs)
            for cb in all_callbacks:
                cb.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        for cb in all_callbacks:
            cb.on_train_end()
        return history

    def _evaluate_arrays(self, x: np.ndarray, y: np.ndarray, batch_size: int,
                         bar: Progbar | None = None) -> dict[str, float]:
        totals = _Totals(self._metric_objects(y))
        for step, lo in enumerate(range(0, len(x), batch_size)):
            xb, yb = x[lo:lo + batch_size], y[lo:lo + batch_size]
            out = self._forward(xb, training=False)
            value, _ = self._loss_value(yb, out)
            totals.add(value, yb, out, self._output_mask)
            if bar is not None:
                bar.update(step + 1, totals.logs())
        logs = totals.logs()
        if bar is not None:
            bar.close(logs)
        return logs

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int | None = None, verbose: int | str = 1,
                 return_dict: bool = False):
        """Loss (and metrics) on ``(x, y)``: a float, a list ``[loss, *metrics]``, or a dict."""
        self._require_compiled("evaluate")
        batch_size = 32 if batch_size is None else check_positive_int("batch_size", batch_size)
        verbose = _check_verbose(verbose)
        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        bar = Progbar(math.ceil(len(x) / batch_size), verbose) if verbose else None
        logs = self._evaluate_arrays(x, y, batch_size, bar)
        return _format_result(logs, return_dict)

    def predict(self, x: Any, batch_size: int | None = None, verbose: int | str = 0) -> np.ndarray:
        """Outputs for ``x``, computed in batches in inference mode (dropout off)."""
        batch_size = 32 if batch_size is None else check_positive_int("batch_size", batch_size)
        verbose = _check_verbose(verbose)
        x = self._prepare_x(x)
        steps = math.ceil(len(x) / batch_size)
        bar = Progbar(steps, verbose) if verbose else None
        outs = []
        for step, lo in enumerate(range(0, len(x), batch_size)):
            outs.append(np.array(self._forward(x[lo:lo + batch_size], training=False)))
            if bar is not None:
                bar.update(step + 1, {})
        if bar is not None:
            bar.close({})
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=0)

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        return self._forward(self._prepare_x(x), training=training)

    def train_on_batch(self, x: Any, y: Any, return_dict: bool = False, terminate_on_nan: bool = True):
        """One update on one batch; returns this batch's loss (and metrics), as Keras.

        A NaN or infinite loss or gradient raises ``rnnkit.NonFiniteError`` without updating,
        as in ``fit``; ``terminate_on_nan=False`` applies the update anyway, with a warning.
        """
        self._require_compiled("train_on_batch")
        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        totals = _Totals(self._metric_objects(y))
        guard = NonFiniteGuard(self, terminate=terminate_on_nan, caller="train_on_batch")
        value, out, _, _ = self._train_step(x, y, guard)
        totals.add(value, y, out, self._output_mask)
        return _format_result(totals.logs(), return_dict)

    def test_on_batch(self, x: Any, y: Any, return_dict: bool = False):
        self._require_compiled("test_on_batch")
        x = self._prepare_x(x)
        y = self._prepare_y(y, len(x))
        return _format_result(self._evaluate_arrays(x, y, len(x)), return_dict)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        return np.array(self._forward(self._prepare_x(x), training=False))

    # -- inspection and saving ----------------------------------------------------------
    def summary(self, print_fn: Callable[[str], Any] | None = None) -> None:
        """Print a Keras-like table of layers, output shapes and parameter counts."""
        from rnnkit.summary import summary_lines

        for line in summary_lines(self):
            (print_fn or print)(line)

    def get_config(self) -> dict:
        return {"name": self.name, "seed": self.seed,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers]}

    def save(self, path) -> None:
        """Write architecture, weights and compile settings to one safetensors file, atomically."""
        from rnnkit.saving import save_model

        save_model(self, path)

    def __repr__(self) -> str:
        return f"<Sequential name={self.name!r} layers={[layer.name for layer in self.layers]}>"


class _Totals:
    """Running, sample-weighted sums of the loss and metrics over one epoch."""

    def __init__(self, metric_objs: list[metrics_module.Metric]):
        self.metric_objs = metric_objs
        self.loss_sum = 0.0
        self.samples = 0
        self.sums = [0.0] * len(metric_objs)
        self.counts = [0] * len(metric_objs)

    def add(self, loss_value: float, y: np.ndarray, out: np.ndarray, mask: np.ndarray | None = None) -> None:
        n = len(y)
        self.loss_sum += loss_value * n
        self.samples += n
        for i, m in enumerate(self.metric_objs):
            s, c = m.update(y, out, mask)
            self.sums[i] += s
            self.counts[i] += c

    def logs(self) -> dict[str, float]:
        logs = {"loss": self.loss_sum / max(self.samples, 1)}
        for m, s, c in zip(self.metric_objs, self.sums, self.counts):
            logs[m.name] = s / max(c, 1)
        return logs


def _matches(shape: tuple, expected: tuple) -> bool:
    """Whether ``shape`` fits ``expected``, where ``None`` in ``expected`` (a variable length) fits any size."""
    return len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))


def _check_verbose(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool):
        return int(verbose)
    if verbose not in (0, 1, 2):
        raise ValueError(
            f"verbose must be 0 (silent), 1 (progress bar), 2 (one line per epoch) or 'auto', got {verbose!r}."
        )
    return int(verbose)


def _format_result(logs: dict[str, float], return_dict: bool):
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values
