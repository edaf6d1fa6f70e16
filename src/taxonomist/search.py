"""Word search over a taxonomy's category names and paths, fast enough for type-ahead.

An inverted index from normalised word (singular form) to categories is built once per
taxonomy and language and kept on the taxonomy (which is immutable). Words in unspaced
scripts (Chinese, Japanese) cannot be split into words without a dictionary, so a query word
in such a script matches as a substring of the names instead.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .taxonomy import Category, Taxonomy

# CJK ideographs, kana and hangul: written without spaces between words.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_WORD = re.compile(r"[^\W_]+")
_LOCK = threading.Lock()


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@functools.lru_cache(maxsize=65536)
def singular(word: str) -> str:
    """A crude English singular, applied alike to names and queries, so only its
    consistency matters: "cases" -> "case", "batteries" -> "battery", "boxes" -> "box"."""
    if len(word) <= 3 or not word.isascii() or not word.endswith("s"):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith(("ss", "us", "is")):
        return word
    return word[:-1]


def words(text: str) -> list[str]:
    """The spaced-script words of `text`, folded and singular; unspaced runs are left out."""
    folded = _UNSPACED.sub(" ", _fold(text))
    return [singular(w) for w in _WORD.findall(folded)]


def is_unspaced(text: str) -> bool:
    """Whether `text` has characters of a script written without spaces (Chinese...)."""
    return bool(_UNSPACED.search(text))


def _raw_words(folded: str) -> list[str]:
    return _WORD.findall(_UNSPACED.sub(" ", folded))


@dataclass(frozen=True)
class _Term:
    text: str
    unspaced: bool
    prefix_ok: bool


class SearchIndex:
    """The search structures of one taxonomy in one language (None: all its languages)."""

    def __init__(self, taxonomy: Taxonomy, language: str | None) -> None:
        self.categories: list[Category] = list(taxonomy)
        position = {c.id: i for i, c in enumerate(self.categories)}
        self.name_words: list[frozenset[str]] = []
        self.name_sizes: list[int] = []
        self.name_text: list[str] = []  # folded names, for substring matching
        self.path_text: list[str] = []
        self.names: list[list[str]] = []
        path_words: list[set[str]] = []
        for cat in self.categories:
            names = [cat.names.get(language, cat.name)] if language else list(cat.names.values())
            folded = [_fold(n) for n in names or [cat.name]]
            raw = [_raw_words(n) for n in folded]
            # each word as written and in its singular: the first serves prefixes typed so
            # far ("batteri"), the second whole words in either number
            own = {w for ws in raw for w in ws} | {singular(w) for ws in raw for w in ws}
            self.names.append(folded)
            self.name_words.append(frozenset(own))
            self.name_sizes.append(min(len(ws) for ws in raw))
            self.name_text.append(" | ".join(folded))
            parent = position.get(cat.parent_id) if cat.parent_id else None
            inherited = path_words[parent] if parent is not None else set()
            path_words.append(inherited | own)
            above = self.path_text[parent] + " | " if parent is not None else ""
            self.path_text.append(above + self.name_text[-1])
        postings: dict[str, list[int]] = {}
        for i, found in enumerate(path_words):
            for word in found:
                postings.setdefault(word, []).append(i)
        self.postings = {w: frozenset(ids) for w, ids in postings.items()}
        self.vocabulary = sorted(self.postings)
        # unspaced scripts: which categories' paths hold each character, so a Chinese term
        # is checked as a substring only where all its characters occur
        chars: dict[str, list[int]] = {}
        for i, text in enumerate(self.path_text):
            for char in set(_UNSPACED.findall(text)):
                chars.setdefault(char, []).append(i)
        self.char_postings = {c: frozenset(ids) for c, ids in chars.items()}

    def _matching(self, term: _Term) -> set[int]:
        if term.unspaced:
            rarest = sorted(
                (self.char_postings.get(c, frozenset()) for c in set(term.text)), key=len
            )
            pool = set(rarest[0]).intersection(*rarest[1:]) if rarest else set()
            return {i for i in pool if term.text in self.path_text[i]}
        if not term.prefix_ok:
            return set(self.postings.get(term.text, ()))
        found: set[int] = set()
        for word in self._prefixed(term):
            found.update(self.postings[word])
        return found

    def _prefixed(self, term: _Term) -> frozenset[str]:
        """The indexed words that start with `term` (itself included)."""
        start = bisect.bisect_left(self.vocabulary, term.text)
        end = bisect.bisect_left(self.vocabulary, term.text + "\uffff", start)
        return frozenset(self.vocabulary[start:end])

    def _in_name(self, i: int, term: _Term, prefixed: frozenset[str]) -> tuple[bool, bool]:
        """(the category's own name holds the term, only as a word prefix)."""
        if term.unspaced:
            return term.text in self.name_text[i], False
        words = self.name_words[i]
        if term.text in words:
            return True, False
        if term.prefix_ok and not words.isdisjoint(prefixed):
            return True, True
        return False, False

    def _extra(self, i: int, terms: list[_Term], named: int) -> int:
        """How much of the name the query leaves unexplained: words for spaced scripts,
        characters for unspaced ones (the shortest name per category counts)."""
        spaced = sum(1 for t in terms if not t.unspaced)
        extra = max(self.name_sizes[i] - min(named, spaced), 0) if spaced else 0
        unspaced = [t.text for t in terms if t.unspaced]
        if unspaced:
            extra += (
                min(
                    len(_UNSPACED.findall(n)) - sum(n.count(t) * len(t) for t in unspaced)
                    for n in self.names[i]
                    if any(t in n for t in unspaced)
                )
                if any(t in self.name_text[i] for t in unspaced)
                else 99
            )
        return extra

    def search(self, query: str, limit: int, *, require_all: bool = True) -> list[Category]:
        terms = _terms(query)
        if not terms or limit < 1:
            return []
        hits = [self._matching(t) for t in terms]
        candidates = set.intersection(*hits) if require_all else set().union(*hits)
        prefixed = [
            self._prefixed(t) if t.prefix_ok and not t.unspaced else frozenset() for t in terms
        ]
        whole = _fold(query).strip()
        spaced_only = not any(t.unspaced for t in terms)
        if spaced_only:
            return self._rank_spaced(terms, hits, candidates, prefixed, whole, limit, require_all)
        scored = []
        for i in candidates:
            matched = sum(1 for h in hits if i in h) if not require_all else len(terms)
            in_name = [self._in_name(i, t, p) for t, p in zip(terms, prefixed, strict=True)]
            named = sum(1 for hit, _ in in_name if hit)
            # in unspaced scripts a name that starts with the query is the thing itself far
            # more often than one that merely contains it ("手机" phone vs "干手机" hand dryer)
            starts = sum(
                1 for t in terms if t.unspaced and any(n.startswith(t.text) for n in self.names[i])
            )
            prefix_only = sum(1 for hit, pre in in_name if hit and pre)
            exact = whole in self.names[i] or (
                spaced_only
                and named == len(terms)
                and not prefix_only
                and self.name_sizes[i] == len(terms)
            )
            key = (
                -matched,
                not exact,
                -named,
                -starts,
                prefix_only,
                self._extra(i, terms, named),
                self.categories[i].depth,
                len(self.name_text[i]),
                i,
            )
            scored.append((key, i))
        return [self.categories[i] for _, i in heapq.nsmallest(limit, scored)]

    def _rank_spaced(
        self,
        terms: list[_Term],
        hits: list[set[int]],
        candidates: set[int],
        prefixed: list[frozenset[str]],
        whole: str,
        limit: int,
        require_all: bool,
    ) -> list[Category]:
        """`search`'s ranking for words in spaced scripts only, the type-ahead case, kept
        lean: a one-letter prefix matches most of a 10k taxonomy."""
        n_terms = len(terms)
        exact_words = [t.text for t in terms]
        name_words, name_sizes, names = self.name_words, self.name_sizes, self.names
        cats, name_text = self.categories, self.name_text
        scored = []
        for i in candidates:
            words = name_words[i]
            named = prefix_only = 0
            for text, allowed in zip(exact_words, prefixed, strict=True):
                if text in words:
                    named += 1
                elif allowed and not words.isdisjoint(allowed):
                    named += 1
                    prefix_only += 1
            exact = whole in names[i] or (
                named == n_terms and not prefix_only and name_sizes[i] == n_terms
            )
            matched = n_terms if require_all else sum(1 for h in hits if i in h)
            key = (
                -matched,
                not exact,
                -named,
                prefix_only,
                max(name_sizes[i] - named, 0),
                cats[i].depth,
                len(name_text[i]),
                i,
            )
            scored.append((key, i))
        return [cats[i] for _, i in heapq.nsmallest(limit, scored)]


def _terms(query: str) -> list[_Term]:
    folded = _fold(query)
    pieces = folded.split()
    terms: list[_Term] = []
    trailing_space = query[-1:].isspace()
    for n, piece in enumerate(pieces):
        last = n == len(pieces) - 1 and not trailing_space
        # "手机壳" is one term; "tablet-case" is two words; "iphone手机" a word and a term
        for run in re.findall(rf"{_UNSPACED.pattern}+", piece):
            terms.append(_Term(run, True, False))
        for word in _WORD.findall(_UNSPACED.sub(" ", piece)):
            terms.append(_Term(singular(word), False, last))
    unique: dict[tuple[str, bool], _Term] = {}
    for term in terms:
        key = (term.text, term.unspaced)
        if key in unique:
            # a repeated word must still be matched once, prefix allowance kept only if both
            term = _Term(term.text, term.unspaced, term.prefix_ok and unique[key].prefix_ok)
        unique[key] = term
    return list(unique.values())


def search_index(taxonomy: Taxonomy, language: str | None) -> SearchIndex:
    """The taxonomy's index for `language`, built on first use and kept with it."""
    indexes: dict[str | None, SearchIndex] = taxonomy.__dict__.setdefault("_search_indexes", {})
    index = indexes.get(language)
    if index is None:
        with _LOCK:
            index = indexes.get(language)
            if index is None:
                index = indexes[language] = SearchIndex(taxonomy, language)
    return index
