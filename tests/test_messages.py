"""Messages that tell the truth, and output a reviewer can act on (issue 11: items 7, 8, 12,
14, 16), through the real CLI on small files."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxonomist.cli import app
from taxonomist.predictions import Candidate, Predictions, ProductPrediction
from taxonomist.taxonomy import Node, Taxonomy
from taxonomist.taxonomy_loaders import check_model_taxonomy, guess_label_separator

runner = CliRunner()


def _run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fast model trained through the CLI on the tiny corpus, in a folder named 'catalogue'."""
    root = tmp_path_factory.mktemp("msgs")
    corpus = Path(__file__).parent / "corpora" / "fashion_tiny.csv"
    model = root / "catalogue"
    result = _run("train", corpus, "--out", model, "--preset", "fast", "--no-refit")
    assert result.exit_code == 0, result.output
    return model


@pytest.fixture
def slash_gold(tmp_path: Path, tiny_corpus: Path) -> Path:
    path = tmp_path / "slash.csv"
    path.write_text(tiny_corpus.read_text(encoding="utf-8").replace(" > ", "/"), encoding="utf-8")
    return path


# -- item 12: a taxonomy made from the labels is named after the model -----------------------


def test_label_taxonomy_is_named_after_the_model(trained: Path, tmp_path, tiny_corpus) -> None:
    saved = json.loads((trained / "taxonomy.json").read_text(encoding="utf-8"))
    assert saved["name"] == "catalogue"
    result = _run("classify", tiny_corpus, "--model", trained, "--out", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    assert "into catalogue" in result.output and "fashion_tiny" not in result.output


# -- item 8: --taxonomy with --model ------------------------------------------------------------


def test_model_with_another_taxonomy_is_an_error(trained: Path, tmp_path, tiny_corpus) -> None:
    out = tmp_path / "p.csv"
    result = _run("classify", tiny_corpus, "--model", trained, "--out", out, "-t", "google")
    assert result.exit_code == 1
    assert "trained on its own taxonomy 'catalogue'" in result.output
    assert "Traceback" not in result.output and not out.exists()
    # the model's own taxonomy, given explicitly, is fine
    own = trained / "taxonomy.json"
    result = _run("classify", tiny_corpus, "--model", trained, "--out", out, "-t", own)
    assert result.exit_code == 0, result.output


def test_check_model_taxonomy_compares_content_not_names(tiny_taxonomy: Taxonomy) -> None:
    check_model_taxonomy(tiny_taxonomy, None, model="m")
    with pytest.raises(Exception, match="different one"):
        check_model_taxonomy(tiny_taxonomy, "shopify", model="m")


# -- item 7: separators and taxonomy mismatches ---------------------------------------------------


def test_guess_label_separator() -> None:
    assert guess_label_separator(["A/B/C", "A/D", "E"]) == "/"
    assert guess_label_separator(["A | B", "C | D"]) == "|"
    assert guess_label_separator(["A » B", "C » D"]) == "»"
    assert guess_label_separator(["A > B", "C/D > E"]) is None  # the separator is in use
    assert guess_label_separator(["Shirts", "T-Shirts/Tops", "Shoes"]) is None  # a few names
    assert guess_label_separator(["A/B", "C/D"], "/") is None


def test_training_on_slash_joined_labels_warns(slash_gold: Path, tmp_path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="taxonomist"):
        result = _run("train", slash_gold, "--out", tmp_path / "m", "--preset", "fast")
    assert result.exit_code == 0, result.output
    text = caplog.text + result.output
    assert "joined by '/'" in text and "--label-separator '/'" in text


def test_evaluate_slash_gold_says_why_accuracy_is_zero(
    trained: Path, slash_gold: Path, tmp_path, tiny_corpus
) -> None:
    preds = tmp_path / "p.csv"
    assert _run("classify", tiny_corpus, "--model", trained, "--out", preds).exit_code == 0
    result = _run("evaluate", preds, "--gold", slash_gold)
    assert result.exit_code == 0, result.output
    assert "share even the top level" in result.output
    assert "--label-separator '/'" in result.output
    # resolved in a taxonomy they are not from: every gold row is bad, and it says why
    result = _run("evaluate", preds, "--gold", slash_gold, "-t", "shopify")
    assert result.exit_code == 1 and "--label-separator '/'" in result.output
    assert "check --id-column" not in result.output


def test_evaluate_other_taxonomy_says_so(tmp_path: Path, tiny_corpus: Path, tiny_rows) -> None:
    preds = tmp_path / "p.csv"
    with open(preds, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "category", "confidence"])
        for row in tiny_rows:
            writer.writerow([row["id"], "Electronics > Video > Televisions", "0.4"])
    result = _run("evaluate", preds, "--gold", tiny_corpus)
    assert result.exit_code == 0
    assert "different taxonomies" in result.output


# -- item 14: backed-off rows keep an ancestor and a suggestion --------------------------------


def _cand(cid: str, path: tuple[str, ...], levels: tuple[float, ...]) -> Candidate:
    return Candidate(cid, path, levels[-1], levels)


