"""Shared helpers for the kinds' frozen config dataclasses."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from ..errors import ConfigError

T = TypeVar("T")


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config from a manifest or user dict, refusing unknown keys by name."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} option(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(names))}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def check_positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{owner}.{name} must be > 0, got {value}")


def check_ngram_ranges(owner: str, **ranges: tuple[int, int]) -> None:
    for name, (lo, hi) in ranges.items():
        if not 1 <= lo <= hi:
            raise ConfigError(f"{owner}.{name} must be (min, max) with 1 <= min <= max")
