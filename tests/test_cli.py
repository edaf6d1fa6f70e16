"""CLI end to end on the tiny corpus with the fake encoder (no torch)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxonomist.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _tiny_taxonomy_file(tmp_path: Path, tiny_rows) -> Path:
    path = tmp_path / "paths.txt"
    path.write_text("\n".join(sorted({r["category"] for r in tiny_rows})), encoding="utf-8")
    return path


def test_help_imports_no_torch() -> None:
    code = (
        "import sys; from taxonomist.cli import app; from typer.testing import CliRunner;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0;"
        "bad = [m for m in ('torch', 'sentence_transformers', 'sklearn') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_classify_then_evaluate_with_report(tmp_path: Path, tiny_corpus: Path, tiny_rows) -> None:
    tax = _tiny_taxonomy_file(tmp_path, tiny_rows)
    out = tmp_path / "pred.csv"
    result = _run(
        "classify",
        tiny_corpus,
        "--out",
        out,
        "--taxonomy",
        tax,
        "--encoder",
        "fake",
        "--top-k",
        "2",
    )
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(tiny_rows)
    assert {"id", "category", "confidence", "category_2", "confidence_2"} <= set(rows[0])
    report, metrics = tmp_path / "r.html", tmp_path / "m.json"
    result = _run("evaluate", out, "--gold", tiny_corpus, "--report", report, "--json", metrics)
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output
    data = json.loads(metrics.read_text(encoding="utf-8"))
    assert 0 <= data["metrics"]["hierarchical_f1"] <= 1
    assert "<table" in report.read_text(encoding="utf-8")


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_classify_other_output_formats(tmp_path, tiny_corpus, tiny_rows, suffix) -> None:
    import pandas as pd

    out = tmp_path / f"pred{suffix}"
    tax = _tiny_taxonomy_file(tmp_path, tiny_rows)
    result = _run("classify", tiny_corpus, "--out", out, "-t", tax, "--encoder", "fake")
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_json(out, lines=True)
    assert len(frame) == len(tiny_rows)


def test_bad_rows_are_reported_and_good_rows_written(tmp_path: Path, tiny_rows) -> None:
    data = tmp_path / "mixed.csv"
    data.write_bytes(
        b"id,title,category\n"
        b"1,Nike Men Running Shoes,x\n"
        b"2,,x\n"
        b"3,Caf\xe9 shirt,x\n"
        b"4,Puma Men Black T-shirt,x\n"
    )
    out = tmp_path / "pred.csv"
    tax = _tiny_taxonomy_file(tmp_path, tiny_rows)
    result = _run("classify", data, "--out", out, "-t", tax, "--encoder", "fake")
    assert result.exit_code == 0, result.output
    assert f"{data}: line 3: field 'title': empty text" in result.output
    assert f"{data}: line 4: field 'title': bytes that are not valid UTF-8" in result.output
    assert "Traceback" not in result.output
    with open(out, encoding="utf-8") as handle:
        assert [r["id"] for r in csv.DictReader(handle)] == ["1", "4"]
    strict = _run("classify", data, "--out", out, "-t", tax, "--encoder", "fake", "--strict")
    assert strict.exit_code == 1
    assert "line 3" in strict.output


def test_missing_column_and_missing_file_fail_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "nocols.csv"
    data.write_text("id,name\n1,shirt\n", encoding="utf-8")
    result = _run("classify", data, "--out", tmp_path / "o.csv", "--encoder", "fake")
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {data}: field 'title,description'")
    assert result.output.count("\n") == 1
    result = _run("classify", tmp_path / "absent.csv", "--out", tmp_path / "o.csv")
    assert result.exit_code == 1 and "absent.csv: file not found" in result.output


def test_gold_label_outside_taxonomy_is_named(tmp_path: Path, tiny_corpus, tiny_rows) -> None:
    tax = _tiny_taxonomy_file(tmp_path, tiny_rows)
    out = tmp_path / "pred.csv"
    assert (
        _run("classify", tiny_corpus, "--out", out, "-t", tax, "--encoder", "fake").exit_code == 0
    )
    gold = tmp_path / "gold.csv"
    lines = tiny_corpus.read_text(encoding="utf-8").splitlines()
    first_id = lines[1].split(",")[0]
    lines[1] = f"{first_id},whatever,Garden > Hoses"
    gold.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _run("evaluate", out, "--gold", gold, "-t", tax)
    assert result.exit_code == 0, result.output
    assert (
        f"{gold}: line 2: field 'category': no category with path 'Garden > Hoses'" in result.output
    )
    assert "Evaluated 159 items" in result.output
    strict = _run("evaluate", out, "--gold", gold, "-t", tax, "--strict")
    assert strict.exit_code == 1 and "line 2" in strict.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("id\tparent_id\tname_en\na\tb\tA\nb\ta\tB\n", "cycle"),
        ("id\tparent_id\tname_en\na\t\tA\nb\tzz\tB\n", "names parent 'zz'"),
    ],
)
def test_bad_taxonomy_file_fails_cleanly(tmp_path, tiny_corpus, content, expected) -> None:
    tax = tmp_path / "bad.tsv"
    tax.write_text(content, encoding="utf-8")
    result = _run(
        "classify", tiny_corpus, "--out", tmp_path / "o.csv", "-t", tax, "--encoder", "fake"
    )
    assert result.exit_code == 1
    assert expected in result.output and "Traceback" not in result.output


def test_taxonomy_show_and_search() -> None:
    result = _run("taxonomy", "search", "televisions")
    assert result.exit_code == 0 and "Electronics > Video > Televisions" in result.output
    result = _run("taxonomy", "show", "Electronics > Video > Televisions")
    assert result.exit_code == 0 and "depth: 3" in result.output and "name[zh]" in result.output
    assert _run("taxonomy", "show", "No Such Thing").exit_code == 1


def test_demo_runs_with_fake_encoder(tmp_path: Path) -> None:
    result = _run("demo", "--out", tmp_path, "--encoder", "fake")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.html").exists() and (tmp_path / "metrics.json").exists()
    assert "per-level accuracy" in result.output


@pytest.mark.slow
def test_chinese_iphone_lands_under_electronics_in_shopify(tmp_path: Path) -> None:
    data = tmp_path / "zh.jsonl"
    data.write_text(
        '{"id": "p1", "title": "苹果 iPhone 15 Pro Max 256GB 手机"}\n', encoding="utf-8"
    )
    out = tmp_path / "pred.jsonl"
    result = _run("classify", data, "--out", out, "--no-adapt")
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text(encoding="utf-8"))
    assert row["category"].startswith("Electronics > ")


@pytest.mark.slow
def test_real_encoder_zero_shot_on_tiny_corpus(tmp_path: Path, tiny_corpus, tiny_rows) -> None:
    tax = _tiny_taxonomy_file(tmp_path, tiny_rows)
    out = tmp_path / "pred.csv"
    assert (
        _run("classify", tiny_corpus, "--out", out, "-t", tax, "--encoder", "minilm").exit_code == 0
    )
    metrics = tmp_path / "m.json"
    assert _run("evaluate", out, "--gold", tiny_corpus, "--json", metrics).exit_code == 0
    data = json.loads(metrics.read_text(encoding="utf-8"))["metrics"]
    assert data["accuracy_level_1"] > 0.8 and data["accuracy"] > 0.4


def test_train_classify_evaluate_with_trained_model(tmp_path: Path, tiny_corpus: Path) -> None:
    model_dir = tmp_path / "model"
    result = _run("train", tiny_corpus, "--out", model_dir, "--preset", "fast")
    assert result.exit_code == 0, result.output
    assert "trained linear" in result.output and (model_dir / "manifest.json").exists()
    out = tmp_path / "pred.csv"
    result = _run(
        "classify",
        tiny_corpus,
        "--model",
        model_dir,
        "--out",
        out,
        "--min-confidence",
        "0.5",
        "--top-k",
        "2",
    )
    assert result.exit_code == 0, result.output
    with open(out, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {"needs_review", "category_2"} <= set(rows[0])
    result = _run("evaluate", out, "--gold", tiny_corpus)
    assert result.exit_code == 0 and "accuracy" in result.output


def test_train_head_kind_with_fake_encoder(tmp_path: Path, tiny_corpus: Path) -> None:
    result = _run(
        "train", tiny_corpus, "--out", tmp_path / "m", "--kind", "head", "--encoder", "fake"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "head.safetensors").exists()
    assert (tmp_path / "m" / "training_curve.png").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,title,category\n", "no labelled rows to train on"),
        (
            "id,title,category\n1,a shirt,Apparel > Shirts\n2,b shirt,Apparel > Shirts\n",
            "single class",
        ),
        ("id,title\n1,a shirt\n", "missing label column 'category'"),
    ],
)
def test_bad_training_files(tmp_path: Path, content: str, message: str) -> None:
    data = tmp_path / "train.csv"
    data.write_text(content, encoding="utf-8")
    result = _run("train", data, "--out", tmp_path / "m", "--preset", "fast")
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_training_labels_outside_given_taxonomy(tmp_path: Path, tiny_corpus: Path) -> None:
    result = _run(
        "train",
        tiny_corpus,
        "--out",
        tmp_path / "m",
        "--preset",
        "fast",
        "--taxonomy",
        "google",
        "--strict",
    )
    assert result.exit_code == 1
    assert "line 2: field 'category'" in result.output


def test_tune_keeps_the_best_trial(tmp_path: Path, tiny_corpus: Path) -> None:
    result = _run(
        "tune", tiny_corpus, "--out", tmp_path / "m", "--preset", "fast", "--time-budget", "0.1"
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text(encoding="utf-8"))
    trials = manifest["tuning"]["trials"]
    assert trials and trials[0]["trial"] == 1
    best = max(t["valid_accuracy"] for t in trials)
    assert manifest["training"]["valid_metrics"]["accuracy"] == best
