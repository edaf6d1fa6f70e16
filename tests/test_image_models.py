"""The image and fusion kinds on the tiny corpus with its photos (fake image encoder)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from taxonomist.errors import ConfigError, DataError
from taxonomist.items import Item
from taxonomist.models import load_model, model_class

FAKE_IMAGE = {"encoder": "fake", "epochs": 40, "hidden": 64, "batch_size": 32, "lr": 0.01}
CONFIGS = {
    "image": FAKE_IMAGE,
    "fusion-late": {"mode": "late", "image_config": FAKE_IMAGE},
    "fusion-early": {"mode": "early", "text_encoder": "fake", "image_config": FAKE_IMAGE,
                     "hidden": 64, "epochs": 30, "batch_size": 32},
    "fusion-both": {"mode": "both", "text_encoder": "fake", "image_config": FAKE_IMAGE,
                    "hidden": 64, "epochs": 30, "batch_size": 32},
}  # fmt: skip


def _fit(name, photo_corpus):
    return photo_corpus.fit(name.split("-")[0], CONFIGS[name])


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fit_predict_save_load(name, photo_corpus, tmp_path) -> None:
    taxonomy, items, labels, _, valid = photo_corpus
    model, report = _fit(name, photo_corpus)
    chance = 1 / 20
    assert report.valid_metrics["accuracy"] > 2 * chance
    vitems = [items[i] for i in valid]
    preds = model.predict(vitems, top_k=3)
    for pred in preds:
        for cand in pred.candidates:
            assert taxonomy.get(cand.category_id).path == cand.path
            levels = cand.level_confidences
            assert all(a >= b - 1e-9 for a, b in zip(levels, levels[1:]))
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["kind"] == model.kind
    assert not list(tmp_path.glob("m/**/*.pkl"))
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(vitems), model.predict_proba(vitems))


@pytest.mark.parametrize("name", ["fusion-late", "fusion-both", "fusion-early"])
def test_fusion_classifies_text_only_and_image_only_input(name, photo_corpus) -> None:
    taxonomy, items, labels, _, valid = photo_corpus
    model, _ = _fit(name, photo_corpus)
    texts = [items[i].text for i in valid]  # plain strings: no images at all
    images = [Item("", items[i].image) for i in valid]
    for inputs in (texts, images):
        probs = model.predict_proba(inputs)
        assert probs.shape == (len(valid), len(model.labels))
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    gold = np.array([model.labels.index(labels[i]) for i in valid])
    assert (model.predict_proba(texts).argmax(1) == gold).mean() > 0.3


def test_late_fusion_of_a_text_only_row_is_the_text_model(photo_corpus) -> None:
    _, items, _, _, valid = photo_corpus
    model, _ = _fit("fusion-late", photo_corpus)
    text_model = model.members[0]
    texts = [items[i].text for i in valid]
    np.testing.assert_allclose(
        model._logits(model.prepare(texts)),
        np.log(text_model.predict_proba(texts)),
        atol=1e-6,
    )


def test_late_fusion_divides_the_image_models_prior_out(photo_corpus) -> None:
    _, items, _, _, valid = photo_corpus
    model, _ = _fit("fusion-late", photo_corpus)
    model.weights = np.array([0.5, 0.5])
    vitems = [items[i] for i in valid]
    corrected = model._logits(model.prepare(vitems))
    model.config = dataclasses.replace(model.config, image_prior_correction=0.0)
    plain = model._logits(model.prepare(vitems))
    prior = model.members[1].log_prior
    np.testing.assert_allclose(corrected - plain, np.tile(-0.5 * prior, (len(vitems), 1)))
    # text-only rows have no image evidence to correct
    texts = [it.text for it in vitems]
    np.testing.assert_allclose(
        model._logits(model.prepare(texts)), np.log(model.members[0].predict_proba(texts)),
        atol=1e-6,
    )  # fmt: skip


def test_image_model_gives_the_prior_without_a_photo(photo_corpus) -> None:
    model, _ = _fit("image", photo_corpus)
    probs = model.predict_proba(["a title but no photo", Item("x", None)])
    np.testing.assert_allclose(probs[0], probs[1])
    assert probs[0].argmax() == np.argmax(model.log_prior)


def test_fusion_needs_photos(photo_corpus) -> None:
    taxonomy, items, labels, train, _ = photo_corpus
    model = model_class("fusion")(taxonomy, model_class("fusion").config_class())
    with pytest.raises(DataError, match="needs images"):
        model.fit([items[i].text for i in train], [labels[i] for i in train])


def test_bad_fusion_and_image_configs() -> None:
    fusion = model_class("fusion").config_class
    with pytest.raises(ConfigError, match="mode"):
        fusion.from_dict({"mode": "sideways"})
    with pytest.raises(ConfigError, match="text kind"):
        fusion.from_dict({"text_kind": "image"})
    with pytest.raises(ConfigError, match="image_prior_correction"):
        fusion.from_dict({"image_prior_correction": 2})
    with pytest.raises(ConfigError, match="fit"):
        model_class("image").config_class.from_dict({"fit": "stretch"})


@pytest.mark.slow
def test_real_backbone_top_blocks_fine_tune_and_reload(photo_corpus, tmp_path) -> None:
    taxonomy, items, labels, train, valid = photo_corpus
    cls = model_class("image")
    config = {"epochs": 3, "hidden": 0, "finetune_blocks": 1, "finetune_epochs": 1,
              "size": 96, "finetune_batch_size": 16}  # fmt: skip
    model = cls(taxonomy, cls.config_class.from_dict(config))
    model.fit([items[i] for i in train[:48]], [labels[i] for i in train[:48]])
    assert model.tuned_backbone and all(
        k.startswith(("_blocks.", "_conv_head.", "_bn1.")) for k in model.tuned_backbone
    )
    vitems = [items[i] for i in valid[:8]]
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(
        loaded.predict_proba(vitems), model.predict_proba(vitems), rtol=1e-4, atol=1e-5
    )
