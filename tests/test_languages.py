"""Language-aware presets: script detection, CJK n-grams, per-language encoders, manifest."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from taxonomist.encoders import build_cached_encoder, build_encoder, language_shares
from taxonomist.errors import ConfigError
from taxonomist.languages import CJK_CHAR_NGRAMS, plan_for
from taxonomist.models import load_model
from taxonomist.models.tfidf import TfidfFeatures
from taxonomist.taxonomy_loaders import from_labels
from taxonomist.training import resolve_kind, train_model

CORPORA = Path(__file__).parent / "corpora"


@pytest.fixture
def zh_rows() -> list[dict[str, str]]:
    with open(CORPORA / "zh_tiny.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_language_shares_and_plan():
    assert language_shares(["纸尿裤 L40片", "red shirt"]) == {"en": 0.5, "zh": 0.5}
    english = plan_for(["red shirt", "blue jeans"])
    assert english.encoder is None and not english.tfidf
    chinese = plan_for(["纸尿裤 L40片", "六个核桃 240ML"])
    assert chinese.encoder == "use" and chinese.tfidf["cjk_char_ngrams"] == CJK_CHAR_NGRAMS
    mixed = plan_for(["纸尿裤 L40片", "red shirt", "blue jeans"])
    assert mixed.encoder and mixed.encoder.startswith("by-language:zh=use")


def test_resolve_kind_adapts_members_and_keeps_user_choices():
    plan = plan_for(["纸尿裤 L40片", "六个核桃 240ML"])
    kind, config = resolve_kind("balanced", None, {}, plan)
    members = dict(config.members)
    assert members["linear"]["cjk_char_ngrams"] == CJK_CHAR_NGRAMS
    assert members["knn"]["cjk_char_ngrams"] == CJK_CHAR_NGRAMS
    assert members["head"]["encoder"] == "use"
    # fewshot starts from name prototypes, as zero-shot does, and keeps E5
    assert plan.adapt("fewshot", {})["encoder"] == "e5"
    # and, for a mostly Chinese catalogue, no pool memory or group folds (no model numbers)
    fewshot = plan.adapt("fewshot", {})
    assert fewshot["pool_memory"] is False and fewshot["group_folds"] is False
    assert plan.adapt("fewshot", {"pool_memory": True})["pool_memory"] is True
    assert "pool_memory" not in plan_for(["red shirt"]).adapt("fewshot", {})
    assert plan.as_manifest()["fewshot"] == {"pool_memory": False, "group_folds": False}
    _, chosen = resolve_kind("balanced", None, {"encoder": "fake"}, plan)
    assert dict(chosen.members)["head"]["encoder"] == "fake"  # the user's encoder wins
    _, english = resolve_kind("fast", None, {}, plan_for(["red shirt"]))
    assert english.cjk_char_ngrams is None


def test_cjk_features_leave_english_products_unchanged():
    english = ["Red cotton T-shirt", "blue slim jeans 32", "Nike air max 90", "a b"]
    plain = TfidfFeatures((1, 2), (2, 5))
    aware = TfidfFeatures((1, 2), (2, 5), cjk_char_ngrams=(1, 3))
    a, b = plain.fit_transform(english), aware.fit_transform(english)
    assert plain.vocabulary() == aware.vocabulary()
    assert abs(a - b).max() == 0


def test_cjk_features_split_chinese_titles_into_characters():
    features = TfidfFeatures((1, 2), (2, 5), cjk_char_ngrams=(1, 3))
    features.fit_transform(["好奇纸尿裤L40片", "养元六个核桃240ML"])
    vocab = features.vocabulary()
    assert "尿" in vocab["char"] and "纸尿裤" in vocab["char"]
    # word tokens are the non-CJK runs only: the whole title is never one "word"
    assert set(vocab["word"]) >= {"l40", "240ml"}
    assert not any("纸" in w for w in vocab["word"])


def test_chinese_linear_model_trains_saves_and_records_the_choice(zh_rows, tmp_path):
    texts = [r["title"] for r in zh_rows]
    labels = [r["category"] for r in zh_rows]
    taxonomy = from_labels(labels)
    trained = train_model(
        texts, labels, taxonomy, tmp_path / "m", preset="fast", valid_fraction=0.3
    )
    manifest = json.loads((trained.path / "manifest.json").read_text("utf-8"))
    assert manifest["config"]["cjk_char_ngrams"] == list(CJK_CHAR_NGRAMS)
    assert manifest["languages"]["shares"]["zh"] == 1.0
    loaded = load_model(trained.path)
    probe = ["牙膏", "可乐", "拖把"]
    assert [p.best.path[-1] for p in loaded.predict(probe)] == ["个人护理", "饮料", "家居用品"]
    np.testing.assert_allclose(
        loaded.predict_proba(probe), trained.model.predict_proba(probe), atol=1e-6
    )


def test_language_routed_encoder_places_each_language_in_its_block():
    encoder = build_encoder("by-language:zh=fake,other=e5")
    assert encoder.dim == 256 + 384
    with pytest.raises(ConfigError, match="other="):
        build_encoder("by-language:zh=fake")
    with pytest.raises(ConfigError, match="language=encoder"):
        build_encoder("by-language:zh,other=fake")


def test_routed_encoder_per_product(monkeypatch):
    from taxonomist.encoders import FakeEncoder
    from taxonomist.encoders.routed import LanguageRoutedEncoder

    built = []

    def build(name):
        built.append(name)
        return FakeEncoder(dim=8 if name == "small" else 16)

    encoder = LanguageRoutedEncoder({"zh": "small"}, "big", build, {"small": 8, "big": 16})
    vectors = encoder.encode(["红色 T恤", "red shirt", "blue jeans"])
    assert vectors.shape == (3, 24)
    assert np.abs(vectors[0, 8:]).sum() == 0 and np.abs(vectors[0, :8]).sum() > 0
    assert np.abs(vectors[1, :8]).sum() == 0 and np.abs(vectors[1, 8:]).sum() > 0
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode(["red"]).shape == (1, 24)
    assert sorted(set(built)) == ["big", "small"]


def test_cached_routed_encoder_caches_per_route(tmp_path):
    from taxonomist.encoders import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "cache")
    encoder = build_cached_encoder("by-language:zh=fake,other=fake-128", cache=cache)
    assert encoder.dim == 384
    first = encoder.encode(["红色 T恤", "red shirt"])
    again = encoder.encode(["红色 T恤", "red shirt"])
    np.testing.assert_array_equal(first, again)


def test_fewshot_kind_learns_from_five_per_category_and_round_trips(tiny_rows, tmp_path):
    from taxonomist.models.fewshot import assign_folds

    by_label: dict[str, list[dict[str, str]]] = {}
    for row in tiny_rows:
        by_label.setdefault(row["category"], []).append(row)
    train = [r for rows in by_label.values() for r in rows[:5]]
    test = [r for rows in by_label.values() for r in rows[5:]]
    taxonomy = from_labels(r["category"] for r in tiny_rows)
    trained = train_model(
        [r["title"] for r in train],
        [r["category"] for r in train],
        taxonomy,
        tmp_path / "few",
        kind="fewshot",
        overrides={"encoder": "fake"},
    )
    assert trained.valid_rows == 0 and trained.train_rows == len(train)
    model = trained.model
    history = model.report.history[0]
    assert 0 <= history["weight_prototypes"] <= 1 and history["prior"] in model.config.priors
    pred = [p.best.path for p in model.predict([r["title"] for r in test])]
    gold = [tuple(r["category"].split(" > ")) for r in test]
    accuracy = np.mean([p == g for p, g in zip(pred, gold)])
    assert accuracy > 0.5  # 20 categories: chance is 0.05
    loaded = load_model(trained.path)
    probe = [r["title"] for r in test[:10]]
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe), atol=1e-5)
    folds = assign_folds(np.array([0, 0, 0, 1, 1, 2]), 3, seed=1)
    assert set(folds[:3]) == {0, 1, 2} and folds[3] != folds[4]


def test_fewshot_falls_back_on_category_names_for_an_unseen_class(tmp_path):
    taxonomy = from_labels(["Shoes", "Shirts", "Watches"])
    texts = ["running shoes", "leather shoes", "cotton shirts", "linen shirts"]
    labels = ["Shoes", "Shoes", "Shirts", "Shirts"]
    trained = train_model(
        texts, labels, taxonomy, tmp_path / "m", kind="fewshot", overrides={"encoder": "fake"}
    )
    # a label never seen has no column; the seen ones still predict from names and examples
    assert trained.model.labels == ["Shirts", "Shoes"]
    assert trained.model.predict(["suede shoes"])[0].best.path == ("Shoes",)
