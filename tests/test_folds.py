"""One fold cutter, one weight search, one early-stopping rule."""

from __future__ import annotations

import numpy as np
import pytest

from taxonomist.errors import ConfigError
from taxonomist.folds import group_folds
from taxonomist.models.ensemble import fit_weights
from taxonomist.models.loop import EarlyStopping


def test_near_duplicate_titles_share_a_fold_and_classes_are_dealt_round() -> None:
    titles = [f"Item {i}" for i in range(60)] + ["Red  SHIRT!", "red shirt", "Red shirt"]
    labels = ["a"] * 30 + ["b"] * 30 + ["c"] * 3
    folds = group_folds(titles, 3, labels, seed=5)
    assert len({folds[60], folds[61], folds[62]}) == 1  # one group, one fold
    for cls in ("a", "b"):
        counts = np.bincount(folds[[i for i, c in enumerate(labels) if c == cls]], minlength=3)
        assert counts.tolist() == [10, 10, 10]  # stratified: each class in every fold
    assert (group_folds(titles, 3, labels, seed=5) == folds).all()  # stable
    assert set(group_folds(titles, 4)) <= {0, 1, 2, 3}  # unstratified by hash
    with pytest.raises(ConfigError):
        group_folds(titles, 1)


def test_fit_weights_finds_the_informative_member_and_respects_usable() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    good = np.log(np.full((200, 3), 0.05))
    good[np.arange(200), y] = np.log(0.9)
    noise = np.log(rng.dirichlet(np.ones(3), 200))
    w = fit_weights([noise, good], y, 0.1)
    assert w[1] > 0.8
    w = fit_weights([noise, good], y, 0.1, usable=[0])
    assert w.tolist() == [1.0, 0.0]


class _Net:
    def __init__(self) -> None:
        self.value = 0.0
        self.loaded = None

    def state_dict(self):
        import torch

        return {"w": torch.tensor(self.value)}

    def load_state_dict(self, state) -> None:
        self.loaded = float(state["w"])


def test_patience_counts_epochs_without_improvement() -> None:
    stop, net = EarlyStopping(patience=2), _Net()
    for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7, 0.4], start=1):
        net.value = epoch
        stop.update(epoch, loss, net)
        if stop.should_stop:
            break
    assert epoch == 4 and stop.best_epoch == 2  # two stale epochs (3, 4) then stop
    stop.restore(net)
    assert net.loaded == 2.0
