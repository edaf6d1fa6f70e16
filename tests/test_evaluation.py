"""Tests for taxonomist.evaluation."""

from __future__ import annotations

import json
import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxonomist.evaluation import (
    ABSTENTION_THRESHOLDS,
    EvaluationResult,
    evaluate,
    reliability_bins,
)

# Higher-is-better scores that a perfect prediction must max out.
SCORES = [
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "hierarchical_precision",
    "hierarchical_recall",
    "hierarchical_f1",
]

GOLD = [
    ("Apparel", "Topwear", "Shirts"),
    ("Apparel", "Topwear", "Tshirts"),
    ("Apparel", "Bottomwear", "Jeans"),
    ("Home & Garden", "Kitchen"),
    ("Apparel", "Topwear", "Shirts"),
]

names = st.sampled_from(["a", "b", "c"])
paths = st.lists(names, min_size=1, max_size=3).map(tuple)


@st.composite
def gold_pred(draw: st.DrawFn, depth: int | None = None) -> tuple[list, list]:
    n = draw(st.integers(min_value=1, max_value=25))
    p = st.lists(names, min_size=depth, max_size=depth).map(tuple) if depth else paths
    return draw(st.lists(p, min_size=n, max_size=n)), draw(st.lists(p, min_size=n, max_size=n))


def test_perfect_prediction_scores_one() -> None:
    conf = np.ones(len(GOLD))
    res = evaluate(GOLD, list(GOLD), conf)
    for key in SCORES:
        assert res.metrics[key] == pytest.approx(1.0), key
    assert res.metrics["hierarchical_f1"] == 1.0
    assert res.metrics["accuracy_level_1"] == 1.0
    assert res.metrics["accuracy_level_3"] == 1.0
    assert res.metrics["ece"] == pytest.approx(0.0)
    assert res.metrics["coverage_at_precision"] == 1.0
    assert res.top_confusions == []
    assert [r["level"] for r in res.per_level] == [1, 2, 3]
    assert [r["n"] for r in res.per_level] == [5, 5, 4]


def test_hierarchical_hand_example() -> None:
    gold = [("A", "B", "C"), ("A", "D")]
    pred = [("A", "B", "X"), ("E",)]
    m = evaluate(gold, pred).metrics
    # Common prefixes 2 and 0; |A(pred)| = 3 + 1, |A(gold)| = 3 + 2.
    assert m["hierarchical_precision"] == pytest.approx(2 / 4)
    assert m["hierarchical_recall"] == pytest.approx(2 / 5)
    assert m["hierarchical_f1"] == pytest.approx(2 * 0.5 * 0.4 / 0.9)
    assert m["accuracy"] == 0.0
    assert m["accuracy_level_1"] == 0.5
    assert m["accuracy_level_2"] == 0.5


