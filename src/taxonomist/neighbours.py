"""Smoothing class distributions over a catalogue's nearest-neighbour graph (label-free).

Products of one kind come in runs: the same wok from three sellers, a brand's twenty sock
titles. Zero-shot scores each alone, and a title that says little (小吉米袜203) is scored on
what little it says. Its neighbours in the same catalogue say more. Label spreading (Zhou et
al. 2004) with the model's own distributions as the starting point: each product's
distribution becomes `(1 - alpha)` its own plus `alpha` the similarity-weighted mean of its
k nearest neighbours' smoothed ones, iterated to the fixed point. A product outside the
catalogue takes one such step against the catalogue's smoothed distributions, so it is
treated as a catalogue product would be.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

_CHUNK = 2048  # query rows per similarity block: 2,048 x 20,000 floats is 160 MB


def nearest(
    query: np.ndarray, base: np.ndarray, k: int, *, skip_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine similarities) of each query row's `k` nearest base rows (unit rows
    expected; dense, or sparse such as TF-IDF). `skip_self`: query row i is base row i and
    is not its own neighbour."""
    k = min(k, base.shape[0] - (1 if skip_self else 0))
    if k < 1:
        empty = np.zeros((query.shape[0], 0))
        return empty.astype(np.int64), empty
    idx, sims = [], []
    for start in range(0, query.shape[0], _CHUNK):
        block = query[start : start + _CHUNK] @ base.T
        if sparse.issparse(block):
            block = block.toarray()
        if skip_self:
            rows = np.arange(block.shape[0])
            block[rows, start + rows] = -np.inf
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        idx.append(top)
        sims.append(np.take_along_axis(block, top, axis=1))
    return np.concatenate(idx), np.concatenate(sims)


def _row_weights(sims: np.ndarray) -> np.ndarray:
    # dissimilar "neighbours" (a product alone of its kind) carry nothing
    weights = np.maximum(sims, 0.0)
    total = weights.sum(1, keepdims=True)
    return np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)


def neighbour_graph(features, k: int) -> sparse.csr_matrix:
    """The catalogue's k-nearest-neighbour graph over the rows of `features` (symmetrised:
    a link either way counts), each row averaging its neighbours (weights summing to 1;
    a row with no neighbour is all zero)."""
    n = features.shape[0]
    idx, sims = nearest(features, features, k, skip_self=True)
    graph = sparse.csr_matrix(
        (np.maximum(sims, 0.0).ravel(), (np.repeat(np.arange(n), idx.shape[1]), idx.ravel())),
        shape=(n, n),
    )
    graph = graph.maximum(graph.T).tocsr()
    degree = np.asarray(graph.sum(1)).ravel()
    return (sparse.diags(np.divide(1.0, degree, out=np.zeros(n), where=degree > 0)) @ graph).tocsr()


def spread(
    graph: sparse.csr_matrix, own: np.ndarray, alpha: float, iterations: int = 30
) -> np.ndarray:
    """Each catalogue product's distribution (rows of `own`) smoothed over `graph`
    (`neighbour_graph`), rows summing to 1."""
    alone = np.asarray(graph.sum(1)).ravel() == 0  # no neighbour: its own distribution stays
    smoothed = own.copy()
    for _ in range(iterations):
        smoothed = alpha * (graph @ smoothed) + (1 - alpha) * own
        smoothed[alone] = own[alone]
    return smoothed / smoothed.sum(1, keepdims=True)


def one_step(
    query: np.ndarray,
    own: np.ndarray,
    base: np.ndarray,
    base_smoothed: np.ndarray,
    alpha: float,
    k: int,
) -> np.ndarray:
    """Query products' distributions (`own`) mixed with their k nearest catalogue products'
    smoothed ones (`spread` over `base`): `(1 - alpha) own + alpha neighbours`. A query that
    is a catalogue product (the same embedding) takes that product's smoothed distribution,
    so classifying the catalogue that was adapted on gives the fixed point itself."""
    idx, sims = nearest(query, base, k)
    if idx.shape[1] == 0:
        return own
    weights = _row_weights(sims)
    neighbours = np.einsum("nk,nkc->nc", weights, base_smoothed[idx])
    has = weights.sum(1) > 0
    out = own.copy()
    out[has] = (1 - alpha) * own[has] + alpha * neighbours[has]
    # the catalogue products it is: the mean over all of them, since an encoder can give
    # two texts one vector ("IPHONE 15", "iphone 15") and float noise must not pick one
    same = (sims >= 1 - 1e-5).astype(np.float64)
    exact = same.sum(1) > 0
    same = same[exact] / same[exact].sum(1, keepdims=True)
    out[exact] = np.einsum("nk,nkc->nc", same, base_smoothed[idx[exact]])
    return out
