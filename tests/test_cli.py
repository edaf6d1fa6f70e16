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


def test_balanced_preset_pools_linear_head_and_knn(tmp_path: Path, tiny_corpus: Path) -> None:
    model_dir = tmp_path / "balanced"
    result = _run("train", tiny_corpus, "--out", model_dir, "--encoder", "fake", "--epochs", "3")
    assert result.exit_code == 0, result.output
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    members = manifest["config"]["members"]
    assert [kind for kind, _ in members] == ["linear", "head", "knn"]
    assert members[2][1]["max_df"] == 0.002
    # the members kept are the candidate out-of-fold selection chose, refitted on all rows
    selection = manifest["selection"]
    assert len(selection["candidates"]) == 7 and "paired z" in selection["rule"]
    chosen = next(c for c in selection["candidates"] if c["chosen"])["members"]
    assert [m.split("-", 1)[1] for m in manifest["members"]] == [c.split("-", 1)[1] for c in chosen]
    first = json.loads((model_dir / manifest["members"][0] / "manifest.json").read_text("utf-8"))
    assert first["refit_on_train_and_valid"]
    out = tmp_path / "pred.csv"
    assert _run("classify", tiny_corpus, "--model", model_dir, "--out", out).exit_code == 0
    assert _run("evaluate", out, "--gold", tiny_corpus).exit_code == 0


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
    # the saved model is the last trial that beat its incumbent beyond noise
    kept = [t for t in trials if not t["verdict"].startswith("rejected")][-1]
    assert manifest["training"]["valid_metrics"]["accuracy"] == kept["valid_accuracy"]
    assert "paired z" in manifest["tuning"]["rule"]


def test_tune_refuses_a_kind_with_nothing_to_search(tmp_path: Path, tiny_corpus: Path) -> None:
    # fewshot chooses its settings by cross-validation: tune would repeat one trial until
    # the budget ran out
    result = _run(
        "tune", tiny_corpus, "--out", tmp_path / "m", "--kind", "fewshot", "--time-budget", "0.1"
    )
    assert result.exit_code != 0
    assert "nothing for tune to search" in result.output
    assert "train --kind fewshot" in result.output
    assert not (tmp_path / "m").exists()


# -- photos: image columns, bad images, trained fusion models, image-text alignment ---------

IMAGE_CORPUS = Path(__file__).parent / "corpora" / "fashion_tiny_images.csv"
FAKE_IMAGE = {"encoder": "fake", "epochs": 40, "hidden": 64, "batch_size": 32, "lr": 0.01}
FAKE_FUSION = {"mode": "both", "text_encoder": "fake", "image_config": FAKE_IMAGE,
               "hidden": 64, "epochs": 30, "batch_size": 32}  # fmt: skip


