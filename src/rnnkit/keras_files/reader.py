"""Load a Keras 3 ``.keras`` file or a Keras 2 / legacy ``.h5`` whole-model file as an rnnkit model.

Steps, each finished before the next starts, so that a bad file fails before anything is built:

1. read the container: the zip (``archive.read_members``, bomb and name checks) or the HDF5 file;
2. catalogue the HDF5 weights (``hdf5_checks.catalog``: no external links or storage, sizes bounded);
3. translate the architecture (``layer_map.Translator``) and the compile settings (``compile_map``),
   collecting every unsupported layer, argument or setting into one ``ModelFileError``;
4. build the model with rnnkit's own deserializer, allowed to allocate no more values than the file holds;
5. match every layer's weights to datasets (``weight_layout``), check all counts, shapes and dtypes,
   then read them, check they are finite, and set them;
6. compile with the file's settings, and restore the optimizer's step count and slots when the file
   holds them (Keras writes them once the optimizer has been built by training).
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rnnkit import backend, initializers
from rnnkit.errors import ModelFileError, ModelFileNotFoundError
from rnnkit.keras_files import archive, hdf5_checks, weight_layout
from rnnkit.keras_files.compile_map import compile_arguments
from rnnkit.keras_files.layer_map import Translator
from rnnkit.keras_files.optimizer_state import rnnkit_state

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: the longest architecture or compile text a legacy HDF5 file's attribute may hold
MAX_CONFIG_CHARS = 64 * 1024 * 1024
FLOAT_TYPES = ("float32", "float64")


def _failer(path: Any):
    def fail(reason: str) -> ModelFileError:
        return ModelFileError(f"Cannot load {str(path)!r} as a Keras model: {reason}")
    return fail


def _parse(text: Any, what: str, fail) -> Any:
    from rnnkit.saving import MAX_JSON_DEPTH, _parse_json

    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise fail(f"its {what} is not UTF-8 text.") from None
    try:
        return _parse_json(Path("?"), text, what)
    except ModelFileError:
        raise fail(f"its {what} is not valid JSON, or nested deeper than {MAX_JSON_DEPTH} levels.") from None


@contextmanager
def _hdf5_errors(fail) -> Iterator[None]:
    """Turn what h5py raises on damaged HDF5 data (from any read, deep inside the file) into ``fail``'s error."""
    try:
        yield
    except ModelFileError:
        raise
    except (OSError, RuntimeError, OverflowError, KeyError, ValueError) as exc:
        raise fail(f"its HDF5 data is damaged ({type(exc).__name__}: {str(exc)[:200]}).") from None


def load_keras_model(path: str | os.PathLike, compile: bool = True):
    """An rnnkit model from a Keras ``.keras`` (zip) or legacy ``.h5`` (HDF5) file, told apart by their first bytes.

    Raises ``ModelFileError`` for a file rnnkit cannot load faithfully (naming every unsupported layer
    or argument) and ``ImportError`` when h5py is missing.
    """
    path = Path(path)
    fail = _failer(path)
    if not path.exists():
        raise ModelFileNotFoundError(f"No model file at {str(path)!r}.")
    if not path.is_file():
        raise fail("it is not a regular file.")
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic[:4] != archive.ZIP_MAGIC and magic != HDF5_MAGIC:
        raise fail("it is neither a zip (.keras) nor an HDF5 (.h5) file.")
    h5py = hdf5_checks.import_h5py()
    if magic[:4] == archive.ZIP_MAGIC:
        members = archive.read_members(path, size, fail)
        config = _parse(members[archive.CONFIG], "config.json", fail)
        if archive.METADATA in members:
            _parse(members[archive.METADATA], "metadata.json", fail)
        if not isinstance(config, dict):
            raise fail("its config.json is not a JSON object.")
        blob = members[archive.WEIGHTS]
        if blob[:8] != HDF5_MAGIC:
            raise fail("its model.weights.h5 is not an HDF5 file.")
        try:
            h5 = h5py.File(io.BytesIO(blob), "r")
        except (OSError, ValueError, RuntimeError, OverflowError) as exc:
            raise fail(f"its model.weights.h5 could not be opened ({exc}).") from None
        with h5, _hdf5_errors(fail):
            found = hdf5_checks.catalog(h5, len(blob), fail)
            return _build(config, config.get("compile_config"), h5, found, "keras", compile, fail)
    try:
        h5 = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError, OverflowError) as exc:
        raise fail(f"it could not be opened as HDF5 ({exc}).") from None
    with h5, _hdf5_errors(fail):
        found = hdf5_checks.catalog(h5, size, fail)
        text = hdf5_checks.read_string_attribute(h5, "model_config", MAX_CONFIG_CHARS, fail)
        if text is None:
            raise fail("it is an HDF5 file without 'model_config': weights only, or not written by Keras.")
        config = _parse(text, "model_config", fail)
        training = hdf5_checks.read_string_attribute(h5, "training_config", MAX_CONFIG_CHARS, fail)
        compile_config = _parse(training, "training_config", fail) if training is not None else None
        if not isinstance(config, dict):
            raise fail("its model_config is not a JSON object.")
        return _build(config, compile_config, h5, found, "legacy", compile, fail)


