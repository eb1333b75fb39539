"""Save and load a whole model as one safetensors file, with no pickle anywhere.

Layout: the tensors ``layers/<layer name>/<weight name>`` (Keras layout) and, for a
compiled model that has trained, ``optimizer/<slot>``; the ``__metadata__`` of the file
holds JSON strings for the architecture and the compile settings.

Writing is crash-safe and reproducible:

* The file is written to an unnamed file in the target's folder (Linux ``O_TMPFILE``), fsynced,
  given a temporary name and renamed over the target with ``os.replace``, then the folder is
  fsynced so the rename itself survives a power cut. A process killed mid-write leaves nothing.
  Where unnamed files are not available the data goes to a named temporary file,
  ``.<target name>.rnnkit-<pid>-<random>.tmp``; every save removes such files in its folder
  that a *dead* process of the same user left before the current process started.
* The file gets the permissions ``open()`` would give a new file (``0o666`` less the umask).
* The same model gives the same bytes: the safetensors header is written here, with sorted
  metadata and a fixed tensor order (the safetensors library's writer orders the metadata at
  random).

Reading checks the header against the real file size *before* reading or allocating anything
it claims, so a truncated, foreign or hostile file is a ``ModelFileError`` with a reason, never
a raw library traceback or a huge allocation. Every field is type-checked before use: tensor
entries (dtype name, at most ``MAX_TENSOR_RANK`` integer dimensions, two integer offsets), the
metadata (strings), the architecture and compile settings (JSON nested at most ``MAX_JSON_DEPTH``
deep; a layer whose constructor refuses its config is named), the optimizer's step count (an
integer in ``[0, MAX_ITERATIONS]``); weights and optimizer slots must be finite in the model's
dtype. ``tests/test_load_fuzz.py`` checks this against thousands of mutated files.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import stat
import struct
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
from safetensors.numpy import load as st_load

from rnnkit import __version__, backend, initializers, optimizers
from rnnkit import losses as losses_module
from rnnkit import metrics as metrics_module
from rnnkit.errors import ModelFileError, ModelFileNotFoundError

FORMAT = "rnnkit"
FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 100 * 1024 * 1024   # safetensors' own limit
#: deepest JSON nesting a file's architecture or compile settings may have (rnnkit's own files stay under 20)
MAX_JSON_DEPTH = 64
#: most dimensions a tensor in a file may have
MAX_TENSOR_RANK = 8
#: the largest optimizer step count a file may hold: exact in float64, and far from the int64 limit
#: that saving the model again after more steps would reach
MAX_ITERATIONS = 2**53
_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32}
_DTYPE_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}

#: ``.<target name>.rnnkit-<pid>-<12 hex digits>.tmp``: the only names the stale-file cleanup touches
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.rnnkit-(?P<pid>[1-9][0-9]*)-[0-9a-f]{12}\.tmp$")
#: whether to try unnamed temporary files first (tests switch it off to exercise the named fallback)
USE_O_TMPFILE = hasattr(os, "O_TMPFILE")
#: when this module was imported (with rnnkit, so about when this process started): a temporary file
#: written later may belong to a save under way in a process started since, so only older ones are
#: candidates for the cleanup (whose writer must also have died: pids get reused)
_PROCESS_START = time.time()


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


def _safetensors_writer(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> Callable[[BinaryIO], None]:
    """A function writing ``tensors`` and ``metadata`` in the safetensors layout to an open binary file.

    Layout: an 8-byte little-endian header length, the JSON header padded with spaces to a multiple
    of 8 bytes, then the raw little-endian data of each tensor. The metadata keys are sorted and
    the tensors ordered by decreasing item size, then name (which also keeps every tensor aligned
    to its item size), so the bytes depend on nothing but the values.
    """
    arrays: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        arr = np.asarray(value)
        if arr.dtype.newbyteorder("=") not in _DTYPE_CODES:
            raise TypeError(f"cannot save tensor {name!r} of dtype {arr.dtype}; expected one of "
                            f"{', '.join(sorted(str(d) for d in _DTYPE_CODES))}")
        # np.asarray, not np.ascontiguousarray, which turns a 0-d weight into shape (1,)
        arrays[name] = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    header: dict[str, Any] = {"__metadata__": {k: str(metadata[k]) for k in sorted(metadata)}}
    offset = 0
    for name in order:
        arr = arrays[name]
        header[name] = {"dtype": _DTYPE_CODES[arr.dtype.newbyteorder("=")], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)

    def write(f: BinaryIO) -> None:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for name in order:
            if arrays[name].size:
                f.write(arrays[name].reshape(-1).view(np.uint8))   # no copy: the array's own bytes
    return write


def _temp_path(target: Path) -> Path:
    return target.parent / f".{target.name}.rnnkit-{os.getpid()}-{secrets.token_hex(6)}.tmp"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (True whenever that cannot be told)."""
    if os.name != "posix":          # os.kill(pid, 0) would send CTRL_C_EVENT on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                 # PermissionError: alive, another user's
        return True
    return True


