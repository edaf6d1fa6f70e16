"""Zero-shot quality mechanisms: bundled category embeddings keyed by weights digest,
progress lines while embedding, the accessory prior and the CSLS hubness correction."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from taxonomist.encoders import EncoderSet, FakeEncoder, Role
from taxonomist.encoders.bundled import bundle_dir, find_bundled, texts_digest, write_bundle
from taxonomist.encoders.progress import encode_with_progress
from taxonomist.errors import ConfigError
from taxonomist.taxonomy_loaders import from_labels, load_taxonomy
from taxonomist.zeroshot import (
    ZeroShotClassifier,
    ZeroShotConfig,
    accessory_nodes,
    has_accessory_word,
)


class CountingEncoder(FakeEncoder):
    """The fake encoder, counting the category texts it is asked to embed."""

    def __init__(self, dim: int = 256, digest: str | None = None) -> None:
        super().__init__(dim)
        self.category_texts = 0
        self._digest = digest

    def weights_digest(self) -> str | None:
        return self._digest or super().weights_digest()

    def encode(self, texts, *, role=Role.PRODUCT, batch_size=64, show_progress=False):
        if role is Role.CATEGORY:
            self.category_texts += len(texts)
        return super().encode(texts, role=role, batch_size=batch_size)


def _bundle(tmp_path: Path, taxonomy, encoder) -> Path:
    clf = ZeroShotClassifier(taxonomy, EncoderSet({}, encoder))
    texts = clf.category_texts("en")
    own = np.mean([encoder.encode(c, role=Role.CATEGORY) for c in texts], axis=0)
    return write_bundle(
        tmp_path / "b.safetensors", own, encoder, texts, taxonomy="t", language="en"
    )


def test_bundled_embeddings_replace_encoding(tmp_path, tiny_taxonomy, monkeypatch) -> None:
    _bundle(tmp_path, tiny_taxonomy, FakeEncoder())
    monkeypatch.setattr("taxonomist.encoders.bundled.bundle_dir", lambda: tmp_path)
    titles = ["Lino Perros Women Brown Handbag", "Nike Men Running Shoes"]
    fresh = CountingEncoder()
    computed = ZeroShotClassifier(tiny_taxonomy, EncoderSet({}, fresh), ZeroShotConfig(adapt=False))
    monkeypatch.setattr("taxonomist.encoders.bundled.bundle_dir", lambda: tmp_path / "none")
    expected = computed.predict(titles)
    assert fresh.category_texts > 0
    monkeypatch.setattr("taxonomist.encoders.bundled.bundle_dir", lambda: tmp_path)
    reuse = CountingEncoder()
    bundled = ZeroShotClassifier(tiny_taxonomy, EncoderSet({}, reuse), ZeroShotConfig(adapt=False))
    got = bundled.predict(titles)
    assert reuse.category_texts == 0  # nothing embedded: the bundle served every category
    assert [p.best.path for p in got] == [p.best.path for p in expected]
    assert np.allclose(
        [p.best.confidence for p in got], [p.best.confidence for p in expected], atol=0.02
    )


def test_bundle_is_ignored_for_other_weights_texts_or_sizes(tmp_path, tiny_taxonomy) -> None:
    encoder = FakeEncoder()
    _bundle(tmp_path, tiny_taxonomy, encoder)
    texts = ZeroShotClassifier(tiny_taxonomy, EncoderSet({}, encoder)).category_texts("en")
    assert find_bundled(encoder, texts, tmp_path) is not None
    # same name and size, other weights: recompute
    assert find_bundled(CountingEncoder(digest="other"), texts, tmp_path) is None
    assert find_bundled(FakeEncoder(dim=128), texts, tmp_path) is None
    changed = [list(texts[0]), *texts[1:]]
    changed[0][0] = changed[0][0] + " (renamed)"
    assert find_bundled(encoder, changed, tmp_path) is None
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    assert find_bundled(encoder, texts, tmp_path) is not None


def test_shipped_bundles_match_the_bundled_taxonomy() -> None:
    """A stale bundle (templates or taxonomy changed) would be silently ignored and the
    first run would take minutes again: the shipped files must match today's texts."""
    from safetensors import safe_open

    files = sorted(bundle_dir().glob("*.safetensors"))
    # every shipped bundle must match today's texts (scripts/bundle-category-embeddings.py
    # writes them: shopify-minilm-en, shopify-use-zh and shopify-e5-zh)
    shopify = load_taxonomy("shopify")
    clf = ZeroShotClassifier(shopify, EncoderSet({}, FakeEncoder()))
    # fewshot's E5 names are embedded without the English cross-language templates
    names_only = ZeroShotClassifier(
        shopify, EncoderSet({}, FakeEncoder()), ZeroShotConfig(cross_language_templates=())
    )
    for path in files:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata()
            shape = fh.get_slice("embeddings").get_shape()
        digests = {texts_digest(c.category_texts(meta["language"])) for c in (clf, names_only)}
        assert meta["texts_digest"] in digests, path
        # float16: 10,281 x 384 is 7.9 MB, x 512 (USE) 10.5 MB
        assert shape[0] == len(shopify) and path.stat().st_size < 11_000_000


