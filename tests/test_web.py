"""The web page in a real browser: Playwright driving Debian's Chromium against the app
served by uvicorn on 127.0.0.1 (a linear model on the tiny corpus)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")
from api_support import MODEL_NAME, tiny_model_dir  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    import uvicorn

    from taxonomist.api import ApiSettings, create_app

    model = tiny_model_dir(tmp_path_factory)
    app = create_app(ApiSettings(model=model, name=MODEL_NAME, open_access=True))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        raise AssertionError("server not ready")
    yield base
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def page(server: str):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(server + "/")
        pg.wait_for_selector(f"#model option[value='{MODEL_NAME}']", state="attached")
        yield pg
        browser.close()
        assert not errors, errors


def test_classify_on_the_page(page, tmp_path: Path) -> None:
    page.focus("#titles")
    page.keyboard.type("Nike Men Running Shoes")
    page.keyboard.press("Shift+Enter")  # a new line, not a submit
    page.keyboard.type("Titan Men Silver Watch")
    page.keyboard.press("Enter")  # classifies
    page.wait_for_selector(".result:nth-child(2) .breadcrumb")
    first = page.locator(".result").first
    assert "Nike Men Running Shoes" in first.locator("h3").inner_text()
    crumbs = first.locator(".breadcrumb").first.locator(".crumb-name").all_inner_texts()
    assert [c.strip() for c in crumbs] == ["Footwear", "Shoes", "Sports Shoes"]
    bars = first.locator(".breadcrumb").first.locator("[role=meter]")
    values = [float(bars.nth(i).get_attribute("aria-valuenow")) for i in range(bars.count())]
    assert len(values) == 3 and values == sorted(values, reverse=True) and values[-1] > 0.3
    width = bars.first.locator("span").evaluate("el => el.getBoundingClientRect().width")
    assert width > 10  # the bar is drawn, not just labelled
    assert "Watches" in page.locator(".result").nth(1).inner_text()
    assert page.locator(".result").nth(1).locator(".candidate.alt").count() == 2  # top-k 3

    with page.expect_download() as download:
        page.click("#download")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["category"] for r in rows][0] == "Footwear > Shoes > Sports Shoes"
    assert rows[1]["title"] == "Titan Men Silver Watch" and rows[1]["category_2"]

    # keyboard only: Tab from the titles reaches the other controls in reading order
    page.focus("#titles")
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    assert order == ["photo", "top-k", "min-confidence", "classify"]
    page.screenshot(path=str(tmp_path / "classify.png"), full_page=True)
    shots = os.environ.get("TAXONOMIST_SCREENSHOTS")
    if shots:
        page.screenshot(path=str(Path(shots) / "classify.png"), full_page=True)


def test_csv_upload_is_batched(page, tmp_path: Path) -> None:
    rows = ["id,title,description"] + [f"p{i},Men Blue Shirt {i},cotton" for i in range(300)]
    data = tmp_path / "products.csv"
    data.write_text("\n".join(rows) + "\n")
    page.set_input_files("#csv", str(data))
    page.wait_for_function("document.querySelector('#status').textContent.includes('300')")
    page.wait_for_selector("#download:not([disabled])")
    assert page.locator(".results-table tbody tr").count() == 300  # many rows: a table
    assert "Shirts" in page.locator(".results-table tbody tr").first.inner_text()


def test_docs_render_offline(page, server: str) -> None:
    # the browser reaches nothing but 127.0.0.1 here: Swagger UI must come from the app
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/v1/models/{name}/classify']")
    page.goto(server + "/")
    page.wait_for_selector(f"#model option[value='{MODEL_NAME}']", state="attached")


def test_search_and_browse_the_taxonomy(page, tmp_path: Path) -> None:
    page.fill("#search", "bag")
    page.press("#search", "Enter")
    page.wait_for_selector("#search-results li button")
    assert page.locator("#search-results li").first.inner_text().startswith("Bags")
    page.locator("#search-results li button").first.click()
    page.wait_for_selector("#tree-path button:has-text('Bags')")
    children = page.locator("#tree li").all_inner_texts()
    assert {"Handbags", "Backpacks"} <= {c.strip() for c in children}
    page.select_option("#language", "zh")
    assert page.locator("#classify-heading").inner_text() == "分类"
    page.select_option("#language", "en")
    page.screenshot(path=str(tmp_path / "browse.png"))
    shots = os.environ.get("TAXONOMIST_SCREENSHOTS")
    if shots:  # keep them to look at: TAXONOMIST_SCREENSHOTS=folder pytest tests/test_web.py
        page.screenshot(path=str(Path(shots) / "page.png"))
