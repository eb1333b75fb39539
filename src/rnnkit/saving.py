"""Save and load a whole model as one safetensors file, with no pickle anywhere.

Layout: the tensors ``layers/<layer name>/<weight name>`` (Keras layout) and, for a
compiled model that has trained, ``optimizer/<slot>``; the ``__metadata__`` of the file
holds JSON strings for the architecture and the compile settings. Writing goes to a
temporary file in the same folder, then ``os.replace``, so a crash never leaves a half
model behind. Reading checks the header against the real file size *before* reading or
allocating anything it claims, so a truncated, foreign or hostile file is a
``ModelFileError`` with a reason, never a raw library traceback or a huge allocation.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from rnnkit import __version__, backend, initializers, optimizers
from rnnkit import losses as losses_module
from rnnkit import metrics as metrics_module
from rnnkit.errors import ModelFileError, ModelFileNotFoundError

FORMAT = "rnnkit"
FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 100 * 1024 * 1024   # safetensors' own limit
_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def _encode_compile(value: Any) -> Any:
    """``compile``'s arguments as JSON: names stay names, loss and metric objects become their configs."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, losses_module.Loss):
        return {"loss": losses_module.serialize(value)}
    if isinstance(value, metrics_module.Metric):
        return {"metric": metrics_module.serialize(value)}
    if isinstance(value, (list, tuple)):
        return [_encode_compile(v) for v in value]
    if isinstance(value, dict):
        return {"dict": {str(k): _encode_compile(v) for k, v in value.items()}}
    raise TypeError(f"cannot save a compile argument of type {type(value).__name__}")


def _decode_compile(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"loss"}:
            return losses_module.deserialize(value["loss"])
        if set(value) == {"metric"}:
            return metrics_module.deserialize(value["metric"])
        if set(value) == {"dict"} and isinstance(value["dict"], dict):
            return {k: _decode_compile(v) for k, v in value["dict"].items()}
        raise ValueError(f"invalid compile setting {value!r}")
    if isinstance(value, list):
        return [_decode_compile(v) for v in value]
    return value


def _compile_config(model) -> dict | None:
    if not model.compiled:
        return None
    args = model._compile_args
    return {"optimizer": optimizers.serialize(model.optimizer), "loss": _encode_compile(args["loss"]),
            "loss_weights": _encode_compile(args["loss_weights"]), "metrics": _encode_compile(args["metrics"])}


def weight_names(model) -> list[str]:
    """The tensor name of every weight in ``get_weights`` order: ``layers/<layer>/<weight>``, with the
    names of enclosing models in front for the layers of a model nested in another."""
    from rnnkit.models import Model

    names: list[str] = []
    seen: set[int] = set()

    def visit(layers, prefix: str) -> None:
        for layer in layers:
            if isinstance(layer, Model):
                visit(layer.layers, f"{prefix}{layer.name}/")
                continue
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            names.extend(f"layers/{prefix}{layer.name}/{key}" for key in layer.params)

    visit(model.layers, "")
    return names


