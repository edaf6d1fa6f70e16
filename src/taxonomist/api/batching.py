"""Micro-batching: concurrent requests to one model share a model call.

One worker per model takes the first waiting request, waits at most `max_wait_s` for more
(up to `max_items` products), then runs one `predict` in a thread, so the event loop keeps
accepting requests while the model works. While a call runs, new requests queue up and form
the next batch: many small clients get close to the batch path's throughput, and a lone client
pays at most the bounded wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .metrics import Metrics

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    records: list[Any]  # checked `Product`s
    language: str
    top_k: int
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Collects jobs for one model and answers each with (its predictions, the classifier).

    `current` returns the classifier to use now, so a model swapped by promote/rollback serves
    the next batch and every answer names the version that made it.
    """

    def __init__(
        self,
        name: str,
        current: Callable[[], Any],
        metrics: Metrics,
        *,
        max_wait_s: float = 0.003,
        max_items: int = 256,
    ) -> None:
        self.name = name
        self.current = current
        self.metrics = metrics
        self.max_wait_s = max_wait_s
        self.max_items = max_items
        self._pending: deque[_Job] = deque()
        self._pending_items = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            # first use, or an app run again on a new event loop (test clients do that):
            # the worker and its event belong to the loop that serves requests now
            self._loop = loop
            self._pending.clear()
            self._pending_items = 0
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self._task is not None and self._loop is asyncio.get_running_loop():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        for job in self._pending:
            if not job.future.done():
                job.future.cancel()

    async def submit(self, records: list[Any], language: str, top_k: int) -> Any:
        """Predictions for `records` (top `top_k` each) and the classifier that made them."""
        self.start()
        job = _Job(records, language, top_k, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._pending_items += len(records)
        self._wakeup.set()
        return await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = loop.time() + self.max_wait_s
            while self._pending_items < self.max_items:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            jobs = self._take()
            try:
                await self._serve(jobs)
            except Exception as exc:  # noqa: BLE001 - every waiting caller must hear of it
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    def _take(self) -> list[_Job]:
        """Waiting jobs up to `max_items` products (at least one job, whatever its size)."""
        jobs = [self._pending.popleft()]
        count = len(jobs[0].records)
        while self._pending and count + len(self._pending[0].records) <= self.max_items:
            job = self._pending.popleft()
            jobs.append(job)
            count += len(job.records)
        self._pending_items -= count
        return [j for j in jobs if not j.future.cancelled()]

    async def _serve(self, jobs: list[_Job]) -> None:
        by_language: dict[str, list[_Job]] = {}
        for job in jobs:
            by_language.setdefault(job.language, []).append(job)
        for language, group in by_language.items():
            classifier = self.current()
            try:
                preds = await self._predict(classifier, group, language)
            except Exception:  # noqa: BLE001 - a bad job must not fail its neighbours
                if len(group) == 1:
                    raise
                for job in group:
                    try:
                        preds = await self._predict(classifier, [job], language)
                    except Exception as exc:  # noqa: BLE001 - handed to that caller
                        if not job.future.done():  # a caller that left is cancelled
                            job.future.set_exception(exc)
                    else:
                        if not job.future.done():
                            job.future.set_result((preds, classifier))
                continue
            start = 0
            for job in group:
                part = preds[start : start + len(job.records)]
                start += len(job.records)
                if not job.future.done():
                    job.future.set_result((part, classifier))

    async def _predict(self, classifier: Any, jobs: list[_Job], language: str) -> Any:
        records = [r for job in jobs for r in job.records]
        top_k = max(job.top_k for job in jobs)
        started = time.perf_counter()
        # the products were checked per request already (predict_products checks no
        # more), and paths come back in the taxonomy's primary names: the routes write
        # them in the asked language, level by level, falling back where a name is missing
        preds = await asyncio.to_thread(
            classifier.predict_products, records, top_k=top_k, language="en"
        )
        self.metrics.inference.labels(self.name).observe(time.perf_counter() - started)
        self.metrics.batch_items.labels(self.name).observe(len(records))
        self.metrics.items.labels(self.name).inc(len(records))
        return preds
