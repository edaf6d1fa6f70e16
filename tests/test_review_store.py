"""The review store on SQLite: queue, priority, reservations, decisions, audit log, export."""

from __future__ import annotations

import csv
import sqlite3
from datetime import timedelta

import pandas as pd
import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

from taxonomist.review import (  # noqa: E402
    DatabaseError,
    DecisionConflict,
    Filters,
    InvalidDecision,
    ItemNotFound,
    QueueEntry,
    ReviewStore,
)
from taxonomist.review import queue as queue_module  # noqa: E402
from taxonomist.review.export import export_labels  # noqa: E402


def entry(pid: str, cid: str, conf: float, version: str = "v1", alt: str | None = None):
    suggestions = [{"category_id": cid, "path": cid, "confidence": conf}]
    if alt:
        suggestions.append({"category_id": alt, "path": alt, "confidence": 1 - conf})
    return QueueEntry(pid, suggestions, version, title=f"title {pid}", text=f"text {pid}")


@pytest.fixture
def store(tmp_path, tiny_taxonomy):
    with ReviewStore(tmp_path / "review.sqlite", tiny_taxonomy) as s:
        yield s


def ids(tiny_taxonomy, n: int) -> list[str]:
    return [c.id for c in tiny_taxonomy if c.is_leaf][:n]


def test_sqlite_runs_in_wal_mode_and_the_log_is_append_only(store, tmp_path, tiny_taxonomy):
    a = ids(tiny_taxonomy, 1)[0]
    store.enqueue([entry("p1", a, 0.4)])
    store.decide(store.list_items()[0]["id"], "alice", "accept")
    db = sqlite3.connect(tmp_path / "review.sqlite", isolation_level=None)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE review_decisions SET reviewer = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM review_decisions")
    db.close()
    assert store.integrity_problems() == []


def test_priority_is_uncertainty_times_products_sharing_the_category(store, tiny_taxonomy):
    a, b = ids(tiny_taxonomy, 2)
    store.enqueue([entry("p1", a, 0.5), entry("p2", a, 0.9), entry("p3", a, 0.8)])
    store.enqueue([entry("p4", b, 0.2)])  # most uncertain, but alone in its category
    items = store.list_items()
    assert [i["product_id"] for i in items] == ["p1", "p4", "p3", "p2"]
    assert items[0]["priority"] == pytest.approx(0.5 * 3)
    assert [i["product_id"] for i in store.list_items(Filters(category_id=b))] == ["p4"]
    assert store.count(Filters(max_confidence=0.6)) == 2
    assert store.count(Filters(model_version="v2")) == 0


def test_requeueing_a_product_replaces_its_open_item(store, tiny_taxonomy):
    a, b = ids(tiny_taxonomy, 2)
    store.enqueue([entry("p1", a, 0.4)])
    old = store.list_items()[0]["id"]
    store.enqueue([entry("p1", b, 0.3, version="v2")])
    items = store.list_items()
    assert len(items) == 1 and items[0]["category_id"] == b and items[0]["model_version"] == "v2"
    with pytest.raises(DecisionConflict, match="replaced by a newer prediction"):
        store.decide(old, "alice", "accept")


def test_reservations_decisions_and_conflicts(store, tiny_taxonomy, monkeypatch):
    a, b, c = ids(tiny_taxonomy, 3)
    store.enqueue([entry("p1", a, 0.4, alt=b), entry("p2", a, 0.6)])
    first = store.next_item("alice")
    assert first["product_id"] == "p1" and first["reserved_by"] == "alice"
    # bob gets the next free item, not alice's
    assert store.next_item("bob")["product_id"] == "p2"
    with pytest.raises(DecisionConflict, match="reserved by alice"):
        store.decide(first["id"], "bob", "accept")
    with pytest.raises(InvalidDecision, match="unknown category id 'nope'"):
        store.decide(first["id"], "alice", "correct", "nope")
    done = store.decide(first["id"], "alice", "correct", c, idempotency_key="k1")
    again = store.decide(first["id"], "alice", "correct", c, idempotency_key="k1")
    assert again.replayed and again.decision_id == done.decision_id
    assert len(store.decisions()) == 1  # sent twice, counted once
    with pytest.raises(DecisionConflict, match="already decided by alice"):
        store.decide(first["id"], "bob", "accept")
    with pytest.raises(DecisionConflict, match="idempotency key"):
        store.decide(store.list_items()[0]["id"], "alice", "accept", idempotency_key="k1")
    with pytest.raises(ItemNotFound):
        store.decide(999, "alice", "accept")
    # bob's reservation of p2 expires: bob may no longer decide on it
    p2 = store.list_items()[0]["id"]
    later = queue_module.utcnow() + timedelta(seconds=queue_module.RESERVATION_SECONDS + 5)
    monkeypatch.setattr(queue_module, "utcnow", lambda: later)
    with pytest.raises(DecisionConflict, match="reservation of item .* expired"):
        store.decide(p2, "bob", "accept")
    # ...while alice may take it over
    assert store.reserve(p2, "alice")["reserved_by"] == "alice"
    assert store.decide(p2, "alice", "accept").category_id == a
    log = store.decisions()
    assert [(d["reviewer"], d["action"], d["before"], d["after"]) for d in log] == [
        ("alice", "correct", a, c),
        ("alice", "accept", a, a),
    ]
    assert all(d["model_version"] == "v1" and d["at"] for d in log)


