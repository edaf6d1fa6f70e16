"""A sentence-transformers directory is cached by its weights' digest, not by its path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from taxonomist.encoders import CachedEncoder, EmbeddingCache
from taxonomist.encoders import sentence as st


def _model_dir(root: Path, weights: bytes) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"hidden_size": 4}', encoding="utf-8")
    (root / "model.safetensors").write_bytes(weights)
    (root / "README.md").write_text("not part of the digest", encoding="utf-8")
    return root


def test_digest_follows_the_bytes_not_the_path(tmp_path: Path) -> None:
    a = _model_dir(tmp_path / "a", b"weights-1")
    b = _model_dir(tmp_path / "b", b"weights-1")
    assert st.weights_digest(a) == st.weights_digest(b)
    (a / "README.md").write_text("edited", encoding="utf-8")
    assert st.weights_digest(a) == st.weights_digest(b)
    (a / "model.safetensors").write_bytes(b"weights-2")  # replaced in place
    assert st.weights_digest(a) != st.weights_digest(b)


def test_digest_reads_the_bytes_once_per_state(tmp_path: Path, monkeypatch) -> None:
    a = _model_dir(tmp_path / "a", b"x" * 4096)
    first = st.weights_digest(a)
    reads = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        reads.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    assert st.weights_digest(a) == first
    assert reads == []  # answered from the (path, size, mtime) memo
    weights = a / "model.safetensors"
    weights.write_bytes(b"y" * 4096)  # same size: the mtime tells
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert st.weights_digest(a) != first and reads


def test_replaced_weights_are_not_served_from_the_cache(
    tmp_path: Path, tiny_transformer: Path
) -> None:
    pytest.importorskip("sentence_transformers")
    import torch
    from transformers import BertModel

    model_dir = tmp_path / "encoder"
    shutil.copytree(tiny_transformer, model_dir)
    cache = EmbeddingCache(tmp_path / "cache")
    texts = ["red cotton shirt", "leather wallet"]
    first = CachedEncoder(st.SentenceTransformerEncoder(model_dir), cache)
    before = first.encode(texts)
    torch.manual_seed(1)
    BertModel(BertModel.from_pretrained(str(model_dir)).config).save_pretrained(str(model_dir))
    second = CachedEncoder(st.SentenceTransformerEncoder(model_dir), cache)
    assert second.name != first.name and second.name.startswith("encoder@")
    after = second.encode(texts)
    assert second.misses == len(texts)  # encoded afresh, not read from the cache
    assert not np.allclose(before, after)
