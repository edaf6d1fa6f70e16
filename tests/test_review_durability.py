"""Durability: the review server is SIGKILLed 20 times at random moments while a client posts
decisions. After each kill the SQLite file passes `PRAGMA integrity_check`, every decision the
server acknowledged is there, and none is there twice (the client resends the one in flight
with the same idempotency key after the restart)."""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("sqlalchemy")
httpx = pytest.importorskip("httpx")

from taxonomist.review import QueueEntry, ReviewStore  # noqa: E402

KILLS = 20
SERVER = Path(__file__).parent / "review_server.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.02)
    raise TimeoutError(f"server on port {port} did not start")


def test_sigkill_never_loses_or_duplicates_an_acknowledged_decision(
    tmp_path, tiny_taxonomy, tiny_corpus
):
    db = tmp_path / "review.sqlite"
    leaves = [c for c in tiny_taxonomy if c.is_leaf]
    with ReviewStore(db, tiny_taxonomy) as store:
        store.enqueue(
            QueueEntry(
                f"p{i}",
                [{"category_id": leaves[i % len(leaves)].id, "path": "", "confidence": 0.5}],
                "v1",
            )
            for i in range(400)
        )
        item_ids = [i["id"] for i in store.list_items(limit=400)]
    taxonomy_file = tmp_path / "taxonomy.json"
    taxonomy_file.write_text(tiny_taxonomy.to_json())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    zygote = subprocess.Popen(
        [sys.executable, str(SERVER), str(db), str(taxonomy_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    rng = random.Random(7)
    acknowledged: dict[int, int] = {}  # item id -> decision id
    replays = 0
    position = 0
    try:
        assert zygote.stdout.readline().strip() == "ready"
        for _ in range(KILLS):
            if position == len(item_ids):
                # on a loaded machine a late kill can let one server decide every item left;
                # a next server would answer nothing, so its killer would never start
                break
            port = _free_port()
            zygote.stdin.write(f"{port}\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            _wait_ready(port, time.monotonic() + 30)
            # killed at a random moment once this server has answered once (on a loaded
            # machine a fixed delay could fall before the first answer every time)
            killer = threading.Timer(rng.uniform(0.0, 0.5), os.kill, (pid, signal.SIGKILL))
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                while position < len(item_ids):
                    item = item_ids[position]
                    try:
                        response = client.post(
                            f"/review/items/{item}/decision",
                            json={"action": "accept"},
                            headers={"Idempotency-Key": f"decision-{item}"},
                        )
                    except httpx.HTTPError:
                        break  # killed mid-request: this item is resent to the next server
                    assert response.status_code == 200, response.text
                    body = response.json()
                    replays += body["replayed"]
                    acknowledged[item] = body["decision_id"]
                    position += 1
                    if not killer.is_alive() and not killer.finished.is_set():
                        killer.start()
            killer.join()
            # the file as the killed server left it
            con = sqlite3.connect(db, isolation_level=None)
            try:
                assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                rows = con.execute("SELECT item_id, id FROM review_decisions").fetchall()
            finally:
                con.close()
            found = {}
            for item, decision in rows:
                assert item not in found, f"item {item} decided twice"
                found[item] = decision
            for item, decision in acknowledged.items():
                assert found.get(item) == decision, f"acknowledged decision on {item} lost"
    finally:
        zygote.kill()
        zygote.wait(timeout=10)
    assert len(acknowledged) >= KILLS  # every server answered before it was killed
    print(f"{len(acknowledged)} decisions acknowledged across {KILLS} kills, {replays} replayed")
