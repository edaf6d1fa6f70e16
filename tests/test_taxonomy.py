"""Tests for taxonomist.taxonomy: Node, Category and the validated Taxonomy."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxonomist.errors import TaxonomistError, TaxonomyError
from taxonomist.taxonomy import FORMAT_VERSION, PATH_SEPARATOR, Category, Node, Taxonomy

PATHS: list[tuple[str, ...]] = [
    ("Apparel", "Tops", "Shirts"),
    ("Apparel", "Tops", "T-Shirts"),
    ("Apparel", "Shoes"),
    ("Home & Garden", "Kitchen", "Knives"),
    ("Home & Garden", "Garden", "Knives"),
    ("Electronics",),
]


@pytest.fixture
def tax() -> Taxonomy:
    return Taxonomy.from_paths(PATHS, name="shop", version="v1")


@pytest.fixture
def multilingual() -> Taxonomy:
    nodes = [
        Node("el", None, {"en": "Electronics", "zh": "电子产品", "de": "Elektronik"}),
        Node("el-1", "el", {"en": "Audio", "zh": "音频"}),
        Node("el-1-1", "el-1", {"en": "Headphones"}),
        Node("ap", None, {"en": "Apparel", "zh": "服装"}),
    ]
    return Taxonomy(nodes, name="multi")


# -- construction -------------------------------------------------------------------------


def test_from_paths_builds_intermediate_levels(tax: Taxonomy) -> None:
    ids = {c.id for c in tax}
    assert "Apparel" in ids
    assert "Apparel > Tops" in ids
    assert "Home & Garden > Kitchen" in ids
    # 3 roots + Tops, Shoes, Shirts, T-Shirts + Kitchen, Garden, 2x Knives
    assert len(tax) == 11
    tops = tax.get("Apparel > Tops")
    assert tops.parent_id == "Apparel"
    assert tops.name == "Tops"
    assert not tops.is_leaf
    assert tax.name == "shop"
    assert tax.version == "v1"


def test_from_paths_strips_levels_and_rejects_empty_level() -> None:
    t = Taxonomy.from_paths([("  Apparel ", " Shoes")])
    assert t.by_path("Apparel > Shoes").path == ("Apparel", "Shoes")
    with pytest.raises(TaxonomyError, match="empty level"):
        Taxonomy.from_paths([("Apparel", "  ")])
    with pytest.raises(TaxonomyError, match="empty level"):
        Taxonomy.from_paths([()])


def test_from_paths_with_no_paths_is_an_error() -> None:
    with pytest.raises(TaxonomyError, match="no categories"):
        Taxonomy.from_paths([])


def test_nodes_may_list_children_before_parents() -> None:
    t = Taxonomy(
        [
            Node("c", "b", {"en": "C"}),
            Node("b", "a", {"en": "B"}),
            Node("a", None, {"en": "A"}),
        ]
    )
    assert t.get("c").path == ("A", "B", "C")
    assert t.get("c").depth == 3
    assert [c.id for c in t] == ["a", "b", "c"]  # iteration is top-down


def test_depth_and_path_str(tax: Taxonomy) -> None:
    shirts = tax.get("Apparel > Tops > Shirts")
    assert shirts.depth == 3
    assert shirts.path == ("Apparel", "Tops", "Shirts")
    assert shirts.path_str == "Apparel > Tops > Shirts"
    assert tax.get("Electronics").depth == 1
    assert tax.max_depth == 3


def test_leaves_and_roots(tax: Taxonomy) -> None:
    assert {c.id for c in tax.leaves} == {PATH_SEPARATOR.join(p) for p in PATHS}
    assert all(c.is_leaf for c in tax.leaves)
    assert [c.name for c in tax.roots] == ["Apparel", "Home & Garden", "Electronics"]
    assert all(c.parent_id is None for c in tax.roots)


def test_children(tax: Taxonomy) -> None:
    assert [c.name for c in tax.children("Apparel")] == ["Tops", "Shoes"]
    assert [c.name for c in tax.children("Apparel > Tops")] == ["Shirts", "T-Shirts"]
    assert tax.children("Electronics") == []
    assert tax.children(None) == tax.roots


def test_ancestors(tax: Taxonomy) -> None:
    chain = tax.ancestors("Apparel > Tops > Shirts")
    assert [c.name for c in chain] == ["Apparel", "Tops", "Shirts"]
    without = tax.ancestors("Apparel > Tops > Shirts", include_self=False)
    assert [c.name for c in without] == ["Apparel", "Tops"]
    assert tax.ancestors("Electronics", include_self=False) == []


def test_contains_get_and_unknown_id(tax: Taxonomy) -> None:
    assert "Apparel" in tax
    assert "Nope" not in tax
    assert 42 not in tax
    with pytest.raises(TaxonomyError, match="no category with id 'Nope'"):
        tax.get("Nope")


def test_repr(tax: Taxonomy) -> None:
    assert repr(tax) == "Taxonomy(name='shop', version='v1', categories=11)"


def test_taxonomy_error_is_a_taxonomist_error() -> None:
    assert issubclass(TaxonomyError, TaxonomistError)


# -- by_path ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "Apparel > Tops > Shirts",
        "Apparel>Tops>Shirts",
        "  Apparel   >  Tops >Shirts  ",
        "apparel > tops > shirts",
        "APPAREL > TOPS > SHIRTS",
        "Apparel > Tops  > Shirts",
    ],
)
def test_by_path_accepts_any_spacing_and_case(tax: Taxonomy, written: str) -> None:
    assert tax.by_path(written).id == "Apparel > Tops > Shirts"


def test_by_path_with_sequence_and_custom_separator(tax: Taxonomy) -> None:
    assert tax.by_path(["Apparel", " Tops ", "Shirts"]).id == "Apparel > Tops > Shirts"
    assert tax.by_path("Apparel/Tops/Shirts", separator="/").id == "Apparel > Tops > Shirts"


def test_by_path_normalises_unicode_width() -> None:
    t = Taxonomy.from_paths([("Ｔｏｙｓ", "Ｂａｌｌｓ")])  # fullwidth letters
    assert t.by_path("toys > balls").name == "Ｂａｌｌｓ"


def test_by_path_unknown(tax: Taxonomy) -> None:
    with pytest.raises(TaxonomyError, match="no category with path 'Apparel > Hats'"):
        tax.by_path("Apparel > Hats")


# -- resolve ------------------------------------------------------------------------------


def test_resolve_full_path(tax: Taxonomy) -> None:
    assert tax.resolve("apparel > tops > t-shirts").id == "Apparel > Tops > T-Shirts"


def test_resolve_id() -> None:
    t = Taxonomy([Node("aa-1", None, {"en": "Apparel"})])
    assert t.resolve("aa-1").name == "Apparel"
    assert t.resolve("  aa-1 ").name == "Apparel"


def test_resolve_unique_name_any_case(tax: Taxonomy) -> None:
    assert tax.resolve("Shoes").id == "Apparel > Shoes"
    assert tax.resolve("  t-shirts ").id == "Apparel > Tops > T-Shirts"


def test_resolve_name_in_another_language(multilingual: Taxonomy) -> None:
    assert multilingual.resolve("音频").id == "el-1"
    assert multilingual.resolve("elektronik").id == "el"


def test_resolve_ambiguous_name_lists_matches(tax: Taxonomy) -> None:
    with pytest.raises(TaxonomyError) as info:
        tax.resolve("knives")
    message = str(info.value)
    assert "ambiguous" in message
    assert "2 matches" in message
    assert "Home & Garden > Kitchen > Knives" in message
    assert "Home & Garden > Garden > Knives" in message


def test_resolve_unknown(tax: Taxonomy) -> None:
    with pytest.raises(TaxonomyError, match="unknown category 'Hats'"):
        tax.resolve("Hats")
    with pytest.raises(TaxonomyError, match="no category with path"):
        tax.resolve("Apparel > Hats")
    with pytest.raises(TaxonomyError, match="empty category label"):
        tax.resolve("   ")


# -- search -------------------------------------------------------------------------------


def test_search_exact_name_ranks_first() -> None:
    t = Taxonomy.from_paths(
        [
            ("Shoe Care", "Shoe Polish"),
            ("Apparel", "Shoes Accessories"),
            ("Apparel", "Shoe"),
            ("Apparel", "Footwear", "Boots"),
        ]
    )
    found = t.search("shoe")
    assert found[0].id == "Apparel > Shoe"  # exact, though deeper than "Shoe Care"
    names = [c.name for c in found]
    # then name-prefix matches, shallower first
    assert names[1:4] == ["Shoe Care", "Shoe Polish", "Shoes Accessories"]
    assert "Boots" not in names


def test_search_rank_order_prefix_contains_path() -> None:
    t = Taxonomy.from_paths([("Garden", "Tools"), ("Power Tools",), ("Toolsheds",), ("Tools",)])
    found = [c.id for c in t.search("tools")]
    # exact (shallower first), then the word in a longer name, then a word prefix
    assert found == ["Tools", "Garden > Tools", "Power Tools", "Toolsheds"]
    # a path match only (child of a match that itself does not match) ranks last
    t2 = Taxonomy.from_paths([("Kitchen", "Knives"), ("Knife Blocks",)])
    found = [c.id for c in t2.search("kitchen")]
    assert found == ["Kitchen", "Kitchen > Knives"]


def test_search_requires_every_word_and_respects_limit(tax: Taxonomy) -> None:
    found = tax.search("garden knives")
    assert {c.id for c in found} == {
        "Home & Garden > Kitchen > Knives",
        "Home & Garden > Garden > Knives",
    }
    assert len(tax.search("a", limit=2)) == 2
    assert tax.search("   ") == []
    assert tax.search("zzz") == []


def test_search_by_language(multilingual: Taxonomy) -> None:
    # the category named so first, then the one under it (a path match)
    assert [c.id for c in multilingual.search("音频")] == ["el-1", "el-1-1"]
    assert [c.id for c in multilingual.search("音频", language="zh")] == ["el-1", "el-1-1"]
    # In German only "Elektronik" has a name; the others fall back to English.
    assert [c.id for c in multilingual.search("headphones", language="de")] == ["el-1-1"]


# -- languages / localized_path -----------------------------------------------------------


def test_languages_en_first(multilingual: Taxonomy) -> None:
    assert multilingual.languages == ["en", "de", "zh"]


def test_localized_path_falls_back_per_level(multilingual: Taxonomy) -> None:
    assert multilingual.localized_path("el-1-1", "zh") == ("电子产品", "音频", "Headphones")
    assert multilingual.localized_path("el-1-1", "de") == ("Elektronik", "Audio", "Headphones")
    assert multilingual.localized_path("el-1-1", "fr") == ("Electronics", "Audio", "Headphones")
    assert multilingual.localized_path("el-1-1", "en") == multilingual.get("el-1-1").path


def test_names_are_stripped_and_empty_translations_dropped() -> None:
    t = Taxonomy([Node("a", None, {"en": "  Apparel ", "zh": "  ", "de": " Kleidung"})])
    cat = t.get("a")
    assert cat.name == "Apparel"
    assert dict(cat.names) == {"en": "Apparel", "de": "Kleidung"}


def test_primary_name_falls_back_to_first_language() -> None:
    t = Taxonomy([Node("a", None, {"zh": "服装"})])
    assert t.get("a").name == "服装"
    assert t.get("a").path == ("服装",)


# -- serialisation ------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip(multilingual: Taxonomy) -> None:
    data = multilingual.to_dict()
    assert data["format_version"] == FORMAT_VERSION
    assert data["name"] == "multi"
    back = Taxonomy.from_dict(json.loads(json.dumps(data)))
    assert back.name == "multi"
    assert back.version is None
    assert [(c.id, c.parent_id, c.path, dict(c.names)) for c in back] == [
        (c.id, c.parent_id, c.path, dict(c.names)) for c in multilingual
    ]


def test_to_json_round_trip_keeps_unicode(multilingual: Taxonomy) -> None:
    text = multilingual.to_json()
    assert "电子产品" in text  # not \u-escaped
    back = Taxonomy.from_dict(json.loads(text))
    assert back.localized_path("el-1", "zh") == ("电子产品", "音频")


def test_from_dict_keeps_version(tax: Taxonomy) -> None:
    back = Taxonomy.from_dict(tax.to_dict())
    assert (back.name, back.version) == ("shop", "v1")


@pytest.mark.parametrize("version", [None, 0, 2, "1"])
def test_from_dict_refuses_unknown_format_version(tax: Taxonomy, version: object) -> None:
    data = tax.to_dict()
    data["format_version"] = version
    with pytest.raises(TaxonomyError, match="format_version"):
        Taxonomy.from_dict(data)


def test_from_dict_missing_field() -> None:
    with pytest.raises(TaxonomyError, match="missing a field"):
        Taxonomy.from_dict({"format_version": FORMAT_VERSION})
    with pytest.raises(TaxonomyError, match="missing a field"):
        Taxonomy.from_dict({"format_version": FORMAT_VERSION, "categories": [{"id": "a"}]})


def test_from_dict_numeric_ids() -> None:
    data = {
        "format_version": FORMAT_VERSION,
        "categories": [
            {"id": 1, "parent_id": None, "names": {"en": "A"}},
            {"id": 2, "parent_id": 1, "names": {"en": "B"}},
        ],
    }
    assert Taxonomy.from_dict(data).get("2").path == ("A", "B")


@pytest.mark.parametrize("names", [["A"], {"en": 5}])
def test_from_dict_malformed_names_is_a_taxonomy_error(names: object) -> None:
    data = {"format_version": FORMAT_VERSION, "categories": [{"id": "a", "names": names}]}
    with pytest.raises(TaxonomyError):
        Taxonomy.from_dict(data)


# -- validation ---------------------------------------------------------------------------


def test_duplicate_id_names_the_id_and_source() -> None:
    with pytest.raises(TaxonomyError, match=r"duplicate category id 'a' \(f.tsv line 3\)"):
        Taxonomy(
            [
                Node("a", None, {"en": "A"}, source="f.tsv line 2"),
                Node("a", None, {"en": "B"}, source="f.tsv line 3"),
            ]
        )


def test_empty_id() -> None:
    with pytest.raises(TaxonomyError, match="empty id"):
        Taxonomy([Node("", None, {"en": "A"})])


def test_unknown_parent_names_child_parent_and_source() -> None:
    with pytest.raises(TaxonomyError) as info:
        Taxonomy(
            [
                Node("a", None, {"en": "A"}),
                Node("b", "zz", {"en": "B"}, source="t.tsv line 3"),
            ]
        )
    message = str(info.value)
    assert "'b'" in message and "'zz'" in message and "t.tsv line 3" in message


def test_cycle_without_root() -> None:
    with pytest.raises(TaxonomyError, match="cycle") as info:
        Taxonomy([Node("a", "b", {"en": "A"}), Node("b", "a", {"en": "B"})])
    assert "'a'" in str(info.value)


def test_cycle_beside_a_valid_tree() -> None:
    with pytest.raises(TaxonomyError, match="cycle through 3 categories"):
        Taxonomy(
            [
                Node("root", None, {"en": "Root"}),
                Node("x", "z", {"en": "X"}),
                Node("y", "x", {"en": "Y"}),
                Node("z", "y", {"en": "Z"}),
            ]
        )


def test_self_parent_is_a_cycle() -> None:
    with pytest.raises(TaxonomyError, match="cycle"):
        Taxonomy([Node("r", None, {"en": "R"}), Node("a", "a", {"en": "A"})])


@pytest.mark.parametrize("names", [{"en": ""}, {"en": "   "}, {}])
def test_empty_name(names: dict[str, str]) -> None:
    with pytest.raises(TaxonomyError, match="category 'a' has an empty name"):
        Taxonomy([Node("a", None, names)])


def test_no_categories() -> None:
    with pytest.raises(TaxonomyError, match="has no categories"):
        Taxonomy([], name="empty")


def test_siblings_with_same_name() -> None:
    with pytest.raises(TaxonomyError, match="share the path 'A > B'"):
        Taxonomy(
            [
                Node("a", None, {"en": "A"}),
                Node("b1", "a", {"en": "B"}),
                Node("b2", "a", {"en": " B "}),
            ]
        )


def test_roots_with_same_name() -> None:
    with pytest.raises(TaxonomyError, match="sibling names must be unique"):
        Taxonomy([Node("a1", None, {"en": "A"}), Node("a2", None, {"en": "A"})])


def test_same_name_under_different_parents_is_fine(tax: Taxonomy) -> None:
    knives = [c for c in tax if c.name == "Knives"]
    assert len(knives) == 2


def test_from_paths_level_containing_separator_is_not_merged() -> None:
    try:
        t = Taxonomy.from_paths([("a > b",), ("a", "b")])
    except TaxonomyError:
        return  # refusing is an acceptable fix
    assert len(t) == 3  # "a > b" (root), "a", "a" > "b"


# -- hypothesis ---------------------------------------------------------------------------

_level = st.text(alphabet="abc", min_size=1, max_size=2)
_path = st.lists(_level, min_size=1, max_size=4).map(tuple)
_paths = st.lists(_path, min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(_paths)
def test_invariants_of_from_paths(paths: list[tuple[str, ...]]) -> None:
    t = Taxonomy.from_paths(paths)
    given_paths = set(paths)
    prefixes = {p[:d] for p in given_paths for d in range(1, len(p) + 1)}
    assert {c.path for c in t} == prefixes
    assert len(t) == len(prefixes)
    for cat in t:
        assert cat.depth == len(cat.path)
        assert cat.name == cat.path[-1]
        if cat.parent_id is None:
            assert cat.depth == 1
        else:
            parent = t.get(cat.parent_id)
            assert cat.path == parent.path + (cat.name,)
        assert t.by_path(cat.path_str).id == cat.id
        assert [a.path for a in t.ancestors(cat.id)] == [
            cat.path[:d] for d in range(1, cat.depth + 1)
        ]
    expected_leaves = {
        p for p in given_paths if not any(len(q) > len(p) and q[: len(p)] == p for q in given_paths)
    }
    assert {c.path for c in t.leaves} == expected_leaves
    assert t.max_depth == max(len(p) for p in given_paths)


@settings(max_examples=100, deadline=None)
@given(_paths)
def test_dict_round_trip_preserves_ids_and_paths(paths: list[tuple[str, ...]]) -> None:
    t = Taxonomy.from_paths(paths)
    back = Taxonomy.from_dict(json.loads(t.to_json()))
    assert [(c.id, c.parent_id, c.path, c.is_leaf) for c in back] == [
        (c.id, c.parent_id, c.path, c.is_leaf) for c in t
    ]


def test_category_defaults_and_path_str() -> None:
    cat = Category(id="x", name="B", parent_id="a", path=("A", "B"), depth=2)
    assert cat.path_str == "A > B"
    assert cat.is_leaf
    assert dict(cat.names) == {}
