"""Tests for taxonomist.taxonomy_loaders: bundled taxonomies and the file formats."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from taxonomist.errors import TaxonomyError
from taxonomist.taxonomy import Node, Taxonomy
from taxonomist.taxonomy_loaders import (
    from_labels,
    load_bundled,
    load_google,
    load_json,
    load_paths_file,
    load_shopify_tsv,
    load_taxonomy,
    taxonomy_choices,
)

TSV_HEADER = "id\tparent_id\tname_en\tname_zh_CN\tfull_path_en\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _tsv(tmp_path: Path, rows: list[str], name: str = "tax.tsv") -> Path:
    return _write(tmp_path / name, TSV_HEADER + "".join(r + "\n" for r in rows))


# -- bundled ------------------------------------------------------------------------------


def test_bundled_shopify() -> None:
    tax = load_taxonomy("shopify")
    assert len(tax) == 10_281
    assert tax.max_depth == 8
    assert "en" in tax.languages and "zh" in tax.languages
    assert tax.languages[0] == "en"
    assert "Electronics" in [r.name for r in tax.roots]
    assert tax.name == "shopify"
    assert tax.version == "2024-07"
    electronics = tax.by_path("Electronics")
    assert electronics.parent_id is None
    assert electronics.names.get("zh")


def test_bundled_google() -> None:
    tax = load_taxonomy("google")
    assert len(tax) == 5_595
    assert tax.name == "google"
    assert tax.version == "2021-09-21"
    assert tax.languages == ["en"]
    assert "Electronics" in [r.name for r in tax.roots]


def test_bundled_names_are_case_insensitive_and_cached() -> None:
    assert load_taxonomy("SHOPIFY") is load_taxonomy("shopify")
    assert load_bundled("google") is load_bundled("google")
    assert list(taxonomy_choices()) == ["google", "shopify"]


def test_unknown_bundled_name() -> None:
    with pytest.raises(TaxonomyError, match="neither a bundled name"):
        load_taxonomy("amazon")
    with pytest.raises(TaxonomyError, match="no bundled taxonomy 'amazon'"):
        load_bundled("amazon")


# -- Google format ------------------------------------------------------------------------

GOOGLE_TEXT = """\
# Google_Product_Taxonomy_Version: 2099-01-01
1 - Animals & Pet Supplies
3237 - Animals & Pet Supplies > Live Animals

