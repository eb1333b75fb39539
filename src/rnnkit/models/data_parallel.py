"""Training updates made of several pieces: the shards of the ranks, and micro-batches.

``fit`` uses this when ``distributed=`` is given or ``steps_per_update > 1``. One update is the
gradient of one *global batch*: with ``steps_per_update=k`` that is k consecutive batches, and
with several ranks each of those batches is split between them, in rank order. Every piece runs
its forward and backward like a normal step; its gradient is added to one flat buffer scaled by
its weight ``w`` (its sample count, or for a masked loss its number of unmasked positions), and
after the pieces (and one ``Allreduce`` of the buffer when there are several ranks):

    g = (sum over pieces of w_p * g_p) / (sum over pieces of w_p)      # (number of weights,)

which is the gradient of the loss's mean over the whole global batch: the update one process
makes on that batch, up to rounding. The loss, each output's loss and the metrics' sums ride in
the same buffer, so every rank logs the global batch's values. Weight penalties (regularizers)
depend only on the weights, which every rank holds identically: they are added once, after.

One case has no exact weighting: several outputs with losses (or an activity regularizer) where
a loss is masked, since each output's mean then has its own denominator over the global batch.
It is refused with an explanation.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

from rnnkit.diagnostics.snapshot import StepSnapshot, _targets
from rnnkit.models import data


def shard(m: int, size: int, rank: int) -> slice:
    """The part of ``m`` positions rank ``rank`` of ``size`` takes: contiguous, sizes differing by at most one."""
    base, extra = divmod(m, size)
    lo = rank * base + min(rank, extra)
    return slice(lo, lo + base + (1 if rank < extra else 0))


class PieceUpdates:
    """Computes each update of an epoch from the pieces this rank holds, reduced over the ranks."""

    def __init__(self, model: Any, collective: Any, micro_batch: int, steps_per_update: int, n: int, ys: list,
                 totals: Any):
        self.model = model
        self.collective = collective
        self.rank = 0 if collective is None else collective.rank
        self.size = 1 if collective is None else collective.size
        self.micro = micro_batch                                # samples in one global micro-batch
        self.k = steps_per_update
        self.n = n
        self.steps = math.ceil(n / (self.micro * self.k))
        self.params = [(layer, name) for layer in model.leaf_layers() for name in layer.trainable_weight_names]
        dtypes = {layer.params[name].dtype for layer, name in self.params}
        dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)
        self.n_grads = sum(layer.params[name].size for layer, name in self.params)
        self.loss_heads = [k for k, (h, y) in enumerate(zip(model.heads, ys)) if h.loss is not None and y is not None]
        self.activity = any(node.layer.activity_regularizer is not None for node in model.graph.nodes)
        # a batch's values (training update or validation batch), summed over its pieces and ranks:
        # [W (sum of weights), weighted loss, weighted loss per output, metric sums and counts]
        self.width = 2 + len(self.loss_heads) + totals.n_metric_values
        # the training buffer: [gradients | values | failed ranks]
        self.buffer = np.zeros(self.n_grads + self.width + 1, dtype=dtype)
        self.values = self.buffer[self.n_grads:self.n_grads + self.width]
        views, offset = {}, 0
        for layer, name in self.params:
            p = layer.params[name]
            views[(id(layer), name)] = self.buffer[offset:offset + p.size].reshape(p.shape)
            offset += p.size
        self.grad_views = views
        self.grads = list(views.values())

    # -- which samples ---------------------------------------------------------------------
    def batch_indices(self, order: np.ndarray | None, step: int) -> np.ndarray:
        """The global batch of update ``step``: positions into the epoch's data."""
        lo = step * self.micro * self.k
        hi = min(self.n, lo + self.micro * self.k)
        return np.arange(lo, hi) if order is None else order[lo:hi]

    def my_pieces(self, indices: np.ndarray) -> list[np.ndarray]:
        """This rank's share of each micro-batch of ``indices`` (empty shares left out)."""
        pieces = []
        for lo in range(0, len(indices), self.micro):
            part = indices[lo:lo + self.micro][shard(min(self.micro, len(indices) - lo), self.size, self.rank)]
            if len(part):
                pieces.append(part)
        return pieces

    # -- one update ------------------------------------------------------------------------
    def update(self, xs: list, ys: list, order: np.ndarray | None, step: int, totals: Any, guard: Any,
               where: tuple) -> tuple[float, list[float], float, bool]:
        """Compute, reduce and apply one update; returns ``(loss, output losses, gradient norm, clipped)``."""
        model = self.model
        indices = self.batch_indices(order, step)
        buf = self.buffer
        buf.fill(0)
        snapshot = StepSnapshot(model)
        error = None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):    # reported by the guard instead
            reg = model._regularization_penalty()
            try:
                for piece in self.my_pieces(indices):
                    self._add_piece(data.take(xs, piece), data.take(ys, piece), reg, totals)
            except Exception as exc:            # every rank must hear of it, or the others would wait forever
                if self.collective is None:
                    raise
                error = exc
                buf[-1] = 1
            if self.collective is not None:
                self.collective.allreduce(buf)
                if buf[-1] != 0:
                    self.collective.fail(error)
            weight, total, head_losses = self._means(self.values, reg)
            buf[:self.n_grads] /= weight
            for layer in model.graph.regularized:
                trainable = layer.trainable_weight_names
                for name, regularizer in layer.regularizers.items():
                    if name in trainable:
                        self.grad_views[(id(layer), name)] += regularizer.gradient(layer.params[name])
            weights = [layer.params[name] for layer, name in self.params]
            norm, clipped = model._apply_update(weights, self.grads, total, guard, snapshot, where,
                                                lambda: (data.take(xs, indices), data.take(ys, indices)))
        totals.add_reduced(total, head_losses, len(indices), self._metrics(self.values))
        return total, head_losses, norm, clipped

    def _add_values(self, values: np.ndarray, w: float, total: float, reg: float, head_losses: list[float],
                    ys: list, run: Any, masks: list, totals: Any) -> None:
        """Add one piece's weighted loss, output losses and metric sums to a batch's ``values``."""
        values[0] += w
        values[1] += w * (total - reg)
        values[2:2 + len(head_losses)] += w * np.asarray(head_losses, dtype=values.dtype)
        totals.metric_increments(ys, self.model._outputs(run), masks, self._metrics(values))

    def _means(self, values: np.ndarray, reg: float) -> tuple[float, float, list[float]]:
        """``(sum of weights, loss, [loss of each output])`` of a batch's reduced ``values``."""
        weight = max(float(values[0]), 1.0)
        heads = [float(v) / weight for v in values[2:2 + len(self.loss_heads)]]
        return weight, float(values[1]) / weight + reg, heads

    def _metrics(self, values: np.ndarray) -> np.ndarray:
        return values[2 + len(self.loss_heads):self.width]

    def _weight(self, masks: list, n: int) -> float:
        """A piece's weight in the global mean: its unmasked positions for a masked loss, else its samples."""
        masked = [k for k in self.loss_heads if masks[k] is not None]
        if not masked:
            return float(n)
        if len(self.loss_heads) > 1 or self.activity:
            raise ValueError(
                "Training on several ranks or with steps_per_update > 1 needs the loss of the whole global batch "
                f"as one weighted mean of its pieces, but output(s) {[self.model.output_names[k] for k in masked]} "
                "have a masked loss while the model has "
                + ("several outputs with losses" if len(self.loss_heads) > 1 else "an activity regularizer")
                + ": their means have different denominators. Train on one process with steps_per_update=1, or "
                "remove the mask from those outputs.")
        return float(masks[masked[0]].sum())

    def _add_piece(self, xs: list, ys: list, reg: float, totals: Any) -> None:
        model = self.model
        run = model.graph.run(xs, True)
        model._run = run
        total, head_losses, out_grads, fused = model._losses(run, ys)
        masks = model._loss_masks(run)
        w = self._weight(masks, len(xs[0]))
        model.graph.backward(run, out_grads, fused)
        for view, (layer, name) in zip(self.grads, self.params):
            view += w * layer.grads[name]
        self._add_values(self.values, w, total, reg, head_losses, ys, run, masks, totals)

    # -- validation ------------------------------------------------------------------------
    def evaluate(self, xs: list, ys: list, totals: Any) -> dict[str, float]:
        """The validation logs of ``xs, ys`` in global batches of ``micro`` samples split between the ranks
        (one ``Allreduce`` for all of them): equal to one process evaluating with that batch size."""
        model = self.model
        n = len(xs[0])
        batches = list(range(0, n, self.micro))
        rows = np.zeros((len(batches), self.width + 1), dtype=np.float64)     # values + failed ranks
        error = None
        reg = model._regularization_penalty()
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for b, lo in enumerate(batches):
                    m = min(self.micro, n - lo)
                    part = shard(m, self.size, self.rank)
                    if part.stop == part.start:
                        continue
                    index = slice(lo + part.start, lo + part.stop)
                    xb, yb = data.take(xs, index), data.take(ys, index)
                    run = model.graph.run(xb, False, cache=False)
                    model._run = run
                    total, head_losses, _, _ = model._losses(run, yb)
                    masks = model._loss_masks(run)
                    w = self._weight(masks, len(xb[0]))
                    self._add_values(rows[b, :self.width], w, total, reg, head_losses, yb, run, masks, totals)
        except Exception as exc:
            if self.collective is None:
                raise
            error = exc
            rows[0, -1] = 1
        if self.collective is not None:
            self.collective.allreduce(rows)
            if rows[:, -1].any():
                self.collective.fail(error)
        for b, lo in enumerate(batches):
            _, total, heads = self._means(rows[b, :self.width], reg)
            totals.add_reduced(total, heads, min(self.micro, n - lo), self._metrics(rows[b, :self.width]))
        return totals.logs()


