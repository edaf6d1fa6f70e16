"""The shared training loop: a learning-rate schedule valid for any number of steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taxonomist.models import model_class
from taxonomist.models.loop import mlp_head, one_cycle

torch = pytest.importorskip("torch")


def _rates(total_steps: int, scheduler=None) -> list[float]:
    """The rate each of `total_steps` optimiser steps uses."""
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=0.01)
    sched = (scheduler or one_cycle)(opt, 0.01, total_steps)
    rates = []
    for _ in range(total_steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


@pytest.mark.parametrize("total_steps", [1, 2, 5, 9, 10, 11, 40])
def test_schedule_is_valid_for_any_step_count(total_steps) -> None:
    rates = _rates(total_steps)  # torch's OneCycleLR divided by zero at 10 steps
    assert all(math.isfinite(r) and r > 0 for r in rates)
    if total_steps <= 10:  # too short for a warm-up: one-cycle's decay from the top rate,
        # and no step wasted at a rate that cannot move the weights
        assert rates[0] == pytest.approx(0.01)
        assert rates == sorted(rates, reverse=True)
        assert min(rates) > 0.01 / 1000
    else:  # long enough: torch's one-cycle, unchanged
        expected = _rates(
            total_steps,
            lambda opt, lr, n: torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=lr, total_steps=n, pct_start=0.1
            ),
        )
        assert rates == expected


@pytest.mark.parametrize("epochs", [1, 10])
def test_head_trains_on_a_few_rows_for_a_few_epochs(epochs, tiny_rows, tiny_taxonomy) -> None:
    """80 rows at the default batch size (256): one step an epoch, so 10 epochs were the
    10-step run that crashed, and 1 epoch a step at a rate of zero."""
    rows = tiny_rows[:80]
    texts = [r["title"] for r in rows]
    labels = [tiny_taxonomy.by_path(r["category"]).id for r in rows]
    cls = model_class("head")
    config = {"encoder": "fake", "hidden": 0, "epochs": epochs, "lr": 0.05}
    model = cls(tiny_taxonomy, cls.config_class.from_dict(config))
    assert model.config.batch_size >= len(rows)
    report = model.fit(texts, labels)
    assert len(report.history) == epochs
    # the steps moved the weights towards the training labels: the true class is likelier
    # than under the initial weights (the same seed rebuilds them)
    torch.manual_seed(model.config.seed)
    initial = mlp_head(model.encoder.dim, len(model.labels), 0, model.config.dropout).eval()
    with torch.no_grad():
        before = torch.softmax(initial(torch.from_numpy(model.embed(texts))), 1).numpy()
    after = model.predict_proba(texts)
    y = np.array([model.labels.index(v) for v in labels])
    rows = np.arange(len(y))
    assert after[rows, y].mean() > before[rows, y].mean() + 0.01
