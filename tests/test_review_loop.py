"""The review loop end to end on the tiny corpus: a first version in a model store, its
doubtful predictions queued, a simulated reviewer answering with the gold label, retraining
behind the gate; and a candidate trained on shuffled labels refused."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")

from taxonomist.persistence import read_taxonomy  # noqa: E402
from taxonomist.review import Filters, ReviewStore  # noqa: E402
from taxonomist.review.loop import queue_file, retrain, shuffled  # noqa: E402


def _write(path, rows, labelled=True):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "category"] if labelled else ["id", "title"])
        for r in rows:
            writer.writerow([r["id"], r["title"], r["category"]][: 3 if labelled else 2])
    return path


@pytest.fixture
def loop(tmp_path, tiny_rows):
    """A store whose first version trained on 64 products (a holdout cut from them), and a
    queue holding the doubtful ones of 64 other products."""
    from taxonomist.service import train_file
    from taxonomist.store import ModelStore

    test = [r for i, r in enumerate(tiny_rows) if i % 5 == 0]
    rest = [r for i, r in enumerate(tiny_rows) if i % 5]
    first, pool = rest[0::2], rest[1::2]
    train, valid = first[: len(first) * 2 // 3], first[len(first) * 2 // 3 :]
    store_dir = tmp_path / "store"
    train_file(
        _write(tmp_path / "train.csv", train),
        valid_path=_write(tmp_path / "valid.csv", valid),
        preset="fast",
        store=store_dir,
        name="products",
    )
    db = f"sqlite:///{tmp_path / 'review.sqlite'}"
    queued = queue_file(_write(tmp_path / "pool.csv", pool, False), store_dir, "products", db)
    gold = {r["id"]: r["category"] for r in pool}
    return ModelStore(store_dir), store_dir, db, gold, test, queued


def _accuracy(model_dir, rows) -> float:
    from taxonomist.models import load_model

    preds = load_model(model_dir).predict([r["title"] for r in rows])
    return sum(p.best.path_str == r["category"] for p, r in zip(preds, rows)) / len(rows)


def test_answers_in_queue_order_retrain_a_better_model(loop):
    store, store_dir, db, gold, test, queued = loop
    v1 = store.current_version("products")
    assert (store_dir / "products" / "holdout.csv").exists()
    assert queued >= 30
    taxonomy = read_taxonomy(store.current("products"))
    with ReviewStore(db, taxonomy) as reviews:
        for item in reviews.list_items(Filters(), limit=30):  # the first 30 in queue order
            reviews.reserve(item["id"], "simulated")
            truth = taxonomy.by_path(gold[item["product_id"]]).id
            reviews.decide(item["id"], "simulated", "correct", truth)
    report = retrain(store_dir, "products", db)
    assert report.promoted, report.reasons
    assert store.current_version("products") == report.candidate != v1
    saved = json.loads(Path(report.report_path).read_text())
    assert saved["promoted"] and saved["holdout"]["rows"] >= 10
    before = _accuracy(store.path("products", v1), test)
    after = _accuracy(store.current("products"), test)
    assert after > before, (before, after)
    print(f"test accuracy {before:.3f} -> {after:.3f}; {report.reasons}")
    # the candidate kept its training data, so it can be retrained in turn
    assert (store.current("products") / "training_data.csv").exists()
    store.rollback("products")  # one call
    assert store.current_version("products") == v1


def test_a_candidate_trained_on_shuffled_labels_is_refused(loop):
    store, store_dir, db, gold, test, _ = loop
    v1 = store.current_version("products")
    with ReviewStore(db) as reviews:
        for item in reviews.list_items(Filters(), limit=20):
            reviews.decide(item["id"], "simulated", "accept")
    report = retrain(store_dir, "products", db, prepare=shuffled(seed=1))
    assert not report.promoted and report.reasons
    assert "worse on the frozen holdout" in " ".join(report.reasons)
    assert store.current_version("products") == v1  # the current version keeps serving
    assert report.candidate in [v.version for v in store.versions("products")]


def test_a_self_trained_version_is_retrained_with_its_pool(tmp_path, tiny_rows):
    """`fewshot` trained with --unlabelled: its candidate self-trains on the same file (the
    holdout left out of it), and records it for the next retrain; once the file is gone
    the candidate learns from labels alone and the report says why."""
    from taxonomist.service import train_file
    from taxonomist.store import ModelStore

    train, pool = tiny_rows[0::2], tiny_rows[1::2]
    store_dir = tmp_path / "store"
    unlabelled = _write(tmp_path / "unlabelled.csv", pool, False)
    train_file(
        _write(tmp_path / "train.csv", train),
        kind="fewshot",
        overrides={"encoder": "fake"},
        store=store_dir,
        name="products",
        unlabelled_path=unlabelled,
    )
    store = ModelStore(store_dir)
    db = f"sqlite:///{tmp_path / 'review.sqlite'}"
    from taxonomist.service import classify_file

    classify_file(  # trained without a validation cut, it has no thresholds: queue all
        _write(tmp_path / "queue.csv", pool, False),
        tmp_path / "p.csv",
        store=store_dir,
        name="products",
        review_db=db,
        min_confidence=1.0,
        device="cpu",
    )
    with ReviewStore(db) as reviews:
        for item in reviews.list_items(Filters(), limit=10):
            reviews.decide(item["id"], "simulated", "accept")
    report = retrain(store_dir, "products", db)
    assert report.training["unlabelled_rows"] > 0
    candidate = store.path("products", report.candidate)
    manifest = json.loads((candidate / "manifest.json").read_text("utf-8"))
    # (fewshot counts distinct titles)
    assert 0 < manifest["self_training"]["unlabelled_rows"] <= report.training["unlabelled_rows"]
    assert manifest["store"]["training_data"]["unlabelled"] == str(unlabelled.resolve())
    unlabelled.unlink()
    again = retrain(store_dir, "products", db)
    assert again.training["unlabelled_rows"] == 0
    assert "gone" in again.training["unlabelled_note"]
