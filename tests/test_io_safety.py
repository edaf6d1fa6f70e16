"""What a new user trips over (issue 11): outputs that could destroy inputs, late failures,
duplicate ids, bad confidences, file modes, concurrent writers, delimiters and encodings,
header-only feeds, --version and help width, passing input columns through.

CLI tests run the real CLI (Typer's CliRunner) on small files with the fake encoder.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import stat
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taxonomist.cli import app
from taxonomist.data import ColumnSpec, PredictionWriter, ReadReport, read_products
from taxonomist.data.paths import check_distinct, check_model_dir, check_output_file, same_file
from taxonomist.data.readers import guess_encoding, sniff_delimiter
from taxonomist.errors import DataError
from taxonomist.persistence import load_consistent, save_model_dir
from taxonomist.predictions import Candidate, ProductPrediction

runner = CliRunner()

PRODUCTS = (
    "id,title,brand,category\n"
    "1,Nike Men Running Shoes,Nike,Footwear > Shoes > Sports Shoes\n"
    "2,Puma Men Black T-shirt,Puma,Apparel > Topwear > Tshirts\n"
    "3,Lino Perros Women Brown Handbag,Lino,Accessories > Bags > Handbags\n"
)


def _run(*args: object, **kw):
    return runner.invoke(app, [str(a) for a in args], **kw)


@pytest.fixture
def tax(tmp_path: Path, tiny_rows) -> Path:
    path = tmp_path / "paths.txt"
    path.write_text("\n".join(sorted({r["category"] for r in tiny_rows})), encoding="utf-8")
    return path


@pytest.fixture
def products(tmp_path: Path) -> Path:
    path = tmp_path / "products.csv"
    path.write_text(PRODUCTS, encoding="utf-8")
    return path


def _classify(data: Path, out: Path, tax: Path, *extra: object):
    return _run("classify", data, "--out", out, "-t", tax, "--encoder", "fake", *extra)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# -- 1. the output is never the input ---------------------------------------------------------


def test_classify_refuses_to_overwrite_its_input(tmp_path: Path, products: Path, tax: Path) -> None:
    before = products.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(products)
    hard = tmp_path / "hard.csv"
    os.link(products, hard)
    for out in (products, link, hard, tmp_path / "." / "products.csv"):
        # a bogus encoder proves the refusal comes before any model is built
        result = _run("classify", products, "--out", out, "-t", tax, "--encoder", "no-such")
        assert result.exit_code == 1, (out, result.output)
        assert "is the input file" in result.output and "no-such" not in result.output
        assert "Traceback" not in result.output
    # and the other way round: the input through a symlink, the output the real file
    result = _run("classify", link, "--out", products, "-t", tax, "--encoder", "fake")
    assert result.exit_code == 1 and "is the input file" in result.output
    assert products.read_bytes() == before


def test_same_file() -> None:
    assert same_file("a/../b.csv", "b.csv")
    assert not same_file("a.csv", "b.csv")


# -- 2. every output path checked before any work ---------------------------------------------


def test_bad_output_paths_fail_before_any_work(tmp_path: Path, products: Path, tax: Path) -> None:
    for out, message in (
        (tmp_path / "o.xlsx", "unsupported output type '.xlsx'"),
        (tmp_path / "missing" / "o.csv", "output folder does not exist"),
        (tmp_path, "is a folder"),
    ):
        result = _run("classify", products, "--out", out, "-t", tax, "--encoder", "no-such")
        assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "missing").exists()


def test_evaluate_checks_report_and_json_paths_first(tmp_path: Path, products: Path) -> None:
    # the predictions file does not even exist: the output paths are still reported first
    absent = tmp_path / "absent.csv"
    for args, message in (
        (["--report", tmp_path / "r.txt"], "unsupported report type '.txt'"),
        (["--json", tmp_path / "no" / "m.json"], "output folder does not exist"),
        (["--json", tmp_path / "m.csv"], "unsupported metrics JSON type"),
    ):
        result = _run("evaluate", absent, "--gold", products, *args)
        assert result.exit_code == 1 and message in result.output, result.output
    result = _run("evaluate", absent, "--gold", products, "--json", products)
    assert result.exit_code == 1 and "unsupported metrics JSON type '.csv'" in result.output


def test_train_never_replaces_a_user_folder(tmp_path: Path, products: Path) -> None:
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious", encoding="utf-8")
    result = _run("train", products, "--out", mine, "--preset", "fast", "--device", "tpu")
    # refused before the device is even checked (and before reading anything)
    assert result.exit_code == 1 and "not a Taxonomist model directory" in result.output
    assert (mine / "thesis.txt").read_text(encoding="utf-8") == "precious"
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"x")
    result = _run("train", products, "--out", a_file, "--preset", "fast")
    assert result.exit_code == 1 and "is not a folder" in result.output
    # an input inside the model folder would be deleted by the swap
    model = tmp_path / "m"
    model.mkdir()
    (model / "manifest.json").write_text("{}", encoding="utf-8")
    inside = model / "data.csv"
    inside.write_text(PRODUCTS, encoding="utf-8")
    result = _run("tune", inside, "--out", model, "--preset", "fast")
    assert result.exit_code == 1 and "is inside the model directory" in result.output
    with pytest.raises(DataError, match="alignment directory"):
        from taxonomist.service import align_file

        align_file(inside, model, columns=ColumnSpec(image_column="image"))


def test_two_outputs_naming_one_file(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    alias = tmp_path / "alias.json"
    alias.symlink_to(report)
    report.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="would be the same file"):
        check_distinct([("metrics JSON", alias), ("report", report)])
    check_distinct([("metrics JSON", tmp_path / "m.json"), ("report", report), ("x", None)])


def test_check_helpers_accept_good_paths(tmp_path: Path) -> None:
    assert check_output_file(tmp_path / "p.csv", {".csv"}) == tmp_path / "p.csv"
    check_model_dir(tmp_path / "new" / "deeper" / "model")  # parents are created later
    (tmp_path / "empty").mkdir()
    check_model_dir(tmp_path / "empty")


# -- 3. duplicate ids ---------------------------------------------------------------------------

DUPLICATES = (
    "id,title,category\n"
    "a,Nike Men Running Shoes,Footwear > Shoes > Sports Shoes\n"
    "b,Puma Men Black T-shirt,Apparel > Topwear > Tshirts\n"
    "a,Nike Men Running Shoes,Footwear > Shoes > Sports Shoes\n"
    "c,Lino Perros Women Brown Handbag,Accessories > Bags > Handbags\n"
    "a,Nike Men Running Shoes,Footwear > Shoes > Sports Shoes\n"
)


def test_classify_warns_about_duplicate_ids_and_strict_refuses(
    tmp_path: Path, tax: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "dups.csv"
    data.write_text(DUPLICATES, encoding="utf-8")
    out = tmp_path / "p.csv"
    with caplog.at_level(logging.WARNING):
        result = _classify(data, out, tax)
    assert result.exit_code == 0, result.output
    assert "2 rows repeat an earlier id" in result.output
    assert "2 row(s) repeat an earlier row's id: 'a' (line 4, first at line 2)" in caplog.text
    assert len(_rows(out)) == 5
    result = _classify(data, out, tax, "--strict")
    assert result.exit_code == 1
    assert f"{data}: line 4: field 'id': duplicate id 'a' (first at line 2)" in result.output


def test_evaluate_scores_each_id_once(tmp_path: Path) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text(DUPLICATES, encoding="utf-8")
    preds = tmp_path / "p.csv"
    preds.write_text(
        "id,category,confidence\n"
        "a,Footwear > Shoes > Sports Shoes,0.9\n"
        "b,Apparel > Topwear > Tshirts,0.8\n"
        "b,Accessories > Bags > Handbags,0.7\n"  # a repeat: not scored
        "c,Accessories > Bags > Handbags,0.6\n",
        encoding="utf-8",
    )
    metrics = tmp_path / "m.json"
    result = _run("evaluate", preds, "--gold", gold, "--json", metrics)
    assert result.exit_code == 0, result.output
    assert "Evaluated 3 items" in result.output and "accuracy 1.000" in result.output
    assert "gold rows repeating an earlier id (not scored): 2" in result.output
    assert "predictions repeating an earlier id (not scored): 1" in result.output
    context = json.loads(metrics.read_text(encoding="utf-8"))["context"]
    assert context["duplicate gold ids (not scored)"] == "2"
    result = _run("evaluate", preds, "--gold", gold, "--strict")
    assert result.exit_code == 1
    assert f"{preds}: line 4: field 'id': duplicate id 'b'" in result.output


def test_train_warns_about_duplicate_ids(
    tmp_path: Path, tiny_corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "labelled.csv"
    lines = tiny_corpus.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join([*lines, lines[1]]) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        result = _run("train", data, "--out", tmp_path / "m", "--preset", "fast")
    assert result.exit_code == 0, result.output
    first_id = lines[1].split(",")[0]
    assert f"1 row(s) repeat an earlier row's id: '{first_id}' (line {len(lines) + 1}" in (
        caplog.text
    )
    result = _run("train", data, "--out", tmp_path / "m", "--preset", "fast", "--strict")
    assert result.exit_code == 1 and f"duplicate id '{first_id}'" in result.output


# -- 4. confidences in a predictions file ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [("1.5", "outside [0, 1]"), ("nan", "outside [0, 1]"), ("high", "not a number")],
)
def test_bad_confidence_is_named_by_line(tmp_path: Path, value: str, reason: str) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text(PRODUCTS, encoding="utf-8")
    preds = tmp_path / "p.csv"
    preds.write_text(
        "id,category,confidence\n"
        "1,Footwear > Shoes > Sports Shoes,0.9\n"
        f"2,Apparel > Topwear > Tshirts,{value}\n",
        encoding="utf-8",
    )
    result = _run("evaluate", preds, "--gold", gold)
    assert result.exit_code == 1
    assert f"{preds}: line 3: field 'confidence': " in result.output and reason in result.output
    assert "Traceback" not in result.output


def test_bad_confidence_in_jsonl(tmp_path: Path) -> None:
    gold = tmp_path / "gold.csv"
    gold.write_text(PRODUCTS, encoding="utf-8")
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        '{"id": "1", "category": "Footwear", "confidence": null}\n'
        '{"id": "2", "category": "Apparel", "confidence": -0.1}\n',
        encoding="utf-8",
    )
    result = _run("evaluate", preds, "--gold", gold)
    assert result.exit_code == 1
    assert f"{preds}: line 2: field 'confidence': -0.1 is outside [0, 1]" in result.output


# -- 5. file modes follow the umask ------------------------------------------------------------


def _save_tiny(path: Path, version: int = 0) -> Path:
    from safetensors.numpy import save_file

    def write(directory: Path) -> None:
        save_file({"w": np.full(4, version, dtype=np.float32)}, str(directory / "w.safetensors"))
        (directory / "sub").mkdir()
        (directory / "sub" / "vocab.json").write_text("{}", encoding="utf-8")

    return save_model_dir(
        path, manifest={"kind": "tiny", "version": version}, taxonomy=None, write_files=write
    )


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_model_directory_modes_follow_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        model = _save_tiny(tmp_path / "model")
        from taxonomist.persistence import atomic_write_text

        atomic_write_text(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(old)
    modes = {
        p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in [model, *model.rglob("*"), tmp_path / "metrics.json"]
    }
    for name, mode in modes.items():
        want = (0o777 if (tmp_path / name).is_dir() else 0o666) & ~mask
        assert mode == want, (name, oct(mode), oct(want))


def test_cli_trained_model_is_readable_by_the_group(tmp_path: Path, tiny_corpus: Path) -> None:
    old = os.umask(0o022)
    try:
        result = _run("train", tiny_corpus, "--out", tmp_path / "m", "--preset", "fast")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o755
    for path in (tmp_path / "m").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) in (0o644, 0o755), path


# -- 6. two writers at once ---------------------------------------------------------------------


def _pred(pid: str) -> ProductPrediction:
    return ProductPrediction(pid, (Candidate("x", ("X",), 0.5, (0.5,)),))


def test_two_prediction_writers_in_one_process(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    first, second = PredictionWriter(out), PredictionWriter(out)
    with first:
        with second:
            first.write([_pred("from-first")])
            second.write([_pred("from-second")])
        assert [r["id"] for r in _rows(out)] == ["from-second"]
    # the first finished last and wins whole; no temp file is left behind
    assert [r["id"] for r in _rows(out)] == ["from-first"]
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]


def test_concurrent_saves_never_collide(tmp_path: Path) -> None:
    path = tmp_path / "model"
    _save_tiny(path)
    errors: list[BaseException] = []

    def save(version: int) -> None:
        try:
            for _ in range(5):
                _save_tiny(path, version)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(v,)) for v in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no .new-/.old- leftovers
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] in (1, 2, 3)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_linux_swaps_directories_in_one_step(tmp_path: Path) -> None:
    from taxonomist.persistence import _exchange

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "from-a").touch()
    (tmp_path / "b").mkdir()
    assert _exchange(tmp_path / "a", tmp_path / "b")
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["from-a"]
    assert list((tmp_path / "a").iterdir()) == []


@pytest.mark.parametrize("exchange", [True, False])
def test_reader_never_sees_a_missing_or_mixed_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    """A reader loading while the directory is re-saved gets one whole save: the manifest's
    version and the weights' agree, and it never finds the directory missing. Without
    RENAME_EXCHANGE (other systems) the fallback's gap is bridged by the reader's retry."""
    from safetensors.numpy import load_file

    from taxonomist import persistence

    if not exchange:
        monkeypatch.setattr(persistence, "_exchange", lambda a, b: False)
    path = tmp_path / "model"
    _save_tiny(path, 0)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def load(manifest: dict) -> int:
        time.sleep(0.001)  # widen the gap between reading the manifest and the weights
        weights = load_file(str(path / "w.safetensors"))["w"]
        return int(manifest["version"]) * 1000 + int(weights[0])

    def reader() -> None:
        while not stop.is_set():
            try:
                value = load_consistent(path, load, attempts=50)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)
                return
            seen.append(value)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(1, 40):
            _save_tiny(path, version)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert seen and all(v // 1000 == v % 1000 for v in seen), seen


# -- 9. delimiters, encodings, header-only files -----------------------------------------------


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_are_sniffed(
    tmp_path: Path, tax: Path, products: Path, delimiter: str
) -> None:
    data = tmp_path / "semi.csv"
    with open(products, encoding="utf-8", newline="") as src:
        rows = list(csv.reader(src))
    with open(data, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    out = tmp_path / "p.csv"
    result = _classify(data, out, tax)
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in _rows(out)] == ["1", "2", "3"]


def test_explicit_delimiter(tmp_path: Path, tax: Path) -> None:
    # a header with a comma inside a title column name would fool sniffing; --delimiter wins
    data = tmp_path / "d.csv"
    data.write_text("id;title\n1;Nike, Men Running Shoes\n", encoding="utf-8")
    out = tmp_path / "p.csv"
    result = _classify(data, out, tax, "--delimiter", "semicolon", "--keep-columns", "title")
    assert result.exit_code == 0, result.output
    assert _rows(out)[0]["title"] == "Nike, Men Running Shoes"
    result = _classify(data, out, tax, "--delimiter", ";;")
    assert result.exit_code == 1 and "delimiter must be one character" in result.output


def test_sniff_delimiter() -> None:
    assert sniff_delimiter("id,title\n") == ","
    assert sniff_delimiter('id;"a,b";c\n') == ";"
    assert sniff_delimiter("id\ttitle\n") == "\t"
    assert sniff_delimiter("id\n") == ","


def test_cp1252_file_gets_a_hint_and_reads_with_encoding(tmp_path: Path, tax: Path) -> None:
    data = tmp_path / "latin.csv"
    data.write_bytes(
        "id,title\n1,Café crème shirt\n2,Señora bolsa\n3,Plain shirt\n4,Pâté bag\n".encode("cp1252")
    )
    out = tmp_path / "p.csv"
    result = _classify(data, out, tax)
    assert "try --encoding cp1252" in result.output or "cp1252" in result.output
    result = _classify(data, out, tax, "--encoding", "cp1252", "--keep-columns", "title")
    assert result.exit_code == 0, result.output
    assert [r["title"] for r in _rows(out)][0] == "Café crème shirt"
    # every row undecodable: the error itself names the encoding to try
    data.write_bytes("id,title\n1,Café\n2,Crème\n".encode("cp1252"))
    result = _classify(data, out, tax)
    assert result.exit_code == 1
    assert "no valid rows" in result.output and "try --encoding cp1252" in result.output
    result = _classify(data, out, tax, "--encoding", "klingon")
    assert result.exit_code == 1 and "unknown encoding 'klingon'" in result.output


def test_encoding_hint_names_the_likely_encoding(tmp_path: Path, caplog) -> None:
    assert guess_encoding("café".encode("cp1252")) == "cp1252"
    assert guess_encoding("手机壳保护套".encode("gb18030")) == "gb18030"
    data = tmp_path / "zh.csv"
    data.write_bytes("id,title\n1,手机壳\n2,保护套\n3,ok\n".encode("gb18030"))
    report = ReadReport(str(data))
    with caplog.at_level(logging.WARNING):
        list(read_products(data, ColumnSpec(), report=report))
    assert report.encoding_hint == "the file looks gb18030-encoded: try --encoding gb18030"
    assert "2 of 3 rows are not valid UTF-8" in caplog.text
    products = [
        p
        for batch in read_products(data, ColumnSpec(encoding="gb18030"), report=ReadReport("x"))
        for p in batch
    ]
    assert [p.text for p in products] == ["手机壳", "保护套", "ok"]


def test_header_with_bad_bytes_names_an_encoding(tmp_path: Path) -> None:
    data = tmp_path / "h.csv"
    data.write_bytes("id,título\n1,x\n".encode("latin-1"))
    with pytest.raises(DataError, match="try --encoding cp1252"):
        list(read_products(data, ColumnSpec(text_columns=("título",))))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_header_only_input_gives_empty_output(
    tmp_path: Path, tax: Path, suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "today.csv"
    data.write_text("id,title,brand\n", encoding="utf-8")
    out = tmp_path / f"p{suffix}"
    with caplog.at_level(logging.WARNING):
        result = _classify(data, out, tax, "--keep-columns", "brand", "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert "classified 0 products" in result.output
    assert "no data rows; wrote an empty" in caplog.text
    if suffix == ".csv":
        assert out.read_text(encoding="utf-8").splitlines() == [
            "id,category,category_id,confidence,level_confidences,"
            "category_2,category_id_2,confidence_2,brand"
        ]
    elif suffix == ".jsonl":
        assert out.read_text(encoding="utf-8") == ""
    else:
        import pyarrow.parquet as pq

        assert pq.read_table(out).num_rows == 0
    result = _classify(data, out, tax, "--model", tmp_path / "no-model")
    assert result.exit_code == 1 and "model directory not found" in result.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    result = _classify(empty, tmp_path / "e.csv", tax, "--keep-columns", "brand")
    assert result.exit_code == 0, result.output
    assert _rows(tmp_path / "e.csv") == []
    assert (tmp_path / "e.csv").read_text(encoding="utf-8").strip().endswith(",brand")


def test_header_only_training_and_gold_files_are_errors(tmp_path: Path, products: Path) -> None:
    data = tmp_path / "labelled.csv"
    data.write_text("id,title,category\n", encoding="utf-8")
    result = _run("train", data, "--out", tmp_path / "m", "--preset", "fast")
    assert result.exit_code == 1 and "no labelled rows to train on" in result.output
    result = _run("train", data, "--out", tmp_path / "m", "--preset", "fast", "-t", "google")
    assert result.exit_code == 1 and "no data rows (header only)" in result.output
    preds = tmp_path / "p.csv"
    preds.write_text("id,category,confidence\n1,Footwear,0.5\n", encoding="utf-8")
    result = _run("evaluate", preds, "--gold", data)
    assert result.exit_code == 1 and "the gold file has no data rows" in result.output
    preds.write_text("id,category,confidence\n", encoding="utf-8")
    result = _run("evaluate", preds, "--gold", products)
    assert result.exit_code == 1 and "the predictions file has no rows" in result.output


# -- 13. --version and help at 80 columns ------------------------------------------------------


def test_version() -> None:
    from taxonomist import __version__

    result = _run("--version")
    assert result.exit_code == 0 and result.output.strip() == f"taxonomist {__version__}"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["classify"],
        ["train"],
        ["tune"],
        ["align"],
        ["evaluate"],
        ["demo"],
        ["taxonomy"],
        ["models", "list"],
    ],
)
def test_help_fits_80_columns(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "…" not in result.output  # nothing cut with an ellipsis
    if command == ["classify"]:
        assert "[default: title,description]" in " ".join(result.output.split())


# -- 15. input columns passed through; top-k ids; needs_review only when asked ----------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_keep_columns(tmp_path: Path, products: Path, tax: Path, suffix: str) -> None:
    import pandas as pd

    out = tmp_path / f"p{suffix}"
    result = _classify(products, out, tax, "--keep-columns", "title,brand", "--top-k", "2")
    assert result.exit_code == 0, result.output
    if suffix == ".csv":
        frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    elif suffix == ".jsonl":
        frame = pd.read_json(out, lines=True, dtype=str)
    else:
        frame = pd.read_parquet(out)
    assert list(frame["brand"]) == ["Nike", "Puma", "Lino"]
    assert frame["title"].iloc[0] == "Nike Men Running Shoes"
    assert {"category_2", "category_id_2", "confidence_2"} <= set(frame.columns)
    assert "needs_review" not in frame.columns
    assert frame["category_id_2"].notna().all()


def test_keep_all_columns_renames_clashes(tmp_path: Path, products: Path, tax: Path) -> None:
    out = tmp_path / "p.csv"
    result = _classify(products, out, tax, "--keep-columns", "all", "--min-confidence", "0.5")
    assert result.exit_code == 0, result.output
    row = _rows(out)[0]
    # the input's gold `category` and `id` cannot shadow the prediction's
    assert row["input_category"] == "Footwear > Shoes > Sports Shoes"
    assert row["input_id"] == "1" and row["brand"] == "Nike" and "needs_review" in row


def test_keep_missing_column_fails_before_work(tmp_path: Path, products: Path, tax: Path) -> None:
    result = _run(
        "classify", products, "--out", tmp_path / "p.csv", "-t", tax, "--encoder", "no-such",
        "--keep-columns", "title,colour",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--keep-columns: no column 'colour'" in result.output
