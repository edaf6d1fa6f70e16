"""Which torch device trains and runs a fine-tuned transformer (the `finetune` kind).

A device is a run-time choice, not part of a model: a model fine-tuned on a GPU loads and
predicts on a CPU, and its manifest does not change with where it ran.
"""

from __future__ import annotations

import re

from .errors import ConfigError

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def check_device(spec: str | None) -> str:
    """The device as asked, once its name is valid and an accelerator named outright exists.

    "auto" stays "auto" here, so that reading and the kinds without a network never import
    torch for it; `finetune` resolves it when it builds its network.

    Raises:
        ConfigError: as `resolve_device`.
    """
    spec = _normalised(spec)
    return spec if spec in ("auto", "cpu") else resolve_device(spec)


def resolve_device(spec: str | None) -> str:
    """The torch device to use. For "auto" (the default), the first CUDA GPU when torch sees
    one, else the CPU; "cpu", "cuda", "cuda:N" or "mps" as asked, once checked to exist.

    Raises:
        ConfigError: an unknown name, or an accelerator this machine's torch cannot use.
    """
    spec = _normalised(spec)
    if spec == "cpu":
        return spec
    try:
        import torch
    except ImportError:
        if spec == "auto":
            return "cpu"
        raise ConfigError(f"device {spec!r} needs torch; pip install 'taxonomist[text]'") from None
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device 'mps' asked for, but torch sees no Apple GPU here")
        return spec
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {spec!r} asked for, but torch {torch.__version__} sees no CUDA GPU here "
            "(a CPU-only torch build, or no driver); use --device cpu"
        )
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"device {spec!r} asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s)"
        )
    return spec


def _normalised(spec: str | None) -> str:
    spec = (spec or "auto").strip().lower()
    if not _DEVICE.match(spec):
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps")
    return spec
