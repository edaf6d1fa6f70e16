"""The review store on a real PostgreSQL server: a throwaway cluster on 127.0.0.1, started
once for the session by the fixture (Debian's PostgreSQL 15 binaries)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")

from taxonomist.review import DecisionConflict, Filters, QueueEntry, ReviewStore  # noqa: E402

PG_BIN = Path(os.environ.get("TAXONOMIST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """postgresql://postgres@127.0.0.1:PORT/postgres of a cluster made for this session."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
    as_postgres: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="taxonomist-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(
        [*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        **run,
    )
    options = f"-k {root} -p {port} -h 127.0.0.1 -c fsync=off"
    subprocess.run(
        [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options]
        + ["-l", str(root / "log"), "-w", "start"],
        **run,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_store(postgres_url, tiny_taxonomy):
    import sqlalchemy as sa

    store = ReviewStore(postgres_url, tiny_taxonomy)
    yield store
    # a clean slate for the next test; TRUNCATE fires no row triggers (they guard the log
    # against UPDATE and DELETE by applications)
    with store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE review_decisions, review_items RESTART IDENTITY"))
    store.close()


def test_postgres_queue_decisions_and_append_only_log(pg_store, tiny_taxonomy):
    import sqlalchemy as sa

    a, b = [c.id for c in tiny_taxonomy if c.is_leaf][:2]
    pg_store.enqueue(
        [
            QueueEntry(f"p{i}", [{"category_id": a, "path": a, "confidence": 0.5}], "v1")
            for i in range(5)
        ]
    )
    pg_store.enqueue([QueueEntry("p0", [{"category_id": b, "path": b, "confidence": 0.2}], "v2")])
    assert pg_store.count() == 5  # p0 replaced, not duplicated
    item = pg_store.next_item("alice", Filters(model_version="v2"))
    assert item["product_id"] == "p0"
    first = pg_store.decide(item["id"], "alice", "correct", a, idempotency_key="k")
    assert pg_store.decide(item["id"], "alice", "correct", a, idempotency_key="k").replayed
    assert first.category_id == a
    with pytest.raises(DecisionConflict, match="already decided"):
        pg_store.decide(item["id"], "bob", "accept")
    assert len(pg_store.bulk_accept(Filters(), "bob").accepted) == 4
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), pg_store.engine.begin() as c:
        c.execute(sa.text("UPDATE review_decisions SET reviewer = 'mallory'"))
    assert [d["reviewer"] for d in pg_store.decisions()] == ["alice"] + ["bob"] * 4


def test_postgres_two_reviewers_racing_decide_once(pg_store, tiny_taxonomy):
    a = next(c.id for c in tiny_taxonomy if c.is_leaf)
    pg_store.enqueue([QueueEntry("p1", [{"category_id": a, "path": a, "confidence": 0.5}], "v1")])
    item_id = pg_store.list_items()[0]["id"]
    outcomes: list[str] = []

    def reviewer(name: str) -> None:
        try:
            pg_store.decide(item_id, name, "accept")
            outcomes.append("ok")
        except DecisionConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=reviewer, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    assert len(pg_store.decisions()) == 1
