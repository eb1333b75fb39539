"""Exceptions rnnkit raises on purpose, so callers can tell them from bugs."""

from __future__ import annotations


class RnnkitError(Exception):
    """Base class of every error rnnkit raises deliberately."""


class ModelFileError(RnnkitError, ValueError):
    """A model file is empty, truncated, foreign, corrupted or hostile."""


class ModelFileNotFoundError(RnnkitError, FileNotFoundError):
    """The path given to ``load_model`` does not exist."""


class NotCompiledError(RnnkitError, ValueError, RuntimeError):
    """Training or evaluation was asked of a model that was never compiled.

    A ``ValueError``, as Keras 3 raises, and a ``RuntimeError``, as rnnkit raised before.
    """


class NonFiniteError(RnnkitError, FloatingPointError):
    """A loss or gradient became NaN or infinite during training.

    ``report`` (a ``rnnkit.diagnostics.NonFiniteReport``, or None) names the first layer, time
    step and quantity that stopped being finite.
    """

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class DistributedError(RnnkitError, RuntimeError):
    """Another rank of a distributed ``fit`` failed, or the ranks were not called alike.

    Every rank raises it (the failing rank raises its own exception instead), so no rank is left
    waiting for the others. ``ranks`` lists the ranks that failed; ``messages`` their errors.
    """

    def __init__(self, message: str, ranks: tuple[int, ...] = (), messages: tuple[str, ...] = ()):
        super().__init__(message)
        self.ranks = ranks
        self.messages = messages
