"""Trained model kinds behind one interface, found by name in a registry with lazy imports.

A kind whose optional dependencies are missing fails with the extra to install.
"""

from __future__ import annotations

from importlib import import_module

from ..errors import ConfigError, ModelError
from .base import FitReport, Model, load_model

__all__ = ["KINDS", "FitReport", "Model", "load_model", "model_class"]

# name -> (module, class, the extra that provides its dependencies)
KINDS: dict[str, tuple[str, str, str]] = {
    "linear": ("taxonomist.models.linear", "LinearModel", "core"),
    "head": ("taxonomist.models.head", "HeadModel", "text"),
    "finetune": ("taxonomist.models.finetune", "FinetuneModel", "text"),
    "knn": ("taxonomist.models.knn", "KnnModel", "core"),
    "fewshot": ("taxonomist.models.fewshot", "FewShotModel", "text"),
    "ensemble": ("taxonomist.models.ensemble", "EnsembleModel", "core"),
    "image": ("taxonomist.models.image", "ImageModel", "image"),
    "fusion": ("taxonomist.models.fusion", "FusionModel", "image"),
    # a model exported by `taxonomist export`: ONNX Runtime, no torch
    "onnx": ("taxonomist.export.runtime", "OnnxModel", "onnx"),
}


def model_class(kind: str) -> type[Model]:
    """The class of a model kind, by name."""
    try:
        module_name, class_name, extra = KINDS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown model kind '{kind}'; choose one of {', '.join(sorted(KINDS))}"
        ) from None
    try:
        module = import_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"model kind '{kind}' needs {exc.name}; pip install 'taxonomist[{extra}]'"
        ) from None
    return getattr(module, class_name)
