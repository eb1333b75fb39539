"""Writing rnnkit models in other formats: ``to_onnx`` (needs ``pip install 'rnnkit[onnx]'``)."""

from rnnkit.export.onnx import to_onnx

__all__ = ["to_onnx"]
