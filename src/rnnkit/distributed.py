"""Data-parallel training on MPI: which process this is, and the few collective calls ``fit`` makes.

Launch the same script on N processes (``mpiexec -n 4 python train.py``) and pass
``distributed=True`` to ``fit``. Every process holds the same model and data; each epoch's
shuffled indices are split between the processes (the *ranks*), each computes the gradient of
its share, and one ``Allreduce`` per step sums the shares, weighted by how many samples (or,
for a masked loss, how many unmasked positions) each rank had, so the update is the gradient
of the whole global batch: the same update one process makes on that batch.

Only buffer-based MPI calls are used (``Allreduce``, ``Bcast``, ``Allgather``): nothing is
pickled. ``mpi4py`` and an MPI library are optional (``pip install "rnnkit[mpi]"``) and are
imported only here, when first needed.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnkit.errors import DistributedError

INSTALL = ('data-parallel training needs mpi4py and an MPI library: pip install "rnnkit[mpi]" '
           "(mpi4py and MPICH from the package index), or mpi4py built against your cluster's MPI")

# what MPI launchers put in each process's environment: the world size (MPICH/Hydra, Open MPI, Slurm)
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_NTASKS")
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")

_comm: Any = None          # rnnkit's own duplicate of COMM_WORLD, so its collectives never meet the user's


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"rnnkit.distributed: {INSTALL}.") from exc
    return MPI


def _launched() -> tuple[int, int] | None:
    """``(rank, size)`` an MPI launcher announced in the environment, or None when there was none."""
    for size_var, rank_var in zip(_SIZE_VARIABLES, _RANK_VARIABLES):
        size, rank = os.environ.get(size_var), os.environ.get(rank_var)
        if size is not None and rank is not None and size.isdigit() and rank.isdigit():
            return int(rank), int(size)
    return None


def _abort_hook(kind, value, tb) -> None:
    """An uncaught exception on one rank ends the whole job instead of leaving the others waiting."""
    sys.__excepthook__(kind, value, tb)
    sys.stderr.flush()
    if _comm is not None and _comm.Get_size() > 1:
        _mpi().COMM_WORLD.Abort(1)


def init(abort_on_exception: bool = True) -> None:
    """Start MPI (once; later calls do nothing) and take rnnkit's communicator.

    ``abort_on_exception``: an exception nobody catches, on any rank, prints its traceback and
    ends every rank of the job (``MPI_Abort``), as ``python -m mpi4py`` does: otherwise the
    other ranks would wait for it forever in their next collective call. ``fit`` itself makes
    every rank raise when one fails inside a training step, so this is the last resort.
    """
    global _comm
    if _comm is not None:
        return
    MPI = _mpi()
    _comm = MPI.COMM_WORLD.Dup()
    if abort_on_exception and _comm.Get_size() > 1:
        sys.excepthook = _abort_hook


def initialized() -> bool:
    return _comm is not None


def _world() -> Any:
    """rnnkit's communicator, started on first use in a process an MPI launcher started; None otherwise."""
    if _comm is None and _launched() is not None:
        init()
    return _comm


def rank() -> int:
    """This process's rank, 0 to ``size() - 1``; 0 in a process no MPI launcher started."""
    comm = _world()
    return 0 if comm is None else comm.Get_rank()


def size() -> int:
    """How many processes train together; 1 in a process no MPI launcher started."""
    comm = _world()
    return 1 if comm is None else comm.Get_size()


def is_primary() -> bool:
    """Whether this is rank 0, the one that prints progress and writes checkpoints."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here."""
    if size() > 1:
        _comm.Barrier()


@dataclass(frozen=True)
class DataParallel:
    """How ``fit(..., distributed=...)`` trains on several ranks; ``distributed=True`` is ``DataParallel()``.

    ``batch_size``: ``"global"`` (default) makes ``fit``'s ``batch_size`` the batch of the whole job,
    split between the ranks, so a script gives the same result on any number of ranks (the
    sharding changes nothing but who computes what); ``"per_rank"`` makes it each rank's share,
    as Horovod does, so the global batch grows with the ranks: ``size() * batch_size``.

    ``scale_learning_rate``: multiply the optimizer's learning rate by the number of ranks (the
    linear scaling rule for a global batch grown ``size()`` times; meant for ``"per_rank"``).
    ``warmup_epochs``: reach that scaled rate gradually, linearly from the base rate over the
    first ``warmup_epochs`` epochs (counted in steps), as Goyal et al. (2017) recommend.
    """

    batch_size: str = "global"
    scale_learning_rate: bool = False
    warmup_epochs: float = 0

    def __post_init__(self):
        if self.batch_size not in ("global", "per_rank"):
            raise ValueError(f"DataParallel(batch_size=...) must be 'global' or 'per_rank', got {self.batch_size!r}.")
        if not isinstance(self.scale_learning_rate, bool):
            raise TypeError(f"DataParallel(scale_learning_rate=...) must be a bool, got {self.scale_learning_rate!r}.")
        w = self.warmup_epochs
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w) or w < 0:
            raise ValueError(f"DataParallel(warmup_epochs=...) must be a number >= 0, got {w!r}.")