def test_macro_and_weighted_hand_example() -> None:
    gold = [("a",), ("a",), ("b",), ("c",)]
    pred = [("a",), ("b",), ("b",), ("a",)]
    res = evaluate(gold, pred)
    m = res.metrics
    # a: P=1/2 R=1/2 F=1/2; b: P=1/2 R=1 F=2/3; c: 0.
    assert m["precision_macro"] == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert m["recall_macro"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert m["f1_macro"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert m["f1_weighted"] == pytest.approx((2 * 0.5 + 2 / 3) / 4)
    assert m["accuracy"] == 0.5
    rows = {r["category"]: r for r in res.per_class}
    assert rows["b"]["f1"] == pytest.approx(2 / 3)
    assert res.per_class[0]["category"] == "a"  # highest support first


def test_macro_averages_over_gold_classes_only() -> None:
    # "z" is only predicted; counting it as a class would halve macro recall.
    res = evaluate([("a",), ("a",)], [("a",), ("z",)])
    assert res.metrics["recall_macro"] == pytest.approx(0.5)
    assert res.metrics["precision_macro"] == pytest.approx(1.0)
    assert [r["category"] for r in res.per_class] == ["a"]


def test_short_gold_paths_are_excluded_from_deeper_levels() -> None:
    gold = [("A",), ("A", "B"), ("C", "D")]
    pred = [("A", "X"), ("A", "B"), ("C",)]
    res = evaluate(gold, pred)
    lvl1, lvl2 = res.per_level
    assert (lvl1["n"], lvl1["accuracy"]) == (3, 1.0)
    # Item 0 is excluded; item 2's prediction stops at level 1 and counts as wrong.
    assert (lvl2["n"], lvl2["accuracy"]) == (2, 0.5)
    assert res.metrics["accuracy"] == pytest.approx(1 / 3)
    assert "accuracy_level_3" not in res.metrics


def test_empty_prediction_is_wrong_everywhere() -> None:
    res = evaluate([("A", "B")], [()])
    assert res.metrics["accuracy_level_1"] == 0.0
    assert res.metrics["hierarchical_precision"] == 0.0
    assert res.top_confusions == [{"gold": "A > B", "predicted": "(none)", "count": 1}]


def test_confusion_matrix_pools_rare_classes() -> None:
    gold = [("a",)] * 3 + [("b",)] * 2 + [("c",)]
    pred = [("a",), ("a",), ("b",), ("b",), ("c",), ("a",)]
    res = evaluate(gold, pred, max_confusion_labels=2)
    assert res.confusion_labels == ["a", "b"]
    assert res.confusion_matrix == [[2, 1, 0], [0, 1, 1], [1, 0, 0]]
    assert res.top_confusions[0]["count"] == 1
    assert all(c["gold"] != c["predicted"] for c in res.top_confusions)


def test_ece_zero_when_perfectly_calibrated() -> None:
    gold = [("a",)] * 4
    pred = [("a",), ("b",), ("a",), ("b",)]
    res = evaluate(gold, pred, [0.5, 0.5, 0.5, 0.5])
    assert res.metrics["ece"] == pytest.approx(0.0)


def test_ece_hand_example() -> None:
    gold = [("a",)] * 4
    pred = [("a",), ("b",), ("b",), ("b",)]
    res = evaluate(gold, pred, [0.9, 0.9, 0.2, 0.2])
    # Bin at 0.9: acc 0.5, gap 0.4; bin at 0.2: acc 0, gap 0.2; each holds half the items.
    assert res.metrics["ece"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.2)
    filled = [r for r in res.reliability if r["count"]]
    assert [r["count"] for r in filled] == [2, 2]
    assert len(res.reliability) == 15


def test_reliability_bins_edges() -> None:
    rows = reliability_bins(np.array([1, 0, 1]), np.array([0.0, 1.0, 0.5]), n_bins=2)
    assert [r["count"] for r in rows] == [1, 2]
    assert rows[0]["lower"] == 0.0 and rows[1]["upper"] == 1.0
    assert rows[1]["mean_confidence"] == pytest.approx(0.75)
    empty = reliability_bins(np.array([1]), np.array([0.1]), n_bins=3)
    assert empty[2]["accuracy"] is None
    with pytest.raises(ValueError):
        reliability_bins(np.array([1, 0]), np.array([0.5]))


def test_coverage_at_precision() -> None:
    gold = [("a",)] * 4
    pred = [("a",), ("a",), ("b",), ("a",)]
    res = evaluate(gold, pred, [0.9, 0.8, 0.7, 0.1], precision_target=0.9)
    assert res.metrics["coverage_at_precision"] == 0.5
    assert res.metrics["threshold_at_precision"] == 0.8
    # Ties cannot be split: the two top items share a confidence and one is wrong.
    tied = evaluate(gold[:2], [("a",), ("b",)], [0.9, 0.9], precision_target=0.9)
    assert tied.metrics["coverage_at_precision"] == 0.0
    assert tied.metrics["threshold_at_precision"] == 1.0


def test_abstention_rows() -> None:
    res = evaluate([("a",)] * 3, [("a",), ("b",), ("a",)], [0.99, 0.5, 0.02])
    assert [r["threshold"] for r in res.abstention] == list(ABSTENTION_THRESHOLDS)
    assert res.abstention[0]["coverage"] == 1.0
    assert res.abstention[-1]["coverage"] == pytest.approx(1 / 3)
    assert res.abstention[-1]["accuracy"] == 1.0
    assert evaluate([("a",)], [("a",)]).abstention == []


@pytest.mark.parametrize(
    ("gold", "pred", "conf", "match"),
    [
        ([("a",)], [("a",), ("b",)], None, "1 gold vs 2 predicted"),
        ([], [], None, "nothing to evaluate"),
        ([("a",), ("b",)], [("a",), ("b",)], [0.5], "confidence"),
        ([("a",), ("b",)], [("a",), ("b",)], [0.5, 1.5], r"confidence\[1\]"),
        ([("a",), ("b",)], [("a",), ("b",)], [float("nan"), -1], r"confidence\[0\]"),
        ([()], [("a",)], None, "empty path"),
    ],
)
def test_validation_errors(gold: list, pred: list, conf: list | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate(gold, pred, conf)


def test_string_path_rejected() -> None:
    with pytest.raises(TypeError):
        evaluate(["Shirts"], [("Shirts",)])  # type: ignore[list-item]


def test_to_dict_and_summary() -> None:
    res = evaluate(GOLD, GOLD[::-1], np.linspace(0.1, 0.9, len(GOLD)))
    d = res.to_dict()
    assert set(d) >= {
        "n",
        "metrics",
        "per_level",
        "per_class",
        "confusion_labels",
        "confusion_matrix",
        "top_confusions",
        "abstention",
        "reliability",
    }
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    text = res.summary()
    assert "Evaluated 5 items" in text and "ECE" in text and "L3" in text
    assert "ECE" not in evaluate(GOLD, GOLD).summary()


@settings(max_examples=60, deadline=None)
@given(gold_pred(), st.data())
def test_properties_any_depth(gp: tuple[list, list], data: st.DataObject) -> None:
    gold, pred = gp
    conf = data.draw(st.lists(st.floats(0, 1), min_size=len(gold), max_size=len(gold)))
    res = evaluate(gold, pred, conf)
    assert isinstance(res, EvaluationResult)
    for key, value in res.metrics.items():
        assert 0.0 <= value <= 1.0, key
        assert math.isfinite(value)
    all_equal = all(g == p for g, p in zip(gold, pred, strict=True))
    assert (res.metrics["hierarchical_f1"] == 1.0) == all_equal
    assert (res.metrics["accuracy"] == 1.0) == all_equal
    assert (res.metrics["f1_macro"] == pytest.approx(1.0)) == all_equal
    # Every exact match is also right at the top level, which every item reaches.
    assert res.metrics["accuracy_level_1"] >= res.metrics["accuracy"]
    assert res.per_level[0]["n"] == len(gold)
    assert sum(map(sum, res.confusion_matrix)) == len(gold)
    cov = [r["coverage"] for r in res.abstention]
    assert all(a >= b for a, b in pairwise(cov))
    if res.metrics["coverage_at_precision"] > 0:
        keep = np.asarray(conf) >= res.metrics["threshold_at_precision"]
        correct = np.array([g == p for g, p in zip(gold, pred, strict=True)])
        assert keep.mean() == pytest.approx(res.metrics["coverage_at_precision"])
        assert correct[keep].mean() >= res.precision_target - 1e-9


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3).flatmap(lambda d: gold_pred(depth=d)))
def test_properties_uniform_depth(gp: tuple[list, list]) -> None:
    gold, pred = gp
    m = evaluate(gold, pred).metrics
    depth = len(gold[0])
    levels = [m[f"accuracy_level_{d}"] for d in range(1, depth + 1)]
    # Right at level d implies right at every shallower level.
    assert all(a >= b for a, b in pairwise(levels))
    assert levels[-1] == pytest.approx(m["accuracy"])
    # Equal-sized ancestor sets make the two denominators equal.
    assert m["hierarchical_precision"] == pytest.approx(m["hierarchical_recall"])
