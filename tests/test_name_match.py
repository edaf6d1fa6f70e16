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