def test_progress_lines_with_eta(caplog) -> None:
    ticks = iter(range(0, 1000, 4))  # every chunk "takes" 4 s

    with caplog.at_level(logging.INFO, logger="taxonomist.progress"):
        out = encode_with_progress(
            FakeEncoder(),
            [f"t{i}" for i in range(100)],
            what="embedding",
            chunk=10,
            clock=lambda: next(ticks),
        )
    assert out.shape == (100, 256)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("embedding: 30/100 (30%), ETA")
    assert lines[-1].startswith("embedding: 100/100 done in")
    assert 3 <= len(lines) <= 6  # about one line per 10 s, not one per chunk


def test_accessory_prior_keeps_appliances_out_of_their_parts() -> None:
    taxonomy = from_labels(
        [
            "Home > Kitchen Appliances > Dishwashers",
            "Home > Kitchen Appliance Accessories > Dishwasher Parts",
            "Home > Kitchen Appliances > Microwave Ovens",
            "Electronics > Video > Televisions",
            "Electronics > Video Accessories > TV Mounts",
        ]
    )
    flags = dict(
        zip((c.name for c in taxonomy), accessory_nodes(taxonomy, [c.id for c in taxonomy]))
    )
    assert flags["Dishwasher Parts"] and flags["TV Mounts"]
    assert not flags["Kitchen Appliance Accessories"]  # a container: its leaves decide
    assert not flags["Dishwashers"] and not flags["Televisions"]
    assert has_accessory_word(
        ["Dishwasher spare parts kit", "iPad 蓝色 保护套", "Samsung TV"]
    ).tolist() == [True, True, False]
    texts = ["Bosch dishwasher part 60cm", "Samsung 55 inch TV mount"]
    plain = ZeroShotClassifier(taxonomy, EncoderSet({}, FakeEncoder()), ZeroShotConfig(adapt=False))
    prior = ZeroShotClassifier(
        taxonomy, EncoderSet({}, FakeEncoder()), ZeroShotConfig(adapt=False, accessory_penalty=3.0)
    )
    # texts that name the accessory keep it; the same products without the word do not
    assert [p.best.path[-1] for p in prior.predict(texts)] == [
        p.best.path[-1] for p in plain.predict(texts)
    ]
    appliances = ["Bosch dishwasher 60cm silent", "Samsung 55 inch TV 4K"]
    assert [p.best.path[-1] for p in prior.predict(appliances)] == ["Dishwashers", "Televisions"]


def test_csls_reference_is_the_taxonomy_not_the_catalogue(tiny_taxonomy) -> None:
    encoder = FakeEncoder()
    clf = ZeroShotClassifier(
        tiny_taxonomy, EncoderSet({}, encoder), ZeroShotConfig(hubness_k=3, adapt=False)
    )
    protos = clf.prototypes(encoder, "en")
    key = (encoder.name, "en")
    bias = clf._reference_hubness(key)
    leaves = clf.tree.candidates
    z = clf._standardized(protos[leaves], protos)
    z[np.arange(len(leaves)), leaves] = -np.inf
    assert bias is not None and np.allclose(bias, np.sort(z, axis=0)[-3:].mean(0), atol=1e-5)
    # the same bias whatever the catalogue: a homogeneous file does not shift it
    adapted = clf.adapt(["Women Handbag"] * 20)
    assert np.allclose(adapted._bias[key], bias)
    with pytest.raises(ConfigError, match="hubness_k"):
        ZeroShotConfig(hubness_k=-1)


def test_vertical_prior_follows_the_catalogue_mix(tiny_taxonomy, tiny_rows) -> None:
    texts = [r["title"] for r in tiny_rows]
    tops = [r["category"].split(" > ")[0] for r in tiny_rows]
    clf = ZeroShotClassifier(
        tiny_taxonomy, EncoderSet({}, FakeEncoder()), ZeroShotConfig(vertical_prior=1.0)
    )
    clf = clf.adapt(texts)
    (log_prior,) = clf._log_prior.values()
    by_top = {clf.tree.paths[clf.tree.candidates[i]][0]: float(v) for i, v in enumerate(log_prior)}
    most = max(set(tops), key=tops.count)
    assert max(by_top, key=by_top.get) == most
    probs = np.exp(clf.candidate_log_probs(texts[:5]))
    assert np.allclose(probs.sum(1), 1.0)
