"""`fewshot`'s pooling: the names member weighed by cross-validation, and weights that never
buy calibration with errors."""

from __future__ import annotations

import pytest

from taxonomist.taxonomy_loaders import from_labels


def _fewshot(labels, texts, y, **config):
    from taxonomist.models import model_class

    cls = model_class("fewshot")
    model = cls(from_labels(labels), cls.config_class.from_dict({"encoder": "fake", **config}))
    model.fit(texts, y)
    return model


def test_fewshot_weighs_the_names_by_cross_validation(tmp_path) -> None:
    """Titles that spell out their category's name: the names member earns weight; saved
    and loaded, it scores the same."""
    import json

    import numpy as np

    from taxonomist.models import load_model

    labels = ["Dishwashers", "Fridges", "Freezers", "Microwaves"]
    rng = np.random.default_rng(0)
    brands = ["bosch", "siemens", "beko", "smeg", "miele", "aeg"]
    texts, y = [], []
    for label in labels:
        word = label.lower().rstrip("s")
        for i in range(8):
            code = "".join(rng.choice(list("abcdefgh0123456789"), 6))
            texts.append(f"{brands[i % 6]} {code} {word}" if i % 2 else f"{brands[i % 6]} {code}")
            y.append(label)
    model = _fewshot(labels, texts, y)
    history = model.report.history[0]
    assert history["weight_names"] > 0 and len(model.weights) == 3
    probe = ["lg zz9911 freezer", "hotpoint qq1234 dishwasher"]
    assert [p.best.path[-1] for p in model.predict(probe)] == ["Freezers", "Dishwashers"]
    path = model.save(tmp_path / "m")
    loaded = load_model(path)
    np.testing.assert_allclose(loaded.predict_proba(probe), model.predict_proba(probe), atol=1e-5)
    assert len(json.loads((path / "manifest.json").read_text("utf-8"))["weights"]) == 3
    # a model saved before the manifest listed its members: the weights' count names them
    manifest = json.loads((path / "manifest.json").read_text("utf-8"))
    assert manifest["members"] == ["prototypes", "linear", "names"]
    del manifest["members"]
    (path / "manifest.json").write_text(json.dumps(manifest), "utf-8")
    older = load_model(path)
    assert older.members == ["prototypes", "linear", "names"]
    np.testing.assert_allclose(older.predict_proba(probe), model.predict_proba(probe), atol=1e-5)
    # with an unlabelled pool the names also pseudo-label it, at the weight the labels chose
    pool = [f"{b} {c}{i} {w}" for i, (b, c, w) in enumerate(zip(brands * 4, "abcdefgh" * 3,
            ["dishwasher", "fridge", "freezer", "microwave"] * 6))]  # fmt: skip
    cls = type(model)
    pooled = cls(model.taxonomy, cls.config_class.from_dict({"encoder": "fake"}))
    pooled.fit(texts, y, unlabelled=pool)
    assert len(pooled.weights) == 3 and pooled.self_training is not None
    assert pooled.weights[2] == pytest.approx(model.weights[2])
    # no labelled title names its category: no names member, as before it existed
    spelled = {"dishwasher", "fridge", "freezer", "microwave"}
    coded = [" ".join(w for w in t.split() if w not in spelled) for t in texts]
    two = _fewshot(labels, coded, y)
    assert len(two.weights) == 2
    # saved with two members (as every model before the names member), loaded with two
    back = load_model(two.save(tmp_path / "two"))
    assert len(back.weights) == 2
    np.testing.assert_allclose(back.predict_proba(probe), two.predict_proba(probe), atol=1e-5)
    assert len(_fewshot(labels, texts, y, name_match=False).weights) == 2


def test_fewshot_pool_weights_never_add_errors_for_calibration() -> None:
    """A sharp member right on 8 of 10 rows (two confident misses) against a soft one right
    on 6: log-loss alone prefers mostly the soft one and makes 3 errors; the pool may not
    make more errors than the sharp member alone."""
    import numpy as np

    from taxonomist.calibration import log_softmax
    from taxonomist.models.ensemble import fit_weights
    from taxonomist.models.fewshot import pool_weights

    y = np.zeros(10, dtype=int)
    sharp = np.tile([12.0, 0.0], (10, 1))
    sharp[8:] = [0.0, 12.0]
    soft = np.tile([2.0, 0.0], (10, 1))
    soft[6:9] = [0.0, 2.0]
    members = [log_softmax(sharp, 1.0), log_softmax(soft, 1.0)]

    def errors(w) -> int:
        return int((sum(wi * m for wi, m in zip(w, members)).argmax(1) != y).sum())

    assert errors(fit_weights(members, y, 0.1)) == 3  # what log-loss alone chose
    assert errors(pool_weights(members, y, 0.1)) <= 2
