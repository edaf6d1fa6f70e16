"""Tests for taxonomist.data: reading product files and writing predictions."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from taxonomist.data import (
    BadRow,
    ColumnSpec,
    PredictionWriter,
    Product,
    ReadReport,
    prediction_rows,
    read_products,
)
from taxonomist.data.readers import read_labels
from taxonomist.data.writers import prediction_columns
from taxonomist.errors import ConfigError, DataError
from taxonomist.predictions import Candidate, ProductPrediction
from taxonomist.taxonomy import Taxonomy

RECORDS: list[dict[str, Any]] = [
    {"id": "p1", "title": "Red shirt", "description": "Cotton, long sleeves"},
    {"id": "p2", "title": "Blue jeans", "description": ""},
    {"id": "p3", "title": "", "description": "Ceramic mug"},
]
EXPECTED_TEXTS = ["Red shirt. Cotton, long sleeves", "Blue jeans", "Ceramic mug"]


@pytest.fixture
def taxonomy() -> Taxonomy:
    return Taxonomy.from_paths(
        [("Apparel", "Tops", "Shirts"), ("Apparel", "Bottoms", "Jeans"), ("Home", "Mugs")]
    )


def _read_all(path: Path, **kwargs: Any) -> tuple[list[Product], ReadReport]:
    report = ReadReport(str(path))
    products = [p for batch in read_products(path, report=report, **kwargs) for p in batch]
    return products, report


def _jpeg(path: Path) -> Path:
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path, "JPEG")
    return path


def _write_csv(path: Path, rows: list[dict[str, Any]], delimiter: str = ",") -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


WRITERS = {
    "csv": lambda p, r: _write_csv(p, r),
    "tsv": lambda p, r: _write_csv(p, r, delimiter="\t"),
    "jsonl": _write_jsonl,
    "ndjson": _write_jsonl,
    "parquet": _write_parquet,
}


# -- reading: formats ---------------------------------------------------------------------


@pytest.mark.parametrize("ext", sorted(WRITERS))
def test_read_each_format_with_default_columns(tmp_path: Path, ext: str) -> None:
    path = WRITERS[ext](tmp_path / f"products.{ext}", RECORDS)
    products, report = _read_all(path)
    assert [p.id for p in products] == ["p1", "p2", "p3"]
    assert [p.text for p in products] == EXPECTED_TEXTS
    assert all(p.label is None and p.image is None for p in products)
    assert report.rows == report.good == 3
    assert report.bad_rows == []
    assert report.columns == ["id", "title", "description"]
    assert report.text_columns == ["title", "description"]


def test_csv_lines_count_the_header(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "p.csv", RECORDS)
    products, _ = _read_all(path)
    assert [p.line for p in products] == [2, 3, 4]


def test_parquet_lines_are_row_numbers(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "p.parquet", RECORDS)
    products, _ = _read_all(path)
    assert [p.line for p in products] == [1, 2, 3]


def test_only_present_text_columns_are_used(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "p.csv", [{"id": "a", "title": "Mug"}])
    products, report = _read_all(path)
    assert products[0].text == "Mug"
    assert report.text_columns == ["title"]


def test_custom_columns_and_image(tmp_path: Path) -> None:
    _jpeg(tmp_path / "a.jpg")
    path = _write_jsonl(
        tmp_path / "p.jsonl",
        [{"sku": 7, "name": "Mug", "brand": "Acme", "img": "a.jpg"}],
    )
    spec = ColumnSpec(id_column="sku", text_columns=("brand", "name"), image_column="img")
    products, _ = _read_all(path, columns=spec)
    assert products == [Product("7", "Acme. Mug", 1, None, str(tmp_path / "a.jpg"))]


def test_missing_image_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "p.csv", RECORDS)
    with pytest.raises(DataError, match="missing image column 'img'"):
        _read_all(path, columns=ColumnSpec(image_column="img"))


def test_bom_and_whitespace_in_header(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes("\ufeff id , title \np1,Mug\n".encode())
    products, _ = _read_all(path)
    assert [(p.id, p.text) for p in products] == [("p1", "Mug")]


def test_text_is_cut_to_max_chars(tmp_path: Path) -> None:
    from taxonomist.data.readers import MAX_TEXT_CHARS

    path = _write_csv(tmp_path / "p.csv", [{"id": "a", "title": "x" * (MAX_TEXT_CHARS + 50)}])
    products, _ = _read_all(path)
    assert len(products[0].text) == MAX_TEXT_CHARS


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,title\np1,Mug\n\n,\np2,Cup\n", "utf-8")
    products, report = _read_all(path)
    assert [(p.id, p.line) for p in products] == [("p1", 2), ("p2", 5)]
    assert report.rows == 2


# -- reading: file-level errors -----------------------------------------------------------


def test_missing_text_columns_names_file_and_columns(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "p.csv", [{"id": "a", "name": "Mug"}])
    with pytest.raises(DataError) as info:
        _read_all(path)
    err = info.value
    assert err.file == str(path)
    assert err.field == "title,description"
    message = str(err)
    assert str(path) in message
    assert "'title'" in message and "'description'" in message
    assert "'name'" in message  # the columns found


def test_missing_text_columns_jsonl(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "name": "Mug"}])
    with pytest.raises(DataError, match="none of the text columns"):
        _read_all(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match="file not found") as info:
        _read_all(path)
    assert info.value.file == str(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="is a directory"):
        _read_all(folder)


@pytest.mark.parametrize("name", ["p.xlsx", "p.txt", "products"])
def test_unsupported_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("id,title\na,b\n", "utf-8")
    with pytest.raises(DataError, match="unsupported file type") as info:
        _read_all(path)
    assert ".csv" in str(info.value) and ".parquet" in str(info.value)


def test_empty_files(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("", "utf-8")
    with pytest.raises(DataError, match="empty"):
        _read_all(csv_path)
    jsonl_path = tmp_path / "p.jsonl"
    jsonl_path.write_text("\n\n", "utf-8")
    # a JSONL file with no records is a feed with nothing in it, like a header-only CSV
    products, report = _read_all(jsonl_path)
    assert products == [] and report.rows == 0


def test_header_only_csv_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,title\n", "utf-8")
    products, report = _read_all(path)
    assert products == [] and report.rows == 0


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        _read_all(path)


def test_non_utf8_header(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"id,ti\xfftle\na,b\n")
    with pytest.raises(DataError, match="header") as info:
        _read_all(path)
    assert info.value.row == 1


# -- reading: bad rows --------------------------------------------------------------------

MIXED_CSV = (
    b"id,title,description\n"  # 1
    b"p1,Red shirt,Cotton\n"  # 2 good
    b"p2,,\n"  # 3 empty text
    b'p3,"Caf\xff mug",Ceramic\n'  # 4 non-UTF-8 byte in title
    b"p4,Jeans,Denim,extra\n"  # 5 wrong number of fields
    b"p5,,Only a description\n"  # 6 good: one text column is enough
    b",Nameless,thing\n"  # 7 empty id
    b"p7,Blue jeans,Denim\n"  # 8 good
)


@pytest.fixture
def mixed_csv(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.csv"
    path.write_bytes(MIXED_CSV)
    return path


def test_bad_rows_are_reported_and_good_rows_yielded(mixed_csv: Path) -> None:
    seen: list[BadRow] = []
    products, report = _read_all(mixed_csv, on_bad_row=seen.append)
    assert [(p.id, p.line, p.text) for p in products] == [
        ("p1", 2, "Red shirt. Cotton"),
        ("p5", 6, "Only a description"),
        ("p7", 8, "Blue jeans. Denim"),
    ]
    assert [(b.line, b.field) for b in report.bad_rows] == [
        (3, "title/description"),
        (4, "title"),
        (5, None),
        (7, "id"),
    ]
    assert all(b.file == str(mixed_csv) for b in report.bad_rows)
    reasons = [b.reason for b in report.bad_rows]
    assert reasons[0] == "empty text"
    assert "UTF-8" in reasons[1]
    assert reasons[2] == "expected 3 fields, found 4"
    assert reasons[3] == "empty id"
    assert seen == report.bad_rows
    assert (report.rows, report.good) == (7, 3)


def test_bad_row_str() -> None:
    assert str(BadRow("f.csv", 3, "title", "empty text")) == (
        "f.csv: line 3: field 'title': empty text"
    )
    assert str(BadRow("f.csv", 5, None, "expected 3 fields, found 4")) == (
        "f.csv: line 5: expected 3 fields, found 4"
    )


def test_strict_raises_on_first_bad_row(mixed_csv: Path) -> None:
    got: list[Product] = []
    with pytest.raises(DataError) as info:
        for batch in read_products(mixed_csv, strict=True, batch_size=1):
            got.extend(batch)
    err = info.value
    assert (err.file, err.row, err.field) == (str(mixed_csv), 3, "title/description")
    message = str(err)
    assert str(mixed_csv) in message
    assert "line 3" in message and "'title/description'" in message
    assert message.endswith("empty text")
    assert [p.id for p in got] == ["p1"]


def test_strict_on_wrong_field_count(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"id,title\np1,a\np2,b,c\n")
    with pytest.raises(DataError, match="expected 2 fields, found 3") as info:
        _read_all(path, strict=True)
    assert info.value.row == 3
    assert info.value.field is None


def test_rows_after_a_multiline_field_keep_their_line(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b'id,title\np1,"two\nlines"\np2,Mug\n,\np3,Cup\n')
    products, _ = _read_all(path)
    assert products[0].text == "two\nlines"
    assert [(p.id, p.line) for p in products[1:]] == [("p2", 4), ("p3", 6)]


def test_jsonl_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(
        b'{"id": "a", "title": "Mug"}\n'
        b"{not json\n"
        b"\n"
        b"[1, 2]\n"
        b'{"id": "d", "title": "Caf\xff"}\n'
        b'{"id": "e", "title": "Cup"}\n'
    )
    products, report = _read_all(path)
    assert [(p.id, p.line) for p in products] == [("a", 1), ("e", 6)]
    assert [(b.line, b.field) for b in report.bad_rows] == [(2, None), (4, None), (5, "title")]
    assert "invalid JSON" in report.bad_rows[0].reason
    assert report.bad_rows[1].reason == "expected a JSON object"


def test_parquet_nulls_are_empty(tmp_path: Path) -> None:
    path = _write_parquet(
        tmp_path / "p.parquet",
        [
            {"id": "a", "title": None, "description": None},
            {"id": "b", "title": "Mug", "description": None},
        ],
    )
    products, report = _read_all(path)
    assert [(p.id, p.text) for p in products] == [("b", "Mug")]
    assert [(b.line, b.field) for b in report.bad_rows] == [(1, "title/description")]


# -- reading: images ----------------------------------------------------------------------


@pytest.fixture
def image_csv(tmp_path: Path) -> Path:
    """A CSV whose image column points at good, missing, broken and remote pictures."""
    data = tmp_path / "data"
    pics = data / "pics"
    pics.mkdir(parents=True)
    _jpeg(pics / "good.jpg")
    elsewhere = _jpeg(tmp_path / "elsewhere.jpg")
    cut = _jpeg(pics / "whole.jpg").read_bytes()
    (pics / "cut.jpg").write_bytes(cut[: len(cut) // 2])
    (pics / "empty.png").write_bytes(b"")
    (pics / "notes.jpg").write_text("just text")
    rows = [
        ("p1", "Red shirt", "pics/good.jpg"),  # 2 good, relative
        ("p2", "Blue jeans", "pics/missing.jpg"),  # 3 missing
        ("p3", "Mug", "pics/cut.jpg"),  # 4 truncated
        ("p4", "Hat", "pics/empty.png"),  # 5 zero bytes
        ("p5", "Scarf", "pics/notes.jpg"),  # 6 not an image
        ("p6", "Sock", "https://example.com/sock.jpg"),  # 7 remote, not fetched
        ("p7", "", "pics/good.jpg"),  # 8 image-only product
        ("p8", "", "pics/missing.jpg"),  # 9 neither text nor image: bad row
        ("p9", "", ""),  # 10 neither: bad row
        ("p10", "Belt", ""),  # 11 no image, no problem
        ("p11", "Tie", str(elsewhere)),  # 12 absolute path
    ]
    return _write_csv(data / "products.csv", [dict(zip(("id", "title", "img"), r)) for r in rows])


IMAGE_SPEC = ColumnSpec(text_columns=("title",), image_column="img")


def test_image_problems_keep_the_product(image_csv: Path) -> None:
    seen: list[BadRow] = []
    products, report = _read_all(image_csv, columns=IMAGE_SPEC, on_image_problem=seen.append)
    pics = image_csv.parent / "pics"
    assert [(p.id, p.line, p.text, p.image) for p in products] == [
        ("p1", 2, "Red shirt", str(pics / "good.jpg")),
        ("p2", 3, "Blue jeans", None),
        ("p3", 4, "Mug", None),
        ("p4", 5, "Hat", None),
        ("p5", 6, "Scarf", None),
        ("p6", 7, "Sock", None),
        ("p7", 8, "", str(pics / "good.jpg")),
        ("p10", 11, "Belt", None),
        ("p11", 12, "Tie", str(image_csv.parent.parent / "elsewhere.jpg")),
    ]
    assert all(p.image is None or Path(p.image).is_absolute() for p in products)
    problems = report.image_problems
    assert seen == problems
    assert [(b.line, b.field) for b in problems] == [(n, "img") for n in (3, 4, 5, 6, 7)]
    assert all(b.file == str(image_csv) for b in problems)
    reasons = [b.reason for b in problems]
    assert reasons[0] == "file not found"
    assert reasons[1].startswith("corrupt or truncated image data")
    assert reasons[2] == "empty file (0 bytes)"
    assert reasons[3] == "not an image (cannot identify the format)"
    assert reasons[4] == "remote image URL not fetched; pass --allow-download to fetch it"
    assert str(problems[0]) == (
        f"{image_csv}: line 3: field 'img': file not found ({problems[0].value!r})"
    )
    assert problems[0].value and problems[0].value.endswith(".jpg")
    assert [(b.line, b.field, b.reason) for b in report.bad_rows] == [
        (9, "title", "empty text and no usable image (file not found)"),
        (10, "title", "empty text and no usable image"),
    ]
    assert str(report.bad_rows[1]) == (
        f"{image_csv}: line 10: field 'title': empty text and no usable image"
    )
    assert (report.rows, report.good) == (11, 9)


def test_strict_does_not_raise_for_image_problems(image_csv: Path) -> None:
    got: list[Product] = []
    with pytest.raises(DataError) as info:
        for batch in read_products(image_csv, IMAGE_SPEC, strict=True, batch_size=1):
            got.extend(batch)
    # the first error is the row with neither text nor image, after seven usable products
    assert (info.value.row, info.value.field) == (9, "title")
    assert [p.id for p in got] == ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]


def test_image_rows_in_jsonl_and_parquet(tmp_path: Path) -> None:
    _jpeg(tmp_path / "a.jpg")
    rows = [
        {"id": "x", "title": "Mug", "img": "a.jpg"},
        {"id": "y", "title": None, "img": "a.jpg"},
        {"id": "z", "title": "Cup", "img": None},
    ]
    for path in (
        _write_jsonl(tmp_path / "p.jsonl", rows),
        _write_parquet(tmp_path / "p.parquet", rows),
    ):
        products, report = _read_all(path, columns=IMAGE_SPEC)
        image = str(tmp_path / "a.jpg")
        assert [(p.id, p.text, p.image) for p in products] == [
            ("x", "Mug", image),
            ("y", "", image),
            ("z", "Cup", None),
        ]
        assert report.bad_rows == report.image_problems == []


def test_without_image_column_empty_text_is_still_bad(image_csv: Path) -> None:
    products, report = _read_all(image_csv, columns=ColumnSpec(text_columns=("title",)))
    assert all(p.image is None and p.text for p in products)
    assert [(b.line, b.reason) for b in report.bad_rows] == [
        (8, "empty text"),
        (9, "empty text"),
        (10, "empty text"),
    ]
    assert report.image_problems == []


def test_allow_download_is_passed_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from taxonomist import images

    fetched = _jpeg(tmp_path / "fetched.jpg")
    calls: list[tuple[str, Path]] = []

    def fake_download(url: str, directory: Path) -> tuple[Path | None, str | None]:
        calls.append((url, directory))
        return fetched, None

    monkeypatch.setattr(images, "download_image", fake_download)
    url = "https://example.com/a.jpg"
    path = _write_csv(tmp_path / "p.csv", [{"id": "a", "title": "Mug", "img": url}])
    products, report = _read_all(
        path, columns=IMAGE_SPEC, allow_download=True, download_dir=tmp_path / "dl"
    )
    assert [p.image for p in products] == [str(fetched)]
    assert calls == [(url, tmp_path / "dl")]
    assert report.image_problems == []


def test_each_distinct_image_is_decoded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taxonomist import images

    checked: list[Path] = []
    real_check = images.check_image

    def counting_check(path: Path) -> str | None:
        checked.append(path)
        return real_check(path)

    monkeypatch.setattr(images, "check_image", counting_check)
    _jpeg(tmp_path / "placeholder.jpg")
    rows = [{"id": f"p{i}", "title": "Mug", "img": "placeholder.jpg"} for i in range(5)]
    products, _ = _read_all(_write_csv(tmp_path / "p.csv", rows), columns=IMAGE_SPEC)
    assert len(products) == 5 and all(p.image for p in products)
    assert checked == [tmp_path / "placeholder.jpg"]


def test_labels_only_ignores_the_image_column() -> None:
    assert ColumnSpec(image_column="img").labels_only().image_column is None


# -- reading: labels ----------------------------------------------------------------------


def test_labels_resolved_through_taxonomy(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = _write_csv(
        tmp_path / "p.csv",
        [
            {"id": "a", "title": "Red shirt", "category": "Apparel > Tops > Shirts"},
            {"id": "b", "title": "Jeans", "category": "jeans"},  # unique name, any case
            {"id": "c", "title": "Hat", "category": "Apparel > Hats"},  # unknown
            {"id": "d", "title": "Mug", "category": "apparel>bottoms>jeans"},
            {"id": "e", "title": "Thing", "category": ""},  # no label is fine here
            {"id": "f", "title": "Toy", "category": "Toys"},  # unknown name
        ],
    )
    products, report = _read_all(path, taxonomy=taxonomy)
    labels = {p.id: (p.label.id if p.label else None) for p in products}
    assert labels == {
        "a": "Apparel > Tops > Shirts",
        "b": "Apparel > Bottoms > Jeans",
        "d": "Apparel > Bottoms > Jeans",
        "e": None,
    }
    assert [(b.line, b.field) for b in report.bad_rows] == [(4, "category"), (7, "category")]
    assert "Apparel > Hats" in report.bad_rows[0].reason
    assert "Toys" in report.bad_rows[1].reason


def test_label_custom_column_and_separator(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "title": "Mug", "cat": "Home/Mugs"}])
    spec = ColumnSpec(label_column="cat", label_separator="/")
    products, _ = _read_all(path, columns=spec, taxonomy=taxonomy, require_label=True)
    assert products[0].label is not None
    assert products[0].label.path == ("Home", "Mugs")


def test_require_label_without_label_column(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = _write_csv(tmp_path / "p.csv", RECORDS)
    with pytest.raises(DataError, match="missing label column 'category'") as info:
        _read_all(path, taxonomy=taxonomy, require_label=True)
    assert info.value.field == "category"
    assert info.value.file == str(path)


def test_require_label_empty_label_is_a_bad_row(tmp_path: Path, taxonomy: Taxonomy) -> None:
    path = _write_csv(
        tmp_path / "p.csv",
        [
            {"id": "a", "title": "Mug", "category": "Mugs"},
            {"id": "b", "title": "Cup", "category": "  "},
        ],
    )
    products, report = _read_all(path, taxonomy=taxonomy, require_label=True)
    assert [p.id for p in products] == ["a"]
    assert [(b.line, b.field, b.reason) for b in report.bad_rows] == [
        (3, "category", "empty label")
    ]


def test_read_labels(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "p.csv",
        [
            {"id": "a", "title": "Mug", "category": "Home > Mugs"},
            {"id": "b", "title": "Cup", "category": ""},
            {"id": "c", "title": "Jeans", "category": "Apparel > Jeans"},
        ],
    )
    assert read_labels(path) == ["Home > Mugs", "Apparel > Jeans"]


# -- reading: batching and ids ------------------------------------------------------------


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_batch_size_is_honoured(tmp_path: Path, ext: str) -> None:
    rows = [{"id": f"p{i}", "title": f"item {i}"} for i in range(23)]
    path = WRITERS[ext](tmp_path / f"p.{ext}", rows)
    batches = list(read_products(path, batch_size=5))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert [p.id for b in batches for p in b] == [r["id"] for r in rows]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(min_value=0, max_value=40), batch_size=st.integers(min_value=1, max_value=12))
def test_batches_partition_the_rows(tmp_path: Path, n: int, batch_size: int) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,title\n" + "".join(f"p{i},t{i}\n" for i in range(n)), "utf-8")
    batches = list(read_products(path, batch_size=batch_size))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert all(len(b) == batch_size for b in batches[:-1])
    assert [p.id for b in batches for p in b] == [f"p{i}" for i in range(n)]


def test_missing_id_column_uses_line_numbers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "p.csv"
    path.write_text("title,description\nMug,White\n\nCup,Blue\n", "utf-8")
    with caplog.at_level(logging.WARNING, logger="taxonomist.data.readers"):
        products, _ = _read_all(path)
    assert [p.id for p in products] == ["row-2", "row-4"]
    assert "no 'id' column" in caplog.text


def test_column_spec_validation() -> None:
    with pytest.raises(ConfigError):
        ColumnSpec(text_columns=())
    with pytest.raises(ConfigError):
        ColumnSpec(text_columns=("title", " "))
    with pytest.raises(ConfigError):
        ColumnSpec(label_separator="  ")


# -- writers ------------------------------------------------------------------------------


def _cand(cid: str, path: tuple[str, ...], levels: tuple[float, ...]) -> Candidate:
    return Candidate(cid, path, levels[-1], levels)


PREDS: list[ProductPrediction] = [
    ProductPrediction(
        "p1",
        (
            _cand("ap-1-1", ("Apparel", "Tops", "Shirts"), (0.9, 0.8, 0.7123456789)),
            _cand("ap-1-2", ("Apparel", "Tops", "T-Shirts"), (0.9, 0.8, 0.05)),
            _cand("ap-2", ("Apparel", "Shoes"), (0.9, 0.01)),
        ),
    ),
    ProductPrediction("p2", (_cand("hg", ("Home & Garden",), (0.55,)),)),
]


def test_prediction_columns() -> None:
    assert prediction_columns(1) == [
        "id",
        "category",
        "category_id",
        "confidence",
        "level_confidences",
    ]
    assert prediction_columns(1, review=True)[-3:] == [
        "needs_review",
        "suggested_category",
        "suggested_confidence",
    ]
    assert prediction_columns(3)[-6:] == [
        "category_2",
        "category_id_2",
        "confidence_2",
        "category_3",
        "category_id_3",
        "confidence_3",
    ]


def test_prediction_rows() -> None:
    rows = prediction_rows(PREDS, top_k=2)
    assert rows[0] == {
        "id": "p1",
        "category": "Apparel > Tops > Shirts",
        "category_id": "ap-1-1",
        "confidence": 0.712346,
        "level_confidences": [0.9, 0.8, 0.712346],
        "category_2": "Apparel > Tops > T-Shirts",
        "category_id_2": "ap-1-2",
        "confidence_2": 0.05,
    }
    assert rows[1]["category_2"] is None and rows[1]["confidence_2"] is None
    assert rows[1]["category_id_2"] is None
    assert prediction_rows(PREDS, top_k=1, review=True)[0]["needs_review"] is False


def test_write_csv(tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    with PredictionWriter(out, top_k=2) as writer:
        writer.write(PREDS[:1])
        writer.write(PREDS[1:])
    assert writer.count == 2
    with open(out, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == prediction_columns(2)
    assert rows[0] == {
        "id": "p1",
        "category": "Apparel > Tops > Shirts",
        "category_id": "ap-1-1",
        "confidence": "0.712346",
        "level_confidences": "0.9000 > 0.8000 > 0.7123",
        "category_2": "Apparel > Tops > T-Shirts",
        "category_id_2": "ap-1-2",
        "confidence_2": "0.05",
    }
    assert rows[1]["category"] == "Home & Garden"
    assert rows[1]["level_confidences"] == "0.5500"
    assert rows[1]["category_2"] == "" and rows[1]["confidence_2"] == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.csv"]


@pytest.mark.parametrize("ext", ["jsonl", "ndjson"])
def test_write_jsonl(tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"preds.{ext}"
    with PredictionWriter(out, top_k=2) as writer:
        writer.write(PREDS)
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert rows == prediction_rows(PREDS, top_k=2)
    assert list(rows[0]) == prediction_columns(2)
    assert rows[0]["level_confidences"] == [0.9, 0.8, 0.712346]
    assert rows[1]["category_2"] is None


def test_write_parquet(tmp_path: Path) -> None:
    out = tmp_path / "preds.parquet"
    with PredictionWriter(out, top_k=2) as writer:
        writer.write(PREDS[:1])
        writer.write([])
        writer.write(PREDS[1:])
    table = pq.read_table(out)
    assert table.column_names == prediction_columns(2)
    assert table.schema.field("level_confidences").type == pa.list_(pa.float64())
    assert table.to_pylist() == prediction_rows(PREDS, top_k=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.parquet"]


def test_write_parquet_with_no_rows(tmp_path: Path) -> None:
    out = tmp_path / "preds.parquet"
    with PredictionWriter(out, top_k=1):
        pass
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert table.column_names == prediction_columns(1)


def test_written_csv_reads_back_as_products(tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    with PredictionWriter(out) as writer:
        writer.write(PREDS)
    spec = ColumnSpec(text_columns=("category",))
    products, _ = _read_all(out, columns=spec)
    assert [(p.id, p.text) for p in products] == [
        ("p1", "Apparel > Tops > Shirts"),
        ("p2", "Home & Garden"),
    ]


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_exception_leaves_no_output_and_no_temp_file(tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"preds.{ext}"
    with pytest.raises(RuntimeError, match="boom"), PredictionWriter(out, top_k=2) as writer:
        writer.write(PREDS)
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_exception_keeps_an_existing_output(tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"preds.{ext}"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), PredictionWriter(out) as writer:
        writer.write(PREDS)
        raise RuntimeError("boom")
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("name", ["preds.txt", "preds.tsv", "preds"])
def test_writer_unsupported_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match="unsupported output type") as info:
        PredictionWriter(tmp_path / name)
    assert info.value.file == str(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_writer_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="output folder does not exist"):
        PredictionWriter(tmp_path / "no" / "preds.csv")
