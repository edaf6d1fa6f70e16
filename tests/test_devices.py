"""Device choice: names are checked before any data is read, and "auto" never fails."""

from __future__ import annotations

import pytest

from taxonomist.devices import check_device, resolve_device
from taxonomist.errors import ConfigError


def test_cpu_and_auto_pass_the_check_untouched() -> None:
    assert check_device("cpu") == "cpu"
    assert check_device(None) == "auto"
    assert check_device(" AUTO ") == "auto"


def test_unknown_names_are_refused() -> None:
    for name in ("tpu", "cuda:x", "gpu"):
        with pytest.raises(ConfigError, match="unknown device"):
            check_device(name)


def test_auto_resolves_to_what_torch_sees() -> None:
    torch = pytest.importorskip("torch")
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_missing_gpu_is_named() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        with pytest.raises(ConfigError, match=f"sees {count} CUDA"):
            check_device(f"cuda:{count}")
    else:
        with pytest.raises(ConfigError, match="sees no CUDA GPU"):
            check_device("cuda")