2 - Animals & Pet Supplies > Pet Supplies
3 - Animals & Pet Supplies > Pet Supplies > Bird Supplies
# a comment
166 - Apparel & Accessories
"""


def test_google_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "google.txt", GOOGLE_TEXT)
    tax = load_taxonomy(path)
    assert tax.name == "google"
    assert tax.version == "2099-01-01"
    assert len(tax) == 5
    assert tax.get("3").path == ("Animals & Pet Supplies", "Pet Supplies", "Bird Supplies")
    assert tax.get("3").parent_id == "2"
    assert [r.id for r in tax.roots] == ["1", "166"]


def test_google_gzipped(tmp_path: Path) -> None:
    path = tmp_path / "google.txt.gz"
    path.write_bytes(gzip.compress(GOOGLE_TEXT.encode()))
    assert len(load_taxonomy(path)) == 5


def test_google_explicit_version_wins(tmp_path: Path) -> None:
    path = _write(tmp_path / "google.txt", GOOGLE_TEXT)
    assert load_google(path, version="mine").version == "mine"


def test_google_undefined_parent_names_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "g.txt",
        "1 - Apparel\n2 - Apparel > Shoes\n\n7 - Toys > Balls\n",
    )
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(path)
    message = str(info.value)
    assert "line 4" in message
    assert "'Toys'" in message
    assert str(path) in message


def test_google_parent_defined_later_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.txt", "1 - A\n2 - A > B > C\n3 - A > B\n")
    with pytest.raises(TaxonomyError, match="line 2"):
        load_google(path)


def test_google_malformed_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.txt", "1 - Apparel\nApparel > Shoes\n")
    with pytest.raises(TaxonomyError, match=r"line 2: expected 'ID - Level 1 > Level 2'"):
        load_google(path)


def test_google_empty_level(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.txt", "1 - Apparel\n2 - Apparel >  > Shoes\n")
    with pytest.raises(TaxonomyError, match="line 2: empty level"):
        load_taxonomy(path)


def test_google_duplicate_id_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.txt", "1 - Apparel\n1 - Toys\n")
    with pytest.raises(TaxonomyError, match="duplicate category id '1'.*line 2"):
        load_google(path)


# -- plain paths --------------------------------------------------------------------------


def test_paths_file_with_comments_and_blank_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mine.txt",
        "# my categories\n\nApparel > Shoes\n  \nApparel > Tops > Shirts\n   # indented\nToys\n",
    )
    tax = load_taxonomy(path)
    assert tax.name == "mine"
    assert {c.id for c in tax.leaves} == {"Apparel > Shoes", "Apparel > Tops > Shirts", "Toys"}
    assert len(tax) == 5


def test_paths_file_custom_separator(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.txt", "Apparel/Shoes\nApparel / Tops\n")
    tax = load_taxonomy(path, separator="/")
    assert tax.by_path("Apparel > Tops").depth == 2


def test_paths_file_empty_level_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.txt", "# header\nApparel > Shoes\n\nApparel >  > Tops\n")
    with pytest.raises(TaxonomyError, match=r"line 4: empty level"):
        load_taxonomy(path)
    with pytest.raises(TaxonomyError, match=r"line 4: empty level"):
        load_paths_file(path)


def test_paths_file_without_paths(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.txt", "# only a comment\n\n")
    with pytest.raises(TaxonomyError, match="no category paths"):
        load_paths_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="nor an existing file"):
        load_taxonomy(tmp_path / "nope.txt")
    with pytest.raises(TaxonomyError, match="not found"):
        load_paths_file(tmp_path / "nope.txt")


# -- Shopify TSV --------------------------------------------------------------------------


def test_shopify_tsv(tmp_path: Path) -> None:
    path = _tsv(
        tmp_path,
        [
            "ap-1\tap\tShoes\t鞋\tApparel > Shoes",  # child before parent is fine
            "ap\t\tApparel\t服装\tApparel",
            "ap-2\tap\tTops\t\t",  # no translation, no full path
        ],
    )
    tax = load_taxonomy(path)
    assert tax.name == "shopify"
    assert len(tax) == 3
    assert tax.languages == ["en", "zh"]
    assert tax.localized_path("ap-1", "zh") == ("服装", "鞋")
    assert tax.localized_path("ap-2", "zh") == ("服装", "Tops")
    assert tax.get("ap-2").path == ("Apparel", "Tops")


def test_shopify_tsv_missing_columns(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.tsv", "id\tname_en\nap\tApparel\n")
    with pytest.raises(TaxonomyError, match="missing column.*parent_id") as info:
        load_shopify_tsv(path)
    assert str(path) in str(info.value)


def test_shopify_tsv_cycle(tmp_path: Path) -> None:
    path = _tsv(
        tmp_path,
        ["ap\t\tApparel\t\t", "x\ty\tX\t\t", "y\tx\tY\t\t"],
    )
    with pytest.raises(TaxonomyError, match="cycle"):
        load_taxonomy(path)


def test_shopify_tsv_cycle_names_file(tmp_path: Path) -> None:
    path = _tsv(tmp_path, ["ap\t\tApparel\t\t", "x\ty\tX\t\t", "y\tx\tY\t\t"])
    with pytest.raises(TaxonomyError, match=re.escape(str(path))):
        load_taxonomy(path)


def test_shopify_tsv_unknown_parent_names_file_and_line(tmp_path: Path) -> None:
    path = _tsv(tmp_path, ["ap\t\tApparel\t\t", "ap-1\tzz\tShoes\t\t"])
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(path)
    message = str(info.value)
    assert "'zz'" in message
    assert f"{path} line 3" in message


def test_shopify_tsv_full_path_disagrees(tmp_path: Path) -> None:
    path = _tsv(
        tmp_path,
        [
            "ap\t\tApparel\t\tApparel",
            "ap-1\tap\tShoes\t\tApparel > Shoes",
            "ap-2\tap\tTops\t\tApparel > Shirts",
        ],
    )
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 4" in message
    assert "full_path_en" in message
    assert "'Apparel > Shirts'" in message and "'Apparel > Tops'" in message


def test_shopify_tsv_duplicate_id_names_file(tmp_path: Path) -> None:
    path = _tsv(tmp_path, ["ap\t\tApparel\t\t", "ap\t\tToys\t\t"])
    with pytest.raises(TaxonomyError, match=re.escape(f"{path} line 3")):
        load_taxonomy(path)


def test_shopify_tsv_empty_name_names_file(tmp_path: Path) -> None:
    path = _tsv(tmp_path, ["ap\t\tApparel\t\t", "ap-1\tap\t\t\t"])
    with pytest.raises(TaxonomyError, match="empty name") as info:
        load_taxonomy(path)
    assert f"{path} line 3" in str(info.value)


def test_shopify_tsv_zh_only_name_becomes_primary(tmp_path: Path) -> None:
    path = _tsv(tmp_path, ["ap\t\t\t服装\t"])
    assert load_shopify_tsv(path).get("ap").name == "服装"


# -- encoding -----------------------------------------------------------------------------


def test_non_utf8_file_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"Apparel > Shoes\nToys\nCaf\xe9 > Cups\n")
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(path)
    message = str(info.value)
    assert "line 3" in message
    assert "UTF-8" in message
    assert str(path) in message


def test_non_utf8_tsv_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes(TSV_HEADER.encode() + b"ap\t\tApparel\t\t\nap-1\tap\tSh\xffoes\t\t\n")
    with pytest.raises(TaxonomyError, match="line 3"):
        load_taxonomy(path)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff1 - Apparel\n2 - Apparel > Shoes\n".encode())
    tax = load_taxonomy(path)
    assert tax.get("2").path == ("Apparel", "Shoes")


# -- from_labels --------------------------------------------------------------------------


def test_from_labels() -> None:
    tax = from_labels(
        ["Apparel > Shoes", "Apparel>Tops > Shirts", "  ", "", "Apparel > Shoes", "Toys"]
    )
    assert tax.name == "labels"
    assert {c.id for c in tax.leaves} == {"Apparel > Shoes", "Apparel > Tops > Shirts", "Toys"}
    assert len(tax) == 5


def test_from_labels_custom_separator_and_name() -> None:
    tax = from_labels(["Apparel/Shoes", "Apparel/Tops"], separator="/", name="mine")
    assert tax.name == "mine"
    assert tax.by_path("Apparel > Shoes").depth == 2


def test_from_labels_errors() -> None:
    with pytest.raises(TaxonomyError, match="no labels"):
        from_labels(["", "  "])
    with pytest.raises(TaxonomyError, match="empty level"):
        from_labels(["Apparel >  > Shoes"])


# -- JSON ---------------------------------------------------------------------------------


def test_json_round_trip(tmp_path: Path) -> None:
    original = Taxonomy(
        [
            Node("el", None, {"en": "Electronics", "zh": "电子产品"}),
            Node("el-1", "el", {"en": "Audio"}),
        ],
        name="mine",
        version="3",
    )
    path = _write(tmp_path / "mine.json", original.to_json())
    back = load_taxonomy(path)
    assert (back.name, back.version) == ("mine", "3")
    assert [(c.id, c.parent_id, c.path, dict(c.names)) for c in back] == [
        (c.id, c.parent_id, c.path, dict(c.names)) for c in original
    ]


def test_json_round_trip_of_bundled_google(tmp_path: Path) -> None:
    google = load_taxonomy("google")
    path = _write(tmp_path / "google.json", google.to_json())
    back = load_json(path)
    assert len(back) == len(google)
    assert [c.path for c in back] == [c.path for c in google]


def test_json_gzipped(tmp_path: Path) -> None:
    path = tmp_path / "t.json.gz"
    path.write_bytes(gzip.compress(Taxonomy.from_paths([("A", "B")]).to_json().encode()))
    assert load_taxonomy(path).by_path("A > B").depth == 2


def test_invalid_json_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.json", '{\n  "format_version": 1,\n  oops\n}\n')
    with pytest.raises(TaxonomyError, match="line 3: invalid JSON"):
        load_taxonomy(path)


def test_json_unknown_format_version(tmp_path: Path) -> None:
    data = Taxonomy.from_paths([("A",)]).to_dict()
    data["format_version"] = 99
    path = _write(tmp_path / "t.json", json.dumps(data))
    with pytest.raises(TaxonomyError, match="format_version 99"):
        load_taxonomy(path)


def test_google_file_detected_after_comment(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.txt", "# note\n1 - Apparel\n2 - Apparel > Shoes\n")
    assert load_taxonomy(path).get("2").path == ("Apparel", "Shoes")


def test_google_file_detected_after_indented_comment(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.txt", "  # note\n1 - Apparel\n2 - Apparel > Shoes\n")
    tax = load_taxonomy(path)
    assert tax.name == "google"
    assert tax.get("2").path == ("Apparel", "Shoes")
