"""Builds rnnkit's compiled recurrent core (``rnnkit._kernels``) with the system C compiler.

Everything else is in pyproject.toml. The extension is optional: on a machine without a C
compiler ``pip install`` still succeeds (pip prints that the optional extension failed) and
rnnkit runs its NumPy layers, which ``rnnkit.kernels_info()`` then reports.

No ``-march=native``: each instruction set (AVX-512, AVX2 + FMA, the SSE2 baseline) is compiled
from the same sources with its own ``#pragma GCC target`` and chosen at run time ("wide", the
AVX-512 layout compiled for AVX2, is there for the tests only). Python's
default flags include ``-fwrapv``, which keeps GCC from vectorising the gate loops; the flags
below turn it off, and let libm calls skip setting errno. Floating-point semantics stay IEEE
(no -ffast-math): NaNs propagate, and the float64 kernels match the NumPy reference.
"""

import glob

from setuptools import Extension, setup

ISAS = ("avx512", "avx2", "wide", "base")
SOURCES = ["module.c", "pool.c"] + [f"isa_{isa}_{t}.c" for isa in ISAS for t in ("f32", "f64")]

kernels = Extension(
    "rnnkit._kernels",
    sources=[f"src/rnnkit/csrc/{name}" for name in SOURCES],
    depends=sorted(glob.glob("src/rnnkit/csrc/*.[ch]")),      # every header and included cell: rebuild on change
    extra_compile_args=["-O3", "-fno-wrapv", "-fno-math-errno", "-fno-trapping-math", "-std=gnu11",
                        "-Wno-unused-function", "-Wno-psabi"],
    extra_link_args=["-pthread"],
    libraries=["m"],
    optional=True,
)

setup(ext_modules=[kernels])
