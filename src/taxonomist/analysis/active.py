"""Which unlabelled products to label next (active learning).

Uncertainty: per level of the tree, the margin between the two most probable nodes (each
node's probability summed over its descendants); a product's uncertainty is 1 minus its
smallest margin, and that level is reported (a product may be sure of "Shoes" and torn
between "Heels" and "Flats"). Diversity: the `n` picks are made greedily among the most
uncertain candidates, each time taking the product whose uncertainty times its distance to
the nearest product already picked is largest (greedy k-centre weighted by uncertainty), so
200 picks do not spend the labelling budget on 200 copies of one confusing product line.
Products that are near-copies of labelled ones (cosine of title vectors >= `NEAR_DUPLICATE`)
or of one another (same normalised title) are skipped: their label is all but known.
Distances are over the model's own sentence embeddings when it has a head, else over the
titles' TF-IDF vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..items import ModelInput, as_texts, group_key
from .audit import dataclass_csv, level_marginals
from .neighbours import TrainingIndex

NEAR_DUPLICATE = 0.9
CANDIDATES_PER_PICK = 5  # the k-centre search looks at the 5n most uncertain products


@dataclass
class Suggestion:
    rank: int
    id: str
    title: str
    uncertainty: float
    level: int  # the level whose margin is smallest
    margin: float
    predicted: str
    probability: float


def level_margins(proba: np.ndarray, columns: Sequence[str], taxonomy) -> np.ndarray:
    """(rows, levels) margin between the two most probable nodes of each level (1 where a
    level has a single node)."""
    marginals, _ = level_marginals(proba, columns, taxonomy)
    out = np.ones((len(proba), len(marginals)))
    for d, (_, probs) in enumerate(marginals):
        if probs.shape[1] >= 2:
            top2 = -np.partition(-probs, 1, axis=1)[:, :2]
            out[:, d] = top2[:, 0] - top2[:, 1]
    return out


def _embeddings(model, texts: list[str]) -> Any:
    """Unit vectors to measure diversity with: a head member's sentence embeddings when the
    model has one, else TF-IDF vectors of the titles (sparse, L2-normalised)."""
    heads = [model] if model.kind == "head" else []
    heads += [m for m in getattr(model, "members", []) if m.kind == "head"]
    if heads:
        return heads[0].embed(texts)
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts).tocsr()


def _similarity(x: Any, rows: np.ndarray, j: int) -> np.ndarray:
    sims = x[rows] @ x[j].T
    return np.asarray(sims.toarray() if hasattr(sims, "toarray") else sims).ravel()


def k_centre(x: Any, weight: np.ndarray, n: int, *, start: int | None = None) -> list[int]:
    """Greedy k-centre weighted by `weight`: each pick maximises weight x (1 - cosine to the
    nearest pick so far). `x`: unit row vectors, dense or sparse."""
    m = x.shape[0]
    if m == 0 or n <= 0:
        return []
    picked = [int(np.argmax(weight)) if start is None else start]
    distance = 1 - _similarity(x, np.arange(m), picked[0])
    distance[picked[0]] = 0
    while len(picked) < min(n, m):
        j = int(np.argmax(weight * np.clip(distance, 0, None)))
        if distance[j] <= 0:  # every candidate is a copy of a pick: fill by weight
            rest = [i for i in np.argsort(-weight) if i not in set(picked)]
            picked += [int(i) for i in rest[: n - len(picked)]]
            break
        picked.append(j)
        distance = np.minimum(distance, 1 - _similarity(x, np.arange(m), j))
        distance[j] = 0
    return picked


def suggest(
    model,
    pool: Sequence[ModelInput],
    ids: Sequence[str] | None = None,
    n: int = 200,
    *,
    labelled: TrainingIndex | None = None,
    diversity: bool = True,
) -> list[Suggestion]:
    """The `n` pool products most worth labelling next (see the module docstring).
    `diversity=False` gives plain margin sampling (the most uncertain first)."""
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    ids = list(ids) if ids is not None else [str(i + 1) for i in range(len(pool))]
    texts = as_texts(pool)
    keep = np.ones(len(pool), dtype=bool)
    seen_keys: set[str] = set()
    for i, text in enumerate(texts):  # one of each group of identical titles
        key = group_key(text)
        keep[i] = key not in seen_keys
        seen_keys.add(key)
    if labelled is not None and len(labelled):
        keep &= labelled.max_similarity(texts) < NEAR_DUPLICATE
    rows = np.flatnonzero(keep).tolist()
    if not len(rows):
        return []
    proba = model.predict_proba([pool[i] for i in rows])
    margins = level_margins(proba, model.labels, model.taxonomy)
    level = margins.argmin(1)
    uncertainty = 1 - margins.min(1)
    order = np.argsort(-uncertainty, kind="stable")
    if diversity:
        cand = order[: n * CANDIDATES_PER_PICK]
        x = _embeddings(model, [texts[rows[i]] for i in cand])
        chosen = [cand[j] for j in k_centre(x, uncertainty[cand] + 1e-6, n)]
    else:
        chosen = list(order[:n])
    best = proba.argmax(1)
    out = []
    for rank, i in enumerate(chosen, start=1):
        row = rows[i]
        out.append(
            Suggestion(
                rank=rank,
                id=ids[row],
                title=texts[row],
                uncertainty=float(uncertainty[i]),
                level=int(level[i]) + 1,
                margin=float(margins[i, level[i]]),
                predicted=model.taxonomy.get(model.labels[best[i]]).path_str,
                probability=float(proba[i, best[i]]),
            )
        )
    return out


def to_csv(suggestions: list[Suggestion]) -> str:
    return dataclass_csv(suggestions, Suggestion, ("uncertainty", "margin", "probability"))


def suggest_file(
    pool_path: str | Path,
    model_dir: str | Path,
    out: str | Path,
    *,
    n: int = 200,
    labelled_path: str | Path | None = None,
    review_db: str | None = None,
    columns=None,
    on_bad_row=None,
) -> list[Suggestion]:
    """Read an unlabelled pool, write the `n` suggestions to `out` (.csv)."""
    from ..data import ColumnSpec, ReadReport, read_products
    from ..models import load_model
    from ..persistence import atomic_write_text
    from ..service import model_inputs
    from .audit import check_outputs, read_labelled_rows

    pool_path, out = Path(pool_path), Path(out)
    check_outputs(pool_path, (out, (".csv",)))
    if review_db:
        raise ConfigError(
            "--review-db is not wired to the review queue (taxonomist.review) yet; write the "
            "CSV and queue its rows from there"
        )
    columns = columns or ColumnSpec()
    model = load_model(model_dir)
    index = TrainingIndex.load(model_dir)
    if labelled_path is not None:
        data = read_labelled_rows(labelled_path, columns, on_bad_row=on_bad_row)
        if len(set(data.labels)) < 2:
            raise DataError(
                f"every row has the same label (first at line {data.lines[0]}); a labelled "
                "file needs at least two categories",
                file=labelled_path,
            )
        extra = TrainingIndex.build(data.ids, as_texts(data.inputs), data.labels)
        index = extra if index is None else _merged(index, extra)
    pool: list[ModelInput] = []
    ids: list[str] = []
    for batch in read_products(
        pool_path, columns, report=ReadReport(str(pool_path)), on_bad_row=on_bad_row
    ):
        pool.extend(model_inputs(batch, columns))
        ids.extend(p.id for p in batch)
    if not pool:
        raise DataError("no usable rows in the pool", file=pool_path)
    suggestions = suggest(model, pool, ids, n, labelled=index)
    atomic_write_text(out, to_csv(suggestions))
    return suggestions


def _merged(a: TrainingIndex, b: TrainingIndex) -> TrainingIndex:
    return TrainingIndex.build(a.ids + b.ids, a.titles + b.titles, a.labels + b.labels)