def remove_stale_temporary_files(folder: str | os.PathLike) -> list[str]:
    """Delete the temporary files that interrupted saves left in ``folder``; return their names.

    Only a file whose name has rnnkit's pattern ``.<name>.rnnkit-<pid>-<hex>.tmp`` is removed,
    and only when it is a regular file (not a link) of the current user, last written before
    this process started, by a process that is no longer running: a save under way in another
    process, or anything else in the folder, is never touched.
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or int(match["pid"]) == os.getpid():
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_mtime >= _PROCESS_START:
            continue
        if (uid is not None and st.st_uid != uid) or _pid_alive(int(match["pid"])):
            continue
        try:
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(entry.name)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; platforms that cannot open or fsync a folder are skipped."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_linkat: list = []      # [libc's linkat or None], looked up on first use


def _link_unnamed(fd: int, dest: Path) -> bool:
    """Give the unnamed file ``fd`` the name ``dest``; False where neither way of doing it works.

    ``linkat(fd, "", AT_FDCWD, dest, AT_EMPTY_PATH)`` is tried first (allowed to the process that
    opened the file since Linux 6.10, to privileged ones before), then the documented
    ``linkat`` through ``/proc/self/fd``, which some sandboxes refuse with EXDEV.
    """
    if not _linkat:
        try:
            import ctypes

            func = ctypes.CDLL(None, use_errno=True).linkat
            func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            func.restype = ctypes.c_int
        except (ImportError, OSError, AttributeError):
            func = None
        _linkat.append(func)
    at_fdcwd, at_empty_path = -100, 0x1000      # <fcntl.h> on Linux
    if _linkat[0] is not None and _linkat[0](fd, b"", at_fdcwd, os.fsencode(dest), at_empty_path) == 0:
        return True
    try:
        os.link(f"/proc/self/fd/{fd}", dest, follow_symlinks=True)
    except OSError:
        return False
    return True


def _write_unnamed(write: Callable[[BinaryIO], None], target: Path) -> bool:
    """Write through an ``O_TMPFILE`` file and rename it over ``target``; False where that is not available.

    The file has no name until its data is on disk, so a crash while writing leaves nothing; it
    is named (``linkat``) only for the instant before ``os.replace``, because a link cannot
    replace an existing file.
    """
    try:
        fd = os.open(target.parent, os.O_TMPFILE | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError:                 # this filesystem or kernel has no unnamed files
        return False
    tmp = None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            candidate = _temp_path(target)
            if not _link_unnamed(f.fileno(), candidate):
                return False        # write again through a named file
            tmp = candidate
        os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
    return True


def _write_named(write: Callable[[BinaryIO], None], target: Path) -> None:
    tmp = _temp_path(target)
    # 0o666 and the umask, as open() gives a new file (mkstemp would make it 0o600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
                 | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_atomically(write: Callable[[BinaryIO], None], path: str | os.PathLike) -> None:
    """Make ``path`` hold what ``write`` writes, all or nothing, durably (see the module docstring)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ModelFileNotFoundError(f"Cannot save to {str(target)!r}: folder {str(folder)!r} does not exist.")
    remove_stale_temporary_files(folder)
    if not (USE_O_TMPFILE and _write_unnamed(write, target)):
        _write_named(write, target)
    _fsync_folder(folder)


