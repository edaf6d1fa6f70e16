"""Explanations: exact linear word contributions, occlusion, nearest training products,
photo heat maps, and `classify --explain`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from taxonomist.analysis.explain import Explainer, explain
from taxonomist.analysis.neighbours import TrainingIndex
from taxonomist.cli import app
from taxonomist.items import Item
from taxonomist.models import load_model, model_class
from taxonomist.taxonomy_loaders import from_labels
from taxonomist.training import train_model

IMAGES = Path(__file__).parent / "corpora" / "fashion_tiny_images.csv"


@pytest.fixture(scope="module")
def fast_model(tmp_path_factory) -> Path:
    with open(Path(__file__).parent / "corpora" / "fashion_tiny.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    tax = from_labels(r["category"] for r in rows)
    out = tmp_path_factory.mktemp("fast") / "model"
    train_model(
        [r["title"] for r in rows[:130]], [tax.by_path(r["category"]).id for r in rows[:130]],
        tax, out, preset="fast", ids=[r["id"] for r in rows[:130]], valid_fraction=0.2,
    )  # fmt: skip
    return out


def test_linear_words_add_up_to_the_score_and_neighbours_come_from_training(
    fast_model, tiny_rows
) -> None:
    model = load_model(fast_model)
    explainer = Explainer(model, fast_model)
    titles = [r["title"] for r in tiny_rows[130:150]]
    for exp, title in zip(explainer.explain(titles), titles):
        column = model.labels.index(exp.category)
        score = model._logits([title])[0, column] - model._intercept[column]
        assert exp.method == "linear-exact"
        assert np.isclose(sum(w.weight for w in exp.words), score, atol=1e-4)
        assert sorted(w.position for w in exp.words) == list(range(len(title.split())))
        assert len(exp.neighbours) == 3
        assert {"id", "title", "category", "similarity"} <= set(exp.neighbours[0])
    index = TrainingIndex.load(fast_model)
    assert index is not None and len(index) == 130
    assert index.query([tiny_rows[0]["title"]], 1)[0][0].id == tiny_rows[0]["id"]


def test_deleting_top_words_costs_more_than_random_words(fast_model, tiny_rows) -> None:
    model = load_model(fast_model)
    explainer = Explainer(model, fast_model)
    titles = [r["title"] for r in tiny_rows[130:]]
    rng = np.random.default_rng(0)
    top_drop, random_drop = [], []
    for exp, title in zip(explainer.explain(titles, neighbours=0), titles):
        words = title.split()
        column = model.labels.index(exp.category)
        top = {w.position for w in exp.words[:2]}
        rand = set(rng.choice(len(words), min(2, len(words)), replace=False).tolist())
        variants = [" ".join(w for i, w in enumerate(words) if i not in s) for s in (top, rand)]
        p = model.predict_proba([title, *variants])[:, column]
        top_drop.append(p[0] - p[1])
        random_drop.append(p[0] - p[2])
    assert np.mean(top_drop) > np.mean(random_drop)


def test_occlusion_explains_other_kinds_and_photos(tmp_path) -> None:
    with open(IMAGES, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:40]
    tax = from_labels(r["category"] for r in rows)
    items = [Item(r["title"], str(IMAGES.parent / r["image"])) for r in rows]
    labels = [tax.by_path(r["category"]).id for r in rows]
    cls = model_class("image")
    config = {"encoder": "fake", "epochs": 10, "hidden": 0, "batch_size": 8, "lr": 0.01}
    model = cls(tax, cls.config_class.from_dict(config))
    model.fit(items, labels)
    [exp] = Explainer(model).explain(items[:1])
    assert exp.method == "occlusion" and exp.neighbours == []
    heat = np.array(exp.image_heatmap)
    assert heat.shape == (4, 4) and np.abs(heat).sum() > 0
    knn = model_class("knn")(tax)
    knn.fit([r["title"] for r in rows], labels)
    [exp] = Explainer(knn).explain([rows[0]["title"]])
    assert exp.method == "occlusion" and exp.image_heatmap is None
    assert exp.words[0].weight >= exp.words[-1].weight


def test_classify_explain_writes_explanations(fast_model, tiny_corpus, tmp_path) -> None:
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(
        app, ["classify", str(tiny_corpus), "--model", str(fast_model), "--out", str(out),
              "--explain"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "pred.explanations.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 160 and first["words"] and first["neighbours"][0]["title"]
    result = CliRunner().invoke(app, ["classify", str(tiny_corpus), "--out", str(out), "--explain"])
    assert result.exit_code == 1 and "--explain needs a trained --model" in result.output
    assert explain(fast_model, ["Red Handbag"])[0].path
