"""Open an HDF5 weights file from an untrusted source and check every object in it before any data is read.

h5py is imported only here, inside functions, so rnnkit imports without it. The checks, made on the
file's metadata alone:

* every link is a hard link: an ``ExternalLink`` would make HDF5 open another file, a ``SoftLink``
  could point anywhere (or form a cycle);
* every dataset is stored in the file itself (no external storage, not a virtual dataset), without
  compression filters (whose output size the file does not bound), holds plain integers or floats,
  has at most ``MAX_TENSOR_RANK`` dimensions, all its bytes written, and all datasets together no
  more bytes than the file;
* the tree is at most ``MAX_DEPTH`` groups deep with at most ``MAX_OBJECTS`` objects.

What passes is a ``Catalog``: the shape and dtype of every dataset by path, and the total number of
values, which bounds what building the model may allocate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnkit.errors import ModelFileError

MAX_TENSOR_RANK = 8
MAX_DEPTH = 32
MAX_OBJECTS = 100_000
#: the dtype kinds a weight may have: signed/unsigned integers (step counters) and floats
_KINDS = "iuf"

INSTALL_HINT = 'Reading or writing Keras model files needs h5py: pip install "rnnkit[keras]"'


def import_h5py() -> Any:
    """The h5py module, or an ImportError that says how to install it."""
    try:
        import h5py
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return h5py


@dataclass
class Catalog:
    """What an HDF5 file holds: ``datasets[path] = (shape, dtype)``, the number of values and of bytes in all."""

    datasets: dict[str, tuple[tuple[int, ...], np.dtype]] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    values: int = 0
    nbytes: int = 0


def catalog(h5file: Any, file_size: int, fail) -> Catalog:
    """Walk ``h5file`` (an open ``h5py.File``) checking every link and dataset; ``fail(reason)`` makes the error."""
    h5py = import_h5py()
    found = Catalog()
    count = 0

    def walk(group: Any, prefix: str, depth: int) -> None:
        nonlocal count
        if depth > MAX_DEPTH:
            raise fail(f"its HDF5 groups nest deeper than {MAX_DEPTH} levels.")
        found.groups.add(prefix.rstrip("/"))
        for name in list(group.keys()):
            count += 1
            if count > MAX_OBJECTS:
                raise fail(f"its HDF5 file holds more than {MAX_OBJECTS} objects.")
            path = f"{prefix}{name}"
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise fail(f"HDF5 object {path!r} is a {type(link).__name__}; only objects stored in the file "
                           "itself are accepted (no external or soft links).")
            obj = group.get(name)
            if isinstance(obj, h5py.Group):
                walk(obj, f"{path}/", depth + 1)
            elif isinstance(obj, h5py.Dataset):
                shape, dtype = found.datasets[path] = _check_dataset(obj, path, file_size, fail)
                found.values += math.prod(shape)
                found.nbytes += math.prod(shape) * dtype.itemsize
                if found.nbytes > file_size:
                    raise fail(f"its datasets claim {found.nbytes} bytes or more but the file holds {file_size}.")
            else:
                raise fail(f"HDF5 object {path!r} is a {type(obj).__name__}, not a group or dataset.")

    try:
        walk(h5file, "", 0)
    except ModelFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise fail(f"its HDF5 data could not be read ({type(exc).__name__}: {exc}).") from None
    return found


def _check_dataset(ds: Any, path: str, file_size: int, fail) -> tuple[tuple[int, ...], np.dtype]:
    if ds.external:
        raise fail(f"dataset {path!r} keeps its data in external files {ds.external[:2]!r}; refused.")
    if ds.is_virtual:
        raise fail(f"dataset {path!r} is a virtual dataset (data taken from other files); refused.")
    if ds.id.get_create_plist().get_nfilters():
        raise fail(f"dataset {path!r} is compressed or filtered; Keras writes plain datasets, and a filtered one "
                   "could expand beyond the file.")
    dtype = ds.dtype
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.shape:
        raise fail(f"dataset {path!r} has dtype {dtype}; expected integers or floats.")
    shape = ds.shape
    if shape is None or len(shape) > MAX_TENSOR_RANK or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise fail(f"dataset {path!r} has shape {shape}; expected at most {MAX_TENSOR_RANK} dimensions >= 0.")
    nbytes = math.prod(shape) * dtype.itemsize          # Python ints: no overflow
    if nbytes > file_size:
        raise fail(f"dataset {path!r} claims {nbytes} bytes (shape {shape}) but the file holds {file_size}.")
    if ds.id.get_storage_size() < nbytes:
        # an unwritten dataset would read as its fill value: not weights anyone saved
        raise fail(f"dataset {path!r} stores {ds.id.get_storage_size()} of its {nbytes} bytes.")
    return tuple(shape), dtype


def read_dataset(h5file: Any, path: str, fail) -> np.ndarray:
    """The values of the (already catalogued) dataset at ``path``."""
    try:
        return np.asarray(h5file[path][()])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise fail(f"dataset {path!r} could not be read ({type(exc).__name__}: {exc}).") from None


def read_string_attribute(obj: Any, name: str, limit: int, fail) -> str | None:
    """A text attribute (at most ``limit`` characters), or None when absent."""
    if name not in obj.attrs:
        return None
    try:
        value = obj.attrs[name]
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise fail(f"attribute {name!r} could not be read ({type(exc).__name__}).") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="strict") if len(value) <= limit else None
    if not isinstance(value, str) or len(value) > limit:
        raise fail(f"attribute {name!r} is not a text of at most {limit} characters.")
    return value


def read_names_attribute(obj: Any, name: str, fail) -> list[str]:
    """A list-of-names attribute (``layer_names``, ``weight_names``), each decoded and checked."""
    if name not in obj.attrs:
        return []
    try:
        value = obj.attrs[name]
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        raise fail(f"attribute {name!r} could not be read ({type(exc).__name__}).") from None
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.size > MAX_OBJECTS:
        raise fail(f"attribute {name!r} is not a list of names.")
    names = []
    for item in arr.tolist():
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError:
                raise fail(f"attribute {name!r} holds a name that is not UTF-8.") from None
        if not isinstance(item, str) or not item or len(item) > 1000:
            raise fail(f"attribute {name!r} holds {str(item)[:40]!r}, not a name.")
        names.append(item)
    return names