def _weight_tensors(model) -> dict[str, np.ndarray]:
    return dict(zip(weight_names(model), model.weights))


def save_model(model, path: str | os.PathLike) -> None:
    """Write ``model`` to ``path`` atomically (see the module docstring for the layout).

    A path ending in ``.keras`` gets a Keras 3 ``.keras`` file instead (``rnnkit.keras_files``).
    """
    if os.fspath(path).endswith(".keras"):
        from rnnkit.keras_files import save_keras_model

        save_keras_model(model, path)
        return
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
                tensors[f"optimizer/{key}"] = value
    write_atomically(_safetensors_writer(tensors, metadata), path)


def save_weights(model, path: str | os.PathLike) -> None:
    """Write only ``model``'s weights to ``path``, atomically."""
    if not model.built:
        raise ValueError(f"Model '{model.name}' is not built yet; give it an input shape or fit it first.")
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "rnnkit_version": __version__,
                "content": "weights"}
    write_atomically(_safetensors_writer(_weight_tensors(model), metadata), path)


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
    _check_metadata_strings(path, meta)
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_json(path: Path, text: str, what: str) -> Any:
    """``text`` parsed as JSON, refused when it nests deeper than ``MAX_JSON_DEPTH``.

    The parse itself costs time and memory in proportion to the text, which the file holds; the
    depth bound keeps the recursive code that reads the value (nested models, layer configs) shallow.
    """
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise _fail(path, f"its {what} {_are(what)} invalid: not valid JSON, or nested too deeply.") from None
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(MAX_JSON_DEPTH):         # one pass per level of nesting, over its containers only
        if not level:
            return value
        inner = []
        for item in level:
            inner.extend(v for v in (item.values() if isinstance(item, dict) else item)
                         if isinstance(v, (dict, list)))
        level = inner
    if level:
        raise _fail(path, f"its {what} {_are(what)} invalid: nested deeper than {MAX_JSON_DEPTH} levels.")
    return value


def _are(what: str) -> str:
    return "are" if what.endswith("s") else "is"


def _compile_arguments(path: Path, text: str) -> dict:
    """``compile``'s keyword arguments from the file's compile settings, every field type-checked first."""
    cc = _parse_json(path, text, "compile settings")
    if not isinstance(cc, dict) or not {"optimizer", "loss"} <= set(cc):
        raise _fail(path, "its compile settings are not a JSON object with 'optimizer' and 'loss'.")
    opt = cc["optimizer"]
    if (not isinstance(opt, dict) or not isinstance(opt.get("class_name"), str)
            or not isinstance(opt.get("config", {}), dict)):
        raise _fail(path, "its optimizer setting is not {'class_name': name, 'config': {...}}.")
    try:
        return {"optimizer": optimizers.deserialize(opt), "loss": _decode_compile(cc["loss"]),
                "loss_weights": _decode_compile(cc.get("loss_weights")),
                "metrics": _decode_compile(cc.get("metrics"))}
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"its compile settings are invalid ({type(exc).__name__}: {exc}).") from None


def _check_metadata_strings(path: Path, meta: dict) -> None:
    bad = sorted(str(k) for k, v in meta.items() if not isinstance(v, str))
    if bad:
        raise _fail(path, f"its __metadata__ values must be strings, as safetensors requires; {bad[:5]} are not.")


