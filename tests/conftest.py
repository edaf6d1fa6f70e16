from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from taxonomist.taxonomy import Taxonomy
from taxonomist.taxonomy_loaders import from_labels

# pytest-xdist runs one worker per core; torch's own thread pool per worker would then
# oversubscribe the cores and slow small-tensor tests several-fold. Set before torch loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

CORPORA = Path(__file__).parent / "corpora"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # never touch the user's ~/.cache from tests
    monkeypatch.setenv("TAXONOMIST_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def tiny_corpus() -> Path:
    return CORPORA / "fashion_tiny.csv"


@pytest.fixture
def tiny_rows(tiny_corpus: Path) -> list[dict[str, str]]:
    with open(tiny_corpus, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def tiny_taxonomy(tiny_rows: list[dict[str, str]]) -> Taxonomy:
    return from_labels(r["category"] for r in tiny_rows)
