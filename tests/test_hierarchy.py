from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from taxonomist.hierarchy import TreeIndex
from taxonomist.taxonomy import Taxonomy

TAX = Taxonomy.from_paths([("A", "a1"), ("A", "a2"), ("B", "b1", "x"), ("B", "b2"), ("C",)])


def test_subtrees_are_contiguous_ranges() -> None:
    tree = TreeIndex(TAX)
    for i, cid in enumerate(tree.ids):
        inside = {tree.ids[j] for j in range(i, tree.end[i])}
        expected = {c.id for c in TAX if c.id == cid or c.id.startswith(cid + " > ")}
        assert inside == expected


def test_candidates_are_leaves() -> None:
    tree = TreeIndex(TAX)
    assert sorted(tree.ids[i] for i in tree.candidates) == sorted(c.id for c in TAX.leaves)
    assert len(TreeIndex(TAX, leaves_only=False).candidates) == len(TAX)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_sibling_conditionals_sum_to_one(seed: int) -> None:
    tree = TreeIndex(TAX)
    logits = np.random.default_rng(seed).normal(size=(3, len(tree))) * 3
    probs = np.exp(tree.log_conditionals(logits))
    for parent in {*tree.parent.tolist()}:
        group = np.flatnonzero(tree.parent == parent)
        np.testing.assert_allclose(probs[:, group].sum(1), 1.0, rtol=1e-6)


def test_exhaustive_path_scores_are_mean_log_conditionals() -> None:
    tree = TreeIndex(TAX)
    logits = np.random.default_rng(0).normal(size=(2, len(tree)))
    log_cond = tree.log_conditionals(logits)
    scores = tree.path_scores(log_cond, beam_width=None)
    x = tree.ids.index("B > b1 > x")
    chain = [tree.ids.index(i) for i in ("B", "B > b1", "B > b1 > x")]
    np.testing.assert_allclose(scores[:, x], log_cond[:, chain].mean(1))


def test_beam_prunes_children_of_dropped_parents() -> None:
    tree = TreeIndex(TAX)
    logits = np.zeros((1, len(tree)))
    logits[0, tree.ids.index("A")] = 10  # A wins level 1 by far
    scores = tree.path_scores(tree.log_conditionals(logits), beam_width=1)
    assert np.isfinite(scores[0, tree.ids.index("A > a1")])
    assert np.isneginf(scores[0, tree.ids.index("B > b2")])


def test_marginals_sum_candidate_mass_under_a_node() -> None:
    tree = TreeIndex(TAX)
    probs = np.full((1, len(tree.candidates)), 1 / len(tree.candidates))
    a = tree.ids.index("A")
    assert np.isclose(tree.marginals(probs, np.array([[a]]))[0, 0], 2 / len(tree.candidates))