# -- setting the ranks up alike ---------------------------------------------------------------
def fingerprint(model: Any, arguments: dict, arrays: list) -> bytes:
    """A digest of what must be equal on every rank: the architecture, the optimizer, fit's arguments,
    the data's shapes and types."""
    described = {      # the layers' kinds and weight shapes, not their names (a rank may have built other models)
        "model": [[type(layer).__name__, [list(w.shape) for w in layer.params.values()]]
                  for layer in model.leaf_layers()],
        "optimizer": [type(model.optimizer).__name__, model.optimizer.get_config()],
        "losses": [None if h.loss is None else type(h.loss).__name__ for h in model.heads],
        "arguments": arguments,
        "data": [None if a is None else [list(a.shape), str(a.dtype)] for a in arrays],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=repr).encode()).digest()


def broadcast_training_state(model: Any, collective: Any) -> None:
    """Give every rank rank 0's weights, optimizer state and learning rate, and shuffling generator."""
    for w in model.weights:
        collective.broadcast(w)
    optimizer = model.optimizer
    params = model.trainable_weights
    has_state = np.array([1 if optimizer._slots is not None else 0], dtype=np.int64)
    collective.broadcast(has_state)
    if has_state[0]:
        if collective.rank == 0:
            state = {k: np.ascontiguousarray(v) for k, v in optimizer.get_state().items()}
        else:
            state = {"iterations": np.zeros(1, dtype=np.int64)}
            for i, slots in enumerate(optimizer._init_slots(p) for p in params):
                for key, value in slots.items():
                    state[f"{i}/{key}"] = np.empty_like(value)
        for key in sorted(state):
            collective.broadcast(state[key])
        if collective.rank != 0:
            optimizer.set_state(state, params)
    rate = np.array([optimizer.learning_rate], dtype=np.float64)
    collective.broadcast(rate)
    optimizer.learning_rate = float(rate[0])
    shuffle_state = json.loads(collective.broadcast_text(json.dumps(model._shuffle_rng.bit_generator.state)))
    model._shuffle_rng.bit_generator.state = shuffle_state


def separate_dropout_streams(model: Any, rank: int) -> None:
    """Rank r > 0 draws its dropout masks from its generators jumped r times (PCG64's 2**127 steps): the
    ranks' streams never overlap, and rank 0 draws exactly what one process would."""
    if rank == 0:
        return
    for layer in _targets(model)[1]:
        layer._rng = np.random.Generator(layer._rng.bit_generator.jumped(rank))


def learning_rate_schedule(base: float, size: int, options: Any, steps: int):
    """``rate(epoch, step)`` for ``DataParallel(scale_learning_rate=True, warmup_epochs=w)``, or None."""
    if not options.scale_learning_rate or size == 1:
        return None
    target = base * size
    warmup_steps = options.warmup_epochs * steps

    def rate(epoch: int, step: int) -> float:
        if warmup_steps <= 0:
            return target
        done = min(1.0, (epoch * steps + step + 1) / warmup_steps)
        return base + (target - base) * done

    return rate


__all__ = ["PieceUpdates", "shard", "fingerprint", "broadcast_training_state", "separate_dropout_streams",
           "learning_rate_schedule"]
