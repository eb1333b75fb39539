"""Which path the recurrent layers take: the compiled core (``rnnkit._kernels``) or the NumPy reference.

The NumPy loops in ``layers/simple_rnn.py``, ``lstm.py`` and ``gru.py`` are the reference; when
the compiled core is installed and covers a layer's configuration, the layer hands its time loop
(forward and BPTT) to it instead, and keeps the large matmuls outside the loop (the input
projection of all steps, the weight gradients) in NumPy. ``RNNKIT_KERNELS=numpy`` in the
environment forces the reference; ``RNNKIT_NUM_THREADS`` sets the kernels' threads (default: the
CPUs this process may run on, shared out between the ranks of an MPI job on the same machine).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

try:
    from rnnkit import _kernels
    _missing = None
except ImportError as exc:  # no C compiler at install time: the NumPy layers do everything
    _kernels = None
    _missing = f"the compiled core is not installed ({exc}); reinstall rnnkit with a C compiler to get it"

#: activation name -> the kernels' code (mathfun.h); others (softmax) stay on the NumPy path
ACTIVATIONS = {"linear": 0, "tanh": 1, "sigmoid": 2, "relu": 3}

_forced_numpy = False
#: RNNKIT_KERNELS=numpy, read once at import (the layers ask for every call)
_env_numpy = os.environ.get("RNNKIT_KERNELS", "").lower() == "numpy"


def _default_threads() -> int:
    env = os.environ.get("RNNKIT_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"RNNKIT_NUM_THREADS must be a positive integer, got {env!r}.") from None
    try:
        cpus = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = max(1, os.cpu_count() or 1)
    # ranks of an MPI job on one machine share its cores (MPICH/Hydra and Open MPI say how many ranks are here)
    for variable in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE"):
        local = os.environ.get(variable, "")
        if local.isdigit() and int(local) > 1:
            return max(1, cpus // int(local))
    return cpus


if _kernels is not None:
    _kernels.set_threads(_default_threads())


def enabled() -> bool:
    """Whether the recurrent layers use the compiled core (installed, and not turned off)."""
    return _kernels is not None and not _forced_numpy and not _env_numpy


def kernels_info() -> dict[str, Any]:
    """Which path the recurrent layers take, and why.

    ``{"path": "kernel" or "numpy", "isa": "avx2", "available": ["avx2", "wide", "base"], "threads": 2}``,
    plus ``"reason"`` when the path is NumPy.
    """
    if _kernels is None:
        return {"path": "numpy", "isa": None, "available": [], "threads": 1, "reason": _missing}
    info = {"path": "kernel" if enabled() else "numpy", **_kernels.info()}
    if not enabled():
        info["reason"] = ("RNNKIT_KERNELS=numpy is set" if _env_numpy else "turned off with rnnkit.kernels.use_numpy()")
    return info


def set_isa(name: str) -> bool:
    """Use the kernels of one instruction set ("avx512", "avx2" or "base"; "wide", the AVX-512 build's code
    compiled for AVX2, is for tests); False if the CPU lacks it."""
    if name not in ("avx512", "avx2", "wide", "base"):
        raise ValueError(f"Unknown instruction set {name!r}; valid: avx512, avx2, wide, base.")
    return _kernels is not None and bool(_kernels.set_isa(name))


def set_threads(n: int) -> int:
    """Grow the kernels' thread pool to ``n`` threads (the calling thread included); returns the count."""
    if _kernels is None:
        return 1
    return _kernels.set_threads(int(n))


@contextmanager
def use_numpy() -> Iterator[None]:
    """``with use_numpy():`` the recurrent layers take the NumPy reference path inside."""
    global _forced_numpy
    previous, _forced_numpy = _forced_numpy, True
    try:
        yield
    finally:
        _forced_numpy = previous


def covers(dtype: np.dtype, *activations: Any) -> bool:
    """Whether the kernels can run a layer of this float type with these activations."""
    return enabled() and dtype in (np.float32, np.float64) and all(
        getattr(a, "name", None) in ACTIVATIONS for a in activations)


def run(*calls: dict) -> None:
    """Run kernel calls together in the thread pool (see ``csrc/module.c`` for the fields)."""
    _kernels.run(list(calls))


def as_mask(mask_tm: np.ndarray | None) -> np.ndarray | None:
    """A layer's ``(T, B, 1)`` bool mask as the kernels read it: ``(T, B)`` contiguous bytes."""
    return None if mask_tm is None else np.ascontiguousarray(mask_tm[:, :, 0])


def contiguous(a: np.ndarray | None, dtype: Any) -> np.ndarray | None:
    """``a`` as a C-contiguous array of ``dtype`` (a copy only if needed), or None."""
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


def matmul(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """``op(a) @ op(b)`` on the kernels' threads (``op`` transposes where asked), for the large products
    outside the time loop: NumPy's BLAS threads would go on spinning after each product and compete
    with the time loop's threads. ``a`` and ``b`` are 2-D float arrays of one type with contiguous rows."""
    a, b = _rows(a, a.dtype), _rows(b, a.dtype)
    m = a.shape[1] if trans_a else a.shape[0]
    n = b.shape[0] if trans_b else b.shape[1]
    out = np.empty((m, n), dtype=a.dtype)
    _kernels.matmul(a, b, out, trans_a, trans_b, False)
    return out


class _CompiledProducts:
    """``matmul`` and ``column_sums`` on the kernels' threads: what ``products_for`` hands a layer."""

    matmul = staticmethod(lambda a, b, trans_a=False, trans_b=False: matmul(a, b, trans_a, trans_b))
    column_sums = staticmethod(lambda a: column_sums(a))


def products_for(*arrays: np.ndarray):
    """The products a layer outside the time loop (``Dense``) should use on ``arrays``: the kernels' when
    they are on and the arrays are non-empty and share one type they cover (float32, float64; NumPy's
    type promotion is kept otherwise), else NumPy's. Both have
    ``matmul(a, b, trans_a=False, trans_b=False)`` and ``column_sums(a)``. Under a busy neighbour NumPy's
    two BLAS threads spin against each other: a (64, 128) x (128, 65) product took about 40 ms there,
    against 0.05 ms on one thread."""
    from rnnkit.layers.base import numpy_products

    dtypes = {a.dtype for a in arrays}
    if enabled() and len(dtypes) == 1 and dtypes <= {np.dtype(np.float32), np.dtype(np.float64)} \
            and all(a.size for a in arrays):
        return _CompiledProducts
    return numpy_products


def column_sums(a: np.ndarray) -> np.ndarray:
    """``a.sum(axis=0)`` of a 2-D array, as a product with a row of ones on the kernels' threads."""
    return matmul(np.ones((1, a.shape[0]), dtype=a.dtype), a)[0]


def _rows(a: np.ndarray, dtype: Any) -> np.ndarray:
    """``a`` itself when its rows are contiguous runs of ``dtype`` (a column slice qualifies), else a copy."""
    if (a.dtype == dtype and a.ndim == 2 and (a.shape[1] <= 1 or a.strides[1] == a.itemsize)
            and a.strides[0] >= a.shape[1] * a.itemsize):
        return a
    return np.ascontiguousarray(a, dtype=dtype)
