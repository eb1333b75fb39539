"""``compile``'s arguments per model output, and the running totals that become the logs.

Each output of a model is a ``Head``: its name (the layer that computes it, or its key when the
outputs were given as a dict), its loss, its loss weight and its metrics. ``loss``,
``loss_weights`` and ``metrics`` may be given once for all outputs, as a list in output order,
or as a dict keyed by output name, as in Keras 3. The logs are named as Keras 3 names them:
``loss`` (the weighted total, regularization included), and with several outputs
``<output>_loss`` and ``<output>_<metric>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from rnnkit import losses as losses_module
from rnnkit import metrics as metrics_module


@dataclass
class Head:
    """One model output as training sees it."""

    name: str
    shape: tuple                         # without the batch axis
    loss: losses_module.Loss | None = None
    weight: float = 1.0
    metric_requests: list = field(default_factory=list)
    metrics: list | None = None          # Metric objects, made when the first targets are seen

    def metric_objects(self, y: np.ndarray) -> list:
        if self.metrics is None:
            self.metrics = [metrics_module.get(m, self.loss, y.shape, (None, *self.shape))
                            for m in self.metric_requests]
        return self.metrics


def _per_output(value: Any, names: list[str], what: str, single_is_list: bool) -> list:
    """``value`` given once, as a list in output order, or as a dict by output name: one entry per output."""
    n = len(names)
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"compile got {what} for {unknown}, which are not outputs of the model; "
                             f"its outputs are {names}.")
        return [value.get(name) for name in names]
    if isinstance(value, (list, tuple)) and not (single_is_list and n == 1):
        if len(value) != n:
            raise ValueError(
                f"compile got {what} as a list of {len(value)}, but the model has {n} output(s) {names}; give one "
                "entry per output (None for none) or a dict keyed by output name."
            )
        return list(value)
    return [value] * n


def make_heads(names: list[str], shapes: list[tuple], loss: Any, loss_weights: Any, metrics: Any) -> list[Head]:
    """Check and spread ``compile``'s ``loss``, ``loss_weights`` and ``metrics`` over the outputs."""
    if loss is None:
        raise ValueError(
            "compile needs a loss, e.g. loss='categorical_crossentropy'. "
            f"Valid loss names are: {', '.join(sorted(losses_module._TABLE))}."
        )
    per_loss = _per_output(loss, names, "loss", single_is_list=False)
    if all(entry is None for entry in per_loss):
        raise ValueError(f"compile got no loss for any output of {names}.")
    losses = [None if entry is None else losses_module.get(entry) for entry in per_loss]
    weights = _per_output(1.0 if loss_weights is None else loss_weights, names, "loss_weights", single_is_list=False)
    for w, name in zip(weights, names):
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float, np.floating))
                              or not math.isfinite(w)):
            raise ValueError(f"loss_weights must be finite numbers, got {w!r} for output '{name}'.")
    if metrics is None:
        per_metrics: list = [[] for _ in names]
    elif len(names) == 1:
        m = metrics.get(names[0], []) if isinstance(metrics, dict) else metrics
        if isinstance(metrics, dict) and any(k not in names for k in metrics):
            raise ValueError(f"compile got metrics for {[k for k in metrics if k not in names]}, which are not "
                             f"outputs of the model; its output is {names}.")
        per_metrics = [m]
    else:
        if isinstance(metrics, (str, metrics_module.Metric)):
            raise ValueError(
                f"The model has {len(names)} outputs {names}: give metrics as a list with one entry per output "
                "(a metric, a list of metrics or None) or a dict keyed by output name."
            )
        per_metrics = _per_output(metrics, names, "metrics", single_is_list=False)
    heads = []
    for name, shape, loss_obj, w, m in zip(names, shapes, losses, weights, per_metrics):
        if isinstance(m, (str, metrics_module.Metric)):
            m = [m]
        m = list(m or [])
        for entry in m:
            metrics_module.check_name(entry)
        heads.append(Head(name=name, shape=tuple(shape), loss=loss_obj, weight=1.0 if w is None else float(w),
                          metric_requests=m))
    return heads


def log_names(heads: Sequence[Head]) -> tuple[list[str], list[list[str]]]:
    """``([per-output loss names], [[metric names] per output])``; empty loss names for one output."""
    multi = len(heads) > 1
    loss_names = [f"{h.name}_loss" for h in heads if h.loss is not None] if multi else []
    metric_names = []
    for h in heads:
        names = [m if isinstance(m, str) else m.name for m in h.metric_requests]
        metric_names.append([f"{h.name}_{n}" for n in names] if multi else names)
    return loss_names, metric_names


class Totals:
    """Running, sample-weighted sums of the losses and metrics over one epoch (or one evaluation)."""

    def __init__(self, heads: Sequence[Head], ys: list):
        self.heads = list(heads)
        self.loss_names, self.metric_names = log_names(self.heads)
        self.metric_objs = [h.metric_objects(y) if y is not None else [] for h, y in zip(self.heads, ys)]
        self.loss_sum = 0.0
        self.head_sums = [0.0] * len(self.loss_names)
        self.samples = 0
        self.sums = [[0.0] * len(objs) for objs in self.metric_objs]
        self.counts = [[0.0] * len(objs) for objs in self.metric_objs]

    def add(self, total: float, head_losses: list[float], ys: list, outs: list, masks: list) -> None:
        n = next(len(y) for y in ys if y is not None)
        self.loss_sum += total * n
        self.samples += n
        if self.loss_names:                # several outputs: each one's own loss is logged too
            for i, value in enumerate(head_losses):
                self.head_sums[i] += value * n
        for k, (objs, y, out, mask) in enumerate(zip(self.metric_objs, ys, outs, masks)):
            for j, m in enumerate(objs):
                s, c = m.update(y, out, mask)
                self.sums[k][j] += s
                self.counts[k][j] += c

    @property
    def n_metric_values(self) -> int:
        """Length of ``metric_increments``' vector: a sum and a count per metric."""
        return 2 * sum(len(objs) for objs in self.metric_objs)

    def metric_increments(self, ys: list, outs: list, masks: list, into: np.ndarray) -> None:
        """Add one batch's metric sums and counts to ``into`` (flat: sum, count, sum, count, ...).

        They are additive: the sums over several shards of a batch (ranks, micro-batches) are
        those of the whole batch, which is what data-parallel training reduces.
        """
        i = 0
        for objs, y, out, mask in zip(self.metric_objs, ys, outs, masks):
            for m in objs:
                s, c = m.update(y, out, mask)
                into[i] += s
                into[i + 1] += c
                i += 2

    def add_reduced(self, total: float, head_losses: list[float], n: int, increments: np.ndarray) -> None:
        """Add a batch already reduced over its shards: its loss, per-output losses, sample count, metrics."""
        self.loss_sum += total * n
        self.samples += n
        if self.loss_names:
            for i, value in enumerate(head_losses):
                self.head_sums[i] += value * n
        i = 0
        for k, objs in enumerate(self.metric_objs):
            for j in range(len(objs)):
                self.sums[k][j] += float(increments[i])
                self.counts[k][j] += float(increments[i + 1])
                i += 2

    def logs(self) -> dict[str, float]:
        count = max(self.samples, 1)
        logs = {"loss": self.loss_sum / count}
        for name, s in zip(self.loss_names, self.head_sums):
            logs[name] = s / count
        for names, objs, sums, counts in zip(self.metric_names, self.metric_objs, self.sums, self.counts):
            for name, m, s, c in zip(names, objs, sums, counts):
                logs[name] = m.result(s, c)
        return logs
