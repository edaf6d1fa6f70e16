"""Re-ranking doubtful predictions with a large language model behind any OpenAI-compatible
chat-completions endpoint (vLLM, llama.cpp's server, Ollama, OpenAI).

Only products whose best confidence is below a threshold are sent, with their model's top-k
candidate paths; the LLM answers with the number of the right one. The endpoint is an
optional helper, never a dependency of the job: every answer is cached on disk, each request
has a timeout, a budget caps the requests of one job, and after a few failures in a row the
endpoint is left alone for the rest of the job. A product the LLM could not judge keeps its
own model's answer and says why in `llm_status`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from .errors import ConfigError
from .predictions import Predictions, ProductPrediction

logger = logging.getLogger(__name__)

_SYSTEM = (
    "You sort shop products into a product category taxonomy. You are given a product and a "
    "numbered list of candidate category paths. Reply with the number of the best candidate "
    "and nothing else."
)
_NUMBER = re.compile(r"\d+")


class LLMStatus(str, Enum):
    """What happened to one product's prediction (written as `llm_status`)."""

    CHANGED = "changed"  # the LLM chose another candidate, now first
    AGREED = "agreed"  # the LLM chose the model's own first candidate
    FAILED = "failed"  # endpoint error or timeout: the model's answer is kept
    UNPARSED = "unparsed"  # the reply named no candidate: the model's answer is kept
    OVER_BUDGET = "over-budget"  # the job's request budget was spent: kept
    UNAVAILABLE = "unavailable"  # the endpoint failed repeatedly earlier in this job: kept


@dataclass(frozen=True)
class LLMConfig:
    """Where the LLM is and how much of it a job may use.

    Args:
        url: the endpoint's base URL ("http://127.0.0.1:8080/v1"); "/chat/completions" is
            appended unless the URL already ends with it.
        model: the model name the endpoint expects.
        threshold: products whose best confidence is below this are re-ranked.
        top_k: candidate paths shown to the LLM.
        timeout: seconds allowed per request.
        budget: at most this many requests per job (cache hits are free).
        max_failures: after this many failures in a row the endpoint is not called again
            in this job, so a dead server costs seconds, not timeout x products.
        concurrency: requests in flight at once.
        api_key: sent as a bearer token; by default $TAXONOMIST_LLM_API_KEY or
            $OPENAI_API_KEY.
    """

    url: str
    model: str
    threshold: float = 0.5
    top_k: int = 5
    timeout: float = 30.0
    budget: int = 1000
    max_failures: int = 3
    concurrency: int = 4
    api_key: str | None = None

    def __post_init__(self) -> None:
        if not re.match(r"^https?://", self.url):
            raise ConfigError(f"--llm-url must start with http:// or https://, got {self.url!r}")
        if not self.model.strip():
            raise ConfigError("--llm-model is required with --llm-url (the endpoint's model name)")
        if not 0 <= self.threshold <= 1:
            raise ConfigError(f"--llm-threshold must be in [0, 1], got {self.threshold}")
        for name in ("top_k", "budget", "max_failures", "concurrency"):
            minimum = 0 if name == "budget" else 1
            if getattr(self, name) < minimum:
                raise ConfigError(f"llm {name} must be >= {minimum}, got {getattr(self, name)}")
        if self.top_k < 2:
            raise ConfigError(f"--llm-top-k must be at least 2 to choose from, got {self.top_k}")
        if self.timeout <= 0:
            raise ConfigError(f"--llm-timeout must be > 0, got {self.timeout}")

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/chat/completions") else f"{base}/chat/completions"

    @property
    def key(self) -> str | None:
        return (
            self.api_key
            or os.environ.get("TAXONOMIST_LLM_API_KEY")
            or os.environ.get("OPENAI_API_KEY")
        )


