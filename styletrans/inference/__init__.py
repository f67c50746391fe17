"""Stylizing with trained networks: ONNX Runtime or PyTorch, images and video."""

from styletrans.inference.backends import ModelError, OnnxBackend, TorchBackend
from styletrans.inference.registry import (
    bundled_models_dir,
    default_models_dirs,
    list_models,
    missing_model_hint,
    resolve_model,
)
from styletrans.inference.stylizer import Stylizer, finish

__all__ = [
    "ModelError",
    "OnnxBackend",
    "Stylizer",
    "TorchBackend",
    "bundled_models_dir",
    "default_models_dirs",
    "finish",
    "list_models",
    "missing_model_hint",
    "resolve_model",
]