def test_back_off_keeps_top_level_and_suggestion(tiny_taxonomy: Taxonomy) -> None:
    full = ("Accessories", "Bags", "Handbags")
    leaf = " > ".join(full)
    preds = Predictions(
        [
            ProductPrediction("a", (_cand(leaf, full, (0.3, 0.2, 0.1)),)),
            ProductPrediction("b", (_cand(leaf, full, (0.9, 0.6, 0.4)),)),
            ProductPrediction("c", (_cand(leaf, full, (0.9, 0.9, 0.9)),)),
        ]
    ).with_min_confidence(0.5, tiny_taxonomy)
    a, b, c = preds
    assert a.needs_review and a.best.path == ("Accessories",) and a.best.confidence == 0.3
    assert a.suggested is not None and a.suggested.path == full and a.suggested.confidence == 0.1
    assert b.needs_review and b.best.path == ("Accessories", "Bags") and b.suggested.path == full
    assert not c.needs_review and c.suggested is None


def test_min_confidence_rows_are_never_empty_and_evaluate_keeps_ece(
    trained: Path, tmp_path: Path, tiny_corpus: Path
) -> None:
    out = tmp_path / "p.csv"
    result = _run(
        "classify", tiny_corpus, "--model", trained, "--out", out, "--min-confidence", "0.9999"
    )
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    flagged = [r for r in rows if r["needs_review"] == "True"]
    assert flagged, "the threshold should flag some rows"
    for row in flagged:
        assert row["category"] and row["category_id"] and row["confidence"]
        assert row["suggested_category"].startswith(row["category"])
        assert float(row["suggested_confidence"]) <= float(row["confidence"])
    assert all(not r["suggested_category"] for r in rows if r["needs_review"] == "False")
    report = tmp_path / "r.html"
    metrics = tmp_path / "m.json"
    result = _run("evaluate", out, "--gold", tiny_corpus, "--json", metrics, "--report", report)
    assert result.exit_code == 0, result.output
    assert "ECE" in result.output and "full-depth" in result.output
    saved = json.loads(metrics.read_text(encoding="utf-8"))["metrics"]
    assert {"ece", "coverage_at_precision", "accuracy_full_depth"} <= set(saved)


def test_evaluate_keeps_ece_when_abstained_rows_have_no_confidence(
    tmp_path: Path, tiny_corpus: Path, tiny_rows
) -> None:
    # files written before backed-off rows kept their top level: empty category and confidence
    preds = tmp_path / "old.csv"
    with open(preds, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "category", "confidence", "needs_review"])
        for n, row in enumerate(tiny_rows):
            if n % 3:
                writer.writerow([row["id"], row["category"], "0.8", "False"])
            else:
                writer.writerow([row["id"], "", "", "True"])
    result = _run("evaluate", preds, "--gold", tiny_corpus)
    assert result.exit_code == 0, result.output
    assert "ECE" in result.output and "coverage" in result.output


# -- item 16: --language ------------------------------------------------------------------------


@pytest.fixture
def zh_taxonomy(tmp_path: Path) -> Path:
    nodes = [
        Node("ac", None, {"en": "Accessories", "zh": "配饰"}),
        Node("ac-1", "ac", {"en": "Bags", "zh": "包"}),
        Node("ac-1-1", "ac-1", {"en": "Handbags", "zh": "手提包"}),
        Node("ac-2", "ac", {"en": "Watches"}),  # no Chinese name: English stays
        Node("fw", None, {"en": "Footwear", "zh": "鞋类"}),
        Node("fw-1", "fw", {"en": "Sandals", "zh": "凉鞋"}),
    ]
    path = tmp_path / "zh.json"
    path.write_text(Taxonomy(nodes, name="zh-test").to_json(), encoding="utf-8")
    return path


def test_classify_language_zh_writes_chinese_paths(
    zh_taxonomy: Path, tmp_path: Path, tiny_corpus: Path
) -> None:
    out = tmp_path / "p.csv"
    args = ["classify", tiny_corpus, "--out", out, "-t", zh_taxonomy, "--encoder", "fake"]
    result = _run(*args, "--language", "zh", "--top-k", "2", "--min-confidence", "0.99")
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    chinese = {"配饰", "包", "手提包", "鞋类", "凉鞋", "Watches"}
    for row in rows:
        for column in ("category", "category_2", "suggested_category"):
            if row[column]:
                assert set(row[column].split(" > ")) <= chinese, row
        assert row["category_id"] in {"ac", "ac-1", "ac-1-1", "ac-2", "fw", "fw-1"}
    # a taxonomy without Chinese names: said before any work, not English paths silently
    english = tmp_path / "en.json"
    english.write_text(Taxonomy.from_paths([("Bags", "Handbags")]).to_json(), encoding="utf-8")
    args = ["classify", tiny_corpus, "--out", tmp_path / "q.csv", "-t", english]
    result = _run(*args, "--encoder", "fake", "--language", "zh")
    assert result.exit_code == 1 and "no names in language 'zh'" in result.output


def test_predictions_in_language_fall_back_per_level() -> None:
    tax = Taxonomy(
        [Node("a", None, {"en": "A", "zh": "甲"}), Node("a-1", "a", {"en": "B"})], name="t"
    )
    preds = Predictions([ProductPrediction("p", (_cand("a-1", ("A", "B"), (0.9, 0.8)),))])
    assert preds.localized(tax, "zh")[0].best.path == ("甲", "B")
    assert preds.localized(tax, "en")[0].best.path == ("A", "B")


def test_training_slash_labels_into_a_taxonomy_names_the_separator(
    slash_gold: Path, tmp_path: Path, tiny_taxonomy: Taxonomy
) -> None:
    tax = tmp_path / "tax.json"
    tax.write_text(tiny_taxonomy.to_json(), encoding="utf-8")
    result = _run("train", slash_gold, "--out", tmp_path / "m", "--preset", "fast", "-t", tax)
    assert result.exit_code == 1
    assert "--label-separator '/'" in result.output
