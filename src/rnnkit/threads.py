"""BLAS threads chosen by operation size.

The per-step matmul of a small recurrent layer, say ``(32, 50) x (50, 50)``, takes a few
microseconds on one core. On an idle 2-core machine OpenBLAS already keeps such a product on
one thread (measured here: no difference between one and two threads below about 2 MFLOP,
1.3x to 2x from two threads above it); on a busy machine, though, its threads spin waiting
for each other and the same product took 5 to 10 us on two threads against 2.6 us on one.
Around its time loop a recurrent layer therefore asks for one BLAS thread when the step's
matmul is below that size, and leaves NumPy's BLAS at its default (all cores) otherwise and
for everything outside the loop, such as the large input-projection and weight-gradient
matmuls.

Thread counts are set through threadpoolctl, on NumPy's own BLAS only (never on another
library's, such as PyTorch's), and restored on the way out.
"""

from __future__ import annotations

import os

import numpy as np

#: a step matmul below this many flops runs on one BLAS thread
SMALL_STEP_FLOPS = 2.0e6
#: below this OpenBLAS never splits a product (its own m * n * k < 262144 rule), so nothing to set
TINY_STEP_FLOPS = 2 * 262144

_controllers: list | None = None


def _numpy_blas() -> list:
    """threadpoolctl controllers of the BLAS libraries that NumPy itself loaded."""
    global _controllers
    if _controllers is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency; stay correct without it
            _controllers = []
            return _controllers
        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
        _controllers = [c for c in ThreadpoolController().select(user_api="blas").lib_controllers
                        if os.path.dirname(os.path.dirname(c.filepath)).startswith(numpy_dir)]
    return _controllers


class step_threads:
    """``with step_threads(flops_per_step):`` one BLAS thread inside if the step matmul is small."""

    def __init__(self, flops_per_step: float):
        self.single = TINY_STEP_FLOPS <= flops_per_step < SMALL_STEP_FLOPS
        self.saved: list[tuple] = []

    def __enter__(self):
        if self.single:
            for c in _numpy_blas():
                n = c.get_num_threads()
                if n != 1:
                    self.saved.append((c, n))
                    c.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        for c, n in self.saved:
            c.set_num_threads(n)
        self.saved.clear()
        return False
