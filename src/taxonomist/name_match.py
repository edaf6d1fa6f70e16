"""Category names written out in a product's text: a lexical cue beside the embeddings.

A title that contains a category's name verbatim ("天美家德红酒架" holds 酒架, wine racks) is
strong evidence an encoder can blur: the whole-title embedding of 红酒架 sits near wine. Like
the lexical backends of subject indexers (Annif's MLLM matches vocabulary labels in the text),
the zero-shot decoder adds a bonus to each category whose name the text holds.

Matching: Chinese and Japanese names are matched as substrings of the text (two characters or
more: one character matches too much); other names as whole words, case-folded, with a final
"s" dropped from words longer than three letters on both sides, so "Dishwashers" meets
"dishwasher". A match inside a longer match's span is dropped: 红酒架 (if it were a name) would
win over 酒架, and "Fridge Freezers" over "Fridges".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy import sparse

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _words(text: str) -> list[str]:
    return [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORD.findall(text.lower())]


class NameIndex:
    """Which nodes' names each text holds. A node has one name, or several (its names in
    the taxonomy's languages, for a catalogue that mixes them)."""

    def __init__(self, names: Sequence[str | Sequence[str]]) -> None:
        self.n_nodes = len(names)
        self._chars: dict[str, list[int]] = {}  # CJK name -> nodes
        self._words: dict[tuple[str, ...], list[int]] = {}  # word sequence -> nodes
        for node, given in enumerate(names):
            for name in {given} if isinstance(given, str) else set(given):
                name = name.strip().lower()
                if _CJK.search(name):
                    if len(name) >= 2:
                        self._chars.setdefault(name, []).append(node)
                elif words := tuple(_words(name)):
                    self._words.setdefault(words, []).append(node)
        self._max_chars = max(map(len, self._chars), default=0)
        self._max_words = max(map(len, self._words), default=0)

    def _spans(self, text: str) -> list[tuple[str, int, int, list[int]]]:
        """(unit, start, end, nodes) of every name found: CJK names in characters ("c"),
        the others in words ("w")."""
        found = []
        lowered = text.lower()
        if self._chars and _CJK.search(lowered):
            for start in range(len(lowered)):
                for length in range(2, min(self._max_chars, len(lowered) - start) + 1):
                    nodes = self._chars.get(lowered[start : start + length])
                    if nodes:
                        found.append(("c", start, start + length, nodes))
        if self._words:
            words = _words(lowered)
            for start in range(len(words)):
                for length in range(1, min(self._max_words, len(words) - start) + 1):
                    nodes = self._words.get(tuple(words[start : start + length]))
                    if nodes:
                        found.append(("w", start, start + length, nodes))
        return found

    def nodes(self, text: str) -> list[int]:
        """Nodes whose name the text holds, less those only found inside a longer name."""
        spans = self._spans(text)
        out: set[int] = set()
        for unit, start, end, nodes in spans:
            inside = any(
                u == unit and s <= start and end <= e and e - s > end - start
                for u, s, e, _ in spans
            )
            # Chinese compounds put the head last: of two names that overlap, the one that
            # ends later is what the product is (红酒|酒架: a rack, not wine)
            before_head = unit == "c" and any(
                u == "c" and start < s < end < e for u, s, e, _ in spans
            )
            if not inside and not before_head:
                out.update(nodes)
        return sorted(out)

    def matrix(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """(texts, nodes) 0/1 matrix of `nodes` for each text."""
        indptr, indices = [0], []
        for text in texts:
            indices.extend(self.nodes(text))
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float32)
        return sparse.csr_matrix(
            (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(len(texts), self.n_nodes),
        )
