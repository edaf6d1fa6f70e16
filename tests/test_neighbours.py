from __future__ import annotations

import numpy as np

from taxonomist.encoders import normalize
from taxonomist.neighbours import nearest, neighbour_graph, one_step, spread


def _two_runs(rng: np.random.Generator) -> np.ndarray:
    """Twenty unit vectors in two tight runs of ten (two kinds of product)."""
    centres = normalize(rng.normal(size=(2, 16)))
    return normalize(np.repeat(centres, 10, axis=0) + 0.05 * rng.normal(size=(20, 16)))


def test_nearest_skips_each_row_itself() -> None:
    emb = _two_runs(np.random.default_rng(0))
    idx, sims = nearest(emb, emb, 3, skip_self=True)
    assert idx.shape == (20, 3)
    assert not (idx == np.arange(20)[:, None]).any()
    assert ((idx < 10) == (np.arange(20) < 10)[:, None]).all()  # neighbours from its own run
    assert (sims <= 1.0 + 1e-6).all()


def test_a_product_read_wrongly_alone_follows_its_run() -> None:
    emb = _two_runs(np.random.default_rng(1))
    own = np.where(np.arange(20)[:, None] < 10, [0.8, 0.2], [0.2, 0.8])
    own[3] = [0.3, 0.7]  # one of the first kind, scored alone as the second
    smoothed = spread(neighbour_graph(emb, 5), own, alpha=0.8)
    np.testing.assert_allclose(smoothed.sum(1), 1.0)
    assert (smoothed.argmax(1) == (np.arange(20) >= 10)).all()
    np.testing.assert_allclose(spread(neighbour_graph(emb, 5), own, alpha=0.0), own)


def test_one_step_gives_a_catalogue_product_its_fixed_point_and_a_new_one_its_neighbours() -> None:
    emb = _two_runs(np.random.default_rng(2))
    own = np.where(np.arange(20)[:, None] < 10, [0.9, 0.1], [0.1, 0.9])
    smoothed = spread(neighbour_graph(emb, 5), own, alpha=0.8)
    again = one_step(emb[:4], own[:4], emb, smoothed, alpha=0.8, k=5)
    np.testing.assert_allclose(again, smoothed[:4], rtol=1e-6)
    new = normalize(emb[:2].mean(0, keepdims=True))
    out = one_step(new, np.array([[0.4, 0.6]]), emb, smoothed, alpha=0.8, k=5)
    assert out[0, 0] > 0.6  # its neighbours are all of the first kind
    # nothing alike in the catalogue: the product keeps its own distribution
    far = -emb[:1]
    np.testing.assert_allclose(one_step(far, own[:1], emb[:10], smoothed[:10], 0.8, 5), own[:1])