def _image_rows() -> list[dict[str, str]]:
    with open(IMAGE_CORPUS, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def _shared(tmp_path_factory: pytest.TempPathFactory):
    """Module-scoped work with the isolated cache (the autouse fixture is per test) and one
    torch thread (tiny matrices; on a busy 2-core machine two threads are ten times slower)."""
    import torch

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAXONOMIST_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        torch.set_num_threads(1)
        try:
            yield tmp_path_factory.mktemp("shared")
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fusion_model(_shared: Path) -> Path:
    """A fusion model trained with photos on the tiny image corpus, fake encoders only."""
    from taxonomist import service
    from taxonomist.data import ColumnSpec

    outcome = service.train_file(
        IMAGE_CORPUS,
        _shared / "fusion",
        preset="fast",
        kind="fusion",
        columns=ColumnSpec(image_column="image"),
        overrides=FAKE_FUSION,
    )
    assert outcome.kind == "fusion"
    return outcome.model_dir


@pytest.fixture(scope="module")
def fake_alignment(_shared: Path) -> Path:
    """An image-text alignment over the fake encoders, trained on the tiny image corpus."""
    from taxonomist.zeroshot_images import AlignmentConfig, ImageTextAlignment

    rows = _image_rows()
    model = ImageTextAlignment(
        AlignmentConfig(text_encoder="fake", image_encoder="fake", epochs=4, batch_size=32)
    )
    model.fit([str(IMAGE_CORPUS.parent / r["image"]) for r in rows], [r["title"] for r in rows])
    return model.save(_shared / "alignment")


@pytest.fixture(scope="module")
def image_taxonomy_file(_shared: Path) -> Path:
    path = _shared / "image_paths.txt"
    path.write_text("\n".join(sorted({r["category"] for r in _image_rows()})), encoding="utf-8")
    return path


@pytest.fixture(params=["trained-fusion", "zero-shot-alignment"])
def photo_classifier(request, fusion_model, fake_alignment, image_taxonomy_file) -> list[str]:
    """`classify` options for the two ways photos are used: a trained model, or zero-shot
    pooling with a learned alignment (fake encoders throughout)."""
    if request.param == "trained-fusion":
        return ["--model", str(fusion_model)]
    return ["-t", str(image_taxonomy_file), "--encoder", "fake", "--alignment", str(fake_alignment)]


def _write_png_header(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims width x height (as in test_images.py)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def _photo_file(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    data = tmp_path / "photos.csv"
    with open(data, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "image"])
        writer.writerows(rows)
    return data


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def bad_image_file(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """A CSV with one good photo and every kind of bad one; line -> expected reason start."""
    import shutil

    corpus = _image_rows()
    pics = tmp_path / "images"
    pics.mkdir()
    shutil.copy(IMAGE_CORPUS.parent / corpus[0]["image"], pics / "good.jpg")
    (pics / "empty.jpg").write_bytes(b"")
    data = (IMAGE_CORPUS.parent / corpus[1]["image"]).read_bytes()
    (pics / "cut.jpg").write_bytes(data[: len(data) // 2])
    (pics / "notes.jpg").write_text("not a picture, just some notes\n", encoding="utf-8")
    _write_png_header(pics / "wide.png", 13_000, 10)  # over our per-side limit
    _write_png_header(pics / "bomb.png", 100_000, 100_000)  # PIL's decompression-bomb check
    refs = ["images/good.jpg", "images/missing.jpg", "images/empty.jpg", "images/cut.jpg",
            "images/notes.jpg", "images/wide.png", "images/bomb.png",
            "http://example.com/a.jpg"]  # fmt: skip
    path = _photo_file(tmp_path, [(f"p{i}", corpus[i]["title"], ref) for i, ref in enumerate(refs)])
    expected = {
        3: "file not found",
        4: "empty file (0 bytes)",
        5: "corrupt or truncated image data",
        6: "not an image (cannot identify the format)",
        7: "image is 13000x10 pixels; the limit is 40,000,000 pixels and 12,000 px per side",
        8: "image dimensions too large",
        9: "remote image URL not fetched; pass --allow-download",
    }
    return path, expected


def test_classify_reports_each_bad_image_and_keeps_its_product(
    tmp_path: Path, bad_image_file, photo_classifier
) -> None:
    data, expected = bad_image_file
    out = tmp_path / "pred.csv"
    result = _run("classify", data, "--out", out, "--image-column", "image", *photo_classifier)
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "Traceback" not in result.output
    rows = _read_csv(out)
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(8)]
    assert all(r["category"] for r in rows)
    for line, reason in expected.items():
        message = f"image ignored, text used: {data}: line {line}: field 'image': {reason}"
        assert message in result.stderr, (line, result.stderr)
        # reported once, though zero-shot reads the file twice (adapting, then classifying)
        assert result.stderr.count(f"{data}: line {line}: field 'image'") == 1
    assert "line 2: field 'image'" not in result.stderr
    assert "skipped:" not in result.stderr
    assert "classified 8 products" in result.stdout
    assert "0 bad rows skipped, 7 without a usable image" in result.stdout


def test_image_only_row_is_classified_and_row_with_nothing_is_skipped(
    tmp_path: Path, photo_classifier
) -> None:
    import shutil

    corpus = _image_rows()
    pics = tmp_path / "images"
    pics.mkdir()
    for i in (0, 1):
        shutil.copy(IMAGE_CORPUS.parent / corpus[i]["image"], pics / f"{i}.jpg")
    data = _photo_file(
        tmp_path,
        [
            ("only-photo", "", "images/0.jpg"),
            ("nothing", "", "images/missing.jpg"),
            ("no-title-no-photo", "", ""),
            ("both", corpus[1]["title"], "images/1.jpg"),
        ],
    )
    out = tmp_path / "pred.csv"
    result = _run("classify", data, "--out", out, "--image-column", "image", *photo_classifier)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    rows = {r["id"]: r for r in _read_csv(out)}
    assert set(rows) == {"only-photo", "both"}
    assert rows["only-photo"]["category"]
    assert (
        f"skipped: {data}: line 3: field 'title': empty text and no usable image (file not found)"
        in result.stderr
    )
    assert f"skipped: {data}: line 4: field 'title': empty text and no usable image" in (
        result.stderr
    )
    assert "2 bad rows skipped" in result.stdout


def test_image_only_row_uses_the_photo_of_a_trained_model(tmp_path: Path, fusion_model) -> None:
    import numpy as np

    from taxonomist.items import Item
    from taxonomist.models import load_model

    corpus = _image_rows()
    photos = [str(IMAGE_CORPUS.parent / corpus[i]["image"]) for i in range(0, 40, 4)]
    data = _photo_file(tmp_path, [(f"p{i}", "", p) for i, p in enumerate(photos)])
    out = tmp_path / "pred.csv"
    result = _run("classify", data, "--out", out, "--image-column", "image",
                  "--model", fusion_model)  # fmt: skip
    assert result.exit_code == 0, result.output
    model = load_model(fusion_model)
    expected = model.predict([Item("", p) for p in photos])
    got = _read_csv(out)
    assert [r["category"] for r in got] == [" > ".join(p.best.path) for p in expected]
    # The photo must be what decides an image-only row. KNOWN BUG (models/fusion.py,
    # FusionModel._pool): the pooling weights are learned on validation rows that all have
    # text; when they give the image and early members weight 0 (here: text 1.0, image 0,
    # early 0), an image-only row has no weighted member left and falls to a uniform
    # distribution: every photo gets the first label at confidence 1/len(labels).
    probs = model.predict_proba([Item("", p) for p in photos])
    uniform = np.allclose(probs, 1 / len(model.labels))
    assert not uniform, (
        "image-only rows get a uniform distribution: the fusion model ignores the photo "
        f"(pooling weights {model._named_weights()})"
    )
    assert len({r["category"] for r in got}) > 1


def test_model_trained_with_photos_classifies_text_only_files(
    tmp_path: Path, tiny_corpus: Path, tiny_rows, fusion_model
) -> None:
    out = tmp_path / "pred.csv"
    result = _run("classify", tiny_corpus, "--out", out, "--model", fusion_model)
    assert result.exit_code == 0, result.output
    rows = _read_csv(out)
    assert [r["id"] for r in rows] == [r["id"] for r in tiny_rows]
    assert all(r["category"] for r in rows)
    assert "without a usable image" not in result.stdout
    # a file with an image column, classified without --image-column: photos are not read
    data = _photo_file(tmp_path, [("a", "Nike Men Running Shoes", "images/absent.jpg")])
    result = _run("classify", data, "--out", out, "--model", fusion_model)
    assert result.exit_code == 0, result.output
    assert "image ignored" not in result.stderr and len(_read_csv(out)) == 1


def test_fusion_model_classifies_the_image_corpus_with_photos(tmp_path: Path, fusion_model) -> None:
    out = tmp_path / "pred.csv"
    result = _run("classify", IMAGE_CORPUS, "--out", out, "--model", fusion_model,
                  "--image-column", "image", "--top-k", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "160 products" in result.stdout and "0 without a usable image" in result.stdout
    result = _run("evaluate", out, "--gold", IMAGE_CORPUS)
    assert result.exit_code == 0 and "accuracy" in result.output


def test_classify_with_alignment_that_is_not_one(
    tmp_path: Path, tiny_corpus: Path, image_taxonomy_file: Path
) -> None:
    model_dir = tmp_path / "linear"
    assert _run("train", tiny_corpus, "--out", model_dir, "--preset", "fast").exit_code == 0
    result = _run("classify", IMAGE_CORPUS, "--out", tmp_path / "o.csv", "--image-column",
                  "image", "-t", image_taxonomy_file, "--encoder", "fake",
                  "--alignment", model_dir)  # fmt: skip
    assert result.exit_code == 1
    assert "holds a 'linear' model, not an image-text alignment" in result.output
    assert "Traceback" not in result.output
    result = _run("classify", IMAGE_CORPUS, "--out", tmp_path / "o.csv", "--image-column",
                  "image", "-t", image_taxonomy_file, "--encoder", "fake",
                  "--alignment", tmp_path / "absent")  # fmt: skip
    assert result.exit_code == 1 and "not found" in result.output


def test_align_refuses_files_without_usable_photos(tmp_path: Path, tiny_corpus: Path) -> None:
    out = tmp_path / "align"
    # no image column at all
    result = _run("align", tiny_corpus, "--out", out)
    assert result.exit_code == 1
    assert "missing image column 'image'" in result.output
    assert "Traceback" not in result.output and not out.exists()
    # an explicitly empty image column name
    result = _run("align", tiny_corpus, "--out", out, "--image-column", "")
    assert result.exit_code == 1
    assert "aligning needs photos" in result.output and not out.exists()
    # an image column whose photos are all unusable: each reported, then a clear refusal
    data = _photo_file(
        tmp_path,
        [("a", "Nike Men Running Shoes", "images/missing.jpg"),
         ("b", "Puma Men Black T-shirt", "http://example.com/b.jpg"),
         ("c", "Fabindia Women Kurta", "")],
    )  # fmt: skip
    result = _run("align", data, "--out", out)
    assert result.exit_code == 1
    assert f"{data}: line 2: field 'image': file not found" in result.stderr
    assert f"{data}: line 3: field 'image': remote image URL not fetched" in result.stderr
    assert "at least two rows with both a photo and a text" in result.stderr
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.slow
def test_align_then_classify_with_the_alignment(tmp_path: Path) -> None:
    rows = _image_rows()[:20]
    data = _photo_file(
        tmp_path, [(r["id"], r["title"], str(IMAGE_CORPUS.parent / r["image"])) for r in rows]
    )
    align_dir = tmp_path / "align"
    result = _run("align", data, "--out", align_dir, "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert "aligned 20 photo/text pairs" in result.stdout
    manifest = json.loads((align_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "alignment" and len(manifest["training"]["history"]) == 2
    assert (align_dir / "alignment.safetensors").exists()
    assert not list(align_dir.rglob("*.pkl"))
    tax = tmp_path / "paths.txt"
    tax.write_text("\n".join(sorted({r["category"] for r in _image_rows()})), encoding="utf-8")
    out = tmp_path / "pred.csv"
    result = _run("classify", data, "--out", out, "-t", tax, "--encoder", "fake",
                  "--image-column", "image", "--alignment", align_dir)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "0 without a usable image" in result.stdout
    preds = _read_csv(out)
    assert [p["id"] for p in preds] == [r["id"] for r in rows]
    assert all(p["category"] for p in preds)


def test_unusable_device_fails_before_training(tmp_path: Path, tiny_corpus) -> None:
    out = tmp_path / "model"
    result = _run("train", tiny_corpus, "--out", out, "--preset", "fast", "--device", "tpu")
    assert result.exit_code == 1 and "unknown device 'tpu'" in result.output
    assert not out.exists()
