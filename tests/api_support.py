"""Shared set-up for the API tests: a linear model trained once per test process on the tiny
corpus (a few seconds), an app serving it, and a helper that waits for readiness."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

CORPORA = Path(__file__).parent / "corpora"
MODEL_NAME = "tiny"


def tiny_model_dir(factory: pytest.TempPathFactory, name: str = MODEL_NAME, seed: int = 13) -> Path:
    """A `linear` model directory on the tiny corpus, trained once per process and reused."""
    from taxonomist import service

    target = factory.getbasetemp() / "api-models" / name
    if not (target / "manifest.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        service.train_file(
            CORPORA / "fashion_tiny.csv",
            target,
            preset="fast",
            kind="linear",
            refit=False,
            seed=seed,
        )
    return target


def wait_ready(client, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"not ready after {timeout} s: {client.get('/readyz').json()}")
