"""Shared test setup.

Keras 3 runs on the PyTorch backend here (no TensorFlow needed); the variable must be set
before Keras is first imported, which is why it is set at the top of this file.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit  # noqa: E402


@pytest.fixture
def float64():
    """Run a test with rnnkit's default float type set to float64, restoring it afterwards."""
    previous = rnnkit.floatx()
    rnnkit.set_floatx("float64")
    yield
    rnnkit.set_floatx(previous)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _no_global_seed_leaks():
    """A test (or a README example) that calls rnnkit.utils.set_random_seed does not seed the tests after it."""
    yield
    rnnkit.backend._seed_sequence = None


#: the test files whose tests run twice: on the compiled core and on the NumPy reference
RECURRENT_TESTS = {"test_gradients.py", "test_gradients_gated.py", "test_gated_behaviour.py", "test_torch_parity.py",
                   "test_keras_parity.py", "test_keras_parity_gated.py", "test_cells.py", "test_functional.py",
                   "test_torch_parity_functional.py", "test_keras_parity_functional.py", "test_interop.py",
                   "test_diagnostics.py", "test_saving.py"}


def pytest_generate_tests(metafunc):
    if metafunc.definition.path.name in RECURRENT_TESTS and "core_path" in metafunc.fixturenames:
        metafunc.parametrize("core_path", ["kernel", "numpy"], indirect=True)


@pytest.fixture(autouse=True)
def core_path(request):
    """Which path the recurrent layers take in this test: "kernel" (the default) or "numpy" (the reference)."""
    from rnnkit import kernels

    path = getattr(request, "param", "kernel")
    if path == "numpy":
        with kernels.use_numpy():
            yield path
    else:
        yield path
