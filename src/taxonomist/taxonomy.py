"""The category tree: ids, multilingual names, parents, full paths, depth, leaves, search.

A :class:`Taxonomy` is immutable once built and is always validated on construction, so code
that holds one never re-checks for cycles, orphans or empty names. Loaders for the file
formats live in :mod:`taxonomist.taxonomy_loaders`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import TaxonomyError

PATH_SEPARATOR = " > "
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Node:
    """A category as a loader reads it, before the tree is linked and checked."""

    id: str
    parent_id: str | None
    names: Mapping[str, str]  # language code -> name; "en" is the primary language
    source: str | None = None  # where it came from ("file.tsv line 12"), for error messages


@dataclass(frozen=True)
class Category:
    """One validated category of a taxonomy."""

    id: str
    name: str
    parent_id: str | None
    path: tuple[str, ...]
    depth: int
    names: Mapping[str, str] = field(default_factory=dict)
    is_leaf: bool = True

    @property
    def path_str(self) -> str:
        return PATH_SEPARATOR.join(self.path)


def _primary_name(names: Mapping[str, str]) -> str:
    """The English name, else the first non-empty one."""
    for value in (names.get("en"), *names.values()):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def _norm(text: str) -> str:
    """Case-, width- and whitespace-insensitive key for matching user-written labels."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\s+", " ", text).strip()


