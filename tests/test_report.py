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
    assert shorten_label("A > B > C") == "C"
    assert shorten_label("A > B > C", levels=2) == "B > C"
    long = shorten_label("A > " + "x" * 80)
    assert long.replace("\n", "").startswith("x") and long.endswith("\u2026")


IMAGES = Path(__file__).parent / "corpora" / "images"


def _data_uri_image(page: str, mime: str = "image/jpeg"):
    import base64
    import io
    import re

    from PIL import Image

    match = re.search(rf'src="data:{mime};base64,([A-Za-z0-9+/=]+)"', page)
    assert match, f"no {mime} data URI"
    return Image.open(io.BytesIO(base64.b64decode(match.group(1))))


def test_misclassified_section_embeds_photo_thumbnail(
    result: EvaluationResult, tmp_path: Path
) -> None:
    from PIL import Image

    from taxonomist.report import THUMBNAIL_PX, Example

    big = tmp_path / "big.png"
    Image.new("RGBA", (300, 150), (10, 200, 30, 0)).save(big)
    examples = [
        Example(
            "p1", "Red shirt", str(big), "Apparel > Tops > Shirts", "Apparel > Tops > Tees", 0.9
        ),
        Example("p2", "No photo", None, "Toys > Games", "Home > Pans", None),
    ]
    page = render_html(result, examples=examples, misclassified=40)
    assert "Misclassified examples" in page
    assert "2 of 40 misclassified products" in page
    thumb = _data_uri_image(page)
    assert max(thumb.size) == THUMBNAIL_PX and thumb.size == (96, 48)
    assert "Red shirt" in page and "No photo" in page and "p2" in page
    assert "Apparel &gt; Tops &gt; <b>Tees</b>" in page  # shared levels muted, rest bold
    assert "http://" not in page and "https://" not in page


def test_misclassified_section_survives_bad_photos(
    result: EvaluationResult, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from taxonomist.report import Example

    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes((IMAGES / "10115.jpg").read_bytes()[:200])
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello", encoding="utf-8")
    examples = [
        Example("c1", "Truncated", str(corrupt), "A > B", "A > C", 0.8),
        Example("c2", "Missing", str(tmp_path / "gone.jpg"), "A > B", "A > D", 0.7),
        Example("c3", "Text", str(not_image), "A > B", "", 0.6),
        Example("c4", "Good", str(IMAGES / "10115.jpg"), "A > B", "Z", 0.5),
    ]
    page = render_html(result, examples=examples)
    for name in ("Truncated", "Missing", "Text", "Good"):
        assert name in page
    assert page.count("data:image/jpeg;base64,") == 1  # only the good photo
    assert "(none)" in page  # the abstention's empty path
    assert "left out" in caplog.text


def test_misclassified_titles_are_escaped(result: EvaluationResult) -> None:
    from taxonomist.report import Example

    evil = '<script>alert("x")</script> & <b>bold</b>'
    page = render_html(
        result, examples=[Example('id"<1>', evil, None, "A <x> > B", "A <x> > C & D", 0.5)]
    )
    assert "<script" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold" in page
    assert "id&quot;&lt;1&gt;" in page
    assert "A &lt;x&gt; &gt; <b>C &amp; D</b>" in page


def test_no_misclassified_products(result: EvaluationResult) -> None:
    page = render_html(result, examples=[])
    assert "No misclassified products." in page
    assert "Misclassified examples" not in render_html(result)


def test_pick_examples_prefers_photos_then_new_pairs_then_confidence() -> None:
    from taxonomist.report import Example, pick_examples

    def ex(i: str, image: str | None, pred: str, conf: float | None) -> Example:
        return Example(i, i, image, "G", pred, conf)

    picked = pick_examples(
        [
            ex("text-hi", None, "X", 0.99),
            ex("img-lo", "a.jpg", "X", 0.2),
            ex("img-hi", "b.jpg", "X", 0.9),
            ex("img-other", "c.jpg", "Y", 0.5),
            ex("img-none", "d.jpg", "Z", None),
        ],
        limit=4,
    )
    assert [e.id for e in picked] == ["img-hi", "img-other", "img-none", "img-lo"]
    assert len(pick_examples([ex(str(i), None, "X", 0.5) for i in range(30)])) == 12


def _gold_file(tmp_path: Path) -> Path:
    import shutil

    (tmp_path / "pics").mkdir()
    shutil.copy(IMAGES / "10115.jpg", tmp_path / "pics" / "a.jpg")
    gold = tmp_path / "gold.csv"
    gold.write_text(
        "id,title,image,category\n"
        "a,Blue <jeans>,pics/a.jpg,Apparel > Jeans\n"
        "b,Wooden spoon,,Home > Kitchen\n"
        "c,Lost photo,pics/missing.jpg,Home > Kitchen\n"
        "d,Right one,,Home > Kitchen\n",
        encoding="utf-8",
    )
    return gold


def test_misclassified_examples_reads_titles_and_photos(tmp_path: Path) -> None:
    from taxonomist.data import ColumnSpec
    from taxonomist.report import Example, misclassified_examples

    gold = _gold_file(tmp_path)
    mistakes = [
        Example("b", "", None, "Home > Kitchen", "Toys", 0.9),
        Example("c", "", None, "Home > Kitchen", "Toys > Cars", 0.8),
        Example("a", "", None, "Apparel > Jeans", "Home > Kitchen", 0.1),
    ]
    picked = misclassified_examples(gold, ColumnSpec(image_column="image"), mistakes)
    assert [(e.id, e.title) for e in picked] == [
        ("a", "Blue <jeans>"),
        ("b", "Wooden spoon"),
        ("c", "Lost photo"),
    ]
    assert picked[0].image == str(tmp_path / "pics" / "a.jpg")
    assert picked[1].image is None and picked[2].image is None  # missing file: no photo

    text_only = misclassified_examples(gold, ColumnSpec(), mistakes, limit=1)
    assert [(e.id, e.title, e.image) for e in text_only] == [("b", "Wooden spoon", None)]
    labels_only = tmp_path / "labels.csv"
    labels_only.write_text("id,category\nb,Home > Kitchen\n", encoding="utf-8")
    bare = misclassified_examples(labels_only, ColumnSpec(image_column="image"), mistakes)
    assert [(e.id, e.title, e.image) for e in bare] == [
        ("b", "", None),
        ("c", "", None),
        ("a", "", None),
    ]


def test_evaluate_files_report_shows_misclassified_photos(tmp_path: Path) -> None:
    from taxonomist.data import ColumnSpec
    from taxonomist.service import evaluate_files

    gold = _gold_file(tmp_path)
    preds = tmp_path / "pred.csv"
    preds.write_text(
        "id,category,confidence\n"
        "a,Home > Kitchen,0.4\nb,Apparel > Jeans,0.7\nc,Home,0.6\nd,Home > Kitchen,0.9\n",
        encoding="utf-8",
    )
    out = tmp_path / "report.html"
    evaluate_files(preds, gold, columns=ColumnSpec(image_column="image"), report_path=out)
    page = out.read_text(encoding="utf-8")
    assert "3 of 3 misclassified products" in page
    assert "Blue &lt;jeans&gt;" in page and "Wooden spoon" in page and "Right one" not in page
    assert _data_uri_image(page).size == (60, 80)  # small photos are not enlarged
    assert page.index("Blue &lt;jeans&gt;") < page.index("Wooden spoon")  # photo first
