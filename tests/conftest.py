from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from taxonomist.items import Item
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


class PhotoCorpus(NamedTuple):
    """The tiny corpus with its photos (`fashion_tiny_images.csv`) as model inputs; every 5th
    row validates, so all 20 classes are on both sides."""

    taxonomy: Taxonomy
    items: list[Item]
    labels: list[str]
    train: list[int]
    valid: list[int]

    def fit(self, kind: str, config: dict[str, Any]) -> tuple[Any, Any]:
        """A model of `kind` with `config`, fitted on the train rows and validated on the
        valid rows; returns the model and its fit report."""
        from taxonomist.models import model_class

        cls = model_class(kind)
        model = cls(self.taxonomy, cls.config_class.from_dict(config))
        report = model.fit(
            [self.items[i] for i in self.train], [self.labels[i] for i in self.train],
            [self.items[i] for i in self.valid], [self.labels[i] for i in self.valid],
        )  # fmt: skip
        return model, report


@pytest.fixture(scope="module")
def photo_corpus() -> PhotoCorpus:
    path = CORPORA / "fashion_tiny_images.csv"
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    taxonomy = from_labels(r["category"] for r in rows)
    items = [Item(r["title"], str(path.parent / r["image"])) for r in rows]
    labels = [taxonomy.by_path(r["category"]).id for r in rows]
    train = [i for i in range(len(rows)) if i % 5]
    valid = [i for i in range(len(rows)) if not i % 5]
    return PhotoCorpus(taxonomy, items, labels, train, valid)


@pytest.fixture(scope="session")
def tiny_transformer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer BERT with random weights and a word vocabulary of the tiny corpus, saved
    as a transformers directory: `finetune` runs end to end on it in a second or two, where
    the packaged MiniLM takes tens of seconds."""
    pytest.importorskip("transformers")
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-bert")
    with open(CORPORA / "fashion_tiny.csv", encoding="utf-8") as handle:
        words = {w for row in csv.DictReader(handle) for w in row["title"].lower().split()}
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(words)]))
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(words) + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return directory
