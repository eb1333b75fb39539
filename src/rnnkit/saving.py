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


def _compile_config(model) -> dict | None:
    if not model.compiled:
        return None
    names = []
    for m in model.metrics_names_requested:
        if not isinstance(m, str):
            return None  # custom metric objects cannot be restored from names
        names.append(m)
    return {"optimizer": optimizers.serialize(model.optimizer), "loss": model.loss.name, "metrics": names}


def save_model(model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` atomically (see the module docstring for the layout)."""
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet; give it an input shape or fit it before saving.")
    tensors: dict[str, np.ndarray] = {}
    for layer in model.layers:
        for key, value in layer.params.items():
            tensors[f"layers/{layer.name}/{key}"] = np.ascontiguousarray(value)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "rnnkit_version": __version__,
                "dtype": str(model.dtype), "model_config": json.dumps(model.get_config())}
    compile_config = _compile_config(model)
    if compile_config is not None:
        metadata["compile_config"] = json.dumps(compile_config)
        if model.optimizer.iterations:
            for key, value in model.optimizer.get_state().items():
                tensors[f"optimizer/{key}"] = np.ascontiguousarray(value)
    blob = st_save(tensors, metadata=metadata)
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
    from rnnkit.layers import LAYER_CLASSES
    from rnnkit.sequential import Sequential

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
            model = Sequential(name=str(config["name"]), seed=config.get("seed"))
            for entry in config["layers"]:
                cls = LAYER_CLASSES.get(entry.get("class_name")) if isinstance(entry, dict) else None
                if cls is None:
                    name = entry.get("class_name") if isinstance(entry, dict) else entry
                    raise ValueError(f"unknown layer class {name!r}")
                layer_config = dict(entry["config"])
                if not all(isinstance(k, str) for k in layer_config):
                    raise ValueError("layer config keys must be strings")
                model.add(cls(**layer_config))
            if config.get("input_shape") is not None:
                model.build((None, *config["input_shape"]))
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RecursionError, json.JSONDecodeError) as exc:
        raise _fail(path, f"its architecture description is invalid ({type(exc).__name__}: {exc}).") from None
    try:
        tensors = st_load(blob)
    except Exception as exc:  # the library's own error type; our checks above should catch it first
        raise _fail(path, f"the safetensors data could not be read ({exc}).") from None
    weights = []
    for layer in model.layers:
        for key in layer.params:
            name = f"layers/{layer.name}/{key}"
            if name not in tensors:
                raise _fail(path, f"weight {name!r} is missing.")
            weights.append(tensors[name])
    try:
        model.set_weights(weights)
    except (ValueError, TypeError) as exc:
        raise _fail(path, str(exc)) from None
    if compile and "compile_config" in meta:
        try:
            cc = json.loads(meta["compile_config"])
            for m in cc.get("metrics", []):
                metrics_module.check_name(m)
            losses_module.get(cc["loss"])
            model.compile(optimizer=optimizers.deserialize(cc["optimizer"]), loss=cc["loss"],
                          metrics=cc.get("metrics"))
            state = {k[len("optimizer/"):]: v for k, v in tensors.items() if k.startswith("optimizer/")}
            if state:
                model.optimizer.set_state(state, model.weights)
        except (KeyError, TypeError, ValueError, RecursionError, json.JSONDecodeError) as exc:
            raise _fail(path, f"its compile settings are invalid ({type(exc).__name__}: {exc}).") from None
    return model
