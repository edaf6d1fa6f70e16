"""The ensemble cascade: TF-IDF members first, the encoder only below a learned threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taxonomist.calibration import log_softmax
from taxonomist.errors import ConfigError
from taxonomist.models import load_model, model_class
from taxonomist.models.ensemble import cascade_threshold


def test_threshold_keeps_accuracy_within_the_allowed_drop() -> None:
    rng = np.random.default_rng(0)
    n, k = 400, 5
    y = rng.integers(0, k, n)
    full = log_softmax(rng.normal(size=(n, k)) + 4 * np.eye(k)[y])  # mostly right
    cheap = log_softmax(rng.normal(size=(n, k)) * 2 + 2 * np.eye(k)[y])  # right when sure
    full_acc = (full.argmax(1) == y).mean()
    for drop in (0.0, 0.001, 0.05):
        t = cascade_threshold(cheap, full, y, drop)
        easy = np.exp(cheap.max(1)) >= t
        acc = np.where(easy, cheap.argmax(1) == y, full.argmax(1) == y).mean()
        assert acc >= full_acc - drop - 1e-12
    # a looser budget never sends more rows through the encoder
    assert cascade_threshold(cheap, full, y, 0.05) <= cascade_threshold(cheap, full, y, 0.0)
    # a cheap pool that is always right skips the encoder everywhere
    conf = np.exp(full.max(1))
    everywhere = cascade_threshold(full, full, y, 0.0)
    assert 1 / k < everywhere < conf.min()
    # the threshold splits between two rows' confidences, never on one (float noise in an
    # export must not move a validation row across it)
    t = cascade_threshold(cheap, full, y, 0.001)
    assert not np.isclose(np.exp(cheap.max(1)), t, rtol=0, atol=1e-12).any()


MEMBERS = {
    "members": [
        ["linear", {}],
        ["head", {"encoder": "fake", "hidden": 0, "epochs": 30, "batch_size": 16, "lr": 0.02}],
        ["knn", {"max_df": 0.05}],
    ],
    # every member kept (no out-of-fold selection), so the cascade has an encoder to skip
    "folds": 0,
}


def test_cascade_predicts_like_the_pool_within_budget(tiny_rows, tiny_taxonomy, tmp_path) -> None:
    cls = model_class("ensemble")
    model = cls(tiny_taxonomy, cls.config_class.from_dict(MEMBERS))
    texts = [r["title"] for r in tiny_rows]
    labels = [tiny_taxonomy.by_path(r["category"]).id for r in tiny_rows]
    train = [i for i in range(len(texts)) if i % 4]
    valid = [i for i in range(len(texts)) if not i % 4]
    vt, vl = [texts[i] for i in valid], [labels[i] for i in valid]
    model.fit([texts[i] for i in train], [labels[i] for i in train], vt, vl)
    assert model.cascade_threshold is not None and not model.cascade
    full = model.predict_proba(vt)
    model.cascade = True
    cascaded = model.predict_proba(vt)
    y = np.array([model.labels.index(v) for v in vl])
    assert (cascaded.argmax(1) == y).mean() >= (full.argmax(1) == y).mean() - 0.001
    assert model.cascade_stats["cheap"] + model.cascade_stats["encoded"] == len(vt)
    np.testing.assert_allclose(cascaded.sum(1), 1.0, atol=1e-9)
    # rows sent through the encoder get the full pool's probabilities
    same = np.isclose(cascaded, full, atol=1e-9).all(1)
    assert same.sum() >= model.cascade_stats["encoded"]

    saved = model.save(tmp_path / "m")
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["cascade_threshold"] == pytest.approx(model.cascade_threshold)
    loaded = load_model(saved)
    assert not loaded.cascade  # trained without cascade=True
    loaded.cascade = True
    np.testing.assert_allclose(loaded.predict_proba(vt), cascaded, atol=1e-9)
    # as `classify --cascade` and batch jobs load it
    from taxonomist.classifier import load_classifier

    assert load_classifier(saved, cascade=True).model.cascade
    assert not load_classifier(saved).model.cascade


def test_cascade_needs_a_model_that_has_one(tiny_rows, tiny_taxonomy) -> None:
    from taxonomist.classifier import set_cascade

    cls = model_class("linear")
    model = cls(tiny_taxonomy)
    with pytest.raises(ConfigError, match="--cascade needs an ensemble"):
        set_cascade(model, True)
    set_cascade(model, False)  # turning off what is not there is fine


def test_load_classifier_sets_the_cascade_of_a_trained_model(
    tiny_rows, tiny_taxonomy, tmp_path
) -> None:
    # what `classify --cascade` and batch jobs both go through
    from taxonomist.classifier import load_classifier

    model = model_class("linear")(tiny_taxonomy)
    model.fit(
        [r["title"] for r in tiny_rows],
        [tiny_taxonomy.by_path(r["category"]).id for r in tiny_rows],
    )
    saved = model.save(tmp_path / "linear")
    with pytest.raises(ConfigError, match="--cascade needs an ensemble"):
        load_classifier(saved, cascade=True)
    assert load_classifier(saved, cascade=False).model.kind == "linear"
    # zero-shot has no cascade: the option is not its concern
    load_classifier(taxonomy=tiny_taxonomy, encoder="fake", cascade=True)