def _build(config: dict, compile_config: Any, h5: Any, found: hdf5_checks.Catalog, layout: str, compile: bool,
           fail):
    from rnnkit.models.serialization import model_from_config

    if config.get("class_name") not in ("Sequential", "Functional", "Model"):
        raise fail(f"its top level is a {str(config.get('class_name'))[:40]!r}; expected a Sequential or "
                   "functional model.")
    translator = Translator()
    rnnkit_config = translator.model(config)
    problems = translator.problems
    arguments = compile_arguments(compile_config, problems) if compile else None
    dtypes = translator.dtypes or {"float32"}
    if len(dtypes) > 1 or not dtypes <= set(FLOAT_TYPES):
        problems.append(f"dtype policies {sorted(dtypes)}: rnnkit runs a model in one of {FLOAT_TYPES}")
    if problems:
        raise fail(f"it uses what rnnkit does not support ({len(problems)}):\n  " + "\n  ".join(problems))
    dtype = dtypes.pop()
    try:
        with backend.floatx_scope(dtype), initializers.allocation_budget(found.values + 1), \
                initializers.placeholder_weights():
            model = model_from_config(rnnkit_config)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, RecursionError, IndexError) as exc:
        raise fail(f"its architecture cannot be built ({type(exc).__name__}: {exc}).") from None
    _set_weights(model, config, h5, found, layout, dtype, fail)
    if arguments is not None:
        try:
            model.compile(**arguments)
        except (KeyError, TypeError, ValueError) as exc:
            raise fail(f"its compile settings are invalid ({type(exc).__name__}: {exc}).") from None
        _set_optimizer_state(model, h5, found, layout, fail)
    return model


def _set_optimizer_state(model, h5: Any, found: hdf5_checks.Catalog, layout: str, fail) -> None:
    """Restore the optimizer's step count and slots when the file has them (Keras writes them once built)."""
    if layout == "keras":
        paths = weight_layout.group_datasets("optimizer/vars", found.datasets)
        if paths is None:
            raise fail("the optimizer variables in 'optimizer/vars' are not numbered 0, 1, ...")
    else:
        if "optimizer_weights" not in found.groups:
            return
        names = hdf5_checks.read_names_attribute(h5["optimizer_weights"], "weight_names", fail)
        paths = [f"optimizer_weights/{n}" for n in names]
        missing = [p for p in paths if p not in found.datasets]
        if missing:
            raise fail(f"optimizer variable {missing[0]!r} is missing.")
    if not paths:
        return
    values = [hdf5_checks.read_dataset(h5, p, fail) for p in paths]
    try:
        state = rnnkit_state(model.optimizer, model.trainable_weights, values)
        model.optimizer.set_state(state, model.trainable_weights)
    except ValueError as exc:
        raise fail(f"its optimizer state does not fit the model ({exc}); load it with compile=False to skip "
                   "it.") from None


def _assignments(model, config: dict, h5: Any, found: hdf5_checks.Catalog, layout: str, fail) -> list:
    """``(rnnkit layer or model, [dataset path, ...])`` for every layer of ``model`` that has weights."""
    by_name = {layer.name: layer for layer in model.layers}
    entries = [e for e in config.get("config", {}).get("layers", []) if isinstance(e, dict)]
    out = []
    if layout == "keras":
        for entry, obj_path in weight_layout.top_level_paths(config["config"]):
            paths = []
            for group in weight_layout.layer_groups(entry, obj_path):
                datasets = weight_layout.group_datasets(group, found.datasets)
                if datasets is None:
                    raise fail(f"the variables in {group!r} are not numbered 0, 1, ...")
                paths.extend(datasets)
            out.append((weight_layout.entry_name(entry), paths))
    else:
        group = h5.get("model_weights") if "model_weights" in found.groups else h5
        for entry in entries:
            name = weight_layout.entry_name(entry)
            if name is None or name not in group:
                out.append((name, []))
                continue
            names = hdf5_checks.read_names_attribute(group[name], "weight_names", fail)
            prefix = "model_weights/" if group is not h5 else ""
            out.append((name, [f"{prefix}{name}/{n}" for n in names]))
    resolved = []
    for name, paths in out:
        layer = by_name.get(name)
        if layer is None:
            if paths:
                raise fail(f"it has weights for layer {name!r}, which the architecture does not have.")
            continue
        resolved.append((layer, paths))
    return resolved


def _set_weights(model, config: dict, h5: Any, found: hdf5_checks.Catalog, layout: str, dtype: str, fail) -> None:
    plan = []
    for layer, paths in _assignments(model, config, h5, found, layout, fail):
        expected = [np.shape(w) for w in layer.get_weights()]
        if len(paths) != len(expected):
            raise fail(f"layer {layer.name!r} ({type(layer).__name__}) has {len(expected)} weights but the file "
                       f"holds {len(paths)} for it.")
        for p, shape in zip(paths, expected):
            if p not in found.datasets:
                raise fail(f"weight {p!r} of layer {layer.name!r} is missing.")
            got, got_dtype = found.datasets[p]
            if got != tuple(shape) or got_dtype.kind != "f":
                raise fail(f"weight {p!r} of layer {layer.name!r} is {got_dtype} {got}; expected floats of shape "
                           f"{tuple(shape)}.")
        plan.append((layer, paths))
    for layer, paths in plan:
        values = [hdf5_checks.read_dataset(h5, p, fail).astype(dtype) for p in paths]
        bad = [p for p, v in zip(paths, values) if not np.all(np.isfinite(v))]
        if bad:
            raise fail(f"weight {bad[0]!r} of layer {layer.name!r} is not finite in {dtype}.")
        try:
            layer.set_weights(values)
        except (ValueError, TypeError) as exc:
            raise fail(f"the weights of layer {layer.name!r} do not fit it ({exc}).") from None