def _write_atomically(blob: bytes, path) -> None:
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileNotFoundError(f"Cannot save to {str(target)!r}: folder {str(folder)!r} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _weight_tensors(model) -> dict[str, np.ndarray]:
    return {name: np.array(w, order="C") for name, w in zip(weight_names(model), model.weights)}


def save_model(model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` atomically (see the module docstring for the layout)."""
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet; give it an input shape or fit it before saving.")
    tensors = _weight_tensors(model)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "rnnkit_version": __version__,
                "dtype": str(model.dtype), "model_config": json.dumps(model.get_config())}
    compile_config = _compile_config(model)
    if compile_config is not None:
        metadata["compile_config"] = json.dumps(compile_config)
        if model.optimizer.iterations:
            for key, value in model.optimizer.get_state().items():
                tensors[f"optimizer/{key}"] = np.array(value, order="C")
    _write_atomically(st_save(tensors, metadata=metadata), path)


def save_weights(model, path: str | os.PathLike) -> None:
    """Write only ``model``'s weights to ``path``, atomically."""
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet; give it an input shape or fit it first.")
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "rnnkit_version": __version__,
                "content": "weights"}
    _write_atomically(st_save(_weight_tensors(model), metadata=metadata), path)


def _read_weights(model, path: Path, tensors: dict) -> list[np.ndarray]:
    weights = []
    for name in weight_names(model):
        if name not in tensors:
            raise _fail(path, f"weight {name!r} is missing.")
        weights.append(tensors[name])
    return weights


def load_weights(model, path: str | os.PathLike) -> None:
    """Set ``model``'s weights from a file written by ``save_weights`` or ``save``; all checked before any is set."""
    path = Path(path)
    header, blob = _read_checked(path)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, "it is a safetensors file but not one written by rnnkit (no rnnkit metadata).")
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet; give it an input shape before loading weights.")
    try:
        tensors = st_load(blob)
    except Exception as exc:
        raise _fail(path, f"the safetensors data could not be read ({exc}).") from None
    try:
        model.set_weights(_read_weights(model, path, tensors))
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise _fail(path, str(exc)) from None


def _fail(path: Any, reason: str) -> ModelFileError:
    return ModelFileError(f"Cannot load {str(path)!r} as an rnnkit model: {reason}")


def _read_checked(path: Path) -> tuple[dict, bytes]:
    """Read the header and the whole file after checking every claim against the file size."""
    if not path.exists():
        raise ModelFileNotFoundError(f"No model file at {str(path)!r}.")
    if not path.is_file():
        raise _fail(path, "it is not a regular file.")
    size = path.stat().st_size
    if size == 0:
        raise _fail(path, "the file is empty.")
    if size < 8:
        raise _fail(path, f"the file has only {size} bytes, too few for a safetensors header.")
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        if header_len > MAX_HEADER_BYTES or header_len > size - 8:
            raise _fail(path, f"its header claims {header_len} bytes but the file holds {size - 8} after the "
                              "length field; the file is truncated, corrupted or not a safetensors file.")
        raw_header = f.read(header_len)
        try:
            header = json.loads(raw_header.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise _fail(path, "its header is not valid JSON; it is not a safetensors file.") from None
        if not isinstance(header, dict):
            raise _fail(path, "its header is not a JSON object.")
        data_len = size - 8 - header_len
        end_max = 0
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
                raise _fail(path, f"tensor entry {name!r} is malformed.")
            dtype = _DTYPES.get(info["dtype"])
            shape, offsets = info["shape"], info["data_offsets"]
            if dtype is None:
                raise _fail(path, f"tensor {name!r} has unsupported dtype {info['dtype']!r}.")
            if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                    or not isinstance(offsets, list) or len(offsets) != 2
                    or not all(isinstance(o, int) and o >= 0 for o in offsets)):
                raise _fail(path, f"tensor {name!r} has an invalid shape or offsets.")
            begin, end = offsets
            nbytes = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
            if end < begin or end > data_len or end - begin != nbytes:
                raise _fail(path, f"tensor {name!r} claims bytes {begin}..{end} (shape {shape}) but the file "
                                  f"holds {data_len} bytes of data; it is truncated or corrupted.")
            end_max = max(end_max, end)
        if end_max != data_len:
            raise _fail(path, f"the tensors cover {end_max} bytes but the file holds {data_len}; "
                              "it is truncated or has trailing garbage.")
        f.seek(0)
        blob = f.read()
    if len(blob) != size:
        raise _fail(path, "the file changed while it was being read.")
    return header, blob


def load_model(path: str | os.PathLike, compile: bool = True):
    """Load a model written by ``model.save``; predictions are identical to the saved model's."""
    from rnnkit.models.serialization import model_from_config

    path = Path(path)
    header, blob = _read_checked(path)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, "it is a safetensors file but not one written by rnnkit (no rnnkit metadata).")
    if meta.get("format_version") != FORMAT_VERSION:
        raise _fail(path, f"it has format version {meta.get('format_version')!r}; this rnnkit reads "
                          f"version {FORMAT_VERSION}.")
    # Building the model may create at most as many weight values as the file really holds
    # (every weight is made by an initializer, which spends this budget before allocating),
    # so a hostile architecture cannot make loading allocate more than the file.
    budget = sum(int(np.prod(v["shape"])) for k, v in header.items() if k != "__metadata__") + 1
    try:
        config = json.loads(meta["model_config"])
        dtype = str(meta.get("dtype", "float32"))
        with backend.floatx_scope(dtype), initializers.allocation_budget(budget):
            model = model_from_config(config)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RecursionError, json.JSONDecodeError) as exc:
        raise _fail(path, f"its architecture description is invalid ({type(exc).__name__}: {exc}).") from None
    try:
        tensors = st_load(blob)
    except Exception as exc:  # the library's own error type; our checks above should catch it first
        raise _fail(path, f"the safetensors data could not be read ({exc}).") from None
    weights = _read_weights(model, path, tensors)
    try:
        model.set_weights(weights)
    except (ValueError, TypeError) as exc:
        raise _fail(path, str(exc)) from None
    if compile and "compile_config" in meta:
        try:
            cc = json.loads(meta["compile_config"])
            model.compile(optimizer=optimizers.deserialize(cc["optimizer"]), loss=_decode_compile(cc["loss"]),
                          loss_weights=_decode_compile(cc.get("loss_weights")),
                          metrics=_decode_compile(cc.get("metrics")))
            state = {k[len("optimizer/"):]: v for k, v in tensors.items() if k.startswith("optimizer/")}
            if state:
                model.optimizer.set_state(state, model.trainable_weights)
        except (KeyError, TypeError, ValueError, RecursionError, json.JSONDecodeError) as exc:
            raise _fail(path, f"its compile settings are invalid ({type(exc).__name__}: {exc}).") from None
    return model