class LLMCache:
    """Replies by (model, prompt) in one SQLite file; a re-run costs no requests."""

    def __init__(self, directory: str | Path) -> None:
        path = Path(directory) / "llm.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS reply (key TEXT PRIMARY KEY, text TEXT)")
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, messages: list[dict[str, str]]) -> str:
        raw = json.dumps([model, messages], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT text FROM reply WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, text: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO reply (key, text) VALUES (?, ?)", (key, text))


def open_llm_cache(directory: str | Path | None = None) -> LLMCache | None:
    """The reply cache beside the embedding cache, or None when TAXONOMIST_NO_CACHE=1 or the
    folder cannot be written (the cache only saves requests, it never changes an answer)."""
    from .encoders.cache import default_cache_dir

    if os.environ.get("TAXONOMIST_NO_CACHE") == "1":
        return None
    try:
        return LLMCache(directory or default_cache_dir())
    except (OSError, sqlite3.Error) as exc:
        logger.warning("LLM reply cache not usable (%s); asking without a cache", exc)
        return None


def prompt(text: str, paths: Sequence[str]) -> list[dict[str, str]]:
    """The chat messages asking which of `paths` fits the product `text`."""
    numbered = "\n".join(f"{i}. {p}" for i, p in enumerate(paths, 1))
    user = f"Product: {text.strip()[:1000]}\n\nCandidates:\n{numbered}\n\nBest candidate number:"
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def parse_choice(reply: str, n: int, paths: Sequence[str] = ()) -> int | None:
    """The 0-based candidate a reply names: its first number in 1..n, else a candidate path
    or last level quoted verbatim; None when it names none."""
    for match in _NUMBER.finditer(reply):
        value = int(match.group())
        if 1 <= value <= n:
            return value - 1
    lowered = reply.casefold()
    for i, path in enumerate(paths):
        if path.casefold() in lowered:
            return i
    leaves = [p.rsplit(" > ", 1)[-1].casefold() for p in paths]
    hits = [i for i, leaf in enumerate(leaves) if leaf and leaf in lowered]
    return hits[0] if len(hits) == 1 else None


class LLMReranker:
    """Re-ranks the doubtful products of a job; one instance per job (it holds the budget).

    Example:
        >>> config = LLMConfig("http://127.0.0.1:8080/v1", "smollm2")   # doctest: +SKIP
        >>> reranker = LLMReranker(config, LLMCache(default_cache_dir()))   # doctest: +SKIP
        >>> preds = reranker.rerank(texts, preds)   # doctest: +SKIP
    """

    def __init__(self, config: LLMConfig, cache: LLMCache | None = None) -> None:
        self.config = config
        self.cache = cache
        self.requests = 0
        self.cache_hits = 0
        self._failures_in_a_row = 0
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {s.value: 0 for s in LLMStatus}

    def _ask(self, messages: list[dict[str, str]]) -> str:
        body = json.dumps(
            {"model": self.config.model, "messages": messages, "temperature": 0, "max_tokens": 8}
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.config.key:
            headers["Authorization"] = f"Bearer {self.config.key}"
        request = urllib.request.Request(self.config.endpoint, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
            payload = json.loads(response.read().decode("utf-8"))
        return str(payload["choices"][0]["message"]["content"] or "")

    def _reply(self, messages: list[dict[str, str]]) -> tuple[str | None, LLMStatus | None]:
        key = LLMCache.key(self.config.model, messages)
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                with self._lock:
                    self.cache_hits += 1
                return cached, None
        with self._lock:
            if self._failures_in_a_row >= self.config.max_failures:
                return None, LLMStatus.UNAVAILABLE
            if self.requests >= self.config.budget:
                return None, LLMStatus.OVER_BUDGET
            self.requests += 1
        try:
            text = self._ask(messages)
        except (OSError, urllib.error.URLError, ValueError, KeyError, IndexError, TypeError) as exc:
            # timeouts, refused connections, HTTP errors and malformed JSON all land here
            with self._lock:
                self._failures_in_a_row += 1
                if self._failures_in_a_row == self.config.max_failures:
                    logger.warning(
                        "LLM endpoint %s failed %d times in a row (last: %s); keeping the "
                        "model's answers for the rest of this job",
                        self.config.endpoint,
                        self._failures_in_a_row,
                        exc,
                    )
            logger.info("LLM request failed: %s", exc)
            return None, LLMStatus.FAILED
        with self._lock:
            self._failures_in_a_row = 0
        if self.cache is not None:
            self.cache.put(key, text)
        return text, None

    def _one(self, text: str, pred: ProductPrediction) -> ProductPrediction:
        cands = pred.candidates[: self.config.top_k]
        paths = [c.path_str for c in cands]
        reply, status = self._reply(prompt(text, paths))
        if reply is not None:
            choice = parse_choice(reply, len(paths), paths)
            if choice is None:
                status = LLMStatus.UNPARSED
            elif choice == 0:
                status = LLMStatus.AGREED
            else:
                status = LLMStatus.CHANGED
                rest = tuple(c for i, c in enumerate(pred.candidates) if i != choice)
                pred = replace(pred, candidates=(pred.candidates[choice], *rest))
        assert status is not None
        with self._lock:
            self.counts[status.value] += 1
        return replace(pred, llm_status=status.value)

    def rerank(self, texts: Sequence[str], preds: Predictions) -> Predictions:
        """Re-rank the products whose best confidence is below the threshold.

        Products above it, and products with fewer than two candidates, are returned as
        they are (`llm_status` empty). The confidences stay the model's own: the LLM
        reorders candidates, it does not claim a probability.
        """
        if len(texts) != len(preds):
            raise ValueError(f"{len(texts)} texts for {len(preds)} predictions")
        todo = [
            i
            for i, p in enumerate(preds)
            if len(p.candidates) >= 2 and p.candidates[0].confidence < self.config.threshold
        ]
        out = list(preds)
        if not todo:
            return preds
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            for i, done in zip(todo, pool.map(lambda i: self._one(texts[i], out[i]), todo)):
                out[i] = done
        return Predictions(
            out, model=preds.model, proba=preds.proba, labels=preds.labels, warnings=preds.warnings
        )

    def summary(self) -> str:
        counted = ", ".join(f"{v} {k}" for k, v in self.counts.items() if v)
        return (
            f"LLM re-ranking: {counted or 'nothing below the threshold'} "
            f"({self.requests} requests, {self.cache_hits} from cache)"
        )
