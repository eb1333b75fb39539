"""The text of ``model.summary()``: a Keras-like table of layers, shapes and parameter counts.

A functional model gets Keras' fourth column, "Connected to": the tensors each layer call
reads, written ``layer[call][output]``.
"""

from __future__ import annotations


def _format_bytes(n: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def _shape_text(layer, node) -> str:
    if node is not None:
        shapes = [t.shape for t in node.outputs]
        return str(shapes[0]) if len(shapes) == 1 else "[" + ", ".join(map(str, shapes)) + "]"
    if layer.output_shape is None:
        return "?"
    return str((None, *layer.output_shape))


def _connections(model) -> dict[int, list[str]]:
    """layer id -> the ``name[call][output]`` of every tensor its calls read."""
    from rnnkit.models.serialization import _call_indices

    index = _call_indices(model)
    out: dict[int, list[str]] = {}
    for node in model.graph.nodes:
        for t in node.tensor_inputs:
            name, i = index.get(id(t.node), (t.node.layer.name, 0))
            out.setdefault(id(node.layer), []).append(f"{name}[{i}][{t.index}]")
    return out


def summary_lines(model) -> list[str]:
    from rnnkit.models.sequential import Sequential

    functional = not isinstance(model, Sequential)
    layers = model.layers
    nodes = {}   # layer id -> its first call in this model
    if getattr(model, "_graph", None) is not None:
        for layer in layers:
            if type(layer).__name__ == "InputLayer":
                nodes[id(layer)] = layer._inbound_nodes[0]
        for node in model.graph.nodes:
            nodes.setdefault(id(node.layer), node)
    names = [f"{layer.name} ({type(layer).__name__})" for layer in layers]
    shapes = [_shape_text(layer, nodes.get(id(layer))) for layer in layers]
    links = _connections(model) if functional else {}
    # Keras' column widths, widened where a name or shape would run into the next column
    widths = [max([33, *(len(n) + 2 for n in names)]), max([26, *(len(s) + 2 for s in shapes)]), 12]
    if functional:
        widths.append(max([22, *(len(c) + 2 for cs in links.values() for c in cs)]))
    total_width = sum(widths)

    def row(*cells: str) -> str:
        parts = []
        for i, (c, w) in enumerate(zip(cells, widths)):
            parts.append(f"{c:>{w}}" if i == 2 else f" {c:<{w - 1}}")
        return "".join(parts).rstrip() if functional else "".join(parts)

    header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if functional else [])
    lines = [f'Model: "{model.name}"', "_" * total_width, row(*header), "=" * total_width]
    for i, (layer, name, shape) in enumerate(zip(layers, names, shapes)):
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        sources = links.get(id(layer), ["-"]) if functional else []
        lines.append(row(name, shape, params, *(sources[:1] if functional else [])))
        for extra in sources[1:]:
            lines.append(row("", "", "", extra))
        lines.append("=" * total_width if i == len(layers) - 1 else "")
    if not layers:
        lines.append("=" * total_width)
    total = model.count_params() if model.built else 0
    trainable = sum(w.size for w in model.trainable_weights) if model.built else 0
    itemsize = model.dtype.itemsize
    lines += [f" Total params: {total:,} ({_format_bytes(total * itemsize)})",
              f" Trainable params: {trainable:,} ({_format_bytes(trainable * itemsize)})",
              f" Non-trainable params: {total - trainable:,} ({_format_bytes((total - trainable) * itemsize)})",
              "_" * total_width]
    return lines
