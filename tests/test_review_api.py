"""Reviewer API: scopes, problem+json for every bad input, decisions through HTTP."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from fastapi.testclient import TestClient  # noqa: E402

from taxonomist.review import QueueEntry, ReviewStore  # noqa: E402
from taxonomist.review import queue as queue_module  # noqa: E402

PROBLEM = "application/problem+json"
CORPORA = Path(__file__).parent / "corpora"


@pytest.fixture
def setup(tmp_path, tiny_taxonomy):
    from taxonomist.api import ApiSettings, create_app
    from taxonomist.api.auth import new_key
    from taxonomist.api.review_routes import review_router

    keys, lines = {}, []
    for name, scopes in (("alice", ["review"]), ("bob", ["review"]), ("bot", ["classify"])):
        keys[name], line = new_key(scopes, name)
        lines.append(line)
    store = ReviewStore(tmp_path / "review.sqlite", tiny_taxonomy)
    leaves = [c for c in tiny_taxonomy if c.is_leaf]
    store.enqueue(
        [
            QueueEntry(
                f"p{i}",
                [
                    {
                        "category_id": leaves[i % 3].id,
                        "path": leaves[i % 3].path_str,
                        "confidence": 0.3 + i / 50,
                    },
                    {"category_id": leaves[5].id, "path": leaves[5].path_str, "confidence": 0.1},
                ],
                "v1",
                title=f"product {i}",
            )
            for i in range(8)
        ]
    )
    app = create_app(ApiSettings(keys="\n".join(lines), web=False), routers=[review_router(store)])
    client = TestClient(app)

    def as_(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[name]}"}

    yield client, as_, store, leaves
    store.close()


def test_scopes_protect_the_review_routes(setup):
    client, as_, _, _ = setup
    assert client.get("/review/items").status_code == 401
    forbidden = client.get("/review/items", headers=as_("bot"))
    assert forbidden.status_code == 403 and forbidden.headers["content-type"] == PROBLEM
    assert client.get("/review/items", headers=as_("alice")).json()["total"] == 8
    assert client.get("/review").status_code == 200  # the page itself holds no data


def test_review_through_http(setup):
    client, as_, store, leaves = setup
    item = client.post("/review/next", json={}, headers=as_("alice")).json()["item"]
    assert item["reserved_by"] == "alice" and len(item["suggestions"]) == 2
    url = f"/review/items/{item['id']}/decision"
    body = {"action": "correct", "category_id": leaves[7].id}
    key = {"Idempotency-Key": "once", **as_("alice")}
    first = client.post(url, json=body, headers=key)
    second = client.post(url, json=body, headers=key)
    assert first.status_code == second.status_code == 200
    assert second.json()["replayed"] and first.json()["decision_id"] == second.json()["decision_id"]
    log = client.get("/review/decisions", headers=as_("bob")).json()["decisions"]
    assert len(log) == 1 and log[0]["reviewer"] == "alice" and log[0]["after"] == leaves[7].id
    bulk = client.post(
        "/review/bulk-accept", json={"category_id": leaves[1].id}, headers=as_("bob")
    ).json()
    assert bulk["accepted"] >= 2
    hits = client.get("/review/categories", params={"q": leaves[0].name}, headers=as_("bob"))
    assert leaves[0].id in [c["id"] for c in hits.json()["categories"]]
    # the product's photo, for the page
    photo = next((CORPORA / "images").glob("*.jpg"))
    store.enqueue(
        [
            QueueEntry(
                "photo", [{"category_id": leaves[0].id, "confidence": 0.2}], "v1", image=str(photo)
            )
        ]
    )
    with_photo = client.get("/review/items", params={"limit": 100}, headers=as_("bob")).json()
    pid = next(i["id"] for i in with_photo["items"] if i["product_id"] == "photo")
    image = client.get(f"/review/items/{pid}/image", headers=as_("bob"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content == photo.read_bytes()
    assert client.get(f"/review/items/{item['id']}/image", headers=as_("bob")).status_code == 404


def test_bad_input_is_a_clear_4xx_and_nothing_is_lost(setup, monkeypatch, tmp_path):
    client, as_, store, leaves = setup
    item = client.post("/review/next", json={}, headers=as_("alice")).json()["item"]
    url = f"/review/items/{item['id']}/decision"

    def problem(response, status: int, text: str) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
        assert text in response.json()["detail"]

    problem(
        client.post(
            url, json={"action": "correct", "category_id": "no-such"}, headers=as_("alice")
        ),
        422,
        "unknown category id 'no-such'",
    )
    problem(client.post(url, json={"action": "maybe"}, headers=as_("alice")), 422, "action")
    problem(
        client.post(url, json={"action": "accept"}, headers=as_("bob")), 409, "reserved by alice"
    )
    problem(
        client.post("/review/items/999/decision", json={"action": "accept"}, headers=as_("bob")),
        404,
        "no review item 999",
    )
    assert client.post(url, json={"action": "accept"}, headers=as_("alice")).status_code == 200
    problem(
        client.post(url, json={"action": "accept"}, headers=as_("bob")),
        409,
        "already decided by alice",
    )
    # bob's reservation runs out while he looks at the item
    other = client.post("/review/next", json={}, headers=as_("bob")).json()["item"]
    later = queue_module.utcnow() + timedelta(seconds=queue_module.RESERVATION_SECONDS + 1)
    monkeypatch.setattr(queue_module, "utcnow", lambda: later)
    problem(
        client.post(
            f"/review/items/{other['id']}/decision", json={"action": "accept"}, headers=as_("bob")
        ),
        409,
        "expired",
    )
    monkeypatch.undo()
    assert len(store.decisions()) == 1  # the one good decision, nothing else
    # the database becomes unusable under the server: 503, not 500
    store.engine.dispose()
    path = tmp_path / "review.sqlite"
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"review.sqlite{suffix}").unlink(missing_ok=True)
    os.replace(path, tmp_path / "moved.sqlite")
    path.write_text("not a database")
    problem(client.get("/review/items", headers=as_("alice")), 503, "not a database")


def test_queue_route_and_admin_retrain_over_http(tmp_path, tiny_rows):
    import csv
    import time

    from taxonomist.api import ApiSettings, create_app
    from taxonomist.api.auth import new_key
    from taxonomist.api.review_routes import open_review_router
    from taxonomist.service import train_file

    train, valid = tmp_path / "train.csv", tmp_path / "valid.csv"
    with open(train, "w", newline="") as t, open(valid, "w", newline="") as v:
        writers = {2: csv.writer(t), 3: csv.writer(t), 1: csv.writer(v)}
        for w in (writers[2], writers[1]):
            w.writerow(["id", "title", "category"])
        for i, r in enumerate(tiny_rows):
            if i % 4:
                writers[i % 4].writerow([r["id"], r["title"], r["category"]])
    store = tmp_path / "store"
    train_file(train, valid_path=valid, preset="fast", store=store, name="products")
    keys, lines = {}, []
    for name, scopes in (("bot", ["classify"]), ("rev", ["review"]), ("ops", ["admin"])):
        keys[name], line = new_key(scopes, name)
        lines.append(line)
    db = str(tmp_path / "review.sqlite")
    app = create_app(
        ApiSettings(store=store, keys="\n".join(lines), web=False),
        routers=[open_review_router(db, store=store)],
    )
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        pool = [r for i, r in enumerate(tiny_rows) if i % 4 == 0]
        body = {"products": [{"id": r["id"], "title": r["title"]} for r in pool]}
        auth = {"Authorization": f"Bearer {keys['bot']}"}
        queued = client.post("/review/queue/products", json=body, headers=auth)
        assert queued.status_code == 200, queued.text
        flagged = sum(r["needs_review"] for r in queued.json()["results"])
        assert queued.json()["queued"] == flagged > 0
        rev = {"Authorization": f"Bearer {keys['rev']}"}
        assert client.post("/review/queue/products", json=body, headers=rev).status_code == 403
        gold = {r["id"]: r["category"] for r in pool}
        items = client.get("/review/items", params={"limit": 40}, headers=rev).json()["items"]
        taxonomy_search = client.get("/review/categories", params={"q": "Shirts"}, headers=rev)
        assert taxonomy_search.json()["categories"]
        from taxonomist.persistence import read_taxonomy
        from taxonomist.store import ModelStore

        tax = read_taxonomy(ModelStore(store).current("products"))
        for item in items:
            truth = tax.by_path(gold[item["product_id"]]).id
            decided = client.post(
                f"/review/items/{item['id']}/decision",
                json={"action": "correct", "category_id": truth},
                headers=rev,
            )
            assert decided.status_code == 200
        assert (
            client.post("/admin/retrain", json={"name": "products"}, headers=rev).status_code == 403
        )
        report = client.post(
            "/admin/retrain",
            json={"name": "products"},
            headers={"Authorization": f"Bearer {keys['ops']}"},
        )
        assert report.status_code == 200, report.text
        assert report.json()["candidate"] and report.json()["holdout"]["rows"] >= 10


def test_serve_refuses_a_malformed_review_database(tmp_path):
    from typer.testing import CliRunner

    from taxonomist.cli import app

    result = CliRunner().invoke(
        app, ["serve", "--model", str(tmp_path), "--open", "--review-db", "postgresql://u@h:x/db"]
    )
    assert result.exit_code == 1 and "malformed review database URL" in result.output


def test_type_ahead_over_shopify_answers_within_200_ms(tmp_path):
    """The correction search covers the whole taxonomy: Shopify's 10k categories."""
    import importlib.util
    import statistics
    import time

    if importlib.util.find_spec("taxonomist.search") is None:
        pytest.skip("needs the indexed Taxonomy.search (taxonomist.search, from the msgs branch)")
    from taxonomist.api import ApiSettings, create_app
    from taxonomist.api.review_routes import review_router
    from taxonomist.taxonomy_loaders import load_taxonomy

    store = ReviewStore(tmp_path / "review.sqlite", load_taxonomy("shopify"))
    app = create_app(ApiSettings(open_access=True, web=False), routers=[review_router(store)])
    client = TestClient(app)
    client.get("/review/categories", params={"q": "warm"})  # the index is built once
    timings = {}
    for query in ("w", "wa", "was", "wash", "washing mach", "t-shirt", "phone case", "sofa"):
        started = time.perf_counter()
        hits = client.get("/review/categories", params={"q": query}).json()["categories"]
        timings[query] = time.perf_counter() - started
        assert hits, query
    assert statistics.median(timings.values()) < 0.2, timings
    store.close()