def test_skip_leaves_the_item_open_for_others(store, tiny_taxonomy):
    a = ids(tiny_taxonomy, 1)[0]
    store.enqueue([entry("p1", a, 0.4)])
    item = store.next_item("alice")
    assert store.decide(item["id"], "alice", "skip").action == "skip"
    assert store.next_item("alice") is None  # alice skipped it
    assert store.next_item("bob")["id"] == item["id"]


def test_bulk_accept_leaves_items_held_by_others(store, tiny_taxonomy):
    a, b = ids(tiny_taxonomy, 2)
    store.enqueue([entry(f"p{i}", a if i < 4 else b, 0.5) for i in range(6)])
    held = store.next_item("bob", Filters(category_id=a))
    result = store.bulk_accept(Filters(category_id=a), "alice", idempotency_key="bulk-1")
    assert len(result.accepted) == 3 and result.skipped_reserved == 1
    again = store.bulk_accept(Filters(category_id=a), "alice", idempotency_key="bulk-1")
    assert again.accepted == []
    assert store.get(held["id"])["status"] == "open"
    assert store.count(Filters()) == 3


def test_export_writes_the_latest_label_per_product(store, tiny_taxonomy, tmp_path):
    a, b = ids(tiny_taxonomy, 2)
    store.enqueue([entry("p1", a, 0.4), entry("p2", a, 0.4)])
    store.decide(store.next_item("r")["id"], "r", "correct", b)
    store.enqueue([entry("p1", a, 0.3)])  # p1 queued again by a later model...
    for _ in range(2):
        item = store.next_item("r")
        store.decide(item["id"], "r", "accept")
    out = export_labels(store, tmp_path / "labels.csv")
    with open(tmp_path / "labels.csv", encoding="utf-8") as handle:
        rows = {r["id"]: r for r in csv.DictReader(handle)}
    assert out == 2 and rows["p1"]["category_id"] == a  # ...and its newer decision wins
    assert rows["p1"]["category"] == tiny_taxonomy.get(a).path_str
    export_labels(store, tmp_path / "labels.parquet")
    assert len(pd.read_parquet(tmp_path / "labels.parquet")) == 2
    with pytest.raises(Exception, match="use .csv or .parquet"):
        export_labels(store, tmp_path / "labels.txt")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported review database 'mysql'"),
        ("postgresql://", "names no host"),
        ("sqlite://", "names no file"),
        ("postgresql://u@h:notaport/db", "malformed review database URL"),
        ("/no/such/folder/review.sqlite", "folder for the review database does not exist"),
    ],
)
def test_bad_database_urls_are_clear_errors(url, message):
    with pytest.raises(DatabaseError, match=message):
        ReviewStore(url)


def test_a_database_that_is_down_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DatabaseError, match="Connection refused|is the PostgreSQL server"):
        ReviewStore(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    (tmp_path / "junk.sqlite").write_text("not a database")
    with pytest.raises(DatabaseError, match="not a database"):
        ReviewStore(tmp_path / "junk.sqlite")


def test_cli_classify_queues_below_threshold_and_requeue_replaces(tmp_path, tiny_rows, tiny_corpus):
    from typer.testing import CliRunner

    from taxonomist.cli import app

    train, valid, pool = (tmp_path / f"{n}.csv" for n in ("train", "valid", "pool"))
    with (
        open(train, "w", newline="") as t,
        open(valid, "w", newline="") as v,
        open(pool, "w", newline="") as p,
    ):
        wt, wv, wp = csv.writer(t), csv.writer(v), csv.writer(p)
        for w in (wt, wv):
            w.writerow(["id", "title", "category"])
        wp.writerow(["id", "title"])
        for i, row in enumerate(tiny_rows):
            if i % 4 == 0:
                wp.writerow([row["id"], row["title"]])
            else:
                (wv if i % 4 == 3 else wt).writerow([row["id"], row["title"], row["category"]])
    runner = CliRunner()
    model = tmp_path / "m"
    trained = runner.invoke(
        app, ["train", str(train), "--valid", str(valid), "--out", str(model), "--preset", "fast"]
    )
    assert trained.exit_code == 0, trained.output
    db = tmp_path / "review.sqlite"
    args = ["classify", str(pool), "--model", str(model), "--out", str(tmp_path / "p.csv")]
    result = runner.invoke(app, [*args, "--review-db", str(db)])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "p.csv", encoding="utf-8") as handle:
        flagged = sum(r["needs_review"] == "True" for r in csv.DictReader(handle))
    with ReviewStore(db) as store:
        items = store.list_items(limit=500)
        assert len(items) == flagged > 0
        assert f"queued {flagged} products" in result.output
        assert all(i["reason"] == "low_confidence" and len(i["suggestions"]) >= 2 for i in items)
        assert all(i["model_name"] == "m" and i["model_version"] for i in items)
    assert runner.invoke(app, [*args, "--review-db", str(db)]).exit_code == 0
    with ReviewStore(db) as store:
        assert store.count() == flagged  # re-classifying replaced the open items
    bad = runner.invoke(app, [*args, "--review-db", "mysql://x/y"])
    assert bad.exit_code == 1 and "unsupported review database" in bad.output
    evaluated = runner.invoke(
        app,
        [
            "evaluate",
            str(tmp_path / "p.csv"),
            "--gold",
            str(train.parent / "pool.csv").replace("pool", "pool"),
        ],
    )
    del evaluated
