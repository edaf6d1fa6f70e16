"""Tree-shaped scoring: per-level conditionals, beam-pruned path scores, level marginals.

Everything is vectorised over a batch: a (batch, n_nodes) score matrix goes in, path scores
for every node come out. Nodes are kept in the taxonomy's depth-first order so every subtree
is a contiguous range, which turns "probability mass under this node" into a cumsum lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .predictions import Candidate, ProductPrediction
from .taxonomy import Taxonomy


class TreeIndex:
    """Array views of a taxonomy for batched decoding.

    Args:
        taxonomy: the tree.
        leaves_only: whether a predicted path must end at a leaf.
        candidate_ids: the nodes a prediction may end at (e.g. the labels a supervised model
            was trained on); overrides `leaves_only`. Kept in tree order.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        *,
        leaves_only: bool = True,
        candidate_ids: Sequence[str] | None = None,
    ) -> None:
        cats = list(taxonomy)  # depth-first pre-order
        self.ids = [c.id for c in cats]
        self.paths = [c.path for c in cats]
        pos = {cid: i for i, cid in enumerate(self.ids)}
        n = len(cats)
        self.parent = np.array([pos[c.parent_id] if c.parent_id else -1 for c in cats])
        self.depth = np.array([c.depth for c in cats])
        self.max_depth = int(self.depth.max())
        # subtree of node i = nodes [i, end[i]); a child's range ends no later than its parent's
        end = np.arange(1, n + 1)
        for i in range(n - 1, -1, -1):
            p = self.parent[i]
            if p >= 0 and end[i] > end[p]:
                end[p] = end[i]
        self.end = end
        # sibling groups, for a softmax within each group
        self.group_order = np.argsort(self.parent, kind="stable")
        sorted_parents = self.parent[self.group_order]
        self.group_starts = np.flatnonzero(np.r_[True, sorted_parents[1:] != sorted_parents[:-1]])
        sizes = np.diff(np.r_[self.group_starts, n])
        self._group_of_sorted = np.repeat(np.arange(len(sizes)), sizes)
        self.by_depth = [np.flatnonzero(self.depth == d) for d in range(1, self.max_depth + 1)]
        is_leaf = np.array([c.is_leaf for c in cats])
        if candidate_ids is not None:
            self.candidates = np.array(sorted(pos[c] for c in candidate_ids), dtype=np.int64)
        else:
            self.candidates = np.flatnonzero(is_leaf) if leaves_only else np.arange(n)
        # ancestors[d-1][i]: the ancestor at depth d of node i (or -1 when shallower)
        anc = np.full((self.max_depth, n), -1)
        for i in range(n):
            d = self.depth[i]
            anc[d - 1, i] = i
            if d > 1:
                anc[: d - 1, i] = anc[: d - 1, self.parent[i]]
        self.ancestors = anc
        # candidate range under each node, for marginals
        self._cand_lo = np.searchsorted(self.candidates, np.arange(n), side="left")
        self._cand_hi = np.searchsorted(self.candidates, end, side="left")

    def __len__(self) -> int:
        return len(self.ids)

    def log_conditionals(self, logits: np.ndarray) -> np.ndarray:
        """log p(node | parent, x): a log-softmax over each group of siblings."""
        s = logits[:, self.group_order]
        gmax = np.maximum.reduceat(s, self.group_starts, axis=1)
        shifted = s - gmax[:, self._group_of_sorted]
        lse = np.log(np.add.reduceat(np.exp(shifted), self.group_starts, axis=1))
        out = np.empty_like(logits)
        out[:, self.group_order] = shifted - lse[:, self._group_of_sorted]
        return out

    def path_scores(self, log_cond: np.ndarray, beam_width: int | None = None) -> np.ndarray:
        """Mean log-conditional along each node's path, top-down, keeping `beam_width` per level.

        A node whose parent fell out of the beam scores -inf. `None` scores every path.
        The mean (not the sum) lets a shallow leaf compete with a deep one.
        """
        batch = log_cond.shape[0]
        total = np.empty_like(log_cond)
        mean = np.full_like(log_cond, -np.inf)
        rows = np.arange(batch)[:, None]
        for d, nodes in enumerate(self.by_depth, start=1):
            parents = self.parent[nodes]
            inherited = total[:, parents] if d > 1 else 0.0
            total[:, nodes] = inherited + log_cond[:, nodes]
            level = total[:, nodes] / d
            if d > 1:
                level = np.where(np.isfinite(mean[:, parents]), level, -np.inf)
            if beam_width is not None and len(nodes) > beam_width:
                cut = np.argpartition(-level, beam_width - 1, axis=1)[:, :beam_width]
                kept = np.full_like(level, -np.inf)
                kept[rows, cut] = level[rows, cut]
                level = kept
            mean[:, nodes] = level
        return mean

    def marginals(self, cand_probs: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Probability mass of the candidates under each of `nodes` (batch, k) per row."""
        # float64: a small mass next to a large one must survive the cumsum difference
        cs = np.cumsum(cand_probs, axis=1, dtype=np.float64)
        cs = np.concatenate([np.zeros((cand_probs.shape[0], 1)), cs], axis=1)
        rows = np.arange(cand_probs.shape[0])[:, None]
        return cs[rows, self._cand_hi[nodes]] - cs[rows, self._cand_lo[nodes]]

    def decode(
        self, cand_probs: np.ndarray, ids: Sequence[str], top_k: int
    ) -> list[ProductPrediction]:
        """Turn (batch, n_candidates) probabilities into ranked, path-consistent predictions.

        Each candidate carries the probability mass at every level of its path (the sum over
        the candidates under that ancestor), so level confidences never rise going down.
        """
        k = min(top_k, cand_probs.shape[1])
        top = np.argsort(-cand_probs, axis=1, kind="stable")[:, :k]
        nodes = self.candidates[top]  # (batch, k)
        levels = np.stack(
            [
                self.marginals(cand_probs, np.maximum(self.ancestors[d][nodes], 0))
                for d in range(self.max_depth)
            ],
            axis=-1,
        )  # (batch, k, depth)
        out = []
        for b, pid in enumerate(ids):
            cands = []
            for j in range(k):
                node = nodes[b, j]
                depth = self.depth[node]
                cands.append(
                    Candidate(
                        category_id=self.ids[node],
                        path=self.paths[node],
                        confidence=float(cand_probs[b, top[b, j]]),
                        level_confidences=tuple(float(x) for x in levels[b, j, :depth]),
                    )
                )
            out.append(ProductPrediction(pid, tuple(cands)))
        return out
