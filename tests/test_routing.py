from __future__ import annotations

import json

import numpy as np
import pytest

from taxonomist.errors import ConfigError
from taxonomist.predictions import Candidate, Predictions, ProductPrediction
from taxonomist.routing import Routing, automation, choose_routing, route, threshold_for


def test_threshold_is_the_lowest_confidence_that_keeps_the_target():
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    right = np.array([1, 1, 1, 0, 1, 0], dtype=bool)
    assert threshold_for(conf, right, 1.0) == 0.9
    assert threshold_for(conf, right, 0.8) == 0.7  # 4 of 5 above 0.7
    assert threshold_for(conf, np.zeros(6, dtype=bool), 0.5) is None


def test_threshold_never_cuts_between_equal_confidences():
    conf = np.array([0.9, 0.9, 0.9])
    right = np.array([1, 1, 0], dtype=bool)
    assert threshold_for(conf, right, 0.99) is None


def test_per_category_thresholds_with_a_global_fallback():
    rng = np.random.default_rng(0)
    predicted, conf, gold = [], [], []
    for _ in range(200):  # category a: right above 0.7, wrong below
        c = float(rng.uniform(0.4, 1.0))
        predicted.append("a")
        conf.append(c)
        gold.append("a" if c > 0.7 else "b")
    for _ in range(5):  # category c: too rare for its own threshold
        predicted.append("c")
        conf.append(0.95)
        gold.append("c")
    routing = choose_routing(predicted, conf, gold, 0.99)
    assert 0.69 < routing.thresholds["a"] <= 0.75
    assert "c" not in routing.thresholds and routing.threshold("c") == routing.default
    rate, precision = automation(routing, predicted, conf, gold)
    assert precision >= 0.99 and rate == routing.automation_rate
    assert Routing.from_dict(json.loads(json.dumps(routing.to_dict()))) == routing
    with pytest.raises(ConfigError, match="precision target"):
        choose_routing(predicted, conf, gold, 1.5)


def test_route_flags_products_below_their_category_threshold():
    def pred(pid: str, cid: str, conf: float) -> ProductPrediction:
        return ProductPrediction(pid, (Candidate(cid, (cid,), conf, (conf,)),))

    routing = Routing(0.99, {"a": 0.8, "b": None}, default=0.5)
    out = route(
        Predictions(
            [pred("1", "a", 0.9), pred("2", "a", 0.7), pred("3", "b", 1.0), pred("4", "z", 0.6)]
        ),
        routing,
    )
    assert [p.needs_review for p in out] == [False, True, True, False]


def test_training_stores_routing_in_the_manifest(tiny_corpus, tmp_path):
    from taxonomist.models import load_model
    from taxonomist.service import train_file

    outcome = train_file(tiny_corpus, tmp_path / "m", preset="fast", precision_target=0.95)
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["routing"]["precision_target"] == 0.95
    assert 0 <= manifest["routing"]["automation_rate"] <= 1
    assert outcome.valid_metrics["automation_rate"] == manifest["routing"]["automation_rate"]
    model = load_model(tmp_path / "m")
    assert model.routing is not None and model.routing.precision_target == 0.95
