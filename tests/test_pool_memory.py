"""`fewshot`'s pool memory: the nearest remembered products vote, a title never for itself,
and it survives being saved as arrays."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from taxonomist.models.pool_memory import PoolMemory, title_key


def memory() -> tuple[PoolMemory, csr_matrix]:
    # three products on three n-grams: the first two share one, the third is alone
    rows = csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    keep = np.arange(3)
    return PoolMemory.build(keep, rows, [0, 1, 1], ["ab12 x", "ab12", "zz99"]), rows


def test_the_nearest_vote_and_no_title_votes_for_itself():
    mem, rows = memory()
    # a new title on the first product's n-grams: the first product votes most
    new = mem.scores(rows[:1], ["ab12 y"], n_labels=2, k=2)
    assert new.argmax(1).tolist() == [0]
    # the first product's own title: only its neighbour votes, for label 1
    own = mem.scores(rows[:1], ["AB12 X "], n_labels=2, k=2)
    assert own.argmax(1).tolist() == [1]
    # alone of its kind and left out: no votes, every label alike
    alone = mem.scores(rows[2:], ["zz99"], n_labels=2, k=2)
    assert np.ptp(alone) == 0


def test_saved_as_arrays_and_back():
    mem, rows = memory()
    back = PoolMemory.from_tensors(mem.tensors())
    titles = ["ab12 y", "zz99", "q"]
    np.testing.assert_array_equal(back.scores(rows, titles, 2, 2), mem.scores(rows, titles, 2, 2))
    assert title_key("Ab12 ") == title_key("ab12") >= 0
