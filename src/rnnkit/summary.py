"""The text of ``model.summary()``: a Keras-like table of layers, shapes and parameter counts."""

from __future__ import annotations


def _format_bytes(n: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def summary_lines(model) -> list[str]:
    names = [f"{layer.name} ({type(layer).__name__})" for layer in model.layers]
    shapes = ["?" if layer.output_shape is None else str((None, *layer.output_shape)) for layer in model.layers]
    # Keras' column widths, widened where a name or shape would run into the next column
    widths = (max([33, *(len(n) + 2 for n in names)]), max([26, *(len(s) + 2 for s in shapes)]), 12)
    total_width = sum(widths)

    def row(*cells: str) -> str:
        return "".join(f" {c:<{w - 1}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths)))

    lines = [f'Model: "{model.name}"', "_" * total_width, row("Layer (type)", "Output Shape", "Param #"),
             "=" * total_width]
    total = 0
    itemsize = model.dtype.itemsize
    for i, (layer, name, shape) in enumerate(zip(model.layers, names, shapes)):
        count = layer.count_params() if layer.built else 0
        total += count
        params = f"{count:,}" if layer.built else "0 (unbuilt)"
        lines.append(row(name, shape, params))
        lines.append("=" * total_width if i == len(model.layers) - 1 else "")
    if not model.layers:
        lines.append("=" * total_width)
    lines += [f" Total params: {total:,} ({_format_bytes(total * itemsize)})",
              f" Trainable params: {total:,} ({_format_bytes(total * itemsize)})",
              " Non-trainable params: 0 (0 B)", "_" * total_width]
    return lines
