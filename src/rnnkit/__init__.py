"""rnnkit: recurrent neural networks on NumPy, with backpropagation through time written out.

Keras names at the surface (``Sequential``, ``SimpleRNN``, ``Dense``, ``compile``, ``fit``),
hand-written forward and backward passes underneath.
"""

from __future__ import annotations

__version__ = "0.1.0"

from rnnkit import (  # noqa: E402
    activations,
    bleu,
    callbacks,
    constraints,
    ctc,
    datasets,
    diagnostics,
    distributed,
    generation,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    seq2seq,
    timeseries,
    utils,
)
from rnnkit.backend import floatx, set_floatx  # noqa: E402
from rnnkit.ctc import ctc_decode  # noqa: E402
from rnnkit.errors import (  # noqa: E402
    DistributedError,
    ModelFileError,
    ModelFileNotFoundError,
    NonFiniteError,
    NotCompiledError,
    RnnkitError,
)
from rnnkit.generation import generate  # noqa: E402
from rnnkit.kernels import kernels_info  # noqa: E402
from rnnkit.layers.input_layer import Input  # noqa: E402
from rnnkit.models import Model, Sequential  # noqa: E402
from rnnkit.saving import load_model  # noqa: E402
from rnnkit.text import (  # noqa: E402
    CharVocabulary,
    ResetStates,
    StreamBatches,
    char_dataset,
    generate_text,
    sliding_windows,
)
from rnnkit.utils import one_hot  # noqa: E402

__all__ = [
    "__version__", "kernels_info", "Input", "Model", "Sequential", "load_model", "floatx", "set_floatx", "one_hot",
    "CharVocabulary", "sliding_windows", "char_dataset", "generate_text", "generate", "StreamBatches", "ResetStates",
    "ctc_decode",
    "activations", "bleu", "callbacks", "constraints", "ctc", "datasets", "diagnostics", "distributed", "generation",
    "initializers", "layers", "losses", "metrics", "models", "optimizers", "regularizers", "seq2seq", "timeseries",
    "utils",
    "RnnkitError", "ModelFileError", "ModelFileNotFoundError", "NotCompiledError", "NonFiniteError",
    "DistributedError",
]