def data_parallel(distributed: Any) -> DataParallel | None:
    """What ``fit``'s ``distributed`` argument asks for: None (one process), or the options."""
    if distributed is None or distributed is False:
        return None
    if distributed is True:
        return DataParallel()
    if isinstance(distributed, DataParallel):
        return distributed
    raise TypeError(f"distributed must be True, False or a rnnkit.distributed.DataParallel, got {distributed!r}.")


class Collective:
    """The calls ``fit`` makes across ranks, on rnnkit's communicator (a single process makes none)."""

    def __init__(self):
        init()
        self.comm = _comm
        self.rank = _comm.Get_rank()
        self.size = _comm.Get_size()

    def allreduce(self, buffer: np.ndarray) -> None:
        """Sum ``buffer`` over the ranks, in place."""
        if self.size > 1:
            self.comm.Allreduce(_mpi().IN_PLACE, buffer)

    def broadcast(self, array: np.ndarray) -> None:
        """Overwrite ``array`` (contiguous) with rank 0's, in place."""
        if self.size > 1:
            self.comm.Bcast(array, root=0)

    def broadcast_text(self, text: str) -> str:
        """Rank 0's ``text``."""
        if self.size == 1:
            return text
        data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8) if self.rank == 0 else np.empty(0, np.uint8)
        length = np.array([data.size], dtype=np.int64)
        self.comm.Bcast(length, root=0)
        if self.rank != 0:
            data = np.empty(int(length[0]), dtype=np.uint8)
        else:
            data = data.copy()
        self.comm.Bcast(data, root=0)
        return data.tobytes().decode("utf-8")

    def gather_text(self, text: str) -> list[str]:
        """Every rank's ``text``, in rank order."""
        if self.size == 1:
            return [text]
        data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()
        lengths = np.empty(self.size, dtype=np.int64)
        self.comm.Allgather(np.array([data.size], dtype=np.int64), lengths)
        out = np.empty(int(lengths.sum()), dtype=np.uint8)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.comm.Allgatherv(data, [out, lengths.tolist(), offsets.tolist(), _mpi().BYTE])
        return [out[o:o + n].tobytes().decode("utf-8", "replace") for o, n in zip(offsets, lengths)]

    def agree(self, error: BaseException | None, fingerprint: bytes = b"") -> None:
        """Raise on every rank if any rank has ``error`` or a different ``fingerprint`` (its arguments)."""
        if self.size == 1:
            if error is not None:
                raise error
            return
        digest = np.frombuffer((fingerprint + b"\0" * 8)[:8], dtype=np.int64)[0] if fingerprint else 0
        mine = np.array([1 if error is not None else 0, digest], dtype=np.int64)
        everyone = np.empty((self.size, 2), dtype=np.int64)
        self.comm.Allgather(mine, everyone)
        if everyone[:, 0].any():
            self.fail(error)
        if len(set(everyone[:, 1].tolist())) > 1:
            groups: dict[int, list[int]] = {}
            for r, d in enumerate(everyone[:, 1].tolist()):
                groups.setdefault(d, []).append(r)
            raise DistributedError(
                "The ranks called fit differently (the model's architecture, its optimizer's settings, the data's "
                f"shapes or fit's arguments differ); ranks grouped by what they were given: {list(groups.values())}. "
                "Every rank must run the same script on the same data.")

    def fail(self, error: BaseException | None) -> None:
        """Called on every rank once some rank has failed: all raise, the failing ones their own error."""
        text = "" if error is None else "".join(traceback.format_exception_only(type(error), error)).strip()
        texts = self.gather_text(text)
        failed = tuple(r for r, t in enumerate(texts) if t)
        if error is not None:
            raise error
        first = failed[0] if failed else -1
        raise DistributedError(
            f"Training stopped on every rank because rank {first} failed"
            + (f" (and ranks {list(failed[1:])})" if len(failed) > 1 else "") + f": {texts[first]}",
            ranks=failed, messages=tuple(texts[r] for r in failed))


__all__ = ["init", "initialized", "rank", "size", "is_primary", "barrier", "DataParallel", "Collective", "INSTALL"]
