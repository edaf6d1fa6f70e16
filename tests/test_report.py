"""Tests for taxonomist.report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from taxonomist.evaluation import EvaluationResult, evaluate
from taxonomist.report import render_html, shorten_label, write_html


@pytest.fixture(scope="module")
def result() -> EvaluationResult:
    rng = np.random.default_rng(0)
    leaves = [
        ("Home & Garden", "Kitchen", "Knives <sharp>"),
        ("Home & Garden", "Kitchen", "Pans"),
        ("Apparel", "Topwear", "Shirts"),
        ("Apparel", "Bottomwear", "Jeans under $50"),
        ("Toys", "Board games $"),
    ]
    gold = [leaves[i] for i in rng.integers(0, len(leaves), 60)]
    pred = [g if rng.random() < 0.7 else leaves[rng.integers(0, len(leaves))] for g in gold]
    conf = rng.uniform(0.3, 1.0, len(gold))
    return evaluate(gold, pred, conf)


def test_render_html_is_self_contained(result: EvaluationResult) -> None:
    import matplotlib.pyplot as plt

    page = render_html(result, context={"model": "a & b", "input": "<file>.csv"})
    assert plt.get_fignums() == []  # every figure closed
    assert page.startswith("<!DOCTYPE html>")
    assert "<table" in page
    assert page.count("data:image/png;base64,") >= 3
    assert "Home &amp; Garden" in page
    assert "Knives &lt;sharp&gt;" in page
    assert "<sharp>" not in page
    assert "a &amp; b" in page and "&lt;file&gt;.csv" in page
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page
    for heading in ("Headline metrics", "Per level", "Confusions", "Per category"):
        assert heading in page
    assert "calibration error" in page


def test_render_without_confidence_skips_calibration() -> None:
    res = evaluate([("a",), ("b",)], [("a",), ("a",)])
    page = render_html(res, title="T <1>")
    assert "<title>T &lt;1&gt;</title>" in page
    assert page.count("data:image/png;base64,") == 2
    assert "Reliability" not in page


def test_many_classes_add_worst_table() -> None:
    gold = [(f"c{i}",) for i in range(60)]
    res = evaluate(gold, gold[1:] + gold[:1], max_confusion_labels=5)
    page = render_html(res)
    assert "Weakest 50 categories" in page


def test_write_html(tmp_path: Path, result: EvaluationResult) -> None:
    out = tmp_path / "report.html"
    write_html(result, out, title="Run 1")
    text = out.read_text(encoding="utf-8")
    assert "<title>Run 1</title>" in text
    assert list(tmp_path.iterdir()) == [out]  # no temp file left behind


def test_shorten_label() -> None:
    assert shorten_label("A > B > C") == "B > C"
    long = shorten_label("A > " + "x" * 80)
    assert len(long) == 40 and long.startswith("\u2026")