def _check_iterations(path: Path, state: dict[str, np.ndarray]) -> None:
    """The optimizer's step count, when the file has optimizer state: one integer in [0, MAX_ITERATIONS]."""
    if not state:
        return
    step = state.get("iterations")
    if (not isinstance(step, np.ndarray) or step.dtype.kind not in "iu" or step.size != 1
            or not 0 <= int(step.reshape(-1)[0]) <= MAX_ITERATIONS):
        given = "nothing" if step is None else f"{step.dtype} {step.reshape(-1)[:2].tolist()}"
        raise _fail(path, f"its optimizer step count must be one integer in [0, {MAX_ITERATIONS}], got {given}.")


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
            dtype = _DTYPES.get(info["dtype"]) if isinstance(info["dtype"], str) else None
            shape, offsets = info["shape"], info["data_offsets"]
            if dtype is None:
                raise _fail(path, f"tensor {name!r} has unsupported dtype {str(info['dtype'])[:40]!r}; expected one "
                                  f"of {', '.join(_DTYPES)}.")
            if (not isinstance(shape, list) or len(shape) > MAX_TENSOR_RANK
                    or not all(_is_int(d) and d >= 0 for d in shape)
                    or not isinstance(offsets, list) or len(offsets) != 2
                    or not all(_is_int(o) and o >= 0 for o in offsets)):
                raise _fail(path, f"tensor {name!r} has an invalid shape or offsets: expected lists of integers "
                                  f">= 0 (at most {MAX_TENSOR_RANK} dimensions, two offsets).")
            begin, end = offsets
            nbytes = math.prod(shape) * np.dtype(dtype).itemsize      # Python ints: no overflow
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


#: first bytes of the Keras files ``load_model`` also reads: a zip (``.keras``) and HDF5 (legacy ``.h5``)
_KERAS_MAGICS = (b"PK\x03\x04", b"\x89HDF\r\n\x1a\n")


def _is_keras_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False            # _read_checked reports what is wrong with the path
    return any(head.startswith(magic) for magic in _KERAS_MAGICS)


def load_model(path: str | os.PathLike, compile: bool = True):
    """Load a model written by ``model.save``; predictions are identical to the saved model's.

    Keras 3 ``.keras`` and Keras 2 / legacy ``.h5`` files are recognised by their first bytes and
    read by ``rnnkit.keras_files``; anything else is read as rnnkit's safetensors file.
    """
    from rnnkit.models.serialization import model_from_config

    path = Path(path)
    if path.is_file() and _is_keras_file(path):
        from rnnkit.keras_files import load_keras_model

        return load_keras_model(path, compile=compile)
    header, blob = _read_checked(path)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, "it is a safetensors file but not one written by rnnkit (no rnnkit metadata).")
    if meta.get("format_version") != FORMAT_VERSION:
        raise _fail(path, f"it has format version {meta.get('format_version')!r}; this rnnkit reads "
                          f"version {FORMAT_VERSION}.")
    _check_metadata_strings(path, meta)
    # Building the model may create at most as many weight values as the file really holds
    # (every weight is made by an initializer, which spends this budget before allocating),
    # so a hostile architecture cannot make loading allocate more than the file.
    budget = sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__") + 1
    if not isinstance(meta.get("model_config"), str):
        raise _fail(path, "it has no architecture ('model_config'); it holds weights only (use load_weights).")
    config = _parse_json(path, meta["model_config"], "architecture description")
    try:
        dtype = str(meta.get("dtype", "float32"))
        # every weight is set from the file below, so the initializers only make placeholders
        with backend.floatx_scope(dtype), initializers.allocation_budget(budget), initializers.placeholder_weights():
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
        arguments = _compile_arguments(path, meta["compile_config"])
        state = {k[len("optimizer/"):]: v for k, v in tensors.items() if k.startswith("optimizer/")}
        _check_iterations(path, state)
        try:
            model.compile(**arguments)
            if state:
                model.optimizer.set_state(state, model.trainable_weights)
        except (KeyError, TypeError, ValueError, RecursionError, json.JSONDecodeError) as exc:
            raise _fail(path, f"its compile settings are invalid ({type(exc).__name__}: {exc}).") from None
    return model
