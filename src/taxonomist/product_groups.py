"""Product groups in a catalogue without cluster ids: the same product sold under several
titles (merchants, colours, pack sizes), found from the titles alone.

Two titles are in one group when they are the same text or share a model-number-like token
(letters and digits, five characters or more) that few titles hold. A common one ("64gb",
"2023") would chain unrelated products together, so a token held by more than `max_titles`
titles joins nothing. Used where an estimate must not be flattered by copies of the rows it
scores: cross-validation of `fewshot`'s self-training, and the group development split of
`benchmarks/mix_criterion.py`.
"""

from __future__ import annotations

import re

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[a-z]")


def model_numbers(title: str) -> set[str]:
    """Tokens that look like model numbers: letters and digits, five characters or more."""
    return {
        t
        for t in _WORD.findall(title.lower())
        if len(t) >= 5 and _DIGIT.search(t) and _LETTER.search(t)
    }


def product_groups(titles: list[str], max_titles: int = 30) -> np.ndarray:
    """A group id per title (the index of one of its titles): titles joined by the same
    text or by a model-number token held by at most `max_titles` titles."""
    parent = list(range(len(titles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    holders: dict[str, list[int]] = {}
    for i, title in enumerate(titles):
        holders.setdefault("title:" + title.strip().lower(), []).append(i)
        for token in model_numbers(title):
            holders.setdefault(token, []).append(i)
    for key, rows in holders.items():
        if key.startswith("title:") or len(rows) <= max_titles:
            for r in rows[1:]:
                parent[root(r)] = root(rows[0])
    return np.array([root(i) for i in range(len(titles))], dtype=np.int64)
