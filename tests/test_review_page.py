"""The reviewer page in a real browser (Chromium through Playwright): a reviewer clears 20
queue items with the keyboard alone, one of them corrected through the type-ahead search and
six of them in one bulk accept."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("sqlalchemy")
sync_api = pytest.importorskip("playwright.sync_api")

from taxonomist.review import QueueEntry, ReviewStore  # noqa: E402

CHROMIUM = os.environ.get("TAXONOMIST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def server(tmp_path, tmp_path_factory, tiny_taxonomy, tiny_rows):
    import uvicorn
    from api_support import tiny_model_dir

    from taxonomist.api import ApiSettings, create_app
    from taxonomist.api.review_routes import review_router
    from taxonomist.classifier import load_classifier

    store = ReviewStore(tmp_path / "review.sqlite", tiny_taxonomy)
    leaves = [c for c in tiny_taxonomy if c.is_leaf]
    bulk = leaves[0]  # six doubtful products in one category: a bulk accept clears them

    def entry(i: int, cat, conf: float) -> QueueEntry:
        other = leaves[(i + 3) % len(leaves)]
        return QueueEntry(
            f"p{i}",
            [
                {"category_id": cat.id, "path": cat.path_str, "confidence": conf},
                {"category_id": other.id, "path": other.path_str, "confidence": conf / 3},
            ],
            "v1",
            title=tiny_rows[i]["title"],
            model_name="products",
        )

    store.enqueue([entry(i, bulk, 0.5) for i in range(6)])
    store.enqueue([entry(i, leaves[1 + i % 7], 0.3 + i / 100) for i in range(6, 20)])
    app = create_app(ApiSettings(open_access=True, web=False), routers=[review_router(store)])
    # the model that "queued" the items, so the page can show why it suggests what it does
    app.state.registry.serve("products", load_classifier(tiny_model_dir(tmp_path_factory)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store, bulk, leaves
    uv.should_exit = True
    thread.join(timeout=10)
    store.close()


def test_reviewer_clears_twenty_items_with_the_keyboard(server, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    url, store, bulk, leaves = server
    target = leaves[8]  # the correction: a category none of the suggestions offers
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(f"{url}/review")
        page.wait_for_selector("#item:not([hidden])")
        # the focused item's explanation: the words that drove it, the nearest training
        # products (three, each with its category path)
        page.wait_for_selector("#why:not([hidden]) #why-words li.for")
        assert page.locator("#why-neighbours li").count() == 3
        assert " › " in page.locator("#why-neighbours li .path").first.text_content()
        words = page.eval_on_selector_all(
            "#why-words li", "els => els.map((e) => e.firstChild.textContent)"
        )
        assert words and set(words) <= set(page.locator("#title").text_content().split())
        page.screenshot(path=str(tmp_path / "review-explained.png"))
        done = page.locator("#done-count")

        def wait_done(n: int) -> None:
            page.wait_for_function(
                f"document.getElementById('done-count').textContent === '{n}'"
                " && document.body.dataset.busy !== '1'",
                timeout=20000,
            )

        # 1. filter to the crowded category and bulk-accept it: f, type, Enter, b, y
        page.keyboard.press("f")
        page.keyboard.type(bulk.id)
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('open-count').textContent === '6'")
        page.keyboard.press("b")
        page.wait_for_selector("#confirm:not([hidden])")
        page.keyboard.press("y")
        wait_done(6)
        # clear the filter, keyboard only
        page.keyboard.press("f")
        page.keyboard.press("Control+A")
        page.keyboard.press("Backspace")
        page.keyboard.press("Enter")
        # the unfiltered item has arrived when nothing is loading any more
        page.wait_for_function(
            "document.body.dataset.busy !== '1' && !document.getElementById('item').hidden",
            timeout=20000,
        )
        # 2. one correction through the type-ahead search: /, type, Enter
        page.keyboard.press("/")
        page.keyboard.type(target.name)
        page.wait_for_selector(f"#hits li[data-id='{target.id}']")
        while page.locator("#hits li.active").get_attribute("data-id") != target.id:
            page.keyboard.press("ArrowDown")
        assert page.locator("#suggestions li").count() == 2
        page.screenshot(path=str(tmp_path / "review-page.png"))  # mid-review, search open
        corrected = page.locator("#product-id").text_content()
        page.keyboard.press("Enter")
        wait_done(7)
        # 3. accept the rest, one key each
        for n in range(8, 21):
            page.wait_for_selector("#item:not([hidden])")
            page.keyboard.press("Enter")
            wait_done(n)
        page.wait_for_selector("#empty:not([hidden])")
        assert done.text_content() == "20"
        page.screenshot(path=str(tmp_path / "review-page-done.png"), full_page=True)
        browser.close()
    log = store.decisions(limit=100)
    assert len(log) == 20 and store.count() == 0
    assert sum(d["bulk"] for d in log) == 6
    fixed = [d for d in log if d["action"] == "correct"]
    assert [(d["product_id"], d["after"]) for d in fixed] == [(corrected, target.id)]
    shot = os.environ.get("TAXONOMIST_SCREENSHOT_DIR")
    if shot:  # keep the pictures for a person to look at
        for name in ("review-explained.png", "review-page.png", "review-page-done.png"):
            shutil.copy(tmp_path / name, Path(shot) / name)
