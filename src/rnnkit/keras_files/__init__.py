"""Keras model files: load Keras 3 ``.keras`` and Keras 2 / legacy ``.h5`` models, save ``.keras``.

``rnnkit.load_model`` and ``model.save`` call these when the file's first bytes (or, for saving, the
``.keras`` suffix) say so; h5py (``pip install "rnnkit[keras]"``) is imported only when they run.
"""

from __future__ import annotations

from rnnkit.keras_files.reader import load_keras_model
from rnnkit.keras_files.writer import save_keras_model

__all__ = ["load_keras_model", "save_keras_model"]