class Taxonomy:
    """A validated forest of categories.

    Args:
        nodes: the categories; parents may appear after their children.
        name: a short name for messages and manifests ("shopify", "custom", ...).
        version: the release of the taxonomy, if known.

    Raises:
        TaxonomyError: duplicate ids, unknown parents, cycles or empty names, naming the node.

    Example:
        >>> t = Taxonomy.from_paths([("Apparel", "Shirts"), ("Apparel", "Shoes")])
        >>> t.by_path("Apparel > Shirts").depth
        2
    """

    def __init__(self, nodes: Iterable[Node], *, name: str = "custom", version: str | None = None):
        self.name = name
        self.version = version
        raw: dict[str, Node] = {}
        for node in nodes:
            where = f" ({node.source})" if node.source else ""
            if not node.id:
                raise TaxonomyError(f"a category has an empty id{where}")
            if node.id in raw:
                raise TaxonomyError(f"duplicate category id '{node.id}'{where}")
            primary = _primary_name(node.names)
            if not primary:
                raise TaxonomyError(f"category '{node.id}' has an empty name{where}")
            raw[node.id] = node
        if not raw:
            raise TaxonomyError(f"taxonomy '{name}' has no categories")
        for node in raw.values():
            if node.parent_id is not None and node.parent_id not in raw:
                where = f" ({node.source})" if node.source else ""
                raise TaxonomyError(
                    f"category '{node.id}' names parent '{node.parent_id}', which is not in the "
                    f"taxonomy{where}"
                )
        self._categories: dict[str, Category] = {}
        self._children: dict[str | None, list[str]] = {}
        for node in raw.values():
            self._children.setdefault(node.parent_id, []).append(node.id)
        # Walk from the roots: anything not reached is part of a cycle.
        order: list[str] = []
        stack = list(reversed(self._children.get(None, [])))
        while stack:
            node_id = stack.pop()
            order.append(node_id)
            stack.extend(reversed(self._children.get(node_id, [])))
        if len(order) != len(raw):
            stuck = sorted(set(raw) - set(order))
            first = raw[stuck[0]]
            where = f" ({first.source})" if first.source else ""
            raise TaxonomyError(
                f"taxonomy '{name}' has a cycle through {len(stuck)} categories, e.g. "
                f"'{first.id}' (parent '{first.parent_id}'){where}; every chain of parents "
                "must end at a top-level category"
            )
        for node_id in order:
            node = raw[node_id]
            primary = _primary_name(node.names)
            parent = self._categories.get(node.parent_id) if node.parent_id else None
            path = (parent.path if parent else ()) + (primary,)
            self._categories[node_id] = Category(
                id=node_id,
                name=primary,
                parent_id=node.parent_id,
                path=path,
                depth=len(path),
                names={k: v.strip() for k, v in node.names.items() if v and v.strip()},
                is_leaf=not self._children.get(node_id),
            )
        self._order = order
        self._by_path: dict[str, str] = {}
        self._by_norm_path: dict[str, str] = {}
        self._by_norm_name: dict[str, list[str]] = {}
        for cat in self._categories.values():
            key = cat.path_str
            if key in self._by_path:
                raise TaxonomyError(
                    f"two categories share the path '{key}' ('{self._by_path[key]}' and "
                    f"'{cat.id}'); sibling names must be unique"
                )
            self._by_path[key] = cat.id
            self._by_norm_path.setdefault(_norm(key), cat.id)
            for label in {cat.name, *cat.names.values()}:
                self._by_norm_name.setdefault(_norm(label), []).append(cat.id)

    # -- construction helpers -------------------------------------------------------------
    @classmethod
    def from_paths(
        cls,
        paths: Iterable[Sequence[str]],
        *,
        name: str = "custom",
        version: str | None = None,
    ) -> Taxonomy:
        """Build a taxonomy whose ids are the full paths; intermediate levels are implied."""
        nodes: dict[str, Node] = {}
        for path in paths:
            parts = [p.strip() for p in path]
            if not parts or any(not p for p in parts):
                raise TaxonomyError(f"path {list(path)!r} has an empty level")
            if any(PATH_SEPARATOR.strip() in p for p in parts):
                raise TaxonomyError(
                    f"path {list(path)!r} has a level containing '{PATH_SEPARATOR.strip()}', "
                    "which separates levels; split it or use another label separator"
                )
            for depth in range(1, len(parts) + 1):
                node_id = PATH_SEPARATOR.join(parts[:depth])
                if node_id not in nodes:
                    parent = PATH_SEPARATOR.join(parts[: depth - 1]) or None
                    nodes[node_id] = Node(node_id, parent, {"en": parts[depth - 1]})
        return cls(nodes.values(), name=name, version=version)

    # -- lookup ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._categories)

    def __iter__(self) -> Iterator[Category]:
        return (self._categories[i] for i in self._order)

    def __contains__(self, category_id: object) -> bool:
        return category_id in self._categories

    def get(self, category_id: str) -> Category:
        try:
            return self._categories[category_id]
        except KeyError:
            raise TaxonomyError(f"no category with id '{category_id}' in '{self.name}'") from None

    def by_path(self, path: str | Sequence[str], separator: str = PATH_SEPARATOR) -> Category:
        """Find a category by its full path, written with any spacing or letter case."""
        parts = path.split(separator.strip()) if isinstance(path, str) else list(path)
        key = PATH_SEPARATOR.join(p.strip() for p in parts)
        found = self._by_path.get(key) or self._by_norm_path.get(_norm(key))
        if found is None:
            raise TaxonomyError(f"no category with path '{key}' in taxonomy '{self.name}'")
        return self._categories[found]

    def resolve(self, label: str, separator: str = PATH_SEPARATOR) -> Category:
        """Resolve a label: a full path, a category id, or a name that names exactly one node.

        Raises:
            TaxonomyError: unknown or ambiguous, with the candidates when ambiguous.
        """
        label = label.strip()
        if not label:
            raise TaxonomyError("empty category label")
        sep = separator.strip()
        if sep and sep in label:
            return self.by_path(label, separator)
        if label in self._categories:
            return self._categories[label]
        candidates = self._by_norm_name.get(_norm(label), [])
        if len(candidates) == 1:
            return self._categories[candidates[0]]
        if candidates:
            shown = "; ".join(self._categories[c].path_str for c in candidates[:5])
            raise TaxonomyError(
                f"category name '{label}' is ambiguous in '{self.name}' ({len(candidates)} "
                f"matches: {shown}); give the full path"
            )
        raise TaxonomyError(f"unknown category '{label}' in taxonomy '{self.name}'")

    def children(self, category_id: str | None) -> list[Category]:
        """Direct children; `None` gives the top-level categories."""
        return [self._categories[c] for c in self._children.get(category_id, [])]

    @property
    def roots(self) -> list[Category]:
        return self.children(None)

    @property
    def leaves(self) -> list[Category]:
        return [c for c in self if c.is_leaf]

    @property
    def max_depth(self) -> int:
        return max(c.depth for c in self._categories.values())

    @property
    def languages(self) -> list[str]:
        langs: set[str] = set()
        for cat in self._categories.values():
            langs.update(cat.names)
        return sorted(langs, key=lambda lang: (lang != "en", lang))

    def ancestors(self, category_id: str, *, include_self: bool = True) -> list[Category]:
        """From the top-level category down to this one."""
        chain: list[Category] = []
        cat: Category | None = self.get(category_id)
        while cat is not None:
            chain.append(cat)
            cat = self._categories[cat.parent_id] if cat.parent_id else None
        chain.reverse()
        return chain if include_self else chain[:-1]

    def localized_path(self, category_id: str, language: str) -> tuple[str, ...]:
        """The path in `language`, falling back to the primary name per level."""
        return tuple(c.names.get(language, c.name) for c in self.ancestors(category_id))

    def search(
        self,
        query: str,
        limit: int = 20,
        language: str | None = None,
        *,
        require_all: bool = True,
    ) -> list[Category]:
        """Categories whose name or path holds every word of `query`, in any order, best first.

        Words match whole words of the names, singular or plural ("case" finds "Cases"); the
        last word also matches as a prefix, for type-ahead. Chinese (and other unspaced
        scripts) matches as a substring. Categories whose own name holds every word rank
        above those that need their ancestors' names; then an exact name, fewer other words
        in the name, and shallower categories come first. The index is built on the first
        search and kept, so later ones take about a millisecond on 10k categories.

        Args:
            query: words, in any language the taxonomy has names in.
            limit: at most this many results.
            language: match only names in this language (None: every language).
            require_all: False ranks categories by how many words they match instead of
                requiring all (a fallback when nothing matches every word).

        Example:
            >>> t = Taxonomy.from_paths([("Electronics", "Tablet Cases")])
            >>> [c.name for c in t.search("case tablet")]
            ['Tablet Cases']
        """
        from .search import search_index

        return search_index(self, language).search(query, limit, require_all=require_all)

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "categories": [
                {"id": c.id, "parent_id": c.parent_id, "names": dict(c.names)} for c in self
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Taxonomy:
        if not isinstance(data, Mapping):
            raise TaxonomyError(f"taxonomy JSON must be an object, found {type(data).__name__}")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise TaxonomyError(
                f"taxonomy JSON has format_version {version!r}; this Taxonomist reads "
                f"{FORMAT_VERSION}. Upgrade Taxonomist or re-export the taxonomy."
            )
        nodes = []
        try:
            for i, c in enumerate(data["categories"]):
                names = c["names"]
                if not isinstance(names, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in names.items()
                ):
                    raise TaxonomyError(
                        f"taxonomy JSON: categories[{i}].names must map language codes to "
                        f"names, found {names!r}"
                    )
                parent = c.get("parent_id")
                nodes.append(Node(str(c["id"]), None if parent is None else str(parent), names))
        except (KeyError, TypeError, AttributeError) as exc:
            raise TaxonomyError(f"taxonomy JSON is missing a field: {exc}") from None
        return cls(nodes, name=data.get("name") or "custom", version=data.get("version"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def __repr__(self) -> str:
        return f"Taxonomy(name={self.name!r}, version={self.version!r}, categories={len(self)})"
