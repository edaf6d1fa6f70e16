"""Category names written out in product text: the lexical cue beside zero-shot's embeddings."""

from __future__ import annotations

import pytest

from taxonomist.encoders import EncoderSet, FakeEncoder
from taxonomist.errors import ConfigError
from taxonomist.name_match import NameIndex
from taxonomist.taxonomy_loaders import from_labels
from taxonomist.zeroshot import ZeroShotClassifier, ZeroShotConfig


def test_chinese_names_match_as_substrings_of_two_characters_or_more() -> None:
    index = NameIndex(["酒架", "红酒", "锅", "汤锅"])
    assert index.nodes("天美家德红酒架") == [0]  # the head comes last
    assert index.nodes("苏泊尔 不锈钢汤锅 24cm") == [3]  # 锅 alone is one character
    assert index.nodes("iPhone 15 手机") == []


def test_other_names_match_whole_words_with_plurals_folded() -> None:
    index = NameIndex(["Dishwashers", "Fridges", "Fridge Freezers", "TVs", "Rack"])
    assert index.nodes("Bosch dishwasher 60cm") == [0]
    # a name inside a longer one is dropped: a fridge freezer is not a fridge
    assert index.nodes("smeg fab5rsv FRIDGE freezer") == [2]
    assert index.nodes("samsung 55 tvs") == [3]
    assert index.nodes("racket and ball") == []  # words, not substrings


def test_matrix_rows_follow_the_texts() -> None:
    index = NameIndex(["Dishwashers", "酒架"])
    dense = index.matrix(["dishwasher", "", "红酒架 rack"]).toarray()
    assert dense.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]


def test_name_match_moves_a_product_to_the_category_its_title_names() -> None:
    taxonomy = from_labels(
        [
            "Food > Beverages > Wine",
            "Home > Kitchen > Wine Racks",
            "Home > Kitchen > Cutting Boards",
        ]
    )
    texts = ["oak wine racks for six bottles"]
    plain = ZeroShotClassifier(taxonomy, EncoderSet({}, FakeEncoder()), ZeroShotConfig(adapt=False))
    named = ZeroShotClassifier(
        taxonomy, EncoderSet({}, FakeEncoder()), ZeroShotConfig(adapt=False, name_match=50.0)
    )
    assert named.predict(texts)[0].best.path[-1] == "Wine Racks"
    # without the cue the fake encoder's choice stands; with it, a text naming no category
    # scores exactly as before
    other = ["something else entirely"]
    assert plain.candidate_log_probs(other) == pytest.approx(named.candidate_log_probs(other))
    adapted = named.adapt(texts * 5)
    assert adapted.predict(texts)[0].best.path[-1] == "Wine Racks"
    with pytest.raises(ConfigError, match="name_match"):
        ZeroShotConfig(name_match=-1.0)


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
    assert len(_fewshot(labels, coded, y).weights) == 2
    assert len(_fewshot(labels, texts, y, name_match=False).weights) == 2
